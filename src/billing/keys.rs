//! Deterministic Stripe idempotency keys, lookup keys and metadata: a retried or crashed reconcile
//! sends the same key, so Stripe returns the object it already created instead of a second one.

use crate::api::{BillingInterval, Price};

/// Metadata on every Stripe object the operator creates; objects without it are not ours.
pub const META_ORGANIZATION: &str = "atlantiplex_organization";
pub const META_ORGANIZATION_UID: &str = "atlantiplex_organization_uid";
pub const META_SUBSCRIPTION: &str = "atlantiplex_subscription";
pub const META_SUBSCRIPTION_UID: &str = "atlantiplex_subscription_uid";
pub const META_PLAN: &str = "atlantiplex_plan";
/// The Subscription's generation when its Stripe subscription was created.
pub const META_GENERATION: &str = "atlantiplex_generation";
/// A downgrade that waits for the period end: the plan paid for, and until when (unix seconds).
/// Kept in Stripe, not in the status, so every sync derives the same answer from Stripe alone.
pub const META_KEPT_PLAN: &str = "atlantiplex_kept_plan";
pub const META_KEPT_UNTIL: &str = "atlantiplex_kept_until";

pub fn customer(organization_uid: &str) -> String {
    format!("atlantiplex-customer-{organization_uid}")
}

pub fn subscription(subscription_uid: &str, generation: i64) -> String {
    format!("atlantiplex-subscription-{subscription_uid}-{generation}")
}

/// A plan change: one per Subscription generation (the spec change that asked for it).
pub fn plan_change(subscription_uid: &str, generation: i64) -> String {
    format!("atlantiplex-change-{subscription_uid}-{generation}")
}

/// An update of the metered items alone, per generation and set of prices wanted.
pub fn items_change(subscription_uid: &str, generation: i64, metered: &[String]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, metered.join(",").as_bytes());
    let short: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("atlantiplex-items-{subscription_uid}-{generation}-{short}")
}

/// Prices are immutable in Stripe: a changed amount, currency or interval is a new lookup key.
pub fn price_lookup(plan: &str, price: &Price) -> String {
    let interval = interval(price.interval);
    format!("atlantiplex-{plan}-{}-{}-{interval}", price.amount_cents, price.currency)
}

pub fn price(lookup_key: &str) -> String {
    format!("atlantiplex-price-{lookup_key}")
}

pub fn interval(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Month => "month",
        BillingInterval::Year => "year",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_distinct() {
        assert_eq!(customer("u1"), "atlantiplex-customer-u1");
        assert_eq!(subscription("s1", 3), subscription("s1", 3));
        assert_ne!(subscription("s1", 3), subscription("s1", 4));
        assert_ne!(plan_change("s1", 3), subscription("s1", 3));
        let p = Price { amount_cents: 2999, currency: "usd".into(), interval: BillingInterval::Month };
        assert_eq!(price_lookup("professional", &p), "atlantiplex-professional-2999-usd-month");
        let yearly = Price { interval: BillingInterval::Year, ..p.clone() };
        assert_ne!(price_lookup("professional", &yearly), price_lookup("professional", &p));
        assert!(price(&price_lookup("professional", &p)).len() <= 255);
    }
}
