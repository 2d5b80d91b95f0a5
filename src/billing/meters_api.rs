//! Stripe Billing Meters as the operator uses them: one meter per dimension (found again by its event name),
//! metered prices that reference it, meter events, and the event summaries read back at period close.

use super::items::MeteredPrice;
use super::stripe::{StripeApi, StripeCallError, idempotent};
use std::collections::HashMap;
use stripe::StripeRequest;

/// A meter event to send.
pub struct MeterEvent<'a> {
    pub event_name: &'a str,
    pub customer: &'a str,
    /// Billing units, as a decimal string (`metering::units::format_micros`).
    pub value: &'a str,
    pub identifier: &'a str,
    pub timestamp: i64,
}

impl StripeApi {
    /// The active meter with this event name, if one exists.
    pub async fn find_meter(&self, event_name: &str) -> Result<Option<String>, StripeCallError> {
        use stripe_billing::BillingMeterStatus;
        use stripe_billing::billing_meter::ListBillingMeter;
        let mut after: Option<String> = None;
        // A handful of meters per account; pages of 100 until found.
        loop {
            let mut request = ListBillingMeter::new().status(BillingMeterStatus::Active).limit(100);
            if let Some(after) = &after {
                request = request.starting_after(after.clone());
            }
            let page = self.call("list_meters", request.send(&self.client)).await?;
            if let Some(meter) = page.data.iter().find(|m| m.event_name == event_name) {
                return Ok(Some(meter.id.to_string()));
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.to_string()),
                _ => return Ok(None),
            }
        }
    }

    /// Creates a summing meter for `event_name` (customer in `stripe_customer_id`, amount in `value`).
    pub async fn create_meter(&self, event_name: &str, display_name: &str) -> Result<String, StripeCallError> {
        use stripe_billing::billing_meter::{
            CreateBillingMeter, CreateBillingMeterDefaultAggregation, CreateBillingMeterDefaultAggregationFormula,
        };
        let aggregation = CreateBillingMeterDefaultAggregation::new(CreateBillingMeterDefaultAggregationFormula::Sum);
        let request = CreateBillingMeter::new(aggregation, display_name, event_name);
        let key = format!("atlantiplex-meter-{event_name}");
        let send = request.customize().request_strategy(idempotent(&key)?).send(&self.client);
        Ok(self.call("create_meter", send).await?.id.to_string())
    }

    /// Creates the graduated metered price of one (plan, meter): the allowance free, then a unit price.
    pub async fn create_metered_price(
        &self,
        plan: &str,
        price: &MeteredPrice,
        meter_id: &str,
        interval: crate::api::BillingInterval,
    ) -> Result<String, StripeCallError> {
        use stripe_product::price::{
            CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
            CreatePriceRecurringUsageType, CreatePriceTiers, CreatePriceTiersUpTo,
        };
        use stripe_shared::{PriceBillingScheme, PriceTiersMode};
        let mut recurring = CreatePriceRecurring::new(match interval {
            crate::api::BillingInterval::Month => CreatePriceRecurringInterval::Month,
            crate::api::BillingInterval::Year => CreatePriceRecurringInterval::Year,
        });
        recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
        recurring.meter = Some(meter_id.to_string());
        let tier = |up_to: CreatePriceTiersUpTo, cents: i64| {
            let mut tier = CreatePriceTiers::new(up_to);
            tier.unit_amount_decimal = Some(cents.to_string());
            tier
        };
        let mut tiers = Vec::new();
        if price.free_units > 0 {
            tiers.push(tier(CreatePriceTiersUpTo::I64(price.free_units), 0));
        }
        tiers.push(tier(CreatePriceTiersUpTo::Inf, price.cents_per_unit));
        let metadata: HashMap<String, String> =
            [(super::keys::META_PLAN.to_string(), plan.to_string()), (META_METER.to_string(), price.meter.to_string())]
                .into();
        let unit = price.meter.billing_unit();
        let mut product = CreatePriceProductData::new(format!("Atlantiplex {plan}: {} beyond the plan", price.meter));
        product.metadata = Some(metadata.clone());
        product.unit_label = Some(unit.chars().take(12).collect());
        let currency: stripe_types::Currency = price.currency.parse().unwrap_or(stripe_types::Currency::USD);
        let request = CreatePrice::new(currency)
            .billing_scheme(PriceBillingScheme::Tiered)
            .tiers_mode(PriceTiersMode::Graduated)
            .tiers(tiers)
            .recurring(recurring)
            .lookup_key(price.lookup_key.as_str())
            .product_data(product)
            .metadata(metadata);
        let key = super::keys::price(&price.lookup_key);
        let send = request.customize().request_strategy(idempotent(&key)?).send(&self.client);
        Ok(self.call("create_price", send).await?.id.to_string())
    }

    /// Sends one meter event. Stripe drops a second event with the same identifier (within at least 24 h);
    /// an answer saying the identifier exists counts as sent.
    pub async fn send_meter_event(&self, event: &MeterEvent<'_>) -> Result<(), StripeCallError> {
        use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
        let payload: HashMap<String, String> =
            [("stripe_customer_id".to_string(), event.customer.to_string()), ("value".to_string(), event.value.into())]
                .into();
        let request = CreateBillingMeterEvent::new(event.event_name, payload)
            .identifier(event.identifier)
            .timestamp(event.timestamp);
        match self.call("create_meter_event", request.send(&self.client)).await {
            Ok(_) => Ok(()),
            Err(StripeCallError::Refused { status: 400, message, .. }) if duplicate_identifier(&message) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// What Stripe holds for `customer` on the meter in `[start, end)` (unix seconds): the sum of its
    /// summaries, in billing units.
    pub async fn meter_total(
        &self,
        meter_id: &str,
        customer: &str,
        start: i64,
        end: i64,
    ) -> Result<f64, StripeCallError> {
        use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
        let mut total = 0.0;
        let mut after: Option<String> = None;
        loop {
            // Note the order: end before start.
            let mut request = ListIdBillingMeterEventSummary::new(meter_id, customer, end, start).limit(100);
            if let Some(after) = &after {
                request = request.starting_after(after.clone());
            }
            let page = self.call("list_meter_event_summaries", request.send(&self.client)).await?;
            total += page.data.iter().map(|s| s.aggregated_value).sum::<f64>();
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.to_string()),
                _ => return Ok(total),
            }
        }
    }
}

/// The meter a Stripe price or product is for.
pub const META_METER: &str = "atlantiplex_meter";

fn duplicate_identifier(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("identifier") && (m.contains("already") || m.contains("duplicate"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_duplicate_identifier_answer_counts_as_sent() {
        assert!(super::duplicate_identifier("An event with identifier atp-acme-bandwidth-1 already exists"));
        assert!(!super::duplicate_identifier("No such customer: 'cus_1'"));
    }
}
