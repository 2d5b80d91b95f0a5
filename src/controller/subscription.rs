//! Subscription status until billing arrives: whether its organization and plan exist, and a
//! `Billing` condition that says plainly that nothing is billed.

use super::apply::apply_status;
use super::conditions;
use super::context::Context;
use crate::api::{CONDITION_READY, Subscription, SubscriptionStatus};
use crate::error::Result;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;

pub async fn reconcile(guard: Arc<DeserializeGuard<Subscription>>, ctx: Arc<Context>) -> Result<Action> {
    let Some(sub) = super::readable(&guard, &ctx).await else { return Ok(Action::await_change()) };
    let generation = sub.metadata.generation;
    let org_exists = ctx.organizations.get(&ObjectRef::new(&sub.spec.organization)).is_some();
    let plan_exists = ctx.plan(&sub.spec.plan).is_some();
    let ready = match (org_exists, plan_exists) {
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
    };
    let billing = conditions::new(
        "Billing",
        false,
        "BillingDisabled",
        "billing is disabled: this operator build has no Stripe integration configured, so the plan applies unbilled",
        generation,
    );
    let previous = sub.status.clone().unwrap_or_default();
    let status = SubscriptionStatus {
        conditions: conditions::merge(&previous.conditions, vec![ready, billing]),
        observed_generation: generation,
        ..previous.clone()
    };
    if status != previous {
        let body = serde_json::json!({
            "apiVersion": Subscription::api_version(&()),
            "kind": Subscription::kind(&()),
            "status": status,
        });
        apply_status(&Api::<Subscription>::all(ctx.client.clone()), &sub.name_any(), body).await?;
    }
    Ok(Action::await_change())
}
