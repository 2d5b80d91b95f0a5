//! A plan's terms per meter, read from its spec: how much is included each billing period (`limits`, absent =
//! unlimited) and what happens beyond it (`overage`: Block, the default, or Bill at a unit price).

use super::meter::Meter;
use super::units::{MS_PER_HOUR, billing_micros, gib_micros};
use crate::api::{OverageAction, PlanSpec};
use crate::tenancy::quantity::to_milli;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};

/// What happens beyond the included amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overage {
    /// Traffic is refused from 100 %; nothing beyond the limit is billed.
    Block,
    /// Usage goes on; what is beyond the limit is billed at `cents_per_unit` per billing unit.
    Bill { cents_per_unit: i64 },
}

/// One meter's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterTerms {
    pub meter: Meter,
    /// Included per period in the meter's base unit — except storage, whose limit is in bytes (provisioned at
    /// any one time; N GiB include N GiB-months). `None`: unlimited.
    pub included: Option<i64>,
    /// Ignored when unlimited.
    pub overage: Overage,
}

impl MeterTerms {
    /// The included amount in billing micro-units (`None`: unlimited).
    pub fn included_micros(&self) -> Option<i128> {
        self.included.map(|base| match self.meter {
            Meter::Storage => gib_micros(i128::from(base)),
            meter => billing_micros(meter, i128::from(base), 0),
        })
    }
}

/// All four meters' terms of one plan, in [`Meter::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub meters: [MeterTerms; 4],
}

impl PlanTerms {
    pub fn meter(&self, meter: Meter) -> &MeterTerms {
        // Built in Meter::ALL order, so the position is the meter's.
        &self.meters[Meter::ALL.iter().position(|m| *m == meter).unwrap_or_default()]
    }
}

/// A spec the API server should have refused (an object stored before the rules existed, or a test).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("limits.{field} {value:?} is not a non-negative quantity of bytes: use e.g. 50Gi")]
    BadQuantity { field: &'static str, value: String },
    #[error("overage.{field}: action Bill needs a price ({price}): set it, or use action Block")]
    MissingPrice { field: &'static str, price: &'static str },
}

/// The terms of `plan`.
pub fn plan_terms(plan: &PlanSpec) -> Result<PlanTerms, TermsError> {
    let limits = &plan.limits;
    let overage = &plan.overage;
    let rule = |meter: Meter, action: Option<OverageAction>, cents: Option<i64>, price: &'static str| match action {
        None | Some(OverageAction::Block) => Ok(Overage::Block),
        Some(OverageAction::Bill) => cents
            .map(|cents_per_unit| Overage::Bill { cents_per_unit })
            .ok_or(TermsError::MissingPrice { field: meter.plan_field(), price }),
    };
    let bandwidth = overage.bandwidth.as_ref();
    let storage = overage.storage.as_ref();
    let api_calls = overage.api_calls.as_ref();
    let stream = overage.stream_hours.as_ref();
    Ok(PlanTerms {
        meters: [
            MeterTerms {
                meter: Meter::Bandwidth,
                included: bytes(limits.bandwidth.as_ref(), "bandwidth")?,
                overage: rule(
                    Meter::Bandwidth,
                    bandwidth.map(|o| o.action),
                    bandwidth.and_then(|o| o.cents_per_gib),
                    "centsPerGiB",
                )?,
            },
            MeterTerms {
                meter: Meter::Storage,
                included: bytes(limits.storage.as_ref(), "storage")?,
                overage: rule(
                    Meter::Storage,
                    storage.map(|o| o.action),
                    storage.and_then(|o| o.cents_per_gib_month),
                    "centsPerGiBMonth",
                )?,
            },
            MeterTerms {
                meter: Meter::ApiCalls,
                included: limits.api_calls.map(|n| n.max(0)),
                overage: rule(
                    Meter::ApiCalls,
                    api_calls.map(|o| o.action),
                    api_calls.and_then(|o| o.cents_per_thousand_calls),
                    "centsPerThousandCalls",
                )?,
            },
            MeterTerms {
                meter: Meter::StreamTime,
                included: limits.stream_hours.map(|h| h.max(0).saturating_mul(MS_PER_HOUR as i64)),
                overage: rule(
                    Meter::StreamTime,
                    stream.map(|o| o.action),
                    stream.and_then(|o| o.cents_per_hour),
                    "centsPerHour",
                )?,
            },
        ],
    })
}

/// A byte quantity limit, rounded down to whole bytes.
fn bytes(quantity: Option<&Quantity>, field: &'static str) -> Result<Option<i64>, TermsError> {
    let Some(q) = quantity else { return Ok(None) };
    let bad = || TermsError::BadQuantity { field, value: q.0.clone() };
    let milli = to_milli(q).filter(|m| *m >= 0).ok_or_else(bad)?;
    i64::try_from(milli / 1000).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::testing::shipped;
    use crate::metering::units::GIB;

    #[test]
    fn shipped_plans_include_their_limits_and_price_the_rest() {
        let free = plan_terms(&shipped("free")).unwrap();
        assert_eq!(free.meter(Meter::Bandwidth).included, Some(50 << 30));
        assert_eq!(free.meter(Meter::Storage).included, Some(5 << 30));
        assert_eq!(free.meter(Meter::StreamTime).included, Some(10 * 3_600_000));
        assert_eq!(free.meter(Meter::ApiCalls).included, None, "no API access, no API call limit");
        assert!(free.meters.iter().all(|m| m.overage == Overage::Block), "free blocks");
        let pro = plan_terms(&shipped("professional")).unwrap();
        assert_eq!(pro.meter(Meter::Bandwidth).included, Some(2 << 40));
        assert_eq!(pro.meter(Meter::Bandwidth).overage, Overage::Bill { cents_per_unit: 6 });
        assert_eq!(pro.meter(Meter::Storage).overage, Overage::Bill { cents_per_unit: 8 });
        assert_eq!(pro.meter(Meter::ApiCalls).overage, Overage::Bill { cents_per_unit: 1 });
        assert_eq!(pro.meter(Meter::StreamTime).overage, Overage::Bill { cents_per_unit: 30 });
        let starter = plan_terms(&shipped("starter")).unwrap();
        assert!(
            starter.meters.iter().filter(|m| m.included.is_some()).all(|m| matches!(m.overage, Overage::Bill { .. }))
        );
        for unlimited in ["enterprise", "admin"] {
            let terms = plan_terms(&shipped(unlimited)).unwrap();
            assert!(terms.meters.iter().all(|m| m.included.is_none()), "{unlimited}");
        }
    }

    #[test]
    fn included_amounts_in_billing_units() {
        let pro = plan_terms(&shipped("professional")).unwrap();
        assert_eq!(pro.meter(Meter::Bandwidth).included_micros(), Some(2_048 * 1_000_000));
        assert_eq!(pro.meter(Meter::Storage).included_micros(), Some(500 * 1_000_000), "500Gi = 500 GiB-months");
        assert_eq!(pro.meter(Meter::ApiCalls).included_micros(), Some(1_000 * 1_000_000), "1,000 thousand calls");
        assert_eq!(pro.meter(Meter::StreamTime).included_micros(), Some(1_000 * 1_000_000));
        assert_eq!(i128::from(pro.meter(Meter::Bandwidth).included.unwrap()), 2_048 * GIB);
    }

    #[test]
    fn a_bill_without_a_price_or_a_bad_quantity_is_an_error() {
        let mut plan = shipped("starter");
        plan.overage.bandwidth.as_mut().unwrap().cents_per_gib = None;
        let err = plan_terms(&plan).unwrap_err();
        assert_eq!(
            err.to_string(),
            "overage.bandwidth: action Bill needs a price (centsPerGiB): set it, or use action Block"
        );
        let mut plan = shipped("starter");
        plan.overage.bandwidth = None;
        assert_eq!(plan_terms(&plan).unwrap().meter(Meter::Bandwidth).overage, Overage::Block, "absent = Block");
        plan.limits.storage = Some(Quantity("-5Gi".into()));
        assert!(matches!(plan_terms(&plan), Err(TermsError::BadQuantity { field: "storage", .. })));
    }
}
