//! The Organization reconciler: dereference (plan, subscription) → validate (slug, plan) →
//! build (pure, `tenancy`) → apply (server-side) → status and events on transitions.

use super::apply::{apply_if_changed, apply_status, delete_if_exists};
use super::conditions;
use super::context::{Context, cached};
use crate::api::{CONDITION_READY, DeletionPolicy, Organization, OrganizationStatus, Phase, condition};
use crate::api::{Subscription, Team};
use crate::error::{Error, Result};
use crate::metering::{self, Meter};
use crate::tenancy::claim::{self, Claim, Claimant, Refusal};
use crate::tenancy::dunning::{self, Standing, Verdict};
use crate::tenancy::labels::{
    ORGANIZATION_FINALIZER, ORGANIZATION_OBJECT, QUOTA_NAME, QUOTA_SHARE_ANNOTATION, TEAM_OBJECT, home_namespace,
};
use crate::tenancy::plan::{effective_plan, usage, user_count};
use crate::tenancy::{DesiredTenant, Tenant, desired_tenant};
use crate::tenancy::{access, quota, teams};
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Periodic re-check of a healthy tenant; drift is repaired sooner, through the watches.
const RESYNC: Duration = Duration::from_secs(30 * 60);
/// Re-check of a blocked tenant (slug held by another organization).
const BLOCKED_RECHECK: Duration = Duration::from_secs(60);

const KIND: &str = "Organization";

pub async fn reconcile(guard: Arc<DeserializeGuard<Organization>>, ctx: Arc<Context>) -> Result<Action> {
    let ctx: &Context = &ctx;
    let provision_with = |org: Arc<Organization>| async move { provision(&org, ctx).await };
    let cleanup_with = |org: Arc<Organization>| async move { cleanup(&org, ctx).await };
    super::lifecycle::reconcile(&*guard, ctx, KIND, ORGANIZATION_FINALIZER, provision_with, cleanup_with).await
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
    let home = home_namespace(&org.spec.slug);
    let cached_home = ctx.namespaces.get(&ObjectRef::new(&home)).map(|m| m.metadata.clone());
    // From the cache first: a slug that is visibly someone else's costs no write.
    if let Claim::Refused(refusal) =
        claim::home_claim(&claimant(org), &org.spec.slug, &home, cached_home.as_ref(), |n| live_uid(ctx, n))
    {
        return refuse(org, ctx, refusal).await;
    }

    let subscriptions = subscriptions_for(org, ctx).await?;
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
        let outcome = Outcome { ready, phase: current_phase(org), plan: None, desired: None, extra: vec![] };
        write_status(org, ctx, outcome).await?;
        // A Plan or Subscription change triggers the next attempt through the watches.
        return Ok(Action::requeue(RESYNC));
    };

    let all_teams = ctx.teams_of(&org.name_any());
    let live_teams: Vec<&Team> = all_teams.iter().filter(|t| t.metadata.deletion_timestamp.is_none()).collect();
    let index = teams::index(&org.name_any(), live_teams.iter().copied());
    let (claims, placements) =
        teams::quota_claims(&home, &org.spec.slug, &index, plan.spec.limits.teams, ctx.settings.max_team_depth);
    let team_count = index.len() as i32;
    let (used, exceeded) =
        usage(&plan, user_count(org, live_teams.iter().copied()), team_count, 1 + placements.len() as i32);
    // Dunning (DESIGN.md §2): a suspension for non-payment takes the same path as spec.suspended.
    let now = jiff::Timestamp::now();
    let verdict = dunning::verdict(&choice.standing, now, ctx.billing.settings.grace(), exceeded.is_empty());
    let suspended = org.spec.suspended || matches!(verdict, Verdict::Suspend { .. });
    let allocation = quota::allocate(&claims);
    let home_share_ppm = allocation.shares.get(&home).copied().unwrap_or(quota::WHOLE);
    // Metered usage this period: a Block meter at 100 % routes the tenant to the limit-reached page.
    let metered = metered_usage(org, &plan, &subscriptions, ctx, now).await;
    let usage_blocked = metered.as_ref().is_some_and(|m| m.blocked) || (metered.is_none() && previously_blocked(org));
    let tenant = Tenant {
        org,
        plan_name: &choice.plan,
        plan: &plan,
        suspended,
        usage_blocked,
        settings: &ctx.settings,
        home_share_ppm,
    };
    let desired = desired_tenant(&tenant);
    let subscription_names: Vec<String> = subscriptions.iter().filter_map(|s| s.metadata.name.clone()).collect();
    let (access_role, access_binding) = access::organization_access(&tenant, &live_teams, &subscription_names);
    let created = match claim_home(org, &desired.namespace, ctx).await? {
        Ok(created) => created,
        Err(refusal) => return refuse(org, ctx, refusal).await,
    };
    let applied = async {
        apply_tenant(&desired, ctx, created).await?;
        let roles: Api<ClusterRole> = Api::all(ctx.client.clone());
        let bindings: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
        // The role first: without cluster-admin, RBAC checks a binding against the rules of
        // the role it names, so a binding to a role not yet created is refused (404).
        apply_if_changed(&roles, &access_role, cached(&ctx.access_roles, &access_role)).await?;
        apply_if_changed(&bindings, &access_binding, cached(&ctx.access_bindings, &access_binding)).await?;
        apply_quotas(&tenant, &desired, &placements, &allocation, ctx).await
    };
    if let Err(err) = applied.await {
        let message = format!("applying the tenant's objects failed (will retry): {err}");
        let ready = conditions::new(CONDITION_READY, false, "ApplyFailed", message, generation);
        let outcome =
            Outcome { ready, phase: current_phase(org), plan: Some(choice.plan), desired: None, extra: vec![] };
        write_status(org, ctx, outcome).await?;
        return Err(err);
    }

    let mut extra = vec![if exceeded.is_empty() {
        conditions::new("WithinLimits", true, "WithinLimits", format!("usage within plan {}", choice.plan), generation)
    } else {
        conditions::new("WithinLimits", false, "LimitExceeded", exceeded.join("; "), generation)
    }];
    let mut warnings = choice.warnings.clone();
    warnings.extend(desired.warnings.iter().cloned());
    extra.push(if warnings.is_empty() {
        conditions::new("SpecHonored", true, "AllFieldsApplied", "every field of the spec is applied", generation)
    } else {
        conditions::new("SpecHonored", false, "FieldsIgnored", warnings.join("; "), generation)
    });
    let (phase, reason, message) = if suspended {
        let why = match &verdict {
            Verdict::Suspend { reason } if !org.spec.suspended => format!(" for billing ({reason})"),
            _ => String::new(),
        };
        (
            Phase::Suspended,
            "Suspended",
            format!("tenant suspended{why}: no new pods start, {} shows the suspended page, data is kept", desired.url),
        )
    } else if let Verdict::Grace { until } = &verdict {
        (
            Phase::PastDue,
            "PastDue",
            format!("payment past due: plan {} stays until {until}, then the tenant is suspended", choice.plan),
        )
    } else if choice.standing == Standing::Trialing {
        (
            Phase::Trialing,
            "Trialing",
            format!("tenant provisioned in namespace {} on a trial of plan {}", home, choice.plan),
        )
    } else {
        (
            Phase::Active,
            "Provisioned",
            format!(
                "tenant provisioned in namespace {} on plan {}",
                desired.namespace.metadata.name.as_deref().unwrap_or_default(),
                choice.plan
            ),
        )
    };
    let ready = conditions::new(CONDITION_READY, true, reason, message, generation);
    let mut used = used;
    if let Some(metered) = metered {
        used.bandwidth = metered.lines.get(&Meter::Bandwidth).cloned();
        used.storage = metered.lines.get(&Meter::Storage).cloned();
        used.api_calls = metered.lines.get(&Meter::ApiCalls).cloned();
        used.stream_time = metered.lines.get(&Meter::StreamTime).cloned();
        used.closest_meter = metered.closest.clone();
        extra.push(conditions::new(
            metering::status::CONDITION,
            metered.condition_status,
            metered.reason,
            metered.message,
            generation,
        ));
    }
    let outcome = Outcome { ready, phase, plan: Some(choice.plan), desired: Some(desired), extra };
    let limits = &plan.spec.limits;
    let usage_series = [
        ("users", i64::from(used.user_count), limits.users.map(i64::from)),
        ("teams", i64::from(used.team_count), limits.teams.map(i64::from)),
        ("namespaces", i64::from(used.namespace_count), limits.namespaces.map(i64::from)),
    ];
    ctx.metrics.set_organization(&org.name_any(), usage_series, &format!("{phase:?}"));
    write_status_with_usage(org, ctx, outcome, Some(used)).await?;
    // The grace period ends on its own, without any watch event: look again then.
    let recheck = match verdict {
        Verdict::Grace { until } => {
            let wait = until.duration_since(now).as_secs_f64().max(0.0) + 1.0;
            RESYNC.min(Duration::from_secs_f64(wait))
        }
        _ => RESYNC,
    };
    // Usage totals start again with the next billing period: a block lifts then, with no watch event.
    let period_end = metering::intake::open_period(metering::intake::StripePeriod::of(subscriptions.iter()), now)
        .map(|p| Duration::from_secs_f64(p.end.duration_since(now).as_secs_f64().max(0.0) + 1.0));
    let recheck = period_end.map_or(recheck, |end| recheck.min(end));
    Ok(Action::requeue(recheck))
}

/// Whether the last status said a Block limit was reached: kept while the ledger cannot be read, so a
/// database outage neither blocks nor unblocks anyone.
fn previously_blocked(org: &Organization) -> bool {
    org.status
        .as_ref()
        .and_then(|s| condition(&s.conditions, metering::status::CONDITION))
        .is_some_and(|c| c.status == "False" && c.reason == "Reached" && c.message.contains("(blocked"))
}

/// The four meters this billing period against the plan's included amounts, from the ledger's period totals
/// (storage's from the sampler's windows); None without a ledger or when it cannot be read (the previous
/// status stays until the next reconcile).
async fn metered_usage(
    org: &Organization,
    plan: &crate::api::Plan,
    subscriptions: &[Subscription],
    ctx: &Context,
    now: jiff::Timestamp,
) -> Option<metering::status::UsageStatus> {
    let ledger = ctx.ledger.as_ref()?;
    let terms = match metering::plan_terms(&plan.spec) {
        Ok(terms) => terms,
        Err(err) => {
            tracing::warn!(organization = %org.name_any(), error = %err, "plan terms unreadable; usage not shown");
            return None;
        }
    };
    let period = metering::intake::open_period(metering::intake::StripePeriod::of(subscriptions.iter()), now).ok()?;
    let totals = match ledger.usage_totals(&org.name_any(), &period).await {
        Ok(totals) => totals,
        Err(err) => {
            tracing::warn!(organization = %org.name_any(), error = %err, "cannot read usage totals");
            return None;
        }
    };
    ctx.metrics.usage.set_meters(&org.name_any(), &metering::gauges::meter_gauges(&terms, &totals, &period));
    let limits: Vec<_> = Meter::ALL
        .into_iter()
        .map(|m| {
            let used = totals.get(&m).copied().unwrap_or(0);
            match m {
                // Byte-seconds so far, shown as GiB-months against the included ones.
                Meter::Storage => metering::storage::storage_limit(terms.meter(m), used, &period),
                _ => metering::limits::meter_limit(terms.meter(m), used),
            }
        })
        .collect();
    let series: Vec<_> = limits.iter().map(|l| (l.meter.as_str(), l.used, l.limit)).collect();
    ctx.metrics.set_organization_meters(&org.name_any(), &series);
    Some(metering::status::usage_status(&limits))
}

/// Namespace first (everything else lives in it; unless just created), then the rest
/// concurrently; each object only when it differs from what the cache shows applied.
async fn apply_tenant(desired: &DesiredTenant, ctx: &Context, namespace_created: bool) -> Result<()> {
    let client = &ctx.client;
    let namespace = &desired.namespace;
    if !namespace_created {
        apply_if_changed(&Api::<Namespace>::all(client.clone()), namespace, cached(&ctx.namespaces, namespace)).await?;
    }
    let ns = namespace.metadata.name.as_deref().unwrap_or_default();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let stale: Vec<&String> = desired
        .absent_bindings
        .iter()
        .filter(|name| ctx.role_bindings.get(&ObjectRef::new(name).within(ns)).is_some())
        .collect();
    let limit_ranges: Api<LimitRange> = Api::namespaced(client.clone(), ns);
    let network_policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let (lr, np, svc, ing) =
        (&desired.limit_range, &desired.network_policy, &desired.suspended_service, &desired.ingress);
    let limit_reached = &desired.limit_reached_service;
    tokio::try_join!(
        apply_if_changed(&services, limit_reached, cached(&ctx.services, limit_reached)),
        apply_if_changed(&limit_ranges, lr, cached(&ctx.limit_ranges, lr)),
        apply_if_changed(&network_policies, np, cached(&ctx.network_policies, np)),
        apply_if_changed(&services, svc, cached(&ctx.services, svc)),
        apply_if_changed(&ingresses, ing, cached(&ctx.ingresses, ing)),
        try_join_all(desired.bindings.iter().map(|b| apply_if_changed(&bindings, b, cached(&ctx.role_bindings, b)))),
        try_join_all(stale.into_iter().map(|name| delete_if_exists(&bindings, name))),
    )?;
    Ok(())
}

/// The quotas of the home namespace and of every provisioned team namespace, from one
/// allocation. Quotas that shrink are applied before those that grow, so the namespaces never
/// hold more than the plan together, at any moment.
async fn apply_quotas(
    tenant: &Tenant<'_>,
    desired: &DesiredTenant,
    placements: &BTreeMap<String, teams::Placement>,
    allocation: &quota::Allocation,
    ctx: &Context,
) -> Result<()> {
    let mut wanted = vec![(desired.quota.clone(), tenant.home_share_ppm)];
    for (team, placement) in placements {
        let ns = &placement.namespace;
        // The Team controller creates the namespace with a zero quota, whose appearance in the
        // quota cache triggers this; until then there is nothing to size.
        if ctx.quotas.get(&ObjectRef::new(QUOTA_NAME).within(ns)).is_none() {
            continue;
        }
        let share = allocation.shares.get(ns).copied().unwrap_or(0);
        let mut labels = tenant.labels();
        labels.insert(TEAM_OBJECT.into(), team.clone());
        let meta = ObjectMeta {
            name: Some(QUOTA_NAME.into()),
            namespace: Some(ns.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        wanted.push((quota::resource_quota(tenant, meta, share), share));
    }
    // Every other team quota of this organization — a team outside the tree (a cycle, a missing
    // parent, too deep, over the team limit) or a retained namespace — holds nothing, and drops to
    // zero before anything grows: whatever the tree looks like, the namespaces never exceed the plan.
    let org_name = tenant.org_object();
    let placed: std::collections::BTreeSet<&str> = placements.values().map(|p| p.namespace.as_str()).collect();
    for orphan in ctx.quotas.state().iter().filter(|q| {
        let labels = q.labels();
        labels.get(ORGANIZATION_OBJECT) == Some(&org_name)
            && labels.contains_key(TEAM_OBJECT)
            && q.metadata.namespace.as_deref().is_some_and(|ns| !placed.contains(ns))
    }) {
        let meta = ObjectMeta {
            name: orphan.metadata.name.clone(),
            namespace: orphan.metadata.namespace.clone(),
            labels: orphan.metadata.labels.clone(),
            ..Default::default()
        };
        wanted.push((quota::resource_quota(tenant, meta, 0), 0));
    }
    let current_share = |q: &ResourceQuota| {
        let ns = q.metadata.namespace.clone().unwrap_or_default();
        ctx.quotas
            .get(&ObjectRef::new(QUOTA_NAME).within(&ns))
            .and_then(|meta| meta.annotations().get(QUOTA_SHARE_ANNOTATION).and_then(|v| v.parse::<i64>().ok()))
            .unwrap_or(0)
    };
    let (shrinking, growing): (Vec<_>, Vec<_>) =
        wanted.into_iter().partition(|(q, share)| *share == 0 || *share < current_share(q));
    for phase in [shrinking, growing] {
        try_join_all(phase.iter().map(|(q, _)| {
            let api: Api<ResourceQuota> =
                Api::namespaced(ctx.client.clone(), q.metadata.namespace.as_deref().unwrap_or_default());
            async move { apply_if_changed(&api, q, cached(&ctx.quotas, q)).await }
        }))
        .await?;
    }
    Ok(())
}

fn claimant(org: &Organization) -> Claimant<'_> {
    Claimant {
        name: org.metadata.name.as_deref().unwrap_or_default(),
        uid: org.metadata.uid.as_deref().unwrap_or_default(),
        created: org.metadata.creation_timestamp.as_ref(),
        owners: &org.spec.owners,
    }
}

fn live_uid(ctx: &Context, name: &str) -> Option<String> {
    ctx.organization(name).and_then(|o| o.metadata.uid)
}

/// Claims the home namespace for `org` (the rules are `tenancy::claim::home_claim`'s).
async fn claim_home(
    org: &Organization,
    namespace: &Namespace,
    ctx: &Context,
) -> Result<std::result::Result<bool, Refusal>> {
    let home = namespace.metadata.name.clone().unwrap_or_default();
    super::claims::claim_namespace(namespace, ctx, |current| {
        claim::home_claim(&claimant(org), &org.spec.slug, &home, current, |n| live_uid(ctx, n))
    })
    .await
}

/// Whether `org` holds its home namespace (or may re-adopt it): only then are the namespaces
/// labelled with its name and slug its own to retain or delete. Read fresh, for deletions.
pub(super) async fn holds_home(org: &Organization, ctx: &Context) -> Result<bool> {
    let home = home_namespace(&org.spec.slug);
    let meta = Api::<Namespace>::all(ctx.client.clone()).get_metadata_opt(&home).await?.map(|m| m.metadata);
    let verdict = claim::home_claim(&claimant(org), &org.spec.slug, &home, meta.as_ref(), |n| live_uid(ctx, n));
    Ok(matches!(verdict, Claim::Ours | Claim::Adopt { .. }))
}

/// Ready=False for an organization that may not provision into its slug's namespace.
async fn refuse(org: &Organization, ctx: &Context, refusal: Refusal) -> Result<Action> {
    let ready = conditions::new(CONDITION_READY, false, refusal.reason, refusal.message, org.metadata.generation);
    let outcome = Outcome { ready, phase: Phase::Provisioning, plan: None, desired: None, extra: vec![] };
    write_status(org, ctx, outcome).await?;
    Ok(Action::requeue(BLOCKED_RECHECK))
}

fn current_phase(org: &Organization) -> Phase {
    org.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
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
    let status = OrganizationStatus {
        phase: Some(outcome.phase),
        effective_plan: outcome.plan.clone().or(previous.effective_plan.clone()),
        namespace: outcome
            .desired
            .as_ref()
            .and_then(|d| d.namespace.metadata.name.clone())
            .or(previous.namespace.clone()),
        url: outcome.desired.as_ref().map(|d| d.url.clone()).or(previous.url.clone()),
        hosts: outcome.desired.as_ref().map(|d| d.hosts.clone()).unwrap_or(previous.hosts.clone()),
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
    let written = apply_status(&api, &org.name_any(), body).await?;
    ctx.own_writes.wrote(KIND, &org.name_any(), org.resource_version().as_deref(), written.as_deref());
    Ok(())
}

async fn publish_transitions(
    org: &Organization,
    ctx: &Context,
    before: &OrganizationStatus,
    after: &OrganizationStatus,
) {
    let reason_of = |s: &OrganizationStatus| {
        condition(&s.conditions, CONDITION_READY).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let mut events = Vec::new();
    if let Some((status, reason, message)) = reason_of(after).filter(|now| Some(now) != reason_of(before).as_ref()) {
        let type_ = if status == "True" { EventType::Normal } else { EventType::Warning };
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
    if let Some(limits) = condition(&after.conditions, "WithinLimits").filter(|c| c.status == "False")
        && condition(&before.conditions, "WithinLimits").map(|c| &c.message) != Some(&limits.message)
    {
        events.push((EventType::Warning, "LimitExceeded".into(), limits.message.clone()));
    }
    let usage_limit = |s: &OrganizationStatus| {
        condition(&s.conditions, metering::status::CONDITION).map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = usage_limit(after)
        && usage_limit(before).map(|(r, _)| r) != Some(reason.clone())
        // The first look at an organization below 80 % is no news.
        && !(reason == "Ok" && usage_limit(before).is_none())
    {
        let type_ = if reason == "Ok" { EventType::Normal } else { EventType::Warning };
        events.push((type_, format!("Usage{reason}"), message));
    }
    let reference = org.object_ref(&());
    for (type_, reason, note) in events {
        super::publish(ctx, &reference, type_, &reason, "Reconcile", note).await;
    }
}

/// Deletion: Retain keeps the namespaces (home and teams) and their data and removes the
/// access bindings; Delete removes the namespaces and waits until they are gone. The
/// organization's Team objects go too. Only objects labelled for this Organization are touched.
async fn cleanup(org: &Organization, ctx: &Context) -> Result<Action> {
    let name = org.name_any();
    let reference = org.object_ref(&());
    if super::crd_is_being_removed::<Organization>(ctx).await? {
        // Uninstalling or re-installing the CRDs deletes every Organization. That must never
        // cost a tenant its namespaces or access: keep everything for re-adoption.
        let note = format!(
            "the Organization CRD is being removed: the namespaces of {name}, their data and access are kept and re-adopted when the Organization returns"
        );
        super::publish(ctx, &reference, EventType::Warning, "CRDRemoved", "Delete", note).await;
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

    let teams_api: Api<Team> = Api::all(ctx.client.clone());
    let own_teams = ctx.teams_of(&name);
    for team in own_teams.iter().filter(|t| t.metadata.deletion_timestamp.is_none()) {
        delete_if_exists(&teams_api, &team.name_any()).await?;
    }
    if !own_teams.is_empty() {
        // Their finalizers see the organization terminating and leave the namespaces to us.
        return Err(Error::Waiting(format!("{} teams of {name} are being deleted", own_teams.len())));
    }

    // Access to the organization's custom resources ends with it, whatever the policy.
    let access = access::access_name(&name);
    delete_if_exists(&Api::<ClusterRoleBinding>::all(ctx.client.clone()), &access).await?;
    delete_if_exists(&Api::<ClusterRole>::all(ctx.client.clone()), &access).await?;

    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    if !holds_home(org, ctx).await? {
        // Never provisioned (its slug was held by someone else): the namespaces labelled with its
        // name and slug are another tenant's retained data, which its deletion policy must not touch.
        ctx.metrics.remove_organization(&name);
        return Ok(Action::await_change());
    }
    let selector = teams::organization_selector(&org.spec.slug, &name);
    let owned = namespaces.list(&ListParams::default().labels(&selector)).await?.items;
    match org.spec.deletion_policy {
        DeletionPolicy::Retain => {
            for ns in &owned {
                let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns.name_any());
                let params = ListParams::default().labels(&format!("{ORGANIZATION_OBJECT}={name}"));
                bindings.delete_collection(&DeleteParams::default(), &params).await?;
            }
            if !owned.is_empty() {
                let kept: Vec<String> = owned.iter().map(|n| n.name_any()).collect();
                let note = format!(
                    "namespaces {} and their data kept (deletionPolicy Retain); access bindings removed",
                    kept.join(", ")
                );
                super::publish(ctx, &reference, EventType::Normal, "Retained", "Delete", note).await;
            }
        }
        DeletionPolicy::Delete => {
            for ns in owned.iter().filter(|ns| ns.metadata.deletion_timestamp.is_none()) {
                delete_if_exists(&namespaces, &ns.name_any()).await?;
                let note = format!("deleting namespace {} (deletionPolicy Delete)", ns.name_any());
                super::publish(ctx, &reference, EventType::Normal, "Deleting", "Delete", note).await;
            }
            if !owned.is_empty() {
                return Err(Error::Waiting(format!("{} namespaces of {name} are terminating", owned.len())));
            }
        }
    }
    ctx.metrics.remove_organization(&name);
    Ok(Action::await_change())
}

/// The organization's Subscriptions. Before its first provisioning they are read from the API:
/// the Subscription cache is a separate watch, and an Organization applied together with its
/// Subscription can reach us first, which would provision it on the default plan for a moment.
async fn subscriptions_for(org: &Organization, ctx: &Context) -> Result<Vec<Subscription>> {
    let name = org.name_any();
    if org.status.as_ref().is_some_and(|s| s.namespace.is_some()) {
        return Ok(ctx.subscriptions_of(&name));
    }
    // One organization's Subscriptions only (a selectable field of the CRD), not every one in the cluster.
    let params = ListParams::default().fields(&format!("spec.organization={name}"));
    let found = Api::<DeserializeGuard<Subscription>>::all(ctx.client.clone()).list(&params).await?;
    Ok(found.items.into_iter().filter_map(|g| g.0.ok()).collect())
}
