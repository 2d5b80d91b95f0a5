//! The Subscription reconciler: whether its organization and plan exist, then billing through
//! Stripe (`billing::sync`) with the status mirroring Stripe, or a `Billing` condition that says
//! why nothing is billed. Deletion cancels the Stripe subscription (finalizer).

use super::apply::apply_status;
use super::conditions;
use super::context::Context;
use crate::api::{CONDITION_READY, Subscription, SubscriptionStatus};
use crate::billing::sync;
use crate::error::{Error, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;

/// Cancels the Stripe subscription before the Subscription goes.
pub const SUBSCRIPTION_FINALIZER: &str = "atlantiplex.io/subscription-billing";

pub async fn reconcile(guard: Arc<DeserializeGuard<Subscription>>, ctx: Arc<Context>) -> Result<Action> {
    let Some(sub) = super::readable(&guard, &ctx).await else { return Ok(Action::await_change()) };
    let api: Api<Subscription> = Api::all(ctx.client.clone());
    if ctx.billing.api().is_none() {
        if sub.metadata.deletion_timestamp.is_some() && sub.finalizers().iter().any(|f| f == SUBSCRIPTION_FINALIZER) {
            // Billing was switched off: the Stripe subscription cannot be cancelled from here.
            let note = format!(
                "billing is disabled, so Stripe subscription {} was not cancelled: cancel it in the Stripe dashboard",
                sub.status.as_ref().and_then(|s| s.stripe_subscription_id.clone()).unwrap_or_else(|| "(none)".into())
            );
            super::publish(&ctx, &sub.object_ref(&()), EventType::Warning, "NotCancelled", "Delete", note).await;
            let keep: Vec<String> = sub.finalizers().iter().filter(|f| *f != SUBSCRIPTION_FINALIZER).cloned().collect();
            let patch =
                serde_json::json!({ "metadata": { "finalizers": keep, "resourceVersion": sub.resource_version() } });
            api.patch(&sub.name_any(), &Default::default(), &kube::api::Patch::Merge(patch)).await?;
            return Ok(Action::await_change());
        }
        return status_only(sub, &ctx).await;
    }
    finalizer(&api, SUBSCRIPTION_FINALIZER, Arc::new(sub.clone()), |event| async {
        match event {
            Event::Apply(sub) => apply(&sub, &ctx).await,
            Event::Cleanup(sub) => cleanup(&sub, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// Ready from the organization and plan; None when both exist.
fn ready_condition(sub: &Subscription, ctx: &Context) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let generation = sub.metadata.generation;
    let org_exists = ctx.organizations.get(&ObjectRef::new(&sub.spec.organization)).is_some();
    let plan_exists = ctx.plan(&sub.spec.plan).is_some();
    match (org_exists, plan_exists) {
        (false, _) => conditions::new(
            CONDITION_READY,
            false,
            "OrganizationNotFound",
            format!(
                "spec.organization {:?} does not exist: create the Organization or fix the name",
                sub.spec.organization
            ),
            generation,
        ),
        (true, false) => conditions::new(
            CONDITION_READY,
            false,
            "PlanNotFound",
            format!("spec.plan {:?} does not exist: choose one of `kubectl get plans`", sub.spec.plan),
            generation,
        ),
        (true, true) => conditions::new(
            CONDITION_READY,
            true,
            "PlanApplied",
            format!("organization {} is on plan {}", sub.spec.organization, sub.spec.plan),
            generation,
        ),
    }
}

/// Billing disabled: the plan applies unbilled and the condition says why.
async fn status_only(sub: &Subscription, ctx: &Context) -> Result<Action> {
    let reason = ctx.billing.disabled_reason().unwrap_or("billing is disabled");
    let billing = conditions::new(
        "Billing",
        false,
        "BillingDisabled",
        format!("billing is disabled: {reason}"),
        sub.metadata.generation,
    );
    let previous = sub.status.clone().unwrap_or_default();
    write(sub, ctx, SubscriptionStatus { ..previous }, vec![ready_condition(sub, ctx), billing]).await?;
    Ok(Action::await_change())
}

async fn apply(sub: &Subscription, ctx: &Context) -> Result<Action> {
    let Some(api) = ctx.billing.api() else { return Ok(Action::await_change()) };
    let generation = sub.metadata.generation;
    let ready = ready_condition(sub, ctx);
    let resync = ctx.billing.settings.resync();
    let (Some(org), Some(plan)) = (ctx.organization(&sub.spec.organization), ctx.plan(&sub.spec.plan)) else {
        write(sub, ctx, sub.status.clone().unwrap_or_default(), vec![ready]).await?;
        return Ok(Action::requeue(resync));
    };
    let plans: Vec<(String, crate::api::Plan)> =
        ctx.plans.state().iter().filter_map(|g| g.0.as_ref().ok().map(|p| (p.name_any(), p.clone()))).collect();
    let input =
        sync::Input { subscription: sub, organization: &org, plan: &plan, plans: &plans, now: jiff::Timestamp::now() };
    match sync::sync(&ctx.billing, api, input).await {
        Ok(synced) => {
            let billing = conditions::new("Billing", synced.billed, &synced.reason, synced.message, generation);
            let mut desired = vec![ready, billing];
            desired.extend(reconciled_condition(sub, ctx).await);
            write(sub, ctx, synced.status, desired).await?;
            Ok(Action::requeue(synced.recheck.map_or(resync, |r| r.min(resync))))
        }
        Err(err) => {
            let message = format!("Stripe: {err} (retrying)");
            let billing = conditions::new("Billing", false, "StripeError", message, generation);
            write(sub, ctx, sub.status.clone().unwrap_or_default(), vec![ready, billing]).await?;
            Err(Error::Stripe(err.to_string()))
        }
    }
}

/// `UsageReconciled` from the ledger: the latest closed period's metered totals against Stripe's (the meter
/// pusher compares them once the period's grace window has closed). None before any period closed.
async fn reconciled_condition(sub: &Subscription, ctx: &Context) -> Option<Condition> {
    let ledger = ctx.ledger.as_ref()?;
    let period = match ledger.latest_reconciliation(&sub.spec.organization).await {
        Ok(period) => period?,
        Err(err) => {
            tracing::warn!(error = %err, "reading the latest usage reconciliation failed");
            return None;
        }
    };
    let matched = period.matched.unwrap_or(false);
    let (_, detail) = crate::metering::reconcile::summary(&period.meters);
    let (reason, message) = if matched {
        ("Matched", format!("period {} to {}: {detail}", period.start, period.end))
    } else {
        (
            "Mismatch",
            format!(
                "period {} to {}: {detail}; the ledger's figures are what was used: check the Stripe dashboard's meter events for customer {}",
                period.start, period.end, period.customer
            ),
        )
    };
    Some(conditions::new(CONDITION_USAGE_RECONCILED, matched, reason, message, sub.metadata.generation))
}

/// The latest closed billing period's metered usage in Stripe equals the ledger's.
pub const CONDITION_USAGE_RECONCILED: &str = "UsageReconciled";

async fn cleanup(sub: &Subscription, ctx: &Context) -> Result<Action> {
    let Some(api) = ctx.billing.api() else { return Ok(Action::await_change()) };
    let org_uid = ctx.organization(&sub.spec.organization).and_then(|o| o.metadata.uid);
    match sync::cancel(api, sub, org_uid.as_deref()).await {
        Ok(Some(id)) => {
            let note = format!("Stripe subscription {id} cancelled");
            super::publish(ctx, &sub.object_ref(&()), EventType::Normal, "Cancelled", "Delete", note).await;
            Ok(Action::await_change())
        }
        Ok(None) => Ok(Action::await_change()),
        Err(err) => Err(Error::Stripe(format!("cancelling in Stripe: {err}"))),
    }
}

/// Writes the status when it changed; publishes the Billing condition's transitions as events.
async fn write(
    sub: &Subscription,
    ctx: &Context,
    status: SubscriptionStatus,
    desired: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) -> Result<()> {
    let previous = sub.status.clone().unwrap_or_default();
    let status = SubscriptionStatus {
        conditions: conditions::merge(&previous.conditions, desired),
        observed_generation: sub.metadata.generation,
        ..status
    };
    if status == previous {
        return Ok(());
    }
    for kind in ["Billing", CONDITION_USAGE_RECONCILED] {
        let state = |s: &SubscriptionStatus| {
            crate::api::condition(&s.conditions, kind).map(|c| (c.status.clone(), c.reason.clone()))
        };
        if let Some((state, reason)) = state(&status).filter(|now| Some(now) != state(&previous).as_ref())
            && reason != "BillingDisabled"
        {
            let message =
                crate::api::condition(&status.conditions, kind).map(|c| c.message.clone()).unwrap_or_default();
            let type_ = if state == "True" { EventType::Normal } else { EventType::Warning };
            super::publish(ctx, &sub.object_ref(&()), type_, &reason, kind, message).await;
        }
    }
    let body = serde_json::json!({
        "apiVersion": Subscription::api_version(&()),
        "kind": Subscription::kind(&()),
        "status": status,
    });
    apply_status(&Api::<Subscription>::all(ctx.client.clone()), &sub.name_any(), body).await.map(|_| ())
}
