//! The fake's Billing Meters: meters found by event name, meter events deduplicated by identifier (as
//! Stripe does for at least 24 hours: a repeat is refused and stored once), event summaries per customer and
//! range, and the usage a graduated metered price charges at period end.

use super::World;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("fake Stripe built a {} async-stripe cannot read: {e}", std::any::type_name::<T>()));
    serde_json::to_value(typed).expect("serializes")
}

pub fn meter_out(m: &Value) -> Value {
    through::<stripe_billing::BillingMeter>(m)
}

pub fn create_meter(w: &mut World, f: &BTreeMap<String, String>) -> Result<Value, (StatusCode, String)> {
    let event_name = f.get("event_name").cloned().unwrap_or_default();
    if w.meters.values().any(|m| m["event_name"] == json!(event_name) && m["status"] == "active") {
        return Err((StatusCode::BAD_REQUEST, format!("An active meter with event_name {event_name} already exists")));
    }
    w.count("create_meter");
    let id = w.id("mtr");
    let now = w.now;
    let meter = json!({
        "id": id, "object": "billing.meter", "created": now, "updated": now, "livemode": false,
        "display_name": f.get("display_name"), "event_name": event_name, "event_time_window": null,
        "status": "active", "status_transitions": {"deactivated_at": null},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "default_aggregation": {"formula": f.get("default_aggregation[formula]").cloned().unwrap_or_else(|| "sum".into())},
        "value_settings": {"event_payload_key": "value"},
    });
    w.meters.insert(id, meter.clone());
    Ok(meter_out(&meter))
}

/// A meter event: 400 for a repeated identifier (stored once), as for an unknown meter or a bad value.
pub fn create_meter_event(w: &mut World, f: &BTreeMap<String, String>) -> Result<Value, (StatusCode, String)> {
    let event_name = f.get("event_name").cloned().unwrap_or_default();
    let identifier = f.get("identifier").cloned().unwrap_or_else(|| w.id("mev"));
    if !w.meters.values().any(|m| m["event_name"] == json!(event_name)) {
        return Err((StatusCode::BAD_REQUEST, format!("No active meter found for event_name {event_name}")));
    }
    let value = f.get("payload[value]").cloned().unwrap_or_default();
    if value.parse::<f64>().map_or(true, |v| !v.is_finite() || v < 0.0) {
        return Err((StatusCode::BAD_REQUEST, format!("payload[value] {value:?} is not a number")));
    }
    if w.meter_events.iter().any(|e| e["identifier"] == json!(identifier)) {
        w.count("duplicate_meter_event");
        return Err((StatusCode::BAD_REQUEST, format!("An event with identifier {identifier} already exists")));
    }
    w.count("create_meter_event");
    let timestamp: i64 = f.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(w.now);
    let event = json!({
        "object": "billing.meter_event", "created": w.now, "livemode": false, "event_name": event_name,
        "identifier": identifier, "timestamp": timestamp,
        "payload": {"stripe_customer_id": f.get("payload[stripe_customer_id]"), "value": value},
    });
    w.meter_events.push(event.clone());
    Ok(through::<stripe_billing::BillingMeterEvent>(&event))
}

/// Σ value of the meter's events for `customer` with `start <= timestamp < end`.
pub fn total(w: &World, event_name: &str, customer: &str, start: i64, end: i64) -> f64 {
    w.meter_events
        .iter()
        .filter(|e| e["event_name"] == json!(event_name) && e["payload"]["stripe_customer_id"] == json!(customer))
        .filter(|e| e["timestamp"].as_i64().is_some_and(|t| start <= t && t < end))
        .filter_map(|e| e["payload"]["value"].as_str()?.parse::<f64>().ok())
        .sum()
}

pub fn summaries(w: &World, meter_id: &str, params: &BTreeMap<String, String>) -> Result<Value, (StatusCode, String)> {
    let Some(meter) = w.meters.get(meter_id) else {
        return Err((StatusCode::NOT_FOUND, format!("No such meter: '{meter_id}'")));
    };
    let number = |k: &str| params.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end)) = (number("start_time"), number("end_time")) else {
        return Err((StatusCode::BAD_REQUEST, "start_time and end_time are required".into()));
    };
    if start % 60 != 0 || end % 60 != 0 || end <= start {
        return Err((
            StatusCode::BAD_REQUEST,
            "start_time and end_time must be minute-aligned, start before end".into(),
        ));
    }
    let customer = params.get("customer").cloned().unwrap_or_default();
    let value = total(w, meter["event_name"].as_str().unwrap_or_default(), &customer, start, end);
    let summary = json!({
        "id": format!("mtrusg_{start}_{end}"), "object": "billing.meter_event_summary", "livemode": false,
        "meter": meter_id, "start_time": start, "end_time": end, "aggregated_value": value,
    });
    let data = vec![through::<stripe_billing::BillingMeterEventSummary>(&summary)];
    Ok(
        json!({"object": "list", "data": data, "has_more": false, "url": format!("/v1/billing/meters/{meter_id}/event_summaries")}),
    )
}

/// Cents a graduated metered price charges for `quantity` units: each tier's units at its unit price,
/// rounded to the cent once (as Stripe rounds an invoice line).
pub fn charge(price: &Value, quantity: f64) -> i64 {
    let mut cents = 0.0;
    let mut below = 0.0;
    for tier in price["tiers"].as_array().cloned().unwrap_or_default() {
        let unit: f64 = tier["unit_amount_decimal"].as_str().and_then(|u| u.parse().ok()).unwrap_or(0.0);
        let up_to = tier["up_to"].as_f64().unwrap_or(f64::INFINITY);
        let units = (quantity.min(up_to) - below).max(0.0);
        cents += units * unit;
        below = up_to;
        if quantity <= up_to {
            break;
        }
    }
    cents.round() as i64
}

/// One usage line of an invoice (the fake keeps them beside the invoice; tests read them).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageLine {
    pub invoice: String,
    pub price: String,
    pub event_name: String,
    pub quantity: f64,
    pub cents: i64,
}
