//! The leader's meter pusher: every `--meter-push-seconds`, each billed organization's closed hourly usage
//! windows go to Stripe's meters (`billing::meter_push`), a few organizations at a time; at period close the
//! period is compared with Stripe and its Subscription re-reconciled to show the result.

use super::context::Context;
use crate::api::Subscription;
use crate::billing::meter_push::{Pushing, push_period};
use crate::billing::stripe::StripeApi;
use crate::ledger::Ledger;
use crate::metering::Period;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use std::sync::Arc;

/// Stripe subscription states whose period's usage is billed.
const BILLED_STATES: [&str; 3] = ["trialing", "active", "past_due"];

/// Periods pushed at once: Stripe answers a meter event in ~100-300 ms, so one at a time would take an
/// hour for about 10,000 meter events; a window's pushes stay in order within its period.
const CONCURRENT_PERIODS: usize = 16;

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
    let pushing = Pushing { billing: &ctx.billing, api, ledger, metrics: &ctx.metrics };
    let periods = ledger.unreconciled_billing_periods().await?;
    futures::stream::iter(periods)
        .for_each_concurrent(CONCURRENT_PERIODS, |billing_period| {
            let pushing = &pushing;
            async move {
                let org = billing_period.organization.clone();
                let Some(plan) = ctx.plan(&billing_period.plan) else {
                    tracing::warn!(organization = %org, plan = %billing_period.plan, "the plan of a billing period is gone: its usage is not pushed");
                    return;
                };
                match push_period(pushing, &billing_period, &plan, grace, now).await {
                    Ok(true) => {
                        for sub in ctx.subscriptions_of(&org) {
                            ctx.billing.trigger(&sub.name_any());
                        }
                    }
                    Ok(false) => {}
                    Err(err) => {
                        ctx.metrics.meter_push_failures.inc();
                        tracing::warn!(organization = %org, error = %err, "pushing usage to Stripe failed; retrying at the next pass");
                    }
                }
            }
        })
        .await;
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
