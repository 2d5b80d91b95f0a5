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
    let usage_type = form.get("recurring[usage_type]").cloned().unwrap_or_else(|| "licensed".into());
    p["recurring"] = json!({"interval": interval, "interval_count": 1, "meter": form.get("recurring[meter]"),
        "trial_period_days": null, "usage_type": usage_type});
    if form.get("billing_scheme").map(String::as_str) == Some("tiered") {
        let mut tiers = vec![];
        for i in 0.. {
            let Some(up_to) = form.get(&format!("tiers[{i}][up_to]")) else { break };
            tiers.push(json!({"flat_amount": null, "flat_amount_decimal": null, "unit_amount": null,
                "unit_amount_decimal": form.get(&format!("tiers[{i}][unit_amount_decimal]")),
                "up_to": up_to.parse::<i64>().ok()}));
        }
        p["billing_scheme"] = json!("tiered");
        p["tiers_mode"] = json!(form.get("tiers_mode"));
        p["tiers"] = json!(tiers);
        p["unit_amount"] = Value::Null;
        p["unit_amount_decimal"] = Value::Null;
    }
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
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": price["billing_scheme"], "created": price["created"],
        "currency": price["currency"], "interval": price["recurring"]["interval"], "interval_count": 1,
        "livemode": false, "metadata": {}, "meter": price["recurring"]["meter"], "nickname": null, "product": price["product"],
        "tiers_mode": price["tiers_mode"], "transform_usage": null, "trial_period_days": null,
        "usage_type": price["recurring"]["usage_type"]
    })
}

fn metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}

fn new_item(w: &mut World, sub: &str, price: &Value, start: i64, end: i64) -> Value {
    let item = w.id("si");
    json!({"id": item, "object": "subscription_item", "billing_thresholds": null, "created": w.now,
        "current_period_start": start, "current_period_end": end, "discounts": [], "metadata": {},
        "price": price_out(price), "plan": legacy_plan(price),
        "quantity": if metered(price) { Value::Null } else { json!(1) }, "subscription": sub, "tax_rates": []})
}

/// The usage the subscription's metered items charge for `[start, end)`, recorded as the invoice's lines.
fn usage_lines(w: &mut World, sub: &Value, start: i64, end: i64) -> i64 {
    let customer = sub["customer"].as_str().unwrap_or_default().to_string();
    let mut cents = 0;
    for item in sub["items"]["data"].as_array().cloned().unwrap_or_default() {
        let price_id = item["price"]["id"].as_str().unwrap_or_default().to_string();
        let Some(price) = w.prices.get(&price_id).cloned().filter(metered) else { continue };
        let meter_id = price["recurring"]["meter"].as_str().unwrap_or_default();
        let event_name = w.meters.get(meter_id).and_then(|m| m["event_name"].as_str()).unwrap_or_default().to_string();
        let quantity = super::meters::total(w, &event_name, &customer, start, end);
        let line = super::meters::charge(&price, quantity);
        cents += line;
        w.usage_lines.push(super::meters::UsageLine {
            invoice: String::new(),
            price: price_id,
            event_name,
            quantity,
            cents: line,
        });
    }
    cents
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
    prices: &[Value],
    f: &BTreeMap<String, String>,
) -> (Value, Vec<Value>) {
    let price = prices.iter().find(|p| !metered(p)).unwrap_or(&prices[0]).clone();
    let price = &price;
    let id = w.id("sub");
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
    let items: Vec<Value> = prices.iter().map(|p| new_item(w, &id, p, now, end)).collect();
    s["items"] = json!({"object": "list", "has_more": false, "url": format!("/v1/subscription_items?subscription={id}"),
        "data": items});
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

/// The licensed (flat) item's index.
fn flat_index(s: &Value) -> usize {
    s["items"]["data"].as_array().and_then(|items| items.iter().position(|i| !metered(&i["price"]))).unwrap_or(0)
}

fn item_price(s: &Value) -> Value {
    s["items"]["data"][flat_index(s)]["price"].clone()
}

/// `items[i][...]` of an update: (id, price, deleted) per index.
fn item_params(f: &BTreeMap<String, String>) -> Vec<(Option<String>, Option<String>, bool)> {
    (0..)
        .map_while(|i| {
            let id = f.get(&format!("items[{i}][id]")).cloned();
            let price = f.get(&format!("items[{i}][price]")).cloned();
            let deleted = f.get(&format!("items[{i}][deleted]")).is_some_and(|d| d == "true");
            (id.is_some() || price.is_some()).then_some((id, price, deleted))
        })
        .collect()
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
    let mut added: Vec<Value> = vec![];
    let mut removed: Vec<String> = vec![];
    let items = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    for (item_id, price_id, deleted) in item_params(f) {
        let existing = item_id.as_ref().map(|i| items.iter().find(|x| x["id"].as_str() == Some(i.as_str())));
        if let Some(None) = existing {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("{} is not an item of this subscription", item_id.unwrap_or_default()),
            ));
        }
        if deleted {
            removed.extend(item_id);
            continue;
        }
        let Some(price_id) = price_id else { continue };
        let Some(price) = w.prices.get(&price_id).cloned() else {
            return Err((StatusCode::BAD_REQUEST, format!("No such price: '{price_id}'")));
        };
        match existing.flatten() {
            Some(item) if !metered(&item["price"]) => {
                w.count("change_price");
                *w.calls
                    .entry(format!("proration {}", f.get("proration_behavior").cloned().unwrap_or_default()))
                    .or_default() += 1;
                changed_price = Some(price);
            }
            Some(_) => {
                return Err((StatusCode::BAD_REQUEST, "the fake changes metered items by delete and add".into()));
            }
            None => {
                if items.iter().any(|x| x["price"]["id"] == price["id"]) {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "Cannot add multiple subscription items with the same plan".into(),
                    ));
                }
                w.count("add_item");
                added.push(price);
            }
        }
    }
    let (start, end) = (
        items.first().and_then(|i| i["current_period_start"].as_i64()).unwrap_or(w.now),
        items.first().and_then(|i| i["current_period_end"].as_i64()).unwrap_or(w.now),
    );
    let new_items: Vec<Value> = added.iter().map(|p| new_item(w, id, p, start, end)).collect();
    if !removed.is_empty() || !new_items.is_empty() {
        let s = w.subscriptions.get_mut(id).expect("exists");
        if let Some(data) = s["items"]["data"].as_array_mut() {
            data.retain(|i| !removed.iter().any(|r| i["id"].as_str() == Some(r.as_str())));
            data.extend(new_items);
        }
    }
    let s = w.subscriptions.get_mut(id).expect("exists");
    s["metadata"] = Value::Object(metadata);
    if let Some(c) = f.get("cancel_at_period_end") {
        s["cancel_at_period_end"] = json!(c == "true");
    }
    if let Some(price) = &changed_price {
        let flat = flat_index(s);
        let old = item_price(s)["unit_amount"].as_i64().unwrap_or(0);
        let new = price["unit_amount"].as_i64().unwrap_or(0);
        s["items"]["data"][flat]["price"] = price_out(price);
        s["items"]["data"][flat]["plan"] = legacy_plan(price);
        let (start, end) = (
            s["items"]["data"][flat]["current_period_start"].as_i64().unwrap_or(0),
            s["items"]["data"][flat]["current_period_end"].as_i64().unwrap_or(0),
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
            let start = s["items"]["data"][0]["current_period_start"].as_i64().unwrap_or(end);
            let usage = usage_lines(w, &s, start, end);
            let sub = w.subscriptions.get_mut(&id).expect("exists");
            renew_items(sub, end, next);
            let flat = price["unit_amount"].as_i64().unwrap_or(0);
            let paid = invoice(w, &id, flat + usage, end, next, &mut events);
            label_usage_lines(w, &id);
            let new_status = if paid { "active" } else { "past_due" };
            events.extend(set_status(w, &id, new_status, "customer.subscription.updated"));
        }
    }
    events
}

/// The lines just computed belong to the subscription's newest invoice.
fn label_usage_lines(w: &mut World, sub_id: &str) {
    let invoice =
        w.subscriptions.get(sub_id).and_then(|s| s["latest_invoice"].as_str()).unwrap_or_default().to_string();
    for line in w.usage_lines.iter_mut().filter(|l| l.invoice.is_empty()) {
        line.invoice = invoice.clone();
    }
}

fn renew_items(sub: &mut Value, start: i64, end: i64) {
    for item in sub["items"]["data"].as_array_mut().into_iter().flatten() {
        item["current_period_start"] = json!(start);
        item["current_period_end"] = json!(end);
    }
}

/// Moves the current period (a test placing it around usage it reports): every item's bounds.
pub fn set_period(w: &mut World, sub_id: &str, start: i64, end: i64) -> Vec<Value> {
    if let Some(sub) = w.subscriptions.get_mut(sub_id) {
        renew_items(sub, start, end);
        sub["billing_cycle_anchor"] = json!(end);
    }
    vec![sub_event(w, sub_id, "customer.subscription.updated")]
}

/// Ends the current period now: the invoice for it (flat price and usage) and the next period.
pub fn close_period(w: &mut World, sub_id: &str) -> Vec<Value> {
    let Some(s) = w.subscriptions.get(sub_id).cloned() else { return vec![] };
    let now = w.now;
    let start = s["items"]["data"][0]["current_period_start"].as_i64().unwrap_or(now);
    let price = item_price(&s);
    let next = now + period(&price);
    let usage = usage_lines(w, &s, start, now);
    let mut events = vec![];
    if let Some(sub) = w.subscriptions.get_mut(sub_id) {
        renew_items(sub, now, next);
    }
    let flat = price["unit_amount"].as_i64().unwrap_or(0);
    let paid = invoice(w, sub_id, flat + usage, start, now, &mut events);
    label_usage_lines(w, sub_id);
    events.extend(set_status(w, sub_id, if paid { "active" } else { "past_due" }, "customer.subscription.updated"));
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
