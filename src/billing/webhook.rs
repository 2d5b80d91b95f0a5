//! `POST /stripe/webhook`: verify the signature on the raw body, store the event id in the ledger
//! (idempotent: a redelivery is acknowledged and dropped), answer at once, and let the Subscription
//! controller re-read the Stripe object. Events are hints, so their order does not matter.

use super::Billing;
use super::keys::META_SUBSCRIPTION_UID;
use super::signature;
use crate::controller::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::sync::{Arc, OnceLock};

pub const PATH: &str = "/stripe/webhook";

/// The events the operator acts on; enable these on the Stripe endpoint.
pub const EVENTS: [&str; 7] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.finalized",
];

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: EventObject,
}

/// The fields of a subscription or invoice that say which Subscription it concerns.
#[derive(Deserialize, Default)]
struct EventObject {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    customer: Option<serde_json::Value>,
    #[serde(default)]
    subscription: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<std::collections::HashMap<String, String>>,
    #[serde(default)]
    parent: Option<InvoiceParent>,
}

#[derive(Deserialize, Default)]
struct InvoiceParent {
    #[serde(default)]
    subscription_details: Option<SubscriptionDetails>,
}

#[derive(Deserialize, Default)]
struct SubscriptionDetails {
    #[serde(default)]
    subscription: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<std::collections::HashMap<String, String>>,
}

/// An id that may come expanded (`{"id": ...}`) or not.
fn id_of(value: &Option<serde_json::Value>) -> Option<String> {
    match value.as_ref()? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("id").and_then(|v| v.as_str()).map(str::to_string),
        _ => None,
    }
}

struct Intake {
    billing: Arc<Billing>,
    context: Arc<OnceLock<Arc<Context>>>,
}

pub fn router(billing: Arc<Billing>, context: Arc<OnceLock<Arc<Context>>>) -> axum::Router {
    axum::Router::new().route(PATH, axum::routing::post(intake)).with_state(Arc::new(Intake { billing, context }))
}

async fn intake(State(state): State<Arc<Intake>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let Some(secret) = state.billing.webhook_secret() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "billing or its webhook secret is not configured".into());
    };
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Err(err) = signature::verify(header, &body, secret, jiff::Timestamp::now().as_second()) {
        tracing::warn!(error = %err, "Stripe webhook refused");
        return (StatusCode::BAD_REQUEST, format!("signature: {err}"));
    }
    let event: Envelope = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("not a Stripe event: {err}")),
    };
    if !EVENTS.contains(&event.type_.as_str()) {
        return (StatusCode::OK, "ignored: event type not handled".into());
    }
    let target = state.context.get().and_then(|ctx| subscription_for(ctx, &event.data.object));
    let organization = target.as_ref().map(|(_, org)| org.clone()).unwrap_or_default();
    if let Some(ledger) = &state.billing.ledger {
        match ledger.mark_stripe_event_processed(&event.id, &organization, &event.type_).await {
            Ok(true) => {}
            Ok(false) => return (StatusCode::OK, "duplicate: already received".into()),
            // Stripe retries a failed delivery; nothing was stored.
            Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("ledger: {err}")),
        }
    }
    let Some((subscription, _)) = target else {
        tracing::debug!(event = %event.id, kind = %event.type_, "Stripe event about an object we did not create; ignored");
        return (StatusCode::OK, "ignored: not an object of this operator".into());
    };
    let triggered = state.billing.trigger(&subscription);
    tracing::info!(event = %event.id, kind = %event.type_, %subscription, triggered, "Stripe event received");
    (StatusCode::OK, "accepted".into())
}

/// The cached Subscription (name, organization) an event object concerns.
fn subscription_for(ctx: &Context, object: &EventObject) -> Option<(String, String)> {
    let details = object.parent.as_ref().and_then(|p| p.subscription_details.as_ref());
    let stripe_subscription = id_of(&object.subscription).or_else(|| details.and_then(|d| id_of(&d.subscription)));
    let uid = object
        .metadata
        .as_ref()
        .and_then(|m| m.get(META_SUBSCRIPTION_UID))
        .or_else(|| details.and_then(|d| d.metadata.as_ref()).and_then(|m| m.get(META_SUBSCRIPTION_UID)))
        .cloned();
    let customer = id_of(&object.customer);
    let ids: Vec<&String> = object.id.iter().chain(stripe_subscription.iter()).collect();
    let subscriptions = ctx.subscriptions.state();
    let matches = |by_customer: bool| {
        subscriptions.iter().find_map(|guard| {
            let sub = guard.0.as_ref().ok()?;
            let status = sub.status.as_ref();
            let by_uid = uid.is_some() && sub.metadata.uid == uid;
            let by_id = status.and_then(|s| s.stripe_subscription_id.as_ref()).is_some_and(|id| ids.contains(&id));
            let by_cus = by_customer
                && customer.is_some()
                && status.and_then(|s| s.stripe_customer_id.as_ref()) == customer.as_ref();
            (by_uid || by_id || by_cus)
                .then(|| (sub.metadata.name.clone().unwrap_or_default(), sub.spec.organization.clone()))
        })
    };
    matches(false).or_else(|| matches(true))
}
