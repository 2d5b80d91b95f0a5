//! Reconcilers and their wiring: shared informer caches, watches that map changes back to the
//! affected Organization, bounded concurrency, graceful shutdown.

mod api_key;
pub(crate) mod apply;
mod caches;
mod claims;
mod conditions;
mod context;
mod lifecycle;
mod meter_pusher;
mod organization;
mod own_writes;
mod plan;
mod storage_sampler;
mod subscription;
mod team;
mod usage_watch;
mod volume_claims;

pub use context::Context;

use crate::api::{Organization, Plan, Subscription, Team};
use crate::error::Error;
use crate::leader::Leadership;
use crate::metrics::{ErrorLabels, KindLabels, Metrics, ReconcileLabels};
use crate::settings::Settings;
use crate::tenancy::labels::{ORGANIZATION_OBJECT, TEAM_OBJECT, managed_selector};
use crate::tenancy::teams;
use caches::spawn_cache;
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::core::error_boundary::InvalidObject;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

type OrgRef = ObjectRef<DeserializeGuard<Organization>>;
type TeamRef = ObjectRef<DeserializeGuard<Team>>;
type PlanRef = ObjectRef<DeserializeGuard<Plan>>;
type SubRef = ObjectRef<DeserializeGuard<Subscription>>;

/// Runs every controller until `shutdown` resolves; in-flight reconciles finish first.
///
/// Reconcilers decide from caches (Organizations, Plans, Subscriptions, Teams, and the metadata
/// of managed namespaces, bindings and quotas). Each cache is one watch whose events, *after*
/// the cache has taken them, trigger the reconciles they affect — so no reconcile ever sees a
/// cache older than its trigger, and deletions trigger too. Every cache is complete before the
/// first reconcile, so nothing is decided from a partial list after a restart.
/// What the controllers run with besides the client.
pub struct Options {
    pub settings: Settings,
    /// Objects of one kind reconciled at the same time.
    pub concurrency: u16,
    /// Filled with the context once the caches are: the admission webhook answers from it.
    pub context_slot: Arc<std::sync::OnceLock<Arc<Context>>>,
    pub metrics: Arc<Metrics>,
    pub audit: Option<crate::ledger::AuditLog>,
    /// Controllers run only while this replica leads; every replica fills caches and serves
    /// the webhook.
    pub leadership: Leadership,
    pub billing: Arc<crate::billing::Billing>,
    /// Organizations whose metered totals changed (usage ingestion on this replica): re-reconciled at once,
    /// so their usage status and limits follow. Other replicas' ingestion is found in the ledger (`usage_watch`).
    pub usage_changed: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    /// Where usage totals are read (None: no usage in the status).
    pub ledger: Option<crate::ledger::Ledger>,
    /// How long after a billing period closes its late usage is still taken (`--usage-grace-hours`): the
    /// meter pusher pushes corrections until then, then compares the period with Stripe.
    pub usage_grace: jiff::SignedDuration,
}

pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let Options {
        settings,
        concurrency,
        context_slot,
        metrics,
        audit,
        mut leadership,
        billing,
        usage_changed,
        ledger,
        usage_grace,
    } = options;
    let shutdown = shutdown.shared();
    let all = watcher::Config::default();
    let managed = watcher::Config::default().labels(&managed_selector());
    let (org_tx, org_rx) = mpsc::unbounded::<OrgRef>();
    let (team_tx, team_rx) = mpsc::unbounded::<TeamRef>();
    let (sub_tx, sub_rx) = mpsc::unbounded::<SubRef>();
    let (plan_tx, plan_rx) = mpsc::unbounded::<PlanRef>();

    let (teams, teams_writer) = reflector::store::<DeserializeGuard<Team>>();
    let (organizations, organizations_writer) = reflector::store::<DeserializeGuard<Organization>>();
    let (subscriptions, subscriptions_writer) = reflector::store::<DeserializeGuard<Subscription>>();
    let (plans, plans_writer) = reflector::store::<DeserializeGuard<Plan>>();

    spawn_cache(Api::all(client.clone()), all.clone(), teams_writer, {
        let (org_tx, team_tx) = (org_tx.clone(), team_tx.clone());
        move |team: &DeserializeGuard<Team>, _, teams: &Store<DeserializeGuard<Team>>| {
            if let Ok(t) = &team.0 {
                send(&org_tx, [ObjectRef::new(&t.spec.organization)]);
            }
            // The team itself and its subtree: placement, paths and inherited bindings.
            send(&team_tx, std::iter::once(ObjectRef::from_obj(team)).chain(subtree_of(teams, team)));
        }
    });
    spawn_cache(Api::all(client.clone()), all.clone(), organizations_writer, {
        let (teams, subscriptions) = (teams.clone(), subscriptions.clone());
        let (team_tx, sub_tx) = (team_tx.clone(), sub_tx.clone());
        let org_tx = org_tx.clone();
        move |org: &DeserializeGuard<Organization>, _, _: &Store<DeserializeGuard<Organization>>| {
            send(&org_tx, [ObjectRef::from_obj(org)]);
            send(&team_tx, teams_of_organization(&teams, &org.name_any()));
            send(&sub_tx, subscriptions_of_organization(&subscriptions, &org.name_any()));
        }
    });
    spawn_cache(Api::all(client.clone()), all.clone(), subscriptions_writer, {
        let (org_tx, sub_tx) = (org_tx.clone(), sub_tx.clone());
        move |sub: &DeserializeGuard<Subscription>, _, _: &Store<DeserializeGuard<Subscription>>| {
            if let Ok(s) = &sub.0 {
                send(&org_tx, [ObjectRef::new(&s.spec.organization)]);
            }
            send(&sub_tx, [ObjectRef::from_obj(sub)]);
        }
    });
    spawn_cache(Api::all(client.clone()), all.clone(), plans_writer, {
        let (organizations, subscriptions) = (organizations.clone(), subscriptions.clone());
        let (org_tx, sub_tx, plan_tx) = (org_tx.clone(), sub_tx.clone(), plan_tx.clone());
        move |plan: &DeserializeGuard<Plan>, _, _: &Store<DeserializeGuard<Plan>>| {
            send(&plan_tx, [ObjectRef::from_obj(plan)]);
            let name = plan.name_any();
            send(&org_tx, organizations_on_plan(&organizations, &name));
            let on_plan = subscriptions.state().into_iter().filter(|g| g.0.as_ref().is_ok_and(|s| s.spec.plan == name));
            send(&sub_tx, on_plan.map(|g| ObjectRef::from_obj(&*g)));
        }
    });
    let namespaces = managed_cache::<Namespace>(&client, &managed, &org_tx, &team_tx, false);
    let role_bindings = managed_cache::<RoleBinding>(&client, &managed, &org_tx, &team_tx, false);
    // Every quota of an organization, team namespaces' too, is sized by its Organization.
    let quotas = managed_cache::<ResourceQuota>(&client, &managed, &org_tx, &team_tx, true);
    let limit_ranges = managed_cache::<LimitRange>(&client, &managed, &org_tx, &team_tx, false);
    let network_policies = managed_cache::<NetworkPolicy>(&client, &managed, &org_tx, &team_tx, false);
    let ingresses = managed_cache::<Ingress>(&client, &managed, &org_tx, &team_tx, false);
    let services = managed_cache::<Service>(&client, &managed, &org_tx, &team_tx, false);
    let access_roles = managed_cache::<ClusterRole>(&client, &managed, &org_tx, &team_tx, true);
    let access_bindings = managed_cache::<ClusterRoleBinding>(&client, &managed, &org_tx, &team_tx, true);
    let (cluster_role_bindings, crb_writer) = reflector::store::<ClusterRoleBinding>();
    spawn_cache(Api::all(client.clone()), all.clone(), crb_writer, |_: &ClusterRoleBinding, _, _: &Store<_>| {});
    // Read by the storage sampler alone, which waits for it to fill.
    let volume_claims = volume_claims::spawn(&client);

    let ready = tokio::join!(
        organizations.wait_until_ready(),
        teams.wait_until_ready(),
        subscriptions.wait_until_ready(),
        plans.wait_until_ready(),
        namespaces.wait_until_ready(),
        role_bindings.wait_until_ready(),
        quotas.wait_until_ready(),
        limit_ranges.wait_until_ready(),
        network_policies.wait_until_ready(),
        ingresses.wait_until_ready(),
        services.wait_until_ready(),
    );
    let more = tokio::join!(
        access_roles.wait_until_ready(),
        access_bindings.wait_until_ready(),
        cluster_role_bindings.wait_until_ready()
    );
    let filled = [
        ready.0, ready.1, ready.2, ready.3, ready.4, ready.5, ready.6, ready.7, ready.8, ready.9, ready.10, more.0,
        more.1, more.2,
    ];
    if filled.iter().any(Result::is_err) {
        anyhow::bail!("a cache stopped before it was filled");
    }
    tracing::info!("caches filled; starting controllers");

    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: metrics.clone(),
        audit,
        settings,
        billing: billing.clone(),
        ledger,
        recorder: Recorder::new(client.clone(), Context::reporter()),
        own_writes: Default::default(),
        organizations,
        plans,
        subscriptions,
        namespaces,
        role_bindings,
        quotas,
        teams,
        limit_ranges,
        network_policies,
        ingresses,
        services,
        access_roles,
        access_bindings,
        cluster_role_bindings,
    });
    // The admission webhook answers from the same caches, from now on.
    let _ = context_slot.set(ctx.clone());
    if !leadership.is_leader() {
        tracing::info!("waiting for the leader lease before reconciling");
    }
    tokio::select! {
        _ = leadership.acquired() => {}
        _ = shutdown.clone() => return Ok(()),
    }
    metrics.leader.set(1);
    // Stripe webhooks received by this replica now trigger Subscription reconciles directly.
    billing.set_trigger(sub_tx.clone());

    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let on_shutdown = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    // The controllers read the shared caches above instead of keeping their own watch and copy of
    // every object (the cache watches trigger them), so they start with everything in them.
    send(&org_tx, ctx.organizations.state().iter().map(|o| ObjectRef::from_obj(&**o)));
    if let Some(mut changed) = usage_changed {
        let org_tx = org_tx.clone();
        tokio::spawn(async move {
            while let Some(name) = changed.recv().await {
                send(&org_tx, [ObjectRef::new(&name)]);
            }
        });
    }
    send(&team_tx, ctx.teams.state().iter().map(|o| ObjectRef::from_obj(&**o)));
    send(&sub_tx, ctx.subscriptions.state().iter().map(|o| ObjectRef::from_obj(&**o)));
    send(&plan_tx, ctx.plans.state().iter().map(|o| ObjectRef::from_obj(&**o)));
    let config = kube::runtime::controller::Config::default().concurrency(concurrency);
    let organization_controller = Controller::for_stream(futures::stream::pending(), ctx.organizations.clone())
        .with_config(config.clone())
        .reconcile_on(org_rx)
        .graceful_shutdown_on(on_shutdown(&shutdown_tx))
        .run(|o, c| timed("Organization", organization::reconcile(o, c.clone()), c), error_policy, ctx.clone())
        .for_each(|result| async move { log_result("Organization", result) })
        .then(|_| async { tracing::info!("Organization controller stopped") });

    let team_controller = Controller::for_stream(futures::stream::pending(), ctx.teams.clone())
        .with_config(config)
        .reconcile_on(team_rx)
        .graceful_shutdown_on(on_shutdown(&shutdown_tx))
        .run(|o, c| timed("Team", team::reconcile(o, c.clone()), c), error_policy, ctx.clone())
        .for_each(|result| async move { log_result("Team", result) })
        .then(|_| async { tracing::info!("Team controller stopped") });

    let plan_controller = Controller::for_stream(futures::stream::pending(), ctx.plans.clone())
        .reconcile_on(plan_rx)
        .graceful_shutdown_on(on_shutdown(&shutdown_tx))
        .run(|o, c| timed("Plan", plan::reconcile(o, c.clone()), c), error_policy, ctx.clone())
        .for_each(|result| async move { log_result("Plan", result) })
        .then(|_| async { tracing::info!("Plan controller stopped") });

    let subscription_controller = Controller::for_stream(futures::stream::pending(), ctx.subscriptions.clone())
        .reconcile_on(sub_rx)
        .graceful_shutdown_on(on_shutdown(&shutdown_tx))
        .run(|o, c| timed("Subscription", subscription::reconcile(o, c.clone()), c), error_policy, ctx.clone())
        .for_each(|result| async move { log_result("Subscription", result) })
        .then(|_| async { tracing::info!("Subscription controller stopped") });

    // Stops with the controllers: on shutdown, or when the lease is lost (no push without the lease).
    let meter_pusher = {
        let ctx = ctx.clone();
        let stopped = on_shutdown(&shutdown_tx);
        async move {
            tokio::select! {
                _ = meter_pusher::run(ctx, usage_grace) => {}
                _ = stopped => {}
            }
        }
    };
    let api_keys = api_key::run(ctx.clone(), on_shutdown(&shutdown_tx));
    let sampler = storage_sampler::run(ctx.clone(), volume_claims, org_tx.clone(), on_shutdown(&shutdown_tx));
    let usage_watch = {
        let (ctx, org_tx, stopped) = (ctx.clone(), org_tx.clone(), on_shutdown(&shutdown_tx));
        async move {
            tokio::select! {
                _ = usage_watch::run(ctx, org_tx) => {}
                _ = stopped => {}
            }
        }
    };
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight reconciles");
        let _ = shutdown_tx.send(());
    };
    let controllers = async {
        tokio::join!(
            organization_controller,
            team_controller,
            plan_controller,
            subscription_controller,
            meter_pusher,
            api_keys,
            sampler,
            usage_watch,
            signal
        );
    };
    tokio::select! {
        _ = controllers => Ok(()),
        _ = leadership.lost() => {
            metrics.leader.set(0);
            // Dropping the controllers cancels every reconcile in flight: no write without the lease.
            anyhow::bail!("lost the leader lease; exiting so that a restart rejoins as a follower")
        }
    }
}

/// Runs one reconcile and records its outcome and duration.
async fn timed(
    kind: &'static str,
    reconcile: impl Future<Output = Result<Action, Error>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile.await;
    let m = &ctx.metrics;
    m.reconcile_duration.get_or_create(&KindLabels { kind: kind.into() }).observe(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() { "success" } else { "error" };
    m.reconciles.get_or_create(&ReconcileLabels { kind: kind.into(), result: outcome.into() }).inc();
    if let Err(err) = &result {
        m.reconcile_errors.get_or_create(&ErrorLabels { kind: kind.into(), category: err.category().into() }).inc();
    }
    result
}

fn send<K: Resource>(tx: &mpsc::UnboundedSender<ObjectRef<K>>, refs: impl IntoIterator<Item = ObjectRef<K>>)
where
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    for r in refs {
        // A closed channel means the controller has shut down; nothing left to trigger.
        let _ = tx.unbounded_send(r);
    }
}

/// A metadata cache of managed objects whose deletions and foreign changes trigger their
/// Organization or Team.
fn managed_cache<K>(
    client: &Client,
    managed: &watcher::Config,
    org_tx: &mpsc::UnboundedSender<OrgRef>,
    team_tx: &mpsc::UnboundedSender<TeamRef>,
    always_organization: bool,
) -> Store<PartialObjectMeta<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let (org_tx, team_tx) = (org_tx.clone(), team_tx.clone());
    spawn_cache(
        Api::all(client.clone()),
        managed.clone(),
        writer,
        move |obj: &PartialObjectMeta<K>, change, _: &Store<_>| {
            if !caches::is_drift(obj, change) {
                return;
            }
            let labels = obj.labels();
            if always_organization || !labels.contains_key(TEAM_OBJECT) {
                send(&org_tx, labels.get(ORGANIZATION_OBJECT).map(|n| ObjectRef::new(n)));
            }
            send(&team_tx, labels.get(TEAM_OBJECT).map(|n| ObjectRef::new(n)));
        },
    );
    store
}

/// The descendants of a changed team, from the cache.
fn subtree_of(
    store: &Store<DeserializeGuard<Team>>,
    team: &DeserializeGuard<Team>,
) -> Vec<ObjectRef<DeserializeGuard<Team>>> {
    let Ok(team) = &team.0 else { return Vec::new() };
    let org = &team.spec.organization;
    let all: Vec<Team> = store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().filter(|t| &t.spec.organization == org).cloned())
        .collect();
    let index = teams::index(&team.spec.organization, all.iter());
    teams::descendants(&team.name_any(), &index).into_iter().map(|name| ObjectRef::new(&name)).collect()
}

fn teams_of_organization(store: &Store<DeserializeGuard<Team>>, org: &str) -> Vec<ObjectRef<DeserializeGuard<Team>>> {
    store
        .state()
        .iter()
        .filter(|g| g.0.as_ref().is_ok_and(|t| t.spec.organization == org))
        .map(|g| ObjectRef::from_obj(&**g))
        .collect()
}

/// Organizations to re-map when a Plan changes: those on it, and those not Ready yet
/// (they may have been waiting for this Plan to exist).
fn organizations_on_plan(
    store: &Store<DeserializeGuard<Organization>>,
    plan: &str,
) -> Vec<ObjectRef<DeserializeGuard<Organization>>> {
    store
        .state()
        .iter()
        .filter(|guard| match &guard.0 {
            Ok(org) => {
                let status = org.status.clone().unwrap_or_default();
                status.effective_plan.as_deref() == Some(plan)
                    || crate::api::condition(&status.conditions, crate::api::CONDITION_READY)
                        .is_none_or(|c| c.status != "True")
            }
            Err(_) => false,
        })
        .map(|guard| ObjectRef::from_obj(&**guard))
        .collect()
}

fn subscriptions_of_organization(store: &Store<DeserializeGuard<Subscription>>, org: &str) -> Vec<SubRef> {
    store
        .state()
        .iter()
        .filter(|g| g.0.as_ref().is_ok_and(|s| s.spec.organization == org))
        .map(|g| ObjectRef::from_obj(&**g))
        .collect()
}

fn error_policy<K>(obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action
where
    K: Resource,
{
    match err {
        Error::Waiting(what) => {
            tracing::debug!(object = %obj.meta().name.clone().unwrap_or_default(), %what, "waiting");
            Action::requeue(Duration::from_secs(1))
        }
        Error::Blocked(what) => {
            tracing::info!(object = %obj.meta().name.clone().unwrap_or_default(), %what, "deletion blocked");
            Action::requeue(Duration::from_secs(5))
        }
        Error::Conflict(what) => {
            tracing::debug!(object = %obj.meta().name.clone().unwrap_or_default(), %what, "stale cache; retrying");
            Action::requeue(Duration::from_millis(200))
        }
        other => {
            tracing::warn!(object = %obj.meta().name.clone().unwrap_or_default(), category = other.category(), error = %other, "reconcile failed");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

fn log_result<K: Resource, E1: std::fmt::Display, E2: std::fmt::Display>(
    kind: &str,
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E1, E2>>,
) {
    match result {
        Ok((obj, _)) => tracing::debug!(kind, name = %obj.name, "reconciled"),
        Err(kube::runtime::controller::Error::ReconcilerFailed(_, _)) => {} // logged by error_policy
        Err(err) => tracing::warn!(kind, error = %err, "controller error"),
    }
}

/// The object, or None once it has been reported as one the operator cannot read.
pub(crate) async fn readable<'a, K: Resource<DynamicType = ()>>(
    guard: &'a DeserializeGuard<K>,
    ctx: &Context,
) -> Option<&'a K> {
    match &guard.0 {
        Ok(obj) => Some(obj),
        Err(invalid) => {
            report_invalid::<K>(ctx, invalid).await;
            None
        }
    }
}

/// An object that passes the CRD schema but not the operator's types: reported, never fatal.
async fn report_invalid<K: Resource<DynamicType = ()>>(ctx: &Context, invalid: &InvalidObject) {
    let name = invalid.metadata.name.clone().unwrap_or_default();
    tracing::warn!(kind = %K::kind(&()), %name, error = %invalid.error, "invalid object skipped");
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(name),
        uid: invalid.metadata.uid.clone(),
        ..Default::default()
    };
    let note = format!("the operator cannot read this object: {}", invalid.error);
    publish(ctx, &reference, EventType::Warning, "InvalidSpec", "Reconcile", note).await;
}

/// Publishes an Event. kube's recorder folds events with the same type, reason and action into
/// one series that keeps the first note, so the action carries a digest of the note: a new
/// message is a new event, a repeated one still counts up its series.
pub(crate) async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut hasher);
    let event = Event {
        type_,
        reason: reason.into(),
        action: format!("{action}/{:08x}", hasher.finish() as u32),
        note: Some(truncate(note, MAX_EVENT_NOTE)),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, reference).await {
        tracing::warn!(object = ?reference.name, %reason, error = %err, "publishing event failed");
    }
    // Events mark the transitions of a tenant (provisioned, plan changed, suspended, deleted...):
    // the audit log keeps them beyond the events' one-hour lifetime.
    if let Some(audit) = &ctx.audit {
        use crate::ledger::{AuditRecord, AuditResult};
        let kind = reference.kind.clone().unwrap_or_default();
        let name = reference.name.clone().unwrap_or_default();
        let organization = match kind.as_str() {
            "Team" => name.split('.').next().unwrap_or_default().to_string(),
            _ => name.clone(),
        };
        let result = if matches!(type_, EventType::Warning) { AuditResult::Failed } else { AuditResult::Succeeded };
        let record = AuditRecord::new("atlantiplex-operator", organization, kind, name, reason, result)
            .with_reason(event.note.clone().unwrap_or_default());
        if let Err(err) = audit.record(record) {
            tracing::warn!(error = %err, "audit record not accepted");
        }
    }
}

/// The API server refuses event notes over 1 kB.
const MAX_EVENT_NOTE: usize = 1024;

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// Whether the CRD of `K` is being deleted (or gone): an uninstall or re-install, during which
/// finalizers must not act on tenants.
pub(crate) async fn crd_is_being_removed<K: Resource<DynamicType = ()>>(ctx: &Context) -> crate::error::Result<bool> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let name = format!("{}.{}", K::plural(&()), K::group(&()));
    Ok(crds.get_opt(&name).await?.is_none_or(|crd| crd.metadata.deletion_timestamp.is_some()))
}
