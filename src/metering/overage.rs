//! The cost of usage beyond what a plan includes. The included amount is a free first tier (in Stripe, a
//! graduated price whose first tier, up to the included amount, costs 0); each billing unit beyond it costs the
//! plan's price:
//!
//! ```text
//! used      = the period's usage in micro-units (rounded up, see units)
//! beyond    = max(0, used − included)
//! cents     = ⌊beyond × cents per unit / 10^6⌉   (half up: Stripe rounds each invoice line to the cent)
//! total     = Σ cents over the meters             (Stripe adds the rounded lines)
//! ```
//!
//! Under Block nothing is billed: usage that got past the limit before the block took hold is reported as
//! `blocked_micros`, never charged. An unlimited meter costs nothing.

use super::meter::Meter;
use super::period::Period;
use super::terms::{MeterTerms, Overage, PlanTerms};
use super::units::{MICROS, billing_micros, div_round_half_up};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One meter's period, priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterCharge {
    pub meter: Meter,
    /// Used in the period, in billing micro-units.
    pub used_micros: i128,
    /// `None`: unlimited.
    pub included_micros: Option<i128>,
    /// Beyond the included amount and billed (Bill).
    pub billed_micros: i128,
    /// Beyond the included amount and not billed (Block).
    pub blocked_micros: i128,
    pub cents: i64,
}

/// Every meter's charge and their sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charges {
    pub meters: Vec<MeterCharge>,
    pub total_cents: i64,
}

/// The charge for `used_micros` of one meter.
pub fn meter_charge(terms: &MeterTerms, used_micros: i128) -> MeterCharge {
    let included = terms.included_micros();
    let beyond = included.map_or(0, |inc| (used_micros - inc).max(0));
    let (billed, blocked, cents) = match terms.overage {
        _ if included.is_none() => (0, 0, 0),
        Overage::Block => (0, beyond, 0),
        Overage::Bill { cents_per_unit } => {
            let cents = div_round_half_up(beyond.saturating_mul(i128::from(cents_per_unit)), MICROS);
            (beyond, 0, i64::try_from(cents).unwrap_or(i64::MAX))
        }
    };
    MeterCharge {
        meter: terms.meter,
        used_micros,
        included_micros: included,
        billed_micros: billed,
        blocked_micros: blocked,
        cents,
    }
}

/// The charges of a period from its totals in base units (`period::period_totals`; storage in byte-seconds).
pub fn charges(terms: &PlanTerms, totals: &BTreeMap<Meter, i64>, period: &Period) -> Charges {
    let meters: Vec<MeterCharge> = terms
        .meters
        .iter()
        .map(|t| {
            let base = totals.get(&t.meter).copied().unwrap_or(0);
            meter_charge(t, billing_micros(t.meter, i128::from(base), period.seconds()))
        })
        .collect();
    let total_cents = meters.iter().fold(0i64, |sum, m| sum.saturating_add(m.cents));
    Charges { meters, total_cents }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::terms::plan_terms;
    use crate::metering::testing::{shipped, t};
    use crate::metering::units::GIB;

    fn month() -> Period {
        Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap()
    }

    #[test]
    fn usage_within_the_included_amount_costs_nothing() {
        let pro = plan_terms(&shipped("professional")).unwrap();
        let totals = BTreeMap::from([(Meter::Bandwidth, (2_i64 << 40) - 1), (Meter::ApiCalls, 1_000_000)]);
        let charges = charges(&pro, &totals, &month());
        assert_eq!(charges.total_cents, 0);
        assert!(charges.meters.iter().all(|m| m.billed_micros == 0));
    }

    #[test]
    fn professional_overage_per_meter_and_total() {
        let pro = plan_terms(&shipped("professional")).unwrap();
        let period = month();
        let totals = BTreeMap::from([
            // 2 TiB + 100.5 GiB → 100.5 GiB × 6¢ = 603¢.
            (Meter::Bandwidth, (2_i64 << 40) + (201_i64 << 29)),
            // 600 GiB for the whole month → 100 GiB-months × 8¢ = 800¢.
            (Meter::Storage, i64::try_from(600 * GIB * i128::from(period.seconds())).unwrap()),
            // 1,250,499 calls → 250.499 thousand × 1¢ = 250.499¢ → 250¢.
            (Meter::ApiCalls, 1_250_499),
            // 1,000 h + 90 min → 1.5 h × 30¢ = 45¢.
            (Meter::StreamTime, 1_000 * 3_600_000 + 5_400_000),
        ]);
        let charges = charges(&pro, &totals, &period);
        let cents: Vec<(Meter, i64)> = charges.meters.iter().map(|m| (m.meter, m.cents)).collect();
        assert_eq!(
            cents,
            [(Meter::Bandwidth, 603), (Meter::Storage, 800), (Meter::ApiCalls, 250), (Meter::StreamTime, 45)]
        );
        assert_eq!(charges.total_cents, 603 + 800 + 250 + 45);
        assert_eq!(charges.meters[0].billed_micros, 100_500_000);
    }

    #[test]
    fn cents_round_half_up_per_meter() {
        let terms =
            MeterTerms { meter: Meter::ApiCalls, included: Some(0), overage: Overage::Bill { cents_per_unit: 1 } };
        assert_eq!(meter_charge(&terms, 500_000).cents, 1, "half a thousand calls at 1¢: 0.5¢ → 1¢");
        assert_eq!(meter_charge(&terms, 499_999).cents, 0);
        assert_eq!(meter_charge(&terms, 1_500_000).cents, 2);
    }

    #[test]
    fn block_and_unlimited_bill_nothing() {
        let free = plan_terms(&shipped("free")).unwrap();
        let totals = BTreeMap::from([(Meter::Bandwidth, 60_i64 << 30)]);
        let charges = charges(&free, &totals, &month());
        assert_eq!(charges.total_cents, 0);
        assert_eq!(charges.meters[0].blocked_micros, 10_000_000, "10 GiB past the limit, blocked, not billed");
        let enterprise = plan_terms(&shipped("enterprise")).unwrap();
        let all = BTreeMap::from([(Meter::Bandwidth, i64::MAX), (Meter::ApiCalls, i64::MAX)]);
        let charges = super::charges(&enterprise, &all, &month());
        assert_eq!(charges.total_cents, 0);
        assert!(charges.meters.iter().all(|m| m.included_micros.is_none() && m.blocked_micros == 0));
    }
}
