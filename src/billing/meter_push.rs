//! Pushing one billing period's usage to Stripe's meters and comparing it with Stripe's totals once final:
//! the I/O half of `metering::push` and `metering::reconcile`, driven by the leader's pusher
//! (`controller::meter_pusher`) and by the push benchmark.
//!
//! Exactly once: a round of pushes is recorded in the ledger (pending) before any is sent, and marked sent
//! after Stripe's answer. A pending push is re-sent as recorded with its identifier, so a crash between the
//! call and the mark costs nothing: Stripe drops the copy. Stripe keeps identifiers for at least 24 hours; a
//! push still pending after 20 hours is not re-sent blindly but settled against Stripe's own total first.
//! No new round starts for an (organization, meter) while one of its pushes is pending, so at most one push
//! is ever in doubt.

use super::Billing;
use super::catalog::event_name;
use super::items::metered_prices;
use super::meters_api::MeterEvent;
use super::stripe::StripeApi;
use crate::api::Plan;
use crate::ledger::{Ledger, LedgerBillingPeriod, MeterPush, PushState};
use crate::metering::reconcile::{MeterReconciliation, summary};
use crate::metering::units::{billing_micros, format_micros};
use crate::metering::window::window_stamp;
use crate::metering::{Meter, Period, pushes_due};
use crate::metrics::Metrics;
use jiff::{SignedDuration, Timestamp};

/// Pending pushes older than this are settled against Stripe's total before any resend (Stripe's
/// identifier window is at least 24 hours).
const SETTLE_AFTER: SignedDuration = SignedDuration::from_hours(20);

/// What pushing needs.
pub struct Pushing<'a> {
    pub billing: &'a Billing,
    pub api: &'a StripeApi,
    pub ledger: &'a Ledger,
    pub metrics: &'a Metrics,
}

/// Stripe or the ledger failed: the period is pushed again at the next pass.
pub type PushFailure = Box<dyn std::error::Error + Send + Sync>;

/// Pushes one period's billed meters and, once it is final and nothing is pending, compares it with Stripe;
/// `true` when it was compared now (its Subscription's `UsageReconciled` changes).
pub async fn push_period(
    ctx: &Pushing<'_>,
    billing_period: &LedgerBillingPeriod,
    plan: &Plan,
    grace: SignedDuration,
    now: Timestamp,
) -> Result<bool, PushFailure> {
    let (api, ledger) = (ctx.api, ctx.ledger);
    let period = billing_period.period()?;
    let meters: Vec<Meter> = metered_prices(&billing_period.plan, plan).into_iter().map(|p| p.meter).collect();
    let mut settled = true;
    for &meter in &meters {
        settled &= push_meter(ctx, api, ledger, billing_period, &period, meter, now).await?;
    }
    // Late usage is taken until the grace window after the period closes; then the period is final.
    let final_at = period.end.saturating_add(grace).unwrap_or(period.end);
    if now >= final_at && settled {
        reconcile(ctx, api, ledger, billing_period, &period, &meters, now).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Pushes what is due for one meter of one period; `false` while a push is still pending.
async fn push_meter(
    ctx: &Pushing<'_>,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    meter: Meter,
    now: Timestamp,
) -> Result<bool, PushFailure> {
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
    ctx: &Pushing<'_>,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    event: &str,
    pending: &MeterPush,
    pushed: &[MeterPush],
    now: Timestamp,
) -> Result<bool, PushFailure> {
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
    ctx: &Pushing<'_>,
    api: &StripeApi,
    ledger: &Ledger,
    billing_period: &LedgerBillingPeriod,
    period: &Period,
    meters: &[Meter],
    now: Timestamp,
) -> Result<(), PushFailure> {
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
    Ok(())
}

fn meter_labels(meter: Meter, result: &str) -> crate::metrics::MeterPushLabels {
    crate::metrics::MeterPushLabels { meter: meter.to_string(), result: result.into() }
}
