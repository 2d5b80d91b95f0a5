//! One Subscription against Stripe: ensure the customer and the subscription (idempotently, and
//! found again after a crash), apply plan changes, and mirror Stripe into the status.

use super::Billing;
use super::items::item_changes;
use super::keys::{
    self, META_GENERATION, META_KEPT_PLAN, META_KEPT_UNTIL, META_ORGANIZATION, META_ORGANIZATION_UID, META_PLAN,
    META_SUBSCRIPTION, META_SUBSCRIPTION_UID,
};
use super::plan_change::{PlanChangeFacts, kept_plan, plan_change};
use super::stripe::{NewSubscription, PriceChange, RemoteInvoice, RemoteSubscription, StripeApi, StripeCallError};
use crate::api::{BillingInterval, InvoiceSummary, Organization, Plan, Subscription, SubscriptionStatus};
use jiff::Timestamp;
use kube::ResourceExt;
use std::collections::HashMap;
use std::time::Duration;

/// What the sync decided: the new status (without conditions) and the `Billing` condition.
pub struct Synced {
    pub status: SubscriptionStatus,
    pub billed: bool,
    pub reason: String,
    pub message: String,
    /// Re-check sooner than the periodic re-sync (a scheduled downgrade, the end of a grace period).
    pub recheck: Option<Duration>,
}

pub struct Input<'a> {
    pub subscription: &'a Subscription,
    pub organization: &'a Organization,
    /// The Plan named by spec.plan.
    pub plan: &'a Plan,
    /// Every Plan by name (to price the current plan when it changes).
    pub plans: &'a [(String, Plan)],
    pub now: Timestamp,
}

fn billable(plan: &Plan) -> bool {
    !plan.spec.internal && plan.spec.price.amount_cents > 0
}

/// The price per month in cents, to tell upgrades from downgrades.
fn monthly(plan: &Plan) -> i64 {
    match plan.spec.price.interval {
        BillingInterval::Month => plan.spec.price.amount_cents,
        BillingInterval::Year => plan.spec.price.amount_cents / 12,
    }
}

fn rfc3339(unix: Option<i64>) -> Option<String> {
    unix.and_then(|t| Timestamp::from_second(t).ok()).map(|t| t.to_string())
}

fn parse(ts: Option<&str>) -> Option<Timestamp> {
    ts.and_then(|t| t.parse().ok())
}

pub async fn sync(billing: &Billing, api: &StripeApi, input: Input<'_>) -> Result<Synced, StripeCallError> {
    let sub = input.subscription;
    let previous = sub.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let plan_name = sub.spec.plan.as_str();

    if !billable(input.plan) {
        return unbilled(billing, api, input, status).await;
    }
    let price = billing.catalog.price_for(api, plan_name, input.plan).await?;
    let metered: Vec<String> = billing
        .catalog
        .metered_prices_for(api, &billing.settings.meter_prefix, plan_name, input.plan)
        .await?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let customer = ensure_customer(api, sub, input.organization, &previous).await?;
    status.stripe_customer_id = Some(customer.clone());

    let generation = sub.metadata.generation.unwrap_or(1);
    let uid = sub.uid().unwrap_or_default();
    let mut remote = match &previous.stripe_subscription_id {
        Some(id) => Some(api.retrieve_subscription(id).await?),
        None => None,
    };
    let resubscribe = remote.as_ref().is_none_or(|r| {
        let created_at = r.metadata.get(META_GENERATION).and_then(|g| g.parse::<i64>().ok()).unwrap_or(0);
        r.ended() && generation > created_at
    });
    if resubscribe {
        // After a crash between the call and the status write, the subscription exists already.
        let (found, all) = api.find_subscription(&customer, &uid).await?;
        remote = Some(match found {
            Some(found) => api.retrieve_subscription(&found.id).await?,
            None => {
                let had_trial = all.iter().any(|s| s.trial_start.is_some());
                let trial_days = u32::try_from(input.plan.spec.trial_days).unwrap_or(0);
                let trial = (sub.spec.trial && trial_days > 0 && !had_trial).then_some(trial_days);
                let metadata = subscription_metadata(sub, input.organization, plan_name, generation);
                let new = NewSubscription {
                    customer: &customer,
                    price: &price,
                    metered: &metered,
                    trial_days: trial,
                    metadata,
                    idempotency_key: keys::subscription(&uid, generation),
                };
                let created = api.create_subscription(new).await?;
                tracing::info!(subscription = %sub.name_any(), stripe_subscription = %created.id, status = %created.status, "Stripe subscription created");
                created
            }
        });
    }
    let Some(mut remote) = remote else {
        return Err(StripeCallError::Failed { operation: "sync", message: "no subscription after create".into() });
    };

    // A cancellation left over from a move to an unbilled plan: spec.plan is billed again.
    if remote.cancel_at_period_end && !remote.ended() {
        remote = api.cancel_at_period_end(&remote.id, false).await?;
        tracing::info!(subscription = %sub.name_any(), "Stripe subscription no longer ends at the period end");
    }

    // Plan change: the live subscription bills another price than spec.plan's.
    if !remote.ended() && remote.price_id.as_deref() != Some(price.as_str()) {
        let kept = kept_plan(&remote, input.now);
        let billed_now = remote.metadata.get(META_PLAN).cloned();
        // Compared with the plan in effect: during a waiting downgrade, that is the plan paid for.
        let current_plan =
            kept.as_ref().map(|(p, _)| p.clone()).or(billed_now).or(previous.plan.clone()).unwrap_or_default();
        let current_monthly =
            input.plans.iter().find(|(n, _)| *n == current_plan).map(|(_, p)| monthly(p)).unwrap_or(0);
        let change = plan_change(PlanChangeFacts {
            trialing: remote.status == "trialing",
            back_to_kept_plan: kept.as_ref().is_some_and(|(p, _)| p == plan_name),
            upgrade: monthly(input.plan) >= current_monthly,
            downgrade_at_period_end: billing.settings.downgrade_at_period_end,
            keep_until: kept.as_ref().map(|(_, at)| at.as_second()).or(remote.current_period_end),
        });
        let mut metadata = subscription_metadata(sub, input.organization, plan_name, generation);
        metadata.remove(META_GENERATION);
        // Stripe deletes a metadata key set to "".
        let (kept_plan, kept_until) = match change.keep_until {
            Some(until) => (current_plan.clone(), until.to_string()),
            None => (String::new(), String::new()),
        };
        metadata.insert(META_KEPT_PLAN.into(), kept_plan);
        metadata.insert(META_KEPT_UNTIL.into(), kept_until);
        let changes = item_changes(&remote.items, &price, &metered);
        let request = PriceChange {
            subscription: &remote.id,
            changes: &changes,
            proration: change.proration,
            metadata,
            idempotency_key: keys::plan_change(&uid, generation),
        };
        remote = api.change_price(request).await?;
        tracing::info!(subscription = %sub.name_any(), from = %current_plan, to = %plan_name, proration = ?change.proration, "Stripe subscription price changed");
    }

    // The same plan, but not its metered items: a subscription from before metering, or a Plan whose
    // allowance or unit price changed (a new Stripe price). Usage so far stays on Stripe's meter.
    let changes = item_changes(&remote.items, &price, &metered);
    if !remote.ended() && !changes.is_empty() {
        let request = PriceChange {
            subscription: &remote.id,
            changes: &changes,
            proration: super::stripe::Proration::None,
            metadata: HashMap::new(),
            idempotency_key: keys::items_change(&uid, generation, &metered),
        };
        remote = api.change_price(request).await?;
        tracing::info!(subscription = %sub.name_any(), metered = ?metered, "Stripe subscription's metered items updated");
    }

    // The plan in effect: Stripe's, unless a downgrade waits for the period end.
    let billed_plan = remote.metadata.get(META_PLAN).cloned().unwrap_or_else(|| plan_name.to_string());
    match kept_plan(&remote, input.now).filter(|(keep, _)| *keep != billed_plan) {
        Some((keep, at)) => {
            status.plan = Some(keep);
            status.scheduled_plan = Some(billed_plan);
            status.scheduled_at = Some(at.to_string());
        }
        None => {
            status.plan = Some(billed_plan);
            status.scheduled_plan = None;
            status.scheduled_at = None;
        }
    }
    mirror(&mut status, &remote, input.now);
    record(billing, input.organization, &previous, &status, &remote, input.plan).await;
    Ok(describe(status, &remote, billing, input.now))
}

/// spec.plan is not billed (free, internal): no Stripe subscription. A live one is cancelled —
/// at the period end when downgrades wait for it, the plan staying until then.
async fn unbilled(
    billing: &Billing,
    api: &StripeApi,
    input: Input<'_>,
    mut status: SubscriptionStatus,
) -> Result<Synced, StripeCallError> {
    let plan_name = input.subscription.spec.plan.clone();
    let live = match &status.stripe_subscription_id {
        Some(id) => Some(api.retrieve_subscription(id).await?).filter(|r| !r.ended()),
        None => None,
    };
    if let Some(mut remote) = live {
        let paid_period = matches!(remote.status.as_str(), "active" | "past_due");
        if billing.settings.downgrade_at_period_end && paid_period {
            if !remote.cancel_at_period_end {
                remote = api.cancel_at_period_end(&remote.id, true).await?;
            }
            status.scheduled_plan = Some(plan_name.clone());
            status.scheduled_at = rfc3339(remote.current_period_end);
        } else {
            remote = api.cancel_subscription(&remote.id).await?;
        }
        if !remote.ended() {
            mirror(&mut status, &remote, input.now);
            let message = format!(
                "plan {plan_name} is not billed; the Stripe subscription {} ends at the end of the paid period ({}), plan {} stays until then",
                remote.id,
                status.scheduled_at.clone().unwrap_or_default(),
                status.plan.clone().unwrap_or_default()
            );
            let recheck = parse(status.scheduled_at.as_deref()).map(|at| until(input.now, at));
            return Ok(Synced { status, billed: true, reason: "CancelsAtPeriodEnd".into(), message, recheck });
        }
    }
    status.stripe_state = None;
    status.plan = None;
    status.scheduled_plan = None;
    status.scheduled_at = None;
    status.past_due_since = None;
    status.trial_end = None;
    status.current_period_start = None;
    status.current_period_end = None;
    let why = if input.plan.spec.internal { "internal, never billed" } else { "free" };
    let message = format!("plan {plan_name} is {why}: no Stripe subscription");
    Ok(Synced { status, billed: true, reason: "NotBilled".into(), message, recheck: None })
}

async fn ensure_customer(
    api: &StripeApi,
    sub: &Subscription,
    org: &Organization,
    previous: &SubscriptionStatus,
) -> Result<String, StripeCallError> {
    if let Some(id) = &previous.stripe_customer_id {
        return Ok(id.clone());
    }
    let org_uid = org.uid().unwrap_or_default();
    if let Some(found) = api.find_customer(&sub.spec.billing_email, &org_uid).await? {
        return Ok(found);
    }
    let metadata: HashMap<String, String> =
        [(META_ORGANIZATION.to_string(), org.name_any()), (META_ORGANIZATION_UID.to_string(), org_uid.clone())].into();
    let name = org.spec.display_name.clone();
    let id = api.create_customer(&sub.spec.billing_email, &name, metadata, &keys::customer(&org_uid)).await?;
    tracing::info!(organization = %org.name_any(), customer = %id, "Stripe customer created");
    Ok(id)
}

fn subscription_metadata(
    sub: &Subscription,
    org: &Organization,
    plan: &str,
    generation: i64,
) -> HashMap<String, String> {
    [
        (META_ORGANIZATION.to_string(), org.name_any()),
        (META_ORGANIZATION_UID.to_string(), org.uid().unwrap_or_default()),
        (META_SUBSCRIPTION.to_string(), sub.name_any()),
        (META_SUBSCRIPTION_UID.to_string(), sub.uid().unwrap_or_default()),
        (META_PLAN.to_string(), plan.to_string()),
        (META_GENERATION.to_string(), generation.to_string()),
    ]
    .into()
}

/// Copies Stripe's view into the status.
pub fn mirror(status: &mut SubscriptionStatus, remote: &RemoteSubscription, now: Timestamp) {
    status.stripe_customer_id = Some(remote.customer.clone());
    status.stripe_subscription_id = Some(remote.id.clone());
    status.stripe_state = Some(remote.status.clone());
    status.trial_end = rfc3339(remote.trial_end);
    status.current_period_start = rfc3339(remote.current_period_start);
    status.current_period_end = rfc3339(remote.current_period_end);
    if let Some(invoice) = &remote.latest_invoice {
        status.latest_invoice = Some(summary(invoice));
    }
    status.past_due_since = match remote.status.as_str() {
        "past_due" => status.past_due_since.clone().or_else(|| Some(now.to_string())),
        _ => None,
    };
}

fn summary(invoice: &RemoteInvoice) -> InvoiceSummary {
    InvoiceSummary {
        id: invoice.id.clone(),
        status: invoice.status.clone(),
        amount_cents: invoice.amount_due,
        currency: invoice.currency.clone(),
        hosted_url: invoice.hosted_url.clone(),
    }
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    let secs = at.duration_since(now).as_secs_f64().max(1.0);
    Duration::from_secs_f64(secs + 1.0)
}

/// The `Billing` condition and when to look again.
fn describe(status: SubscriptionStatus, remote: &RemoteSubscription, billing: &Billing, now: Timestamp) -> Synced {
    let plan = status.plan.clone().unwrap_or_default();
    let invoice_url = status
        .latest_invoice
        .as_ref()
        .and_then(|i| i.hosted_url.clone())
        .map(|u| format!(" at {u}"))
        .unwrap_or_default();
    let mut recheck = None;
    let (billed, reason, mut message) = match remote.status.as_str() {
        "trialing" => (
            true,
            "Trialing",
            format!("plan {plan} on trial until {}; billing starts then", status.trial_end.clone().unwrap_or_default()),
        ),
        "active" => (
            true,
            "Active",
            format!(
                "plan {plan} billed; current period ends {}",
                status.current_period_end.clone().unwrap_or_default()
            ),
        ),
        "past_due" => {
            let since = parse(status.past_due_since.as_deref()).unwrap_or(now);
            let end = since.saturating_add(billing.settings.grace()).unwrap_or(now);
            recheck = Some(until(now, end));
            (
                false,
                "PastDue",
                format!(
                    "payment failed: pay the open invoice{invoice_url} before {end} or the organization is suspended"
                ),
            )
        }
        "unpaid" | "canceled" | "paused" => (
            false,
            "Lapsed",
            format!(
                "Stripe subscription is {}: the organization falls back to the default plan (suspended if its usage does not fit); change the Subscription's spec to subscribe again",
                remote.status
            ),
        ),
        other => (
            false,
            "PaymentRequired",
            format!("Stripe subscription is {other}: the first payment is required{invoice_url}"),
        ),
    };
    if let (Some(next), Some(at)) = (&status.scheduled_plan, &status.scheduled_at) {
        message.push_str(&format!("; downgrade to {next} at {at}"));
        if let Some(at) = parse(Some(at)) {
            let wait = until(now, at);
            recheck = Some(recheck.map_or(wait, |r: Duration| r.min(wait)));
        }
    }
    Synced { status, billed, reason: reason.into(), message, recheck }
}

/// History for dashboards: the invoice, and a subscription change when plan or state moved.
async fn record(
    billing: &Billing,
    org: &Organization,
    previous: &SubscriptionStatus,
    status: &SubscriptionStatus,
    remote: &RemoteSubscription,
    plan: &Plan,
) {
    let Some(ledger) = &billing.ledger else { return };
    let at = |t: i64| Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH);
    if let Some(invoice) = &remote.latest_invoice {
        let row = crate::ledger::Invoice {
            stripe_invoice_id: invoice.id.clone(),
            organization: org.name_any(),
            number: invoice.number.clone(),
            status: invoice.status.clone(),
            currency: invoice.currency.clone(),
            amount_due_cents: invoice.amount_due,
            amount_paid_cents: invoice.amount_paid,
            period_start: at(invoice.period_start),
            period_end: at(invoice.period_end),
            created_at: at(invoice.created),
            hosted_url: invoice.hosted_url.clone(),
        };
        if let Err(err) = ledger.upsert_invoice(&row).await {
            tracing::warn!(error = %err, invoice = %invoice.id, "mirroring the invoice to the ledger failed");
        }
    }
    if (previous.plan.as_ref(), previous.stripe_state.as_ref()) != (status.plan.as_ref(), status.stripe_state.as_ref())
    {
        let plan_name = status.plan.clone().unwrap_or_default();
        let state = status.stripe_state.clone().unwrap_or_default();
        let change = crate::ledger::SubscriptionChange {
            id: format!("{}:{plan_name}:{state}:{}", remote.id, remote.current_period_end.unwrap_or_default()),
            organization: org.name_any(),
            at: Timestamp::now(),
            plan: plan_name,
            state,
            price_cents: plan.spec.price.amount_cents,
            currency: plan.spec.price.currency.clone(),
            billing_interval: keys::interval(plan.spec.price.interval).into(),
            reason: "stripe".into(),
        };
        if let Err(err) = ledger.record_subscription_change(&change).await {
            tracing::warn!(error = %err, "recording the subscription change failed");
        }
    }
}

/// Deletion: cancel the Stripe subscription at once (found by id, or by metadata after a crash).
pub async fn cancel(
    api: &StripeApi,
    sub: &Subscription,
    org_uid: Option<&str>,
) -> Result<Option<String>, StripeCallError> {
    let status = sub.status.clone().unwrap_or_default();
    let uid = sub.uid().unwrap_or_default();
    let mut target = match &status.stripe_subscription_id {
        Some(id) => match api.retrieve_subscription(id).await {
            Ok(remote) => Some(remote),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(err),
        },
        None => None,
    };
    if target.as_ref().is_none_or(RemoteSubscription::ended) {
        let customer = match (&status.stripe_customer_id, org_uid) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(org_uid)) => api.find_customer(&sub.spec.billing_email, org_uid).await?,
            (None, None) => None,
        };
        if let Some(customer) = customer {
            target = api.find_subscription(&customer, &uid).await?.0.or(target);
        }
    }
    match target {
        Some(remote) if !remote.ended() => {
            api.cancel_subscription(&remote.id).await?;
            Ok(Some(remote.id))
        }
        _ => Ok(None),
    }
}
