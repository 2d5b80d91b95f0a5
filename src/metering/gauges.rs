//! The per-organization meter gauges (`atlantiplex_organization_meter_used` / `_included`): every meter's
//! usage this billing period and its included amount, in billing units (GiB, GiB-months, thousands of
//! calls, hours), so used ÷ included is the share of the free tier for every meter alike. Rounded as billed
//! (up, to a millionth). No included value: unlimited.

use super::meter::Meter;
use super::period::Period;
use super::terms::PlanTerms;
use super::units::{MICROS, billing_micros};
use std::collections::BTreeMap;

/// One meter's gauge values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterGauge {
    pub meter: Meter,
    pub used: f64,
    /// `None`: unlimited (the series is absent).
    pub included: Option<f64>,
}

/// All four meters from the period's totals in base units (storage: byte-seconds).
pub fn meter_gauges(terms: &PlanTerms, totals: &BTreeMap<Meter, i64>, period: &Period) -> [MeterGauge; 4] {
    let units = |micros: i128| micros as f64 / MICROS as f64;
    Meter::ALL.map(|meter| {
        let base = totals.get(&meter).copied().unwrap_or(0);
        MeterGauge {
            meter,
            used: units(billing_micros(meter, i128::from(base), period.seconds())),
            included: terms.meter(meter).included_micros().map(units),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::terms::plan_terms;
    use crate::metering::testing::{shipped, t};

    #[test]
    fn every_meter_in_billing_units_and_unlimited_has_no_included_value() {
        let march = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
        let totals = BTreeMap::from([
            (Meter::Bandwidth, 3_i64 << 29),
            (Meter::Storage, (5_i64 << 30) * march.seconds() / 2),
            (Meter::StreamTime, 5_400_000),
        ]);
        let free = plan_terms(&shipped("free")).unwrap();
        let gauges = meter_gauges(&free, &totals, &march);
        let values: Vec<(Meter, f64, Option<f64>)> = gauges.iter().map(|g| (g.meter, g.used, g.included)).collect();
        assert_eq!(
            values,
            [
                (Meter::Bandwidth, 1.5, Some(50.0)),
                (Meter::Storage, 2.5, Some(5.0)),
                (Meter::ApiCalls, 0.0, None),
                (Meter::StreamTime, 1.5, Some(10.0)),
            ]
        );
    }
}
