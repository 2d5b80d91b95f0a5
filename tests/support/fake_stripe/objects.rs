//! The fake's objects: stripe-mock's fixtures as templates, filled in, and every response passed
//! through async-stripe's own types (serde) so its shape is theirs.

use super::form;
use super::{DAY, World};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn template(name: &str) -> Value {
    let text = match name {
        "customer" => include_str!("fixtures/customer.json"),
        "price" => include_str!("fixtures/price.json"),
        "subscription" => include_str!("fixtures/subscription.json"),
        "invoice" => include_str!("fixtures/invoice.json"),
        _ => "{}",
    };
    serde_json::from_str(text).expect("fixture parses")
}

/// The value as async-stripe's type `T` serializes it; a fake that builds something the type
/// cannot read fails the test here, naming the field.
fn through<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("fake Stripe built a {} async-stripe cannot read: {e}", std::any::type_name::<T>()));
    serde_json::to_value(typed).expect("serializes")
}

pub fn list(url: &str, data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "url": url})
}

pub fn customer_out(c: &Value) -> Value {
    through::<stripe_shared::Customer>(c)
}

pub fn price_out(p: &Value) -> Value {
    through::<stripe_shared::Price>(p)
}

pub fn invoice_out(i: &Value) -> Value {
    through::<stripe_shared::Invoice>(i)
}

/// With `world`, `latest_invoice` is expanded.
pub fn subscription_out(s: &Value, world: Option<&World>) -> Value {
    let mut s = s.clone();
    if let (Some(w), Some(id)) = (world, s["latest_invoice"].as_str().map(str::to_string))
        && let Some(invoice) = w.invoices.get(&id)
    {
        s["latest_invoice"] = invoice.clone();
    }
    through::<stripe_shared::Subscription>(&s)
}

pub fn new_customer(id: &str, now: i64, form: &BTreeMap<String, String>) -> Value {
    let mut c = template("customer");
    c["id"] = json!(id);
    c["created"] = json!(now);
    c["email"] = json!(form.get("email"));
    c["name"] = json!(form.get("name"));
    c["metadata"] = Value::Object(form::map(form, "metadata"));
    c
}

pub fn new_price(id: &str, product: &str, now: i64, form: &BTreeMap<String, String>) -> Value {
    let mut p = template("price");
    p["id"] = json!(id);
    p["product"] = json!(product);
    p["created"] = json!(now);
    p["currency"] = json!(form.get("currency").cloned().unwrap_or_else(|| "usd".into()));
    let amount: i64 = form.get("unit_amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    p["unit_amount"] = json!(amount);
    p["unit_amount_decimal"] = json!(amount.to_string());
    p["lookup_key"] = json!(form.get("lookup_key"));
    p["metadata"] = Value::Object(form::map(form, "metadata"));
    p["type"] = json!("recurring");
    let interval = form.get("recurring[interval]").cloned().unwrap_or_else(|| "month".into());
    p["recurring"] = json!({"interval": interval, "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed"});
    p
}

fn period(price: &Value) -> i64 {
    match price["recurring"]["interval"].as_str() {
        Some("year") => 365 * DAY,
        _ => 30 * DAY,
    }
}

fn legacy_plan(price: &Value) -> Value {
    json!({
        "id": price["id"], "object": "plan", "active": true, "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": "per_unit", "created": price["created"],
        "currency": price["currency"], "interval": price["recurring"]["interval"], "interval_count": 1,
        "livemode": false, "metadata": {}, "meter": null, "nickname": null, "product": price["product"],
        "tiers_mode": null, "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"
    })
}

fn event(w: &mut World, type_: &str, object: Value) -> Value {
    let id = w.id("evt");
    let e = json!({
        "id": id, "object": "event", "api_version": "2025-11-17.clover", "created": w.now,
        "type": type_, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "data": {"object": object}
    });
    w.events.push(e.clone());
    e
}

fn sub_event(w: &mut World, id: &str, type_: &str) -> Value {
    let s = subscription_out(&w.subscriptions[id], None);
    event(w, type_, s)
}

/// A finalized invoice for the subscription; paid unless payments are failing.
fn invoice(w: &mut World, sub_id: &str, amount: i64, start: i64, end: i64, events: &mut Vec<Value>) -> bool {
    let sub = w.subscriptions[sub_id].clone();
    let id = w.id("in");
    let paid = amount == 0 || !w.failing;
    let mut i = template("invoice");
    i["id"] = json!(id);
    i["customer"] = sub["customer"].clone();
    i["created"] = json!(w.now);
    i["currency"] = sub["currency"].clone();
    i["amount_due"] = json!(amount);
    i["amount_paid"] = json!(if paid { amount } else { 0 });
    i["amount_remaining"] = json!(if paid { 0 } else { amount });
    i["status"] = json!(if paid { "paid" } else { "open" });
    i["period_start"] = json!(start);
    i["period_end"] = json!(end);
    i["hosted_invoice_url"] = json!(format!("https://invoice.stripe.test/{id}"));
    i["number"] = json!(format!("FAKE-{:04}", w.invoices.len() + 1));
    i["lines"] = json!({"object": "list", "data": [], "has_more": false, "url": format!("/v1/invoices/{id}/lines")});
    i["parent"] = json!({"type": "subscription_details", "quote_details": null,
        "subscription_details": {"subscription": sub_id, "metadata": sub["metadata"], "subscription_proration_date": null}});
    w.invoices.insert(id.clone(), i.clone());
    if let Some(s) = w.subscriptions.get_mut(sub_id) {
        s["latest_invoice"] = json!(id);
    }
    let out = invoice_out(&i);
    events.push(event(w, "invoice.finalized", out.clone()));
    events.push(event(w, if paid { "invoice.paid" } else { "invoice.payment_failed" }, out));
    paid
}

pub fn create_subscription(
    w: &mut World,
    customer: &str,
    price: &Value,
    f: &BTreeMap<String, String>,
) -> (Value, Vec<Value>) {
    let id = w.id("sub");
    let item = w.id("si");
    let trial_days: Option<i64> = f.get("trial_period_days").and_then(|d| d.parse().ok());
    let now = w.now;
    let end = match trial_days {
        Some(days) => now + days * DAY,
        None => now + period(price),
    };
    let mut s = template("subscription");
    for k in [
        "schedule",
        "pending_update",
        "pending_setup_intent",
        "canceled_at",
        "ended_at",
        "cancel_at",
        "test_clock",
        "discounts",
    ] {
        s[k] = if k == "discounts" { json!([]) } else { Value::Null };
    }
    s["id"] = json!(id);
    s["customer"] = json!(customer);
    s["currency"] = price["currency"].clone();
    s["created"] = json!(now);
    s["start_date"] = json!(now);
    s["billing_cycle_anchor"] = json!(end);
    s["cancel_at_period_end"] = json!(false);
    s["metadata"] = Value::Object(form::map(f, "metadata"));
    s["trial_start"] = json!(trial_days.map(|_| now));
    s["trial_end"] = json!(trial_days.map(|_| end));
    s["status"] = json!(if trial_days.is_some() { "trialing" } else { "active" });
    s["latest_invoice"] = Value::Null;
    s["items"] = json!({"object": "list", "has_more": false, "url": format!("/v1/subscription_items?subscription={id}"),
        "data": [{"id": item, "object": "subscription_item", "billing_thresholds": null, "created": now,
            "current_period_start": now, "current_period_end": end, "discounts": [], "metadata": {},
            "price": price_out(price), "plan": legacy_plan(price), "quantity": 1, "subscription": id, "tax_rates": []}]});
    w.subscriptions.insert(id.clone(), s);
    let mut events = vec![];
    let amount = if trial_days.is_some() { 0 } else { price["unit_amount"].as_i64().unwrap_or(0) };
    let paid = invoice(w, &id, amount, now, end, &mut events);
    if !paid && let Some(s) = w.subscriptions.get_mut(&id) {
        s["status"] = json!("incomplete");
    }
    events.insert(0, sub_event(w, &id, "customer.subscription.created"));
    (w.subscriptions[&id].clone(), events)
}

fn item_price(s: &Value) -> Value {
    s["items"]["data"][0]["price"].clone()
}

pub fn update_subscription(
    w: &mut World,
    id: &str,
    f: &BTreeMap<String, String>,
) -> Result<Vec<Value>, (StatusCode, String)> {
    let mut events = vec![];
    let sub = w.subscriptions[id].clone();
    if ["canceled", "incomplete_expired"].contains(&sub["status"].as_str().unwrap_or_default()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "A canceled subscription can only update its cancellation_details and metadata.".into(),
        ));
    }
    let mut metadata: Map<String, Value> = sub["metadata"].as_object().cloned().unwrap_or_default();
    // As Stripe: a key set to "" is deleted.
    for (key, value) in form::map(f, "metadata") {
        if value.as_str() == Some("") {
            metadata.remove(&key);
        } else {
            metadata.insert(key, value);
        }
    }
    let mut changed_price = None;
    if let Some(price_id) = f.get("items[0][price]") {
        let Some(price) = w.prices.get(price_id).cloned() else {
            return Err((StatusCode::BAD_REQUEST, format!("No such price: '{price_id}'")));
        };
        if f.get("items[0][id]").map(String::as_str) != sub["items"]["data"][0]["id"].as_str() {
            return Err((StatusCode::BAD_REQUEST, "items[0][id] is not an item of this subscription".into()));
        }
        w.count("change_price");
        *w.calls
            .entry(format!("proration {}", f.get("proration_behavior").cloned().unwrap_or_default()))
            .or_default() += 1;
        changed_price = Some(price);
    }
    let s = w.subscriptions.get_mut(id).expect("exists");
    s["metadata"] = Value::Object(metadata);
    if let Some(c) = f.get("cancel_at_period_end") {
        s["cancel_at_period_end"] = json!(c == "true");
    }
    if let Some(price) = &changed_price {
        let old = item_price(s)["unit_amount"].as_i64().unwrap_or(0);
        let new = price["unit_amount"].as_i64().unwrap_or(0);
        s["items"]["data"][0]["price"] = price_out(price);
        s["items"]["data"][0]["plan"] = legacy_plan(price);
        let (start, end) = (
            s["items"]["data"][0]["current_period_start"].as_i64().unwrap_or(0),
            s["items"]["data"][0]["current_period_end"].as_i64().unwrap_or(0),
        );
        if f.get("proration_behavior").map(String::as_str) == Some("always_invoice")
            && new > old
            && s["status"] != "trialing"
        {
            let fraction = (end - w.now).max(0) as f64 / (end - start).max(1) as f64;
            let amount = ((new - old) as f64 * fraction).round() as i64;
            let now = w.now;
            if !invoice(w, id, amount, now, end, &mut events)
                && let Some(s) = w.subscriptions.get_mut(id)
            {
                s["status"] = json!("past_due");
            }
        }
    }
    events.insert(0, sub_event(w, id, "customer.subscription.updated"));
    Ok(events)
}

pub fn set_status(w: &mut World, id: &str, status: &str, event_type: &str) -> Vec<Value> {
    let now = w.now;
    if let Some(s) = w.subscriptions.get_mut(id) {
        s["status"] = json!(status);
        if status == "canceled" {
            s["canceled_at"] = json!(now);
            s["ended_at"] = json!(now);
        }
    }
    vec![sub_event(w, id, event_type)]
}

/// The clock moves: trials end and periods renew, each with its invoice.
pub fn advance(w: &mut World, secs: i64) -> Vec<Value> {
    w.now += secs;
    let mut events = vec![];
    let ids: Vec<String> = w.subscriptions.keys().cloned().collect();
    for id in ids {
        for _ in 0..24 {
            let s = w.subscriptions[&id].clone();
            let status = s["status"].as_str().unwrap_or_default().to_string();
            let end = s["items"]["data"][0]["current_period_end"].as_i64().unwrap_or(i64::MAX);
            if !["trialing", "active", "past_due"].contains(&status.as_str()) || end > w.now {
                break;
            }
            if s["cancel_at_period_end"] == json!(true) {
                events.extend(set_status(w, &id, "canceled", "customer.subscription.deleted"));
                break;
            }
            let price = item_price(&s);
            let next = end + period(&price);
            let sub = w.subscriptions.get_mut(&id).expect("exists");
            sub["items"]["data"][0]["current_period_start"] = json!(end);
            sub["items"]["data"][0]["current_period_end"] = json!(next);
            let paid = invoice(w, &id, price["unit_amount"].as_i64().unwrap_or(0), end, next, &mut events);
            let new_status = if paid { "active" } else { "past_due" };
            events.extend(set_status(w, &id, new_status, "customer.subscription.updated"));
        }
    }
    events
}

/// The open invoice is paid: the subscription is active again.
pub fn pay(w: &mut World, sub_id: &str) -> Vec<Value> {
    let mut events = vec![];
    let Some(invoice_id) = w.subscriptions.get(sub_id).and_then(|s| s["latest_invoice"].as_str().map(str::to_string))
    else {
        return events;
    };
    if let Some(i) = w.invoices.get_mut(&invoice_id)
        && i["status"] == "open"
    {
        i["status"] = json!("paid");
        i["amount_paid"] = i["amount_due"].clone();
        i["amount_remaining"] = json!(0);
        let out = invoice_out(i);
        events.push(event(w, "invoice.paid", out));
        events.extend(set_status(w, sub_id, "active", "customer.subscription.updated"));
    }
    events
}
