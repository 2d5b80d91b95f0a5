//! Where each meter stands against its limit this period: Ok below 80 %, Warning from 80 %, Reached from
//! 100 %; traffic is blocked at Reached when the plan's overage is Block. Comparisons are exact integer
//! maths on base units (`used × 100 ≥ limit × 80`), so 80 % means 80 %, not a rounded float.
//!
//! Status strings are short, for printer columns and dashboards, and never overstate usage (displayed values
//! are rounded down): bandwidth and storage in binary units (`12.4Gi/50Gi`), API calls in SI units
//! (`12.3k/1M`), stream time in hours, below one hour in minutes (`42m/10h`, `3.5h/10h`). A meter without a
//! limit shows `12.4Gi/unlimited`. For storage, "used" is the period's GiB-months so far, shown as the bytes
//! held for a whole period (`2.5Gi/5Gi`: 2.5 of the 5 GiB-months included; see `storage::storage_limit`).

use super::meter::Meter;
use super::terms::{MeterTerms, Overage};
use serde::{Deserialize, Serialize};

/// Percent of the limit from which a meter is in Warning.
pub const WARNING_PERCENT: i128 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LimitState {
    Ok,
    Warning,
    Reached,
}

/// One meter against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterLimit {
    pub meter: Meter,
    /// This period so far, in the meter's base unit (storage: GiB-months as bytes held for the whole period).
    pub used: i64,
    /// `None`: unlimited.
    pub limit: Option<i64>,
    pub state: LimitState,
    /// Whether the meter's traffic is refused (Block at 100 %).
    pub blocked: bool,
    /// What happens beyond the limit (storage under Block is capped by the quota, not blocked).
    pub overage: Overage,
}

/// Where `used` stands against the terms' limit.
pub fn meter_limit(terms: &MeterTerms, used: i64) -> MeterLimit {
    let (used_wide, state) = (i128::from(used), terms.included.map(i128::from));
    let state = match state {
        None => LimitState::Ok,
        Some(limit) if used_wide >= limit => LimitState::Reached,
        Some(limit) if used_wide * 100 >= limit * WARNING_PERCENT => LimitState::Warning,
        Some(_) => LimitState::Ok,
    };
    let blocked = state == LimitState::Reached && terms.overage == Overage::Block;
    MeterLimit { meter: terms.meter, used, limit: terms.included, state, blocked, overage: terms.overage }
}

impl MeterLimit {
    /// Percent of the limit used, rounded down (a limit of 0 is 100 % from the start); `None`: unlimited.
    pub fn percent(&self) -> Option<i64> {
        let limit = i128::from(self.limit?);
        let used = i128::from(self.used);
        Some(if limit == 0 { 100 } else { i64::try_from(used * 100 / limit).unwrap_or(i64::MAX) })
    }

    /// `12.4Gi/50Gi`, `12.3k/1M`, `3.5h/10h`, `12.4Gi/unlimited`.
    pub fn status(&self) -> String {
        let limit = self.limit.map_or_else(|| "unlimited".to_string(), |l| format_quantity(self.meter, l));
        format!("{}/{limit}", format_quantity(self.meter, self.used))
    }

    /// For a printer column: `bandwidth 41.2Gi/50Gi (82%)`.
    pub fn summary(&self) -> String {
        match self.percent() {
            Some(p) => format!("{} {} ({p}%)", self.meter, self.status()),
            None => format!("{} {}", self.meter, self.status()),
        }
    }

    /// used / limit as parts per million, for ordering (a limit of 0 is the top).
    fn ratio_ppm(&self) -> Option<i128> {
        let limit = i128::from(self.limit?);
        Some(if limit == 0 { i128::MAX } else { i128::from(self.used) * 1_000_000 / limit })
    }
}

/// The limited meter closest to (or furthest past) its limit; the first in [`Meter::ALL`] order on a tie.
/// `None` when no meter is limited.
pub fn closest_to_limit(limits: &[MeterLimit]) -> Option<&MeterLimit> {
    let mut best: Option<(&MeterLimit, i128)> = None;
    for limit in limits {
        if let Some(ratio) = limit.ratio_ppm()
            && best.is_none_or(|(_, r)| ratio > r)
        {
            best = Some((limit, ratio));
        }
    }
    best.map(|(l, _)| l)
}

/// A base quantity for people, rounded down: bytes binary (`12.4Gi`), calls SI (`12.3k`), stream time in
/// hours (`3.5h`) or, below an hour, minutes (`42m`).
pub fn format_quantity(meter: Meter, base: i64) -> String {
    let base = i128::from(base.max(0));
    match meter {
        Meter::Bandwidth | Meter::Storage => scaled(base, 1024, &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
        Meter::ApiCalls => scaled(base, 1000, &["", "k", "M", "G", "T", "P", "E"]),
        Meter::StreamTime if base < 3_600_000 => format!("{}m", base / 60_000),
        Meter::StreamTime => format!("{}h", tenths(base, 3_600_000)),
    }
}

/// `value` in the largest unit it reaches, with one decimal (dropped when zero), rounded down.
fn scaled(value: i128, step: i128, suffixes: &[&str]) -> String {
    let mut unit = 1i128;
    let mut index = 0;
    while index + 1 < suffixes.len() && value >= unit * step {
        unit *= step;
        index += 1;
    }
    if index == 0 {
        return value.to_string();
    }
    format!("{}{}", tenths(value, unit), suffixes[index])
}

/// `value / unit` with one decimal, rounded down: "12.4", "50".
fn tenths(value: i128, unit: i128) -> String {
    let tenths = value * 10 / unit;
    if tenths % 10 == 0 { format!("{}", tenths / 10) } else { format!("{}.{}", tenths / 10, tenths % 10) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::terms::plan_terms;
    use crate::metering::testing::shipped;

    fn terms(meter: Meter, included: Option<i64>, overage: Overage) -> MeterTerms {
        MeterTerms { meter, included, overage }
    }

    #[test]
    fn states_at_80_and_100_percent() {
        let block = terms(Meter::Bandwidth, Some(100), Overage::Block);
        let at = |used| meter_limit(&block, used);
        assert_eq!((at(79).state, at(79).blocked), (LimitState::Ok, false));
        assert_eq!((at(80).state, at(80).blocked), (LimitState::Warning, false));
        assert_eq!((at(99).state, at(99).blocked), (LimitState::Warning, false));
        assert_eq!((at(100).state, at(100).blocked), (LimitState::Reached, true), "Block refuses traffic at 100 %");
        assert_eq!(at(150).percent(), Some(150));
        let bill = terms(Meter::Bandwidth, Some(100), Overage::Bill { cents_per_unit: 9 });
        let past = meter_limit(&bill, 150);
        assert_eq!((past.state, past.blocked), (LimitState::Reached, false), "Bill lets traffic through, billed");
        let unlimited = meter_limit(&terms(Meter::Bandwidth, None, Overage::Block), i64::MAX);
        assert_eq!((unlimited.state, unlimited.blocked, unlimited.percent()), (LimitState::Ok, false, None));
        let none_included = meter_limit(&terms(Meter::ApiCalls, Some(0), Overage::Block), 0);
        assert_eq!(
            (none_included.state, none_included.blocked, none_included.percent()),
            (LimitState::Reached, true, Some(100))
        );
    }

    #[test]
    fn exact_percentages_on_large_limits() {
        // 2 TiB: 80 % is exactly 1,759,218,604,441.6 bytes, so one byte below is still Ok.
        let pro = plan_terms(&shipped("professional")).unwrap();
        let bandwidth = pro.meter(Meter::Bandwidth);
        let limit = bandwidth.included.unwrap();
        assert_eq!(meter_limit(bandwidth, limit * 4 / 5).state, LimitState::Ok);
        assert_eq!(meter_limit(bandwidth, limit * 4 / 5 + 1).state, LimitState::Warning);
    }

    #[test]
    fn status_strings() {
        let free = plan_terms(&shipped("free")).unwrap();
        let gib = 1_i64 << 30;
        let bandwidth = meter_limit(free.meter(Meter::Bandwidth), 12 * gib + gib * 45 / 100);
        assert_eq!(bandwidth.status(), "12.4Gi/50Gi", "12.45 GiB is shown rounded down");
        assert_eq!(bandwidth.summary(), "bandwidth 12.4Gi/50Gi (24%)");
        assert_eq!(meter_limit(free.meter(Meter::Storage), 5 * gib).status(), "5Gi/5Gi");
        assert_eq!(meter_limit(free.meter(Meter::Storage), 512).status(), "512/5Gi");
        assert_eq!(meter_limit(free.meter(Meter::Storage), 1536 << 20).status(), "1.5Gi/5Gi");
        let stream = free.meter(Meter::StreamTime);
        assert_eq!(meter_limit(stream, 42 * 60_000 + 59_999).status(), "42m/10h");
        assert_eq!(meter_limit(stream, 3 * 3_600_000 + 1_800_000).status(), "3.5h/10h");
        let pro = plan_terms(&shipped("professional")).unwrap();
        assert_eq!(meter_limit(pro.meter(Meter::ApiCalls), 12_345).status(), "12.3k/1M");
        assert_eq!(meter_limit(pro.meter(Meter::ApiCalls), 999).status(), "999/1M");
        assert_eq!(meter_limit(pro.meter(Meter::Bandwidth), 3 << 40).status(), "3Ti/2Ti");
        let enterprise = plan_terms(&shipped("enterprise")).unwrap();
        assert_eq!(meter_limit(enterprise.meter(Meter::Bandwidth), 12 * gib).status(), "12Gi/unlimited");
        assert_eq!(meter_limit(enterprise.meter(Meter::Bandwidth), 12 * gib).summary(), "bandwidth 12Gi/unlimited");
    }

    #[test]
    fn the_closest_meter_is_the_highest_share_of_its_limit() {
        let free = plan_terms(&shipped("free")).unwrap();
        let gib = 1_i64 << 30;
        let limits = [
            meter_limit(free.meter(Meter::Bandwidth), 40 * gib),        // 80 %
            meter_limit(free.meter(Meter::Storage), 4 * gib + gib / 2), // 90 %
            meter_limit(free.meter(Meter::ApiCalls), 1_000_000_000),    // unlimited: never the closest
            meter_limit(free.meter(Meter::StreamTime), 9 * 3_600_000),  // 90 %, later in order
        ];
        let closest = closest_to_limit(&limits).unwrap();
        assert_eq!(closest.meter, Meter::Storage);
        assert_eq!(closest.summary(), "storage 4.5Gi/5Gi (90%)");
        let enterprise = plan_terms(&shipped("enterprise")).unwrap();
        let none = [meter_limit(enterprise.meter(Meter::Bandwidth), 1)];
        assert_eq!(closest_to_limit(&none), None);
    }
}
