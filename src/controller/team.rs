//! The Team reconciler: place the team in its organization's tree, check limits, provision its
//! namespace (bindings inherited from ancestors and the organization, network policy, limit
//! range, a zero quota that the Organization controller sizes), report path and depth.

use super::apply::{apply, apply_if_changed, apply_status, delete_if_exists};
use super::conditions;
use super::context::{Context, cached};
use crate::api::{CONDITION_READY, DeletionPolicy, Organization, Plan, Team, TeamStatus, condition};
use crate::error::{Error, Result};
use crate::tenancy::claim::{self, Refusal};
use crate::tenancy::labels::{FIELD_MANAGER, QUOTA_NAME, TEAM_FINALIZER, TEAM_OBJECT, team_namespace};
use crate::tenancy::teams::{self, TeamProblem};
use crate::tenancy::{Tenant, quota};
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(30 * 60);
/// The organization's changes trigger its teams; this is only a safety net.
const NOT_READY_RECHECK: Duration = Duration::from_secs(60);

const KIND: &str = "Team";

pub async fn reconcile(guard: Arc<DeserializeGuard<Team>>, ctx: Arc<Context>) -> Result<Action> {
    let ctx: &Context = &ctx;
    let provision_with = |team: Arc<Team>| async move { provision(&team, ctx).await };
    let cleanup_with = |team: Arc<Team>| async move { cleanup(&team, ctx).await };
    super::lifecycle::reconcile(&*guard, ctx, KIND, TEAM_FINALIZER, provision_with, cleanup_with).await
}

/// The organization, when it is Ready: teams build on its slug, plan and grants.
fn ready_organization(team: &Team, ctx: &Context) -> std::result::Result<Organization, Box<Condition>> {
    let generation = team.metadata.generation;
    let Some(org) = ctx.organization(&team.spec.organization) else {
        let message = format!(
            "spec.organization {:?} does not exist: create the Organization first (teams are provisioned once it is Ready)",
            team.spec.organization
        );
        return Err(Box::new(conditions::new(CONDITION_READY, false, "OrganizationNotFound", message, generation)));
    };
    let ready = org.status.as_ref().and_then(|s| condition(&s.conditions, CONDITION_READY).cloned());
    match ready {
        Some(c) if c.status == "True" => Ok(org),
        other => {
            let why = other.map(|c| format!(" ({}: {})", c.reason, c.message)).unwrap_or_default();
            let message = format!("Organization {} is not Ready yet{why}", team.spec.organization);
            Err(Box::new(conditions::new(CONDITION_READY, false, "OrganizationNotReady", message, generation)))
        }
    }
}

/// A new team of an organization the operator has not reconciled yet (no Ready condition either way).
fn organization_provisioning(team: &Team, ctx: &Context) -> bool {
    let no_ready =
        |conditions: Option<&Vec<Condition>>| conditions.is_none_or(|c| condition(c, CONDITION_READY).is_none());
    no_ready(team.status.as_ref().map(|s| &s.conditions))
        && ctx
            .organization(&team.spec.organization)
            .is_some_and(|org| no_ready(org.status.as_ref().map(|s| &s.conditions)))
}

async fn provision(team: &Team, ctx: &Context) -> Result<Action> {
    let generation = team.metadata.generation;
    let name = team.name_any();
    let org = match ready_organization(team, ctx) {
        Ok(org) => org,
        // The organization's first provisioning is under way: its status write triggers this team.
        // Saying "not ready" meanwhile would cost a status write and a Warning event per team, for
        // seconds, every time a tenant is created with its teams.
        Err(_) if organization_provisioning(team, ctx) => return Ok(Action::requeue(NOT_READY_RECHECK)),
        Err(not_ready) => {
            write_status(team, ctx, *not_ready, None, vec![]).await?;
            return Ok(Action::requeue(NOT_READY_RECHECK));
        }
    };
    let plan_name = org.status.as_ref().and_then(|s| s.effective_plan.clone()).unwrap_or_default();
    let Some(plan) = ctx.plan(&plan_name) else {
        let message = format!("plan {plan_name:?} of Organization {} does not exist", org.name_any());
        let ready = conditions::new(CONDITION_READY, false, "OrganizationNotReady", message, generation);
        write_status(team, ctx, ready, None, vec![]).await?;
        return Ok(Action::requeue(RESYNC));
    };

    let all_teams = ctx.teams_of(&team.spec.organization);
    let index = teams::index(&org.name_any(), all_teams.iter().filter(|t| t.metadata.deletion_timestamp.is_none()));
    let placement = match teams::place(team, &org.spec.slug, &index, ctx.settings.max_team_depth) {
        Ok(placement) => placement,
        Err(problem) => return refuse(team, ctx, problem).await,
    };
    if !teams::within_team_limit(&index, plan.spec.limits.teams).contains(&name) {
        let problem =
            TeamProblem::TeamLimitExceeded { limit: plan.spec.limits.teams.unwrap_or_default(), plan: plan_name };
        return refuse(team, ctx, problem).await;
    }

    let tenant = team_tenant(&org, &plan_name, &plan, ctx);
    let desired = teams::desired_team(&tenant, team, &placement, &index);
    let ns = placement.namespace.clone();
    let namespace = &desired.namespace;
    match claim_namespace(team, &org.spec.slug, namespace, ctx).await? {
        Ok(true) => {}
        Ok(false) => {
            apply_if_changed(&Api::<Namespace>::all(ctx.client.clone()), namespace, cached(&ctx.namespaces, namespace))
                .await?;
        }
        Err(refusal) => {
            let ready = conditions::new(CONDITION_READY, false, refusal.reason, refusal.message, generation);
            write_status(team, ctx, ready, None, vec![]).await?;
            return Ok(Action::requeue(NOT_READY_RECHECK));
        }
    }
    ensure_zero_quota(&tenant, &name, &ns, ctx).await?;
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let stale: Vec<&String> = desired
        .absent_bindings
        .iter()
        .filter(|b| ctx.role_bindings.get(&ObjectRef::new(b).within(&ns)).is_some())
        .collect();
    let limit_ranges: Api<LimitRange> = Api::namespaced(ctx.client.clone(), &ns);
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let (lr, np) = (&desired.limit_range, &desired.network_policy);
    tokio::try_join!(
        apply_if_changed(&limit_ranges, lr, cached(&ctx.limit_ranges, lr)),
        apply_if_changed(&policies, np, cached(&ctx.network_policies, np)),
        try_join_all(desired.bindings.iter().map(|b| apply_if_changed(&bindings, b, cached(&ctx.role_bindings, b)))),
        try_join_all(stale.into_iter().map(|b| delete_if_exists(&bindings, b))),
    )?;

    let (claims, _) = teams::quota_claims(
        &crate::tenancy::labels::home_namespace(&org.spec.slug),
        &org.spec.slug,
        &index,
        plan.spec.limits.teams,
        ctx.settings.max_team_depth,
    );
    let allocation = quota::allocate(&claims);
    let share = match allocation.rejected.get(&name) {
        Some(why) => conditions::new("QuotaShare", false, "ShareRejected", why.clone(), generation),
        None => {
            let ppm = allocation.shares.get(&ns).copied().unwrap_or(0);
            let message = format!("holds {:.1}% of plan {plan_name}'s quota", ppm as f64 / 10_000.0);
            conditions::new("QuotaShare", true, "Allocated", message, generation)
        }
    };
    let message = format!("team namespace {ns} provisioned at {}", placement.path);
    let ready = conditions::new(CONDITION_READY, true, "Provisioned", message, generation);
    write_status(team, ctx, ready, Some(&placement), vec![share]).await?;
    Ok(Action::requeue(RESYNC))
}

/// Claims the team's namespace (the rules are `tenancy::claim::team_claim`'s).
async fn claim_namespace(
    team: &Team,
    slug: &str,
    namespace: &Namespace,
    ctx: &Context,
) -> Result<std::result::Result<bool, Refusal>> {
    let (team_name, name) = (team.name_any(), namespace.metadata.name.clone().unwrap_or_default());
    super::claims::claim_namespace(namespace, ctx, |current| claim::team_claim(&team_name, slug, &name, current)).await
}

/// The organization as its team namespaces see it (the home namespace's share is not theirs).
fn team_tenant<'a>(org: &'a Organization, plan_name: &'a str, plan: &'a Plan, ctx: &'a Context) -> Tenant<'a> {
    Tenant {
        org,
        plan_name,
        plan,
        suspended: org.spec.suspended,
        usage_blocked: false,
        settings: &ctx.settings,
        home_share_ppm: 0,
    }
}

/// A team namespace never exists without a quota: until the Organization controller sizes it,
/// it grants nothing. Created only when absent, so it never undoes an allocation.
async fn ensure_zero_quota(tenant: &Tenant<'_>, team: &str, ns: &str, ctx: &Context) -> Result<()> {
    if ctx.quotas.get(&ObjectRef::new(QUOTA_NAME).within(ns)).is_some() {
        return Ok(());
    }
    let mut labels = tenant.labels();
    labels.insert(TEAM_OBJECT.into(), team.to_string());
    let meta = ObjectMeta {
        name: Some(QUOTA_NAME.into()),
        namespace: Some(ns.into()),
        labels: Some(labels),
        ..Default::default()
    };
    let zero = quota::resource_quota(tenant, meta, 0);
    // Our field manager on the create too, or the quota would look touched by someone else.
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match Api::<ResourceQuota>::namespaced(ctx.client.clone(), ns).create(&params, &zero).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn refuse(team: &Team, ctx: &Context, problem: TeamProblem) -> Result<Action> {
    let ready = conditions::new(CONDITION_READY, false, problem.reason(), problem.message(), team.metadata.generation);
    write_status(team, ctx, ready, None, vec![]).await?;
    Ok(Action::requeue(RESYNC))
}

async fn write_status(
    team: &Team,
    ctx: &Context,
    ready: Condition,
    placement: Option<&teams::Placement>,
    extra: Vec<Condition>,
) -> Result<()> {
    let previous = team.status.clone().unwrap_or_default();
    let mut desired = vec![ready];
    desired.extend(extra);
    let status = TeamStatus {
        namespace: placement.map(|p| p.namespace.clone()).or(previous.namespace.clone()),
        path: placement.map(|p| p.path.clone()).or(previous.path.clone()),
        depth: placement.map(|p| p.depth as i32).or(previous.depth),
        conditions: conditions::merge(&previous.conditions, desired),
        observed_generation: team.metadata.generation,
    };
    if status == previous {
        return Ok(());
    }
    let before = condition(&previous.conditions, CONDITION_READY).map(|c| (c.reason.clone(), c.message.clone()));
    if let Some(now) = condition(&status.conditions, CONDITION_READY)
        && before.as_ref() != Some(&(now.reason.clone(), now.message.clone()))
    {
        let type_ = if now.status == "True" { EventType::Normal } else { EventType::Warning };
        super::publish(ctx, &team.object_ref(&()), type_, &now.reason, "Reconcile", now.message.clone()).await;
    }
    let body = serde_json::json!({ "apiVersion": Team::api_version(&()), "kind": Team::kind(&()), "status": status });
    let written = apply_status(&Api::<Team>::all(ctx.client.clone()), &team.name_any(), body).await?;
    ctx.own_writes.wrote(KIND, &team.name_any(), team.resource_version().as_deref(), written.as_deref());
    Ok(())
}

/// Deletion: a team with child teams waits for them (deleting them first when
/// `allowCascadeDelete`); then its namespace follows the organization's deletion policy. When
/// the organization itself is going, or the CRD is, the namespaces are left to that.
async fn cleanup(team: &Team, ctx: &Context) -> Result<Action> {
    let name = team.name_any();
    let org = ctx.organization(&team.spec.organization);
    let org_going = org.as_ref().is_none_or(|o| o.metadata.deletion_timestamp.is_some());
    if org_going || super::crd_is_being_removed::<Team>(ctx).await? {
        return Ok(Action::await_change());
    }
    let Some(org) = org else { return Ok(Action::await_change()) };
    if !super::organization::holds_home(&org, ctx).await? {
        // Its organization never held the slug: a namespace of this name is another tenant's.
        return Ok(Action::await_change());
    }

    let all_teams = ctx.teams_of(&team.spec.organization);
    let children: Vec<&Team> = all_teams.iter().filter(|t| t.spec.parent.as_deref() == Some(name.as_str())).collect();
    if !children.is_empty() {
        let names: Vec<String> = children.iter().map(|c| c.name_any()).collect();
        if !team.spec.allow_cascade_delete {
            let message = format!(
                "team has child teams {}: delete them first, or set spec.allowCascadeDelete: true to delete them with it",
                names.join(", ")
            );
            let ready =
                conditions::new(CONDITION_READY, false, "DeletionBlocked", message.clone(), team.metadata.generation);
            write_status(team, ctx, ready, None, vec![]).await?;
            return Err(Error::Blocked(message));
        }
        let api: Api<Team> = Api::all(ctx.client.clone());
        for child in children.iter().filter(|c| c.metadata.deletion_timestamp.is_none()) {
            delete_if_exists(&api, &child.name_any()).await?;
        }
        return Err(Error::Waiting(format!("child teams {} are being deleted", names.join(", "))));
    }

    let ns = team_namespace(&org.spec.slug, &teams::short_name(team));
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let owned = namespaces.get_opt(&ns).await?.filter(|n| n.labels().get(TEAM_OBJECT) == Some(&name));
    let Some(owned) = owned else { return Ok(Action::await_change()) };
    match org.spec.deletion_policy {
        DeletionPolicy::Retain => {
            let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
            let params = ListParams::default().labels(&teams::team_selector(&name));
            bindings.delete_collection(&DeleteParams::default(), &params).await?;
            // The kept namespace leaves the organization's budget: its data stays, its quota
            // drops to nothing so the remaining namespaces can share the whole plan.
            let plan_name = org.status.as_ref().and_then(|s| s.effective_plan.clone()).unwrap_or_default();
            if let Some(plan) = ctx.plan(&plan_name) {
                let tenant = team_tenant(&org, &plan_name, &plan, ctx);
                let meta = ObjectMeta {
                    name: Some(QUOTA_NAME.into()),
                    namespace: Some(ns.clone()),
                    labels: owned.metadata.labels.clone(),
                    ..Default::default()
                };
                let quotas: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
                apply(&quotas, &quota::resource_quota(&tenant, meta, 0)).await?;
            }
            Ok(Action::await_change())
        }
        DeletionPolicy::Delete => {
            if owned.metadata.deletion_timestamp.is_none() {
                delete_if_exists(&namespaces, &ns).await?;
            }
            Err(Error::Waiting(format!("namespace {ns} is terminating")))
        }
    }
}
