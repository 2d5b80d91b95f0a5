//! Plans → Stripe prices: the ids given on the Plan, or a price (with its product) the operator
//! creates once and finds again by lookup key.

use super::keys;
use super::stripe::{StripeApi, StripeCallError};
use crate::api::Plan;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Catalog {
    /// lookup key → price id; prices never change in Stripe, so a found id stays valid.
    prices: Mutex<HashMap<String, String>>,
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
