//! Reconcilers and their wiring: shared informer caches, watches that map changes back to the
//! affected Organization, bounded concurrency, graceful shutdown.

mod apply;
mod conditions;
mod context;
mod organization;
mod plan;
mod subscription;

pub use context::Context;

use crate::api::{Organization, Plan, Subscription};
use crate::error::Error;
use crate::settings::Settings;
use crate::tenancy::labels::{ORGANIZATION_OBJECT, managed_selector};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::core::error_boundary::InvalidObject;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Runs every controller until `shutdown` resolves; in-flight reconciles finish first.
///
/// Caches the reconcilers read (Plans, Subscriptions, managed namespaces and bindings) are
/// filled by their own watches and are complete before the first reconcile, so no decision is
/// taken from a partial cache (e.g. "plan not found" right after a restart). Triggers are
/// separate watches, so deletions (a removed Subscription, a deleted managed object) trigger too.
pub async fn run(
    client: Client,
    settings: Settings,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let all = watcher::Config::default();
    let managed = watcher::Config::default().labels(&managed_selector());
    let plans = spawn_cache::<DeserializeGuard<Plan>>(Api::all(client.clone()), all.clone());
    let subscriptions =
        spawn_cache::<DeserializeGuard<Subscription>>(Api::all(client.clone()), all.clone());
    let namespaces =
        spawn_cache::<PartialObjectMeta<Namespace>>(Api::all(client.clone()), managed.clone());
    let role_bindings =
        spawn_cache::<PartialObjectMeta<RoleBinding>>(Api::all(client.clone()), managed.clone());
    let (p, s, n, r) = tokio::join!(
        plans.wait_until_ready(),
        subscriptions.wait_until_ready(),
        namespaces.wait_until_ready(),
        role_bindings.wait_until_ready()
    );
    p.and(s)
        .and(n)
        .and(r)
        .map_err(|_| anyhow::anyhow!("a cache stopped before it was filled"))?;
    tracing::info!("caches filled; starting controllers");

    let controller = Controller::new(
        Api::<DeserializeGuard<Organization>>::all(client.clone()),
        all.clone(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let organizations = controller.store();
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings,
        recorder: Recorder::new(client.clone(), Context::reporter()),
        organizations: organizations.clone(),
        plans,
        subscriptions: subscriptions.clone(),
        namespaces,
        role_bindings,
    });

    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let on_shutdown = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let orgs_for_plans = organizations.clone();
    let organization_controller = controller
        .watches(
            Api::<DeserializeGuard<Plan>>::all(client.clone()),
            all.clone(),
            move |plan| organizations_on_plan(&orgs_for_plans, &plan.name_any()),
        )
        .watches(
            Api::<DeserializeGuard<Subscription>>::all(client.clone()),
            all.clone(),
            |sub| sub.0.ok().map(|s| ObjectRef::new(&s.spec.organization)),
        )
        .watches(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<RoleBinding>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<ResourceQuota>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<LimitRange>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<NetworkPolicy>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<Ingress>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .watches(
            Api::<PartialObjectMeta<Service>>::all(client.clone()),
            managed.clone(),
            owner_of,
        )
        .graceful_shutdown_on(on_shutdown(&shutdown_tx))
        .run(organization::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move { log_result("Organization", result) })
        .then(|_| async { tracing::info!("Organization controller stopped") });

    let plan_controller = Controller::new(
        Api::<DeserializeGuard<Plan>>::all(client.clone()),
        all.clone(),
    )
    .graceful_shutdown_on(on_shutdown(&shutdown_tx))
    .run(plan::reconcile, error_policy, ctx.clone())
    .for_each(|result| async move { log_result("Plan", result) })
    .then(|_| async { tracing::info!("Plan controller stopped") });

    let subscription_controller = Controller::new(
        Api::<DeserializeGuard<Subscription>>::all(client.clone()),
        all.clone(),
    )
    .watches(
        Api::<PartialObjectMeta<Organization>>::all(client.clone()),
        all.clone(),
        subscriptions_of_organization(subscriptions),
    )
    .graceful_shutdown_on(on_shutdown(&shutdown_tx))
    .run(subscription::reconcile, error_policy, ctx.clone())
    .for_each(|result| async move { log_result("Subscription", result) })
    .then(|_| async { tracing::info!("Subscription controller stopped") });

    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight reconciles");
        let _ = shutdown_tx.send(());
    };
    tokio::join!(
        organization_controller,
        plan_controller,
        subscription_controller,
        signal
    );
    Ok(())
}

/// A cache kept current by its own watch, on its own task, for as long as the process runs.
fn spawn_cache<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(stream.for_each(|event| async move {
        if let Err(err) = event {
            tracing::warn!(kind = %K::kind(&()), error = %err, "cache watch failed; retrying");
        }
    }));
    store
}

/// The Organization a managed object belongs to, from its labels.
fn owner_of<K: Resource>(
    obj: PartialObjectMeta<K>,
) -> Option<ObjectRef<DeserializeGuard<Organization>>> {
    obj.labels()
        .get(ORGANIZATION_OBJECT)
        .map(|name| ObjectRef::new(name))
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

fn subscriptions_of_organization(
    store: Store<DeserializeGuard<Subscription>>,
) -> impl Fn(PartialObjectMeta<Organization>) -> Vec<ObjectRef<DeserializeGuard<Subscription>>>
+ Send
+ Sync
+ 'static {
    move |org| {
        let name = org.name_any();
        store
            .state()
            .iter()
            .filter(|g| g.0.as_ref().is_ok_and(|s| s.spec.organization == name))
            .map(|g| ObjectRef::from_obj(&**g))
            .collect()
    }
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

/// An object that passes the CRD schema but not the operator's types: reported, never fatal.
pub(crate) async fn report_invalid<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    invalid: &InvalidObject,
) {
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
    publish(
        ctx,
        &reference,
        EventType::Warning,
        "InvalidSpec",
        "Reconcile",
        note,
    )
    .await;
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
        note: Some(note),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, reference).await {
        tracing::warn!(object = ?reference.name, %reason, error = %err, "publishing event failed");
    }
}
