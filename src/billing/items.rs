//! Which Stripe prices a plan's subscription carries, and how to move a subscription's items there. Pure.
//!
//! A billed plan is one flat (licensed) price plus one metered price per meter whose overage is `Bill` and
//! whose included amount is finite. The metered price is graduated: the included amount is a free first
//! tier, each billing unit beyond it costs the plan's price (`metering::overage` computes the same charge
//! from the ledger). Prices are immutable in Stripe, so the lookup key holds everything that prices usage:
//! a changed Plan gets a new price, and the subscription's items move to it.

use crate::api::Plan;
use crate::metering::units::MICROS;
use crate::metering::{Meter, Overage, plan_terms};

/// A metered price a plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredPrice {
    pub meter: Meter,
    /// Billing units in the free first tier (Stripe tiers count whole units).
    pub free_units: i64,
    pub cents_per_unit: i64,
    pub currency: String,
    pub lookup_key: String,
}

/// The metered prices of `plan` (empty for an unbilled or internal plan). Terms the webhook should have
/// refused (a Bill without a price) leave that meter unbilled rather than fail the subscription.
pub fn metered_prices(plan_name: &str, plan: &Plan) -> Vec<MeteredPrice> {
    if plan.spec.internal || plan.spec.price.amount_cents <= 0 {
        return Vec::new();
    }
    let Ok(terms) = plan_terms(&plan.spec) else { return Vec::new() };
    let currency = plan.spec.price.currency.to_lowercase();
    terms
        .meters
        .iter()
        .filter_map(|t| {
            let Overage::Bill { cents_per_unit } = t.overage else { return None };
            let included = t.included_micros()?;
            // Whole units; a fraction is rounded up, in the customer's favour (plan_terms refuses them for Bill).
            let free_units = i64::try_from(crate::metering::units::div_ceil(included, MICROS)).ok()?;
            Some(MeteredPrice {
                meter: t.meter,
                free_units,
                cents_per_unit,
                lookup_key: format!(
                    "atlantiplex-{plan_name}-{}-metered-{free_units}-{cents_per_unit}-{currency}",
                    t.meter
                ),
                currency: currency.clone(),
            })
        })
        .collect()
}

/// An item of a live subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentItem {
    pub id: String,
    pub price: String,
    pub metered: bool,
}

/// One change to a subscription's items (all of them go in one update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    /// The flat item moves to another price.
    Replace {
        id: String,
        price: String,
    },
    Add {
        price: String,
    },
    Remove {
        id: String,
    },
}

/// What moves `current` to the flat price and the metered prices `metered` (price ids). Empty: nothing to do.
pub fn item_changes(current: &[CurrentItem], flat: &str, metered: &[String]) -> Vec<ItemChange> {
    let mut changes = Vec::new();
    match current.iter().find(|i| !i.metered) {
        Some(item) if item.price != flat => {
            changes.push(ItemChange::Replace { id: item.id.clone(), price: flat.to_string() })
        }
        Some(_) => {}
        None => changes.push(ItemChange::Add { price: flat.to_string() }),
    }
    for item in current.iter().filter(|i| i.metered && !metered.contains(&i.price)) {
        changes.push(ItemChange::Remove { id: item.id.clone() });
    }
    for price in metered {
        if !current.iter().any(|i| i.metered && &i.price == price) {
            changes.push(ItemChange::Add { price: price.clone() });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BandwidthOverage, OverageAction, PlanSpec};

    fn plan(yaml: &str) -> Plan {
        let spec: PlanSpec = serde_yaml::from_str(yaml).expect("plan spec");
        Plan::new("p", spec)
    }

    const STARTER: &str = r#"
displayName: Starter
price: { amountCents: 999, currency: USD, interval: Month }
limits: { users: 20, teams: 5, storage: 50Gi, bandwidth: 500Gi, streamHours: 100, namespaces: 6 }
overage:
  bandwidth: { action: Bill, centsPerGiB: 9 }
  storage: { action: Bill, centsPerGiBMonth: 10 }
  streamHours: { action: Block }
"#;

    #[test]
    fn bill_meters_with_a_limit_get_a_graduated_price() {
        let prices = metered_prices("starter", &plan(STARTER));
        let summary: Vec<(Meter, i64, i64)> =
            prices.iter().map(|p| (p.meter, p.free_units, p.cents_per_unit)).collect();
        // Stream hours Block; API calls unlimited: neither is metered in Stripe.
        assert_eq!(summary, vec![(Meter::Bandwidth, 500, 9), (Meter::Storage, 50, 10)]);
        assert_eq!(prices[0].lookup_key, "atlantiplex-starter-bandwidth-metered-500-9-usd");
        assert!(prices.iter().all(|p| p.currency == "usd"));
    }

    #[test]
    fn a_changed_price_or_allowance_is_a_new_lookup_key() {
        let base = metered_prices("starter", &plan(STARTER));
        let mut dearer = plan(STARTER);
        dearer.spec.overage.bandwidth = Some(BandwidthOverage { action: OverageAction::Bill, cents_per_gib: Some(10) });
        assert_ne!(base[0].lookup_key, metered_prices("starter", &dearer)[0].lookup_key);
    }

    #[test]
    fn free_and_internal_plans_have_no_metered_prices() {
        let mut free = plan(STARTER);
        free.spec.price.amount_cents = 0;
        assert!(metered_prices("free", &free).is_empty());
        let mut internal = plan(STARTER);
        internal.spec.internal = true;
        assert!(metered_prices("internal", &internal).is_empty());
    }

    fn item(id: &str, price: &str, metered: bool) -> CurrentItem {
        CurrentItem { id: id.into(), price: price.into(), metered }
    }

    #[test]
    fn a_plan_change_moves_the_flat_item_and_swaps_metered_ones() {
        let current = [item("si_1", "flat_a", false), item("si_2", "bw_a", true), item("si_3", "st", true)];
        let changes = item_changes(&current, "flat_b", &["bw_b".into(), "st".into()]);
        assert_eq!(
            changes,
            vec![
                ItemChange::Replace { id: "si_1".into(), price: "flat_b".into() },
                ItemChange::Remove { id: "si_2".into() },
                ItemChange::Add { price: "bw_b".into() },
            ]
        );
    }

    #[test]
    fn items_already_in_place_need_no_change() {
        let current = [item("si_1", "flat", false), item("si_2", "bw", true)];
        assert!(item_changes(&current, "flat", &["bw".into()]).is_empty());
        // A subscription from before metering gains its metered items.
        assert_eq!(item_changes(&current[..1], "flat", &["bw".into()]), vec![ItemChange::Add { price: "bw".into() }]);
    }
}
