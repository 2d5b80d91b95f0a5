//! Plan status: its display price and a Ready condition for `kubectl wait`.

use super::apply::apply_status;
use super::conditions;
use super::context::Context;
use crate::api::{CONDITION_READY, Plan, PlanStatus};
use crate::error::Result;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;

pub async fn reconcile(guard: Arc<DeserializeGuard<Plan>>, ctx: Arc<Context>) -> Result<Action> {
    let Some(plan) = super::readable(&guard, &ctx).await else { return Ok(Action::await_change()) };
    let previous = plan.status.clone().unwrap_or_default();
    let billing = if plan.spec.internal { "internal, never billed" } else { "billable" };
    let ready = conditions::new(
        CONDITION_READY,
        true,
        "Valid",
        format!("plan {} is {billing}", plan.name_any()),
        plan.metadata.generation,
    );
    let status = PlanStatus {
        conditions: conditions::merge(&previous.conditions, vec![ready]),
        observed_generation: plan.metadata.generation,
        price: Some(plan.spec.price.display()),
    };
    if status != previous {
        let body = serde_json::json!({
            "apiVersion": Plan::api_version(&()),
            "kind": Plan::kind(&()),
            "status": status,
        });
        apply_status(&Api::<Plan>::all(ctx.client.clone()), &plan.name_any(), body).await?;
    }
    Ok(Action::await_change())
}
