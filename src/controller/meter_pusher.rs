//! The leader's meter pusher: every `--meter-push-seconds`, each billed organization's closed hourly usage
//! windows go to Stripe's meters, one meter event per (organization, meter, window) plus corrections for
//! late usage (`metering::push`); at period close, the period's totals are compared with Stripe's
//! (`metering::reconcile`) and the Subscription shows the result.
//!
//! Exactly once: a round of pushes is recorded in the ledger (pending) before any is sent, and marked sent
//! after Stripe's answer. A pending push is re-sent as recorded with its identifier, so a crash between the
//! call and the mark costs nothing: Stripe drops the copy. Stripe keeps identifiers for at least 24 hours; a
//! push still pending after 20 hours is not re-sent blindly but settled against Stripe's own total first.
//! No new round starts for an (organization, meter) while one of its pushes is pending, so at most one push
//! is ever in doubt.

use super::context::Context;
use crate::api::Subscription;
use crate::billing::catalog::event_name;
use crate::billing::items::metered_prices;
use crate::billing::meters_api::MeterEvent;
use crate::billing::stripe::StripeApi;
use crate::ledger::{Ledger, LedgerBillingPeriod, MeterPush, PushState};
use crate::metering::reconcile::{MeterReconciliation, summary};
use crate::metering::units::{billing_micros, format_micros};
use crate::metering::window::window_stamp;
use crate::metering::{Meter, Period, pushes_due};
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use std::sync::Arc;

/// Pending pushes older than this are settled against Stripe's total before any resend (Stripe's
/// identifier window is at least 24 hours).
const SETTLE_AFTER: SignedDuration = SignedDuration::from_hours(20);

/// Stripe subscription states whose period's usage is billed.
const BILLED_STATES: [&str; 3] = ["trialing", "active", "past_due"];

/// Runs until the task is dropped (the controllers stop when the lease is lost).
pub async fn run(ctx: Arc<Context>, grace: SignedDuration) {
    let (Some(ledger), Some(api)) = (ctx.ledger.clone(), ctx.billing.api().cloned()) else {
        tracing::info!("meter pusher off: it needs billing through Stripe and a ledger");
        return;
    };
    let every = ctx.billing.settings.meter_push_every();
    tracing::info!(every_seconds = every.as_secs_f64(), "meter pusher started");
    loop {
        if let Err(err) = pass(&ctx, &api, &ledger, grace, Timestamp::now()).await {
            tracing::warn!(error = %err, "meter push pass failed; retrying at the next pass");
        }
        tokio::time::sleep(every).await;
    }
}

type PassResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One pass: record the periods open now, push every unreconciled period's billed meters, reconcile those
/// whose grace window has closed.
pub async fn pass(
    ctx: &Context,
    api: &StripeApi,
    ledger: &Ledger,
    grace: SignedDuration,
    now: Timestamp,
) -> PassResult {
    for sub in ctx.subscriptions.state().iter().filter_map(|g| g.0.as_ref().ok()) {
        if let Some((period, customer, plan)) = open_period(sub) {
            ledger.upsert_billing_period(&sub.spec.organization, &period, &customer, &plan).await?;
        }
    }
    for billing_period in ledger.unreconciled_billing_periods().await? {
        let org = billing_period.organization.clone();
        if let Err(err) = period_pass(ctx, api, ledger, &billing_period, grace, now).await {
            ctx.metrics.meter_push_failures.inc();
            tracing::warn!(organization = %org, error = %err, "pushing usage to Stripe failed; retrying at the next pass");
        }
    }
    Ok(())
}

/// The Stripe period a Subscription is billed in now, its customer and the plan in effect.
fn open_period(sub: &Subscription) -> Option<(Period, String, String)> {
    let status = sub.status.as_ref()?;
    if !BILLED_STATES.contains(&status.stripe_state.as_deref()?) {
        return None;
    }
    let start: Timestamp = status.current_period_start.as_deref()?.parse().ok()?;
    let end: Timestamp = status.current_period_end.as_deref()?.parse().ok()?;
    let period = Period::new(start, end).ok()?;
    Some((period, status.stripe_customer_id.clone()?, status.plan.clone().unwrap_or_else(|| sub.spec.plan.clone())))
}

async fn period_pass(
    ctx: &Context,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    grace: SignedDuration,
    now: Timestamp,
) -> PassResult {
    let period = billing_period.period()?;
    let org = billing_period.organization.as_str();
    let Some(plan) = ctx.plan(&billing_period.plan) else {
        tracing::warn!(organization = %org, plan = %billing_period.plan, "the plan of a billing period is gone: its usage is not pushed");
        return Ok(());
    };
    let meters: Vec<Meter> = metered_prices(&billing_period.plan, &plan).into_iter().map(|p| p.meter).collect();
    let mut settled = true;
    for &meter in &meters {
        settled &= push_meter(ctx, api, ledger, billing_period, &period, meter, now).await?;
    }
    // Late usage is taken until the grace window after the period closes; then the period is final.
    let final_at = period.end.saturating_add(grace).unwrap_or(period.end);
    if now >= final_at && settled {
        reconcile(ctx, api, ledger, billing_period, &period, &meters, now).await?;
    }
    Ok(())
}

/// Pushes what is due for one meter of one period; `false` while a push is still pending.
async fn push_meter(
    ctx: &Context,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    meter: Meter,
    now: Timestamp,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let org = billing_period.organization.as_str();
    let prefix = ctx.billing.settings.meter_prefix.as_str();
    let event = event_name(prefix, meter);
    let pushed = ledger.meter_pushes(org, meter, period).await?;
    for pending in pushed.iter().filter(|p| p.state == PushState::Pending) {
        if !settle_pending(ctx, api, ledger, billing_period, period, &event, pending, &pushed, now).await? {
            return Ok(false);
        }
    }
    let pushed = ledger.meter_pushes(org, meter, period).await?;
    let (from, to) = period.window_starts();
    let windows: Vec<(Timestamp, i64)> =
        ledger.usage_windows(org, meter, from, to).await?.into_iter().map(|w| (w.start, w.quantity)).collect();
    let history: Vec<_> = pushed.iter().map(MeterPush::pushed).collect();
    let due = pushes_due(prefix, org, meter, period, now, &windows, &history)?;
    if due.is_empty() {
        return Ok(true);
    }
    if !ledger.record_meter_pushes(org, meter, &due).await? {
        // Another pusher (a leader change) recorded first: recompute next pass.
        return Ok(false);
    }
    for push in &due {
        if push.needs_sending() {
            let event = MeterEvent {
                event_name: &event,
                customer: &billing_period.customer,
                value: &push.value,
                identifier: &push.identifier,
                timestamp: push.timestamp.as_second(),
            };
            api.send_meter_event(&event).await?;
            ctx.metrics.meter_pushes.get_or_create(&meter_labels(meter, "sent")).inc();
        } else {
            ctx.metrics.meter_pushes.get_or_create(&meter_labels(meter, "zero")).inc();
        }
        ledger.mark_meter_push_sent(&push.identifier, Timestamp::now()).await?;
        tracing::debug!(organization = %org, %meter, identifier = %push.identifier, value = %push.value, "meter event pushed");
    }
    Ok(true)
}

/// A push recorded but not acknowledged: re-sent as recorded, or — past Stripe's identifier window —
/// marked sent when Stripe's total shows it arrived. `false`: still pending.
#[allow(clippy::too_many_arguments)]
async fn settle_pending(
    ctx: &Context,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    event: &str,
    pending: &MeterPush,
    pushed: &[MeterPush],
    now: Timestamp,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let meter = pending.meter;
    if pending.micros == 0 {
        ledger.mark_meter_push_sent(&pending.identifier, now).await?;
        return Ok(true);
    }
    if now.duration_since(pending.created_at) > SETTLE_AFTER {
        let meter_id = ctx.billing.catalog.meter_id(api, &ctx.billing.settings.meter_prefix, meter).await?;
        let (start, end) = summary_range(period);
        let stripe = api.meter_total(&meter_id, &billing_period.customer, start, end).await?;
        let stripe_micros = (stripe * 1e6).round() as i64;
        let sent: i64 = pushed.iter().filter(|p| p.state == PushState::Sent).map(|p| p.micros).sum();
        if stripe_micros >= sent + pending.micros {
            ctx.metrics.meter_pushes.get_or_create(&meter_labels(meter, "settled")).inc();
            tracing::info!(identifier = %pending.identifier, "a push pending past Stripe's identifier window had arrived: marked sent");
            ledger.mark_meter_push_sent(&pending.identifier, now).await?;
            return Ok(true);
        }
    }
    let value = format_micros(pending.micros.into());
    let stamp = window_stamp(pending.window_start).as_second();
    let event = MeterEvent {
        event_name: event,
        customer: &billing_period.customer,
        value: &value,
        identifier: &pending.identifier,
        timestamp: stamp,
    };
    api.send_meter_event(&event).await?;
    ctx.metrics.meter_pushes.get_or_create(&meter_labels(meter, "resent")).inc();
    tracing::info!(identifier = %pending.identifier, "a pending meter event re-sent with its identifier");
    ledger.mark_meter_push_sent(&pending.identifier, Timestamp::now()).await?;
    Ok(true)
}

/// Stripe's summaries take minute-aligned bounds: the period's, widened to whole minutes.
fn summary_range(period: &Period) -> (i64, i64) {
    let start = period.start.as_second().div_euclid(60) * 60;
    let end = (period.end.as_second() + 59).div_euclid(60) * 60;
    (start, end)
}

async fn reconcile(
    ctx: &Context,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    meters: &[Meter],
    now: Timestamp,
) -> PassResult {
    let org = billing_period.organization.as_str();
    let totals = ledger.usage_totals(org, period).await?;
    let mut compared = Vec::new();
    for &meter in meters {
        let base = totals.get(&meter).copied().unwrap_or(0);
        let ledger_micros = i64::try_from(billing_micros(meter, base.into(), period.seconds())).unwrap_or(i64::MAX);
        let sent: i64 = ledger
            .meter_pushes(org, meter, period)
            .await?
            .iter()
            .filter(|p| p.state == PushState::Sent)
            .map(|p| p.micros)
            .sum();
        let meter_id = ctx.billing.catalog.meter_id(api, &ctx.billing.settings.meter_prefix, meter).await?;
        let (start, end) = summary_range(period);
        let stripe = api.meter_total(&meter_id, &billing_period.customer, start, end).await?;
        compared.push(MeterReconciliation::new(meter, ledger_micros, sent, stripe));
    }
    let (matched, message) = summary(&compared);
    ledger.record_reconciliation(org, period.start, matched, &compared, now).await?;
    let result = if matched { "matched" } else { "mismatched" };
    ctx.metrics.meter_reconciliations.get_or_create(&crate::metrics::ResultLabels { result: result.into() }).inc();
    if matched {
        tracing::info!(organization = %org, period_start = %period.start, %message, "period reconciled with Stripe");
    } else {
        tracing::warn!(organization = %org, period_start = %period.start, %message, "period differs from Stripe");
    }
    for sub in ctx.subscriptions_of(org) {
        ctx.billing.trigger(&sub.name_any());
    }
    Ok(())
}

fn meter_labels(meter: Meter, result: &str) -> crate::metrics::MeterPushLabels {
    crate::metrics::MeterPushLabels { meter: meter.to_string(), result: result.into() }
}
