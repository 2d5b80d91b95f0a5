//! What `Organization.status.usage` and the `UsageLimit` condition say about the metered usage of the open
//! billing period, decided from the meters' [`MeterLimit`]s. Pure.
//!
//! The condition is `True` while every meter is within its limit — reason `Ok` below 80 %, `Warning` from
//! 80 % — and `False` with reason `Reached` from 100 % of any limit (blocked for a Block overage, billed
//! beyond for Bill).

use super::limits::{LimitState, MeterLimit, closest_to_limit};
use super::meter::Meter;
use super::terms::Overage;
use std::collections::BTreeMap;

pub const CONDITION: &str = "UsageLimit";

/// The status lines and the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageStatus {
    /// Per meter, `used/included` (e.g. `12.4Gi/50Gi`).
    pub lines: BTreeMap<Meter, String>,
    /// The meter closest to its limit, for the printer column: `bandwidth 41.2Gi/50Gi (82%)`.
    pub closest: Option<String>,
    pub state: LimitState,
    /// A Block meter reached 100 %: the tenant's traffic goes to the limit-reached page.
    pub blocked: bool,
    pub condition_status: bool,
    pub reason: &'static str,
    pub message: String,
}

pub fn usage_status(limits: &[MeterLimit]) -> UsageStatus {
    let lines = limits.iter().map(|l| (l.meter, l.status())).collect();
    let closest = closest_to_limit(limits).map(MeterLimit::summary);
    let state = limits.iter().map(|l| l.state).max().unwrap_or(LimitState::Ok);
    let at = |wanted: LimitState| -> Vec<String> {
        limits.iter().filter(|l| l.state == wanted).map(MeterLimit::summary).collect()
    };
    let (condition_status, reason, message) = match state {
        LimitState::Ok => (true, "Ok", "every metered usage is below 80% of its plan's limit this period".to_string()),
        LimitState::Warning => (
            true,
            "Warning",
            format!(
                "at 80% or more of the plan's limit this period: {}; upgrade the plan before the limit is reached",
                at(LimitState::Warning).join(", ")
            ),
        ),
        LimitState::Reached => {
            let reached: Vec<String> = limits
                .iter()
                .filter(|l| l.state == LimitState::Reached)
                .map(|l| {
                    let what = match l.overage {
                        _ if l.blocked => {
                            "blocked: the tenant's traffic goes to the limit-reached page until the next period or an upgrade"
                        }
                        // Storage under Block: the quota refuses new claims beyond the plan; nothing is billed.
                        Overage::Block => "capped by the quota: nothing beyond it is billed",
                        Overage::Bill { .. } => "usage beyond it is billed at the plan's price",
                    };
                    format!("{} ({what})", l.summary())
                })
                .collect();
            (false, "Reached", format!("plan limit reached this period: {}", reached.join(", ")))
        }
    };
    UsageStatus { lines, closest, state, blocked: blocked(limits), condition_status, reason, message }
}

/// Whether any meter is blocked (Block overage at 100 %).
pub fn blocked(limits: &[MeterLimit]) -> bool {
    limits.iter().any(|l| l.blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::limits::meter_limit;
    use crate::metering::terms::MeterTerms;

    const GIB: i64 = 1 << 30;

    fn terms(meter: Meter, included: Option<i64>, overage: Overage) -> MeterTerms {
        MeterTerms { meter, included, overage }
    }

    #[test]
    fn below_80_percent_is_ok_and_lines_show_used_over_included() {
        let limits = [
            meter_limit(&terms(Meter::Bandwidth, Some(50 * GIB), Overage::Block), 10 * GIB),
            meter_limit(&terms(Meter::ApiCalls, None, Overage::Block), 1234),
        ];
        let status = usage_status(&limits);
        assert_eq!(status.lines[&Meter::Bandwidth], "10Gi/50Gi");
        assert_eq!(status.lines[&Meter::ApiCalls], "1.2k/unlimited");
        assert_eq!(status.closest.as_deref(), Some("bandwidth 10Gi/50Gi (20%)"));
        assert_eq!((status.condition_status, status.reason, status.state), (true, "Ok", LimitState::Ok));
        assert!(!blocked(&limits));
    }

    #[test]
    fn from_80_percent_a_warning_and_from_100_reached_blocked_or_billed() {
        let warning = [meter_limit(&terms(Meter::Bandwidth, Some(50 * GIB), Overage::Block), 40 * GIB)];
        let status = usage_status(&warning);
        assert_eq!((status.condition_status, status.reason), (true, "Warning"));
        assert!(status.message.contains("bandwidth 40Gi/50Gi (80%)"), "{}", status.message);
        let reached = [
            meter_limit(&terms(Meter::Bandwidth, Some(50 * GIB), Overage::Block), 50 * GIB),
            meter_limit(&terms(Meter::StreamTime, Some(3_600_000), Overage::Bill { cents_per_unit: 30 }), 3_600_000),
        ];
        let status = usage_status(&reached);
        assert_eq!((status.condition_status, status.reason), (false, "Reached"));
        assert!(status.message.contains("bandwidth 50Gi/50Gi (100%) (blocked"), "{}", status.message);
        assert!(status.message.contains("billed at the plan's price"), "{}", status.message);
        assert!(blocked(&reached) && status.blocked);
    }

    #[test]
    fn storage_past_its_limit_under_block_is_capped_by_the_quota_not_blocked() {
        let period = crate::metering::Period::new(
            "2026-03-01T00:00:00Z".parse().unwrap(),
            "2026-04-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let byte_seconds = 6 * GIB * period.seconds();
        let storage = [crate::metering::storage::storage_limit(
            &terms(Meter::Storage, Some(5 * GIB), Overage::Block),
            byte_seconds,
            &period,
        )];
        let status = usage_status(&storage);
        assert_eq!((status.condition_status, status.reason, status.blocked), (false, "Reached", false));
        assert!(status.message.contains("storage 6Gi/5Gi (120%) (capped by the quota"), "{}", status.message);
    }
}
