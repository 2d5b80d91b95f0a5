//! Plans → Stripe prices: the ids given on the Plan, or a price (with its product) the operator
//! creates once and finds again by lookup key.

use super::items::{MeteredPrice, metered_prices};
use super::keys;
use super::stripe::{StripeApi, StripeCallError};
use crate::api::Plan;
use crate::metering::Meter;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Catalog {
    /// lookup key → price id; prices never change in Stripe, so a found id stays valid.
    prices: Mutex<HashMap<String, String>>,
    /// event name → meter id.
    meters: Mutex<HashMap<String, String>>,
}

/// The meter event name of a meter: `<prefix>_<meter>`, e.g. `atp_bandwidth`.
pub fn event_name(prefix: &str, meter: Meter) -> String {
    format!("{prefix}_{meter}")
}

impl Catalog {
    pub async fn price_for(&self, api: &StripeApi, name: &str, plan: &Plan) -> Result<String, StripeCallError> {
        if let Some(id) = plan.spec.stripe.as_ref().and_then(|s| s.price_id.clone()) {
            return Ok(id);
        }
        let lookup = keys::price_lookup(name, &plan.spec.price);
        if let Some(id) = self.prices.lock().ok().and_then(|p| p.get(&lookup).cloned()) {
            return Ok(id);
        }
        let id = match api.find_price(&lookup).await? {
            Some(id) => id,
            None => {
                let display = plan.spec.display_name.clone().unwrap_or_else(|| format!("Atlantiplex {name}"));
                api.create_price(name, &display, &plan.spec.price, &lookup).await?
            }
        };
        if let Ok(mut prices) = self.prices.lock() {
            prices.insert(lookup, id.clone());
        }
        Ok(id)
    }

    /// The Stripe meter of `meter`, created once and found again by its event name.
    pub async fn meter_id(&self, api: &StripeApi, prefix: &str, meter: Meter) -> Result<String, StripeCallError> {
        let name = event_name(prefix, meter);
        if let Some(id) = self.meters.lock().ok().and_then(|m| m.get(&name).cloned()) {
            return Ok(id);
        }
        let id = match api.find_meter(&name).await? {
            Some(id) => id,
            None => {
                let display = format!("Atlantiplex {meter} ({})", meter.billing_unit());
                let id = api.create_meter(&name, &display).await?;
                tracing::info!(meter = %meter, event_name = %name, stripe_meter = %id, "Stripe meter created");
                id
            }
        };
        if let Ok(mut meters) = self.meters.lock() {
            meters.insert(name, id.clone());
        }
        Ok(id)
    }

    /// The metered prices of `plan` (one per billed meter), created once and found again by lookup key.
    pub async fn metered_prices_for(
        &self,
        api: &StripeApi,
        prefix: &str,
        name: &str,
        plan: &Plan,
    ) -> Result<Vec<(MeteredPrice, String)>, StripeCallError> {
        let mut out = Vec::new();
        for price in metered_prices(name, plan) {
            let cached = self.prices.lock().ok().and_then(|p| p.get(&price.lookup_key).cloned());
            let id = match cached {
                Some(id) => id,
                None => {
                    let id = match api.find_price(&price.lookup_key).await? {
                        Some(id) => id,
                        None => {
                            let meter = self.meter_id(api, prefix, price.meter).await?;
                            api.create_metered_price(name, &price, &meter, plan.spec.price.interval).await?
                        }
                    };
                    if let Ok(mut prices) = self.prices.lock() {
                        prices.insert(price.lookup_key.clone(), id.clone());
                    }
                    id
                }
            };
            out.push((price, id));
        }
        Ok(out)
    }

    /// The plan a price belongs to, among the given plans (for a subscription's current price).
    pub fn plan_of_price<'a>(
        &self,
        price_id: &str,
        plans: impl IntoIterator<Item = (&'a str, &'a Plan)>,
    ) -> Option<String> {
        let known = self.prices.lock().ok()?.clone();
        plans.into_iter().find_map(|(name, plan)| {
            let given = plan.spec.stripe.as_ref().and_then(|s| s.price_id.as_deref()) == Some(price_id);
            let created = known.get(&keys::price_lookup(name, &plan.spec.price)).map(String::as_str) == Some(price_id);
            (given || created).then(|| name.to_string())
        })
    }
}
