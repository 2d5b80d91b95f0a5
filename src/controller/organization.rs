//! The Organization reconciler: dereference (plan, subscription) → validate (slug, plan) →
//! build (pure, `tenancy`) → apply (server-side) → status and events on transitions.

use super::apply::{apply, apply_status, delete_if_exists};
use super::conditions;
use super::context::Context;
use crate::api::{
    CONDITION_READY, DeletionPolicy, Organization, OrganizationStatus, Phase, condition,
};
use crate::error::{Error, Result};
use crate::tenancy::labels::{ORGANIZATION_FINALIZER, ORGANIZATION_OBJECT, home_namespace};
use crate::tenancy::plan::{effective_plan, usage, user_count};
use crate::tenancy::{DesiredTenant, Tenant, desired_tenant};
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Periodic re-check of a healthy tenant; drift is repaired sooner, through the watches.
const RESYNC: Duration = Duration::from_secs(30 * 60);
/// Re-check of a blocked tenant (slug held by another organization).
const BLOCKED_RECHECK: Duration = Duration::from_secs(60);

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Organization>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let org = match &guard.0 {
        Ok(org) => org.clone(),
        Err(invalid) => {
            super::report_invalid::<Organization>(&ctx, invalid).await;
            return Ok(Action::await_change());
        }
    };
    let api: Api<Organization> = Api::all(ctx.client.clone());
    finalizer(&api, ORGANIZATION_FINALIZER, Arc::new(org), |event| async {
        match event {
            Event::Apply(org) => provision(&org, &ctx).await,
            Event::Cleanup(org) => cleanup(&org, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// What the reconcile decided, before it is written to status.
struct Outcome {
    ready: Condition,
    phase: Phase,
    plan: Option<String>,
    desired: Option<DesiredTenant>,
    extra: Vec<Condition>,
}

async fn provision(org: &Organization, ctx: &Context) -> Result<Action> {
    let generation = org.metadata.generation;
    if let Some(holder) = slug_holder(org, ctx) {
        let message = format!(
            "spec.slug {:?} is already used by Organization {holder}: choose another slug (slugs are unique and immutable)",
            org.spec.slug
        );
        let ready = conditions::new(CONDITION_READY, false, "SlugConflict", message, generation);
        let outcome = Outcome {
            ready,
            phase: Phase::Provisioning,
            plan: None,
            desired: None,
            extra: vec![],
        };
        write_status(org, ctx, outcome).await?;
        return Ok(Action::requeue(BLOCKED_RECHECK));
    }

    let subscriptions = ctx.valid_subscriptions();
    let choice = effective_plan(org, subscriptions.iter(), &ctx.settings.default_plan);
    let Some(plan) = ctx.plan(&choice.plan) else {
        let source = match &choice.subscription {
            Some(sub) => format!("Subscription {sub} (spec.plan)"),
            None => "the operator's default plan (no Subscription)".to_string(),
        };
        let message = format!(
            "plan {:?} from {source} does not exist: create the Plan or choose one of `kubectl get plans`; nothing was changed",
            choice.plan
        );
        let ready = conditions::new(CONDITION_READY, false, "PlanNotFound", message, generation);
        let outcome = Outcome {
            ready,
            phase: current_phase(org),
            plan: None,
            desired: None,
            extra: vec![],
        };
        write_status(org, ctx, outcome).await?;
        // A Plan or Subscription change triggers the next attempt through the watches.
        return Ok(Action::requeue(RESYNC));
    };

    let suspended = org.spec.suspended;
    let tenant = Tenant {
        org,
        plan_name: &choice.plan,
        plan: &plan,
        suspended,
        settings: &ctx.settings,
    };
    let desired = desired_tenant(&tenant);
    if let Err(err) = apply_tenant(&desired, ctx).await {
        let message = format!("applying the tenant's objects failed (will retry): {err}");
        let ready = conditions::new(CONDITION_READY, false, "ApplyFailed", message, generation);
        let outcome = Outcome {
            ready,
            phase: current_phase(org),
            plan: Some(choice.plan),
            desired: None,
            extra: vec![],
        };
        write_status(org, ctx, outcome).await?;
        return Err(err);
    }

    let (used, exceeded) = usage(&plan, user_count(org), 0, 1);
    let mut extra = vec![if exceeded.is_empty() {
        conditions::new(
            "WithinLimits",
            true,
            "WithinLimits",
            format!("usage within plan {}", choice.plan),
            generation,
        )
    } else {
        conditions::new(
            "WithinLimits",
            false,
            "LimitExceeded",
            exceeded.join("; "),
            generation,
        )
    }];
    let mut warnings = choice.warnings.clone();
    warnings.extend(desired.warnings.iter().cloned());
    extra.push(if warnings.is_empty() {
        conditions::new(
            "SpecHonored",
            true,
            "AllFieldsApplied",
            "every field of the spec is applied",
            generation,
        )
    } else {
        conditions::new(
            "SpecHonored",
            false,
            "FieldsIgnored",
            warnings.join("; "),
            generation,
        )
    });
    let (phase, reason, message) = if suspended {
        (
            Phase::Suspended,
            "Suspended",
            format!(
                "tenant suspended: no new pods start, {} shows the suspended page, data is kept",
                desired.url
            ),
        )
    } else {
        (
            Phase::Active,
            "Provisioned",
            format!(
                "tenant provisioned in namespace {} on plan {}",
                desired
                    .namespace
                    .metadata
                    .name
                    .as_deref()
                    .unwrap_or_default(),
                choice.plan
            ),
        )
    };
    let ready = conditions::new(CONDITION_READY, true, reason, message, generation);
    let outcome = Outcome {
        ready,
        phase,
        plan: Some(choice.plan),
        desired: Some(desired),
        extra,
    };
    write_status_with_usage(org, ctx, outcome, Some(used)).await?;
    Ok(Action::requeue(RESYNC))
}

/// Namespace first (everything else lives in it), then the rest concurrently.
async fn apply_tenant(desired: &DesiredTenant, ctx: &Context) -> Result<()> {
    let client = &ctx.client;
    apply(&Api::<Namespace>::all(client.clone()), &desired.namespace).await?;
    let ns = desired
        .namespace
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let stale: Vec<&String> = desired
        .absent_bindings
        .iter()
        .filter(|name| {
            ctx.role_bindings
                .get(&ObjectRef::new(name).within(ns))
                .is_some()
        })
        .collect();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let limit_ranges: Api<LimitRange> = Api::namespaced(client.clone(), ns);
    let network_policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    tokio::try_join!(
        apply(&quotas, &desired.quota),
        apply(&limit_ranges, &desired.limit_range),
        apply(&network_policies, &desired.network_policy),
        apply(&services, &desired.suspended_service),
        apply(&ingresses, &desired.ingress),
        try_join_all(desired.bindings.iter().map(|b| apply(&bindings, b))),
        try_join_all(
            stale
                .into_iter()
                .map(|name| delete_if_exists(&bindings, name))
        ),
    )?;
    Ok(())
}

/// Another live Organization that owns this slug: the older one wins; a namespace already
/// labelled for another existing Organization is never taken over.
fn slug_holder(org: &Organization, ctx: &Context) -> Option<String> {
    let name = org.name_any();
    let key = |o: &Organization| (o.metadata.creation_timestamp.clone(), o.name_any());
    let older = ctx
        .valid_organizations()
        .into_iter()
        .filter(|o| {
            o.name_any() != name
                && o.spec.slug == org.spec.slug
                && o.metadata.deletion_timestamp.is_none()
        })
        .filter(|o| key(o) < key(org))
        .map(|o| o.name_any())
        .next();
    if older.is_some() {
        return older;
    }
    let ns = ctx
        .namespaces
        .get(&ObjectRef::new(&home_namespace(&org.spec.slug)))?;
    let owner = ns.labels().get(ORGANIZATION_OBJECT)?.clone();
    let owner_exists = ctx.organizations.get(&ObjectRef::new(&owner)).is_some();
    (owner != name && owner_exists).then_some(owner)
}

fn current_phase(org: &Organization) -> Phase {
    org.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or_default()
}

async fn write_status(org: &Organization, ctx: &Context, outcome: Outcome) -> Result<()> {
    let previous_usage = org.status.as_ref().and_then(|s| s.usage.clone());
    write_status_with_usage(org, ctx, outcome, previous_usage).await
}

/// Writes status only when it changed, and publishes an event on each transition.
async fn write_status_with_usage(
    org: &Organization,
    ctx: &Context,
    outcome: Outcome,
    usage: Option<crate::api::Usage>,
) -> Result<()> {
    let previous = org.status.clone().unwrap_or_default();
    let mut desired_conditions = vec![outcome.ready.clone()];
    desired_conditions.extend(outcome.extra);
    // Conditions this outcome does not decide keep their last value.
    for old in &previous.conditions {
        if !desired_conditions.iter().any(|c| c.type_ == old.type_) {
            desired_conditions.push(old.clone());
        }
    }
    let status = OrganizationStatus {
        phase: Some(outcome.phase),
        effective_plan: outcome.plan.clone().or(previous.effective_plan.clone()),
        namespace: outcome
            .desired
            .as_ref()
            .and_then(|d| d.namespace.metadata.name.clone())
            .or(previous.namespace.clone()),
        url: outcome
            .desired
            .as_ref()
            .map(|d| d.url.clone())
            .or(previous.url.clone()),
        hosts: outcome
            .desired
            .as_ref()
            .map(|d| d.hosts.clone())
            .unwrap_or(previous.hosts.clone()),
        usage,
        conditions: conditions::merge(&previous.conditions, desired_conditions),
        observed_generation: org.metadata.generation,
    };
    if status == previous {
        return Ok(());
    }
    publish_transitions(org, ctx, &previous, &status).await;
    let api: Api<Organization> = Api::all(ctx.client.clone());
    let body = serde_json::json!({
        "apiVersion": Organization::api_version(&()),
        "kind": Organization::kind(&()),
        "status": status,
    });
    apply_status(&api, &org.name_any(), body).await
}

async fn publish_transitions(
    org: &Organization,
    ctx: &Context,
    before: &OrganizationStatus,
    after: &OrganizationStatus,
) {
    let reason_of = |s: &OrganizationStatus| {
        condition(&s.conditions, CONDITION_READY)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let mut events = Vec::new();
    if let Some((status, reason, message)) =
        reason_of(after).filter(|now| Some(now) != reason_of(before).as_ref())
    {
        let type_ = if status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        events.push((type_, reason, message));
    }
    if let (Some(old), Some(new)) = (&before.effective_plan, &after.effective_plan)
        && old != new
    {
        events.push((
            EventType::Normal,
            "PlanChanged".into(),
            format!("plan changed from {old} to {new}; quota re-mapped"),
        ));
    }
    if let Some(limits) =
        condition(&after.conditions, "WithinLimits").filter(|c| c.status == "False")
        && condition(&before.conditions, "WithinLimits").map(|c| &c.message)
            != Some(&limits.message)
    {
        events.push((
            EventType::Warning,
            "LimitExceeded".into(),
            limits.message.clone(),
        ));
    }
    let reference = org.object_ref(&());
    for (type_, reason, note) in events {
        super::publish(ctx, &reference, type_, &reason, "Reconcile", note).await;
    }
}

/// Deletion: Retain keeps the namespaces and their data and removes the access bindings;
/// Delete removes the namespaces and waits until they are gone. Only objects labelled for this
/// Organization are touched.
async fn cleanup(org: &Organization, ctx: &Context) -> Result<Action> {
    let name = org.name_any();
    let ns_name = home_namespace(&org.spec.slug);
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let owned = namespaces
        .get_opt(&ns_name)
        .await?
        .filter(|ns| ns.labels().get(ORGANIZATION_OBJECT) == Some(&name));
    let reference = org.object_ref(&());
    if crd_is_being_removed(ctx).await? {
        // Uninstalling or re-installing the CRDs deletes every Organization. That must never
        // cost a tenant its namespaces or access: keep everything for re-adoption.
        let note = format!(
            "the Organization CRD is being removed: namespace {ns_name}, its data and access are kept and re-adopted when the Organization returns"
        );
        super::publish(
            ctx,
            &reference,
            EventType::Warning,
            "CRDRemoved",
            "Delete",
            note,
        )
        .await;
        return Ok(Action::await_change());
    }
    if current_phase(org) != Phase::Terminating {
        let body = serde_json::json!({
            "apiVersion": Organization::api_version(&()),
            "kind": Organization::kind(&()),
            "status": { "phase": Phase::Terminating },
        });
        apply_status(&Api::<Organization>::all(ctx.client.clone()), &name, body).await?;
    }
    match (org.spec.deletion_policy, owned) {
        (_, None) => Ok(Action::await_change()),
        (DeletionPolicy::Retain, Some(_)) => {
            let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns_name);
            let selector = format!("{ORGANIZATION_OBJECT}={name}");
            let params = ListParams::default().labels(&selector);
            bindings
                .delete_collection(&DeleteParams::default(), &params)
                .await?;
            let note = format!(
                "namespace {ns_name} and its data kept (deletionPolicy Retain); access bindings removed"
            );
            super::publish(
                ctx,
                &reference,
                EventType::Normal,
                "Retained",
                "Delete",
                note,
            )
            .await;
            Ok(Action::await_change())
        }
        (DeletionPolicy::Delete, Some(ns)) => {
            if ns.metadata.deletion_timestamp.is_none() {
                delete_if_exists(&namespaces, &ns_name).await?;
                let note = format!("deleting namespace {ns_name} (deletionPolicy Delete)");
                super::publish(
                    ctx,
                    &reference,
                    EventType::Normal,
                    "Deleting",
                    "Delete",
                    note,
                )
                .await;
            }
            Err(Error::Waiting(format!(
                "namespace {ns_name} is terminating"
            )))
        }
    }
}

async fn crd_is_being_removed(ctx: &Context) -> Result<bool> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let name = format!("{}.{}", Organization::plural(&()), Organization::group(&()));
    Ok(crds
        .get_opt(&name)
        .await?
        .is_none_or(|crd| crd.metadata.deletion_timestamp.is_some()))
}
