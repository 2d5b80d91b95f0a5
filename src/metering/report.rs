//! One organization's usage for people (`atlantiplex-operator usage`): per meter, the total over a window of
//! time and over the open billing period, against what the plan includes, the overage it would cost if
//! billed, and the daily and hourly sums. Pure: the windows, the period, the plan's terms and the clock are
//! given; `usage_command` reads them. Quantities use the billing rules of [`super::units`] and
//! [`super::overage`] (micro-units rounded up, cents half up), so the figures are what Stripe would be sent.

use super::limits::{LimitState, WARNING_PERCENT, meter_limit};
use super::meter::Meter;
use super::overage::meter_charge;
use super::period::{Period, period_totals};
use super::terms::{Overage, PlanTerms};
use super::units::{billing_micros, format_micros};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::BTreeMap;

/// One stored hourly window: meter, start, quantity in base units, events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub meter: Meter,
    pub start: Timestamp,
    pub quantity: i64,
    pub events: i64,
}

/// A sum over an hour or a UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The hour's start (RFC 3339), or the day (`2026-03-10`).
    pub at: String,
    /// In the meter's base unit.
    pub quantity: i64,
    pub events: i64,
}

/// A total, in base units and in billing units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Total {
    pub quantity: i64,
    pub events: i64,
    /// Billing units rounded up to a millionth, as a decimal string ("12.5").
    pub billed: String,
}

/// The period's usage against the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Against {
    /// Included per period in billing units, or `"unlimited"`.
    pub included: String,
    /// Percent of the included amount used, rounded down; absent when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    pub state: LimitState,
    /// `Block` or `Bill`.
    pub overage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cents_per_unit: Option<i64>,
    /// Beyond the included amount and billed (Bill), in billing units.
    pub billed_beyond: String,
    /// Beyond the included amount and refused, never billed (Block), in billing units.
    pub blocked_beyond: String,
    /// What the billed part costs.
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterReport {
    pub meter: Meter,
    pub base_unit: &'static str,
    pub billing_unit: &'static str,
    pub window: Total,
    pub period: Total,
    /// Absent when the plan is not known (no cluster reachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Against>,
    pub daily: Vec<Bucket>,
    pub hourly: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub organization: String,
    /// The plan's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Where the window starts and ends (`--since` to now).
    pub window: Span,
    /// The open billing period and where it comes from.
    pub period: Span,
    pub period_source: String,
    pub meters: Vec<MeterReport>,
    /// The overage of the period over all meters, when the plan is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    /// What could not be shown, and why.
    pub notes: Vec<String>,
}

/// What the report is built from.
pub struct Inputs<'a> {
    pub organization: &'a str,
    /// The plan's name and terms; `None`: unknown (included amounts and overage are left out).
    pub plan: Option<(&'a str, &'a PlanTerms)>,
    pub window: Span,
    /// The window's hourly windows (those starting in it).
    pub windows: &'a [Window],
    pub period: Period,
    pub period_source: &'a str,
    /// The period's hourly windows (those it holds: see `period::Period::holds_window`).
    pub period_windows: &'a [Window],
    pub notes: Vec<String>,
}

pub fn build(inputs: Inputs<'_>) -> UsageReport {
    let seconds = inputs.period.seconds();
    let period_totals =
        period_totals(inputs.period_windows.iter().map(|w| (w.meter, w.start, w.quantity)), &inputs.period);
    let mut meters = Vec::new();
    let mut total_cents: Option<i64> = inputs.plan.map(|_| 0);
    for meter in Meter::ALL {
        let mine: Vec<&Window> = inputs.windows.iter().filter(|w| w.meter == meter).collect();
        let in_period: Vec<&Window> =
            inputs.period_windows.iter().filter(|w| w.meter == meter && inputs.period.holds_window(w.start)).collect();
        let period_base = period_totals.get(&meter).copied().unwrap_or(0);
        let total = |windows: &[&Window], base: i64| Total {
            quantity: base,
            events: windows.iter().map(|w| w.events).sum(),
            billed: format_micros(billing_micros(meter, i128::from(base), seconds)),
        };
        let window_base = mine.iter().fold(0i64, |sum, w| sum.saturating_add(w.quantity));
        let plan = inputs.plan.map(|(_, terms)| against(terms, meter, period_base, seconds));
        if let (Some(sum), Some(against)) = (total_cents.as_mut(), plan.as_ref()) {
            *sum = sum.saturating_add(against.cents);
        }
        meters.push(MeterReport {
            meter,
            base_unit: meter.base_unit(),
            billing_unit: meter.billing_unit(),
            window: total(&mine, window_base),
            period: total(&in_period, period_base),
            plan,
            daily: daily(&mine),
            hourly: mine
                .iter()
                .map(|w| Bucket { at: w.start.to_string(), quantity: w.quantity, events: w.events })
                .collect(),
        });
    }
    UsageReport {
        organization: inputs.organization.to_string(),
        plan: inputs.plan.map(|(name, _)| name.to_string()),
        window: inputs.window,
        period: Span { from: inputs.period.start, to: inputs.period.end },
        period_source: inputs.period_source.to_string(),
        meters,
        total_cents,
        notes: inputs.notes,
    }
}

/// The period's `base` of `meter` against the plan: the included amount as a free first tier, then Block or
/// Bill.
fn against(terms: &PlanTerms, meter: Meter, base: i64, period_seconds: i64) -> Against {
    let terms = terms.meter(meter);
    let used = billing_micros(meter, i128::from(base), period_seconds);
    let charge = meter_charge(terms, used);
    let (percent, state) = match meter {
        // Storage's limit is in bytes held, its usage in byte-seconds: compare GiB-months with GiB-months.
        Meter::Storage => micros_state(used, charge.included_micros),
        _ => {
            let limit = meter_limit(terms, base);
            (limit.percent(), limit.state)
        }
    };
    let (overage, cents_per_unit) = match terms.overage {
        Overage::Block => ("Block", None),
        Overage::Bill { cents_per_unit } => ("Bill", Some(cents_per_unit)),
    };
    Against {
        included: charge.included_micros.map_or_else(|| "unlimited".to_string(), format_micros),
        percent,
        state,
        overage: if charge.included_micros.is_none() { "Unlimited" } else { overage },
        cents_per_unit: cents_per_unit.filter(|_| charge.included_micros.is_some()),
        billed_beyond: format_micros(charge.billed_micros),
        blocked_beyond: format_micros(charge.blocked_micros),
        cents: charge.cents,
    }
}

/// Percent (rounded down) and state of `used` against `included`, both in micro-units (the same 80 % / 100 %
/// rule as `limits`).
fn micros_state(used: i128, included: Option<i128>) -> (Option<i64>, LimitState) {
    let Some(included) = included else { return (None, LimitState::Ok) };
    let percent = if included == 0 { 100 } else { i64::try_from(used * 100 / included).unwrap_or(i64::MAX) };
    let state = if used >= included {
        LimitState::Reached
    } else if used * 100 >= included * WARNING_PERCENT {
        LimitState::Warning
    } else {
        LimitState::Ok
    };
    (Some(percent), state)
}

/// Sums per UTC day, oldest first.
fn daily(windows: &[&Window]) -> Vec<Bucket> {
    let mut days: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for w in windows {
        let day = w.start.to_zoned(TimeZone::UTC).date().to_string();
        let sum = days.entry(day).or_default();
        *sum = (sum.0.saturating_add(w.quantity), sum.1 + w.events);
    }
    days.into_iter().map(|(at, (quantity, events))| Bucket { at, quantity, events }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::terms::plan_terms;
    use crate::metering::testing::{shipped, t};

    const GIB: i64 = 1 << 30;

    fn w(meter: Meter, start: &str, quantity: i64, events: i64) -> Window {
        Window { meter, start: t(start), quantity, events }
    }

    fn march() -> Period {
        Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap()
    }

    fn windows() -> Vec<Window> {
        vec![
            w(Meter::Bandwidth, "2026-02-27T10:00:00Z", GIB, 1),
            w(Meter::Bandwidth, "2026-03-10T12:00:00Z", 2 * GIB, 3),
            w(Meter::Bandwidth, "2026-03-10T13:00:00Z", GIB / 2, 1),
            w(Meter::ApiCalls, "2026-03-11T00:00:00Z", 1_250_499, 10),
            w(Meter::StreamTime, "2026-03-10T23:00:00Z", 5_400_000, 2),
        ]
    }

    fn report(plan: Option<(&str, &PlanTerms)>) -> UsageReport {
        let windows = windows();
        build(Inputs {
            organization: "acme",
            plan,
            window: Span { from: t("2026-02-12T00:00:00Z"), to: t("2026-03-14T00:00:00Z") },
            windows: &windows,
            period: march(),
            period_source: "calendar month (UTC)",
            period_windows: &windows,
            notes: vec![],
        })
    }

    #[test]
    fn window_and_period_totals_in_base_and_billing_units() {
        let r = report(None);
        let bw = &r.meters[0];
        assert_eq!(bw.meter, Meter::Bandwidth);
        assert_eq!((bw.window.quantity, bw.window.events, bw.window.billed.as_str()), (3 * GIB + GIB / 2, 5, "3.5"));
        assert_eq!((bw.period.quantity, bw.period.events, bw.period.billed.as_str()), (2 * GIB + GIB / 2, 4, "2.5"));
        assert_eq!(r.meters[2].period.billed, "1250.499", "per 1,000 calls");
        assert_eq!(r.meters[3].period.billed, "1.5", "90 minutes in hours");
        assert_eq!(r.meters[1].period.billed, "0", "storage: nothing sampled");
        assert!(bw.plan.is_none() && r.total_cents.is_none(), "no plan, no included amounts or overage");
    }

    #[test]
    fn daily_and_hourly_breakdowns() {
        let r = report(None);
        let bw = &r.meters[0];
        assert_eq!(
            bw.daily,
            [
                Bucket { at: "2026-02-27".into(), quantity: GIB, events: 1 },
                Bucket { at: "2026-03-10".into(), quantity: 2 * GIB + GIB / 2, events: 4 },
            ]
        );
        assert_eq!(bw.hourly.len(), 3);
        assert_eq!(bw.hourly[1].at, "2026-03-10T12:00:00Z");
    }

    #[test]
    fn against_the_plan_with_overage_as_it_would_be_billed() {
        let pro = plan_terms(&shipped("professional")).unwrap();
        let r = report(Some(("professional", &pro)));
        let calls = r.meters[2].plan.as_ref().unwrap();
        // 1,250,499 calls against 1,000,000 included: 250.499 thousand beyond at 1¢ → 250¢.
        assert_eq!((calls.included.as_str(), calls.percent, calls.state), ("1000", Some(125), LimitState::Reached));
        assert_eq!((calls.overage, calls.cents_per_unit, calls.billed_beyond.as_str()), ("Bill", Some(1), "250.499"));
        assert_eq!(calls.cents, 250);
        let bw = r.meters[0].plan.as_ref().unwrap();
        assert_eq!((bw.included.as_str(), bw.percent, bw.state, bw.cents), ("2048", Some(0), LimitState::Ok, 0));
        assert_eq!(r.total_cents, Some(250));
        let storage = r.meters[1].plan.as_ref().unwrap();
        assert_eq!((storage.included.as_str(), storage.percent), ("500", Some(0)), "500Gi = 500 GiB-months");
    }

    #[test]
    fn block_and_unlimited_bill_nothing() {
        let free = plan_terms(&shipped("free")).unwrap();
        let r = report(Some(("free", &free)));
        let calls = r.meters[2].plan.as_ref().unwrap();
        assert_eq!((calls.included.as_str(), calls.percent, calls.overage), ("unlimited", None, "Unlimited"));
        let stream = r.meters[3].plan.as_ref().unwrap();
        assert_eq!((stream.overage, stream.percent, stream.cents), ("Block", Some(15), 0), "1.5 h of 10 h");
        assert_eq!(r.total_cents, Some(0));
    }

    #[test]
    fn storage_compares_gib_months() {
        assert_eq!(micros_state(400, Some(500)), (Some(80), LimitState::Warning));
        assert_eq!(micros_state(500, Some(500)), (Some(100), LimitState::Reached));
        assert_eq!(micros_state(1, Some(0)), (Some(100), LimitState::Reached));
        assert_eq!(micros_state(1, None), (None, LimitState::Ok));
    }

    #[test]
    fn json_names_every_field() {
        let pro = plan_terms(&shipped("professional")).unwrap();
        let json = serde_json::to_value(report(Some(("professional", &pro)))).unwrap();
        assert_eq!(json["meters"][0]["meter"], "bandwidth");
        assert_eq!(json["meters"][0]["billing_unit"], "GiB");
        assert_eq!(json["meters"][0]["period"]["billed"], "2.5");
        assert_eq!(json["meters"][2]["plan"]["state"], "Reached");
        assert_eq!(json["meters"][0]["daily"][1]["at"], "2026-03-10");
        assert_eq!(json["period"]["from"], "2026-03-01T00:00:00Z");
        assert_eq!(json["total_cents"], 250);
    }
}
