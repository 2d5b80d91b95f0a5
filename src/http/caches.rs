//! The tenant API's read-only view of the cluster: one watch per kind it reads (Organizations, Teams,
//! Subscriptions, Plans), held in memory, so that a request costs no API-server call. Every object sits behind
//! `DeserializeGuard`: one malformed object is skipped, never the whole cache.

use crate::api::{Organization, Plan, Subscription, Team};
use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

#[derive(Clone)]
pub struct Caches {
    organizations: Store<DeserializeGuard<Organization>>,
    teams: Store<DeserializeGuard<Team>>,
    subscriptions: Store<DeserializeGuard<Subscription>>,
    plans: Store<DeserializeGuard<Plan>>,
}

fn watch<K>(client: &Client) -> Store<DeserializeGuard<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<DeserializeGuard<K>>();
    let api: Api<DeserializeGuard<K>> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default())
        .modify(|guard: &mut DeserializeGuard<K>| {
            if let Ok(object) = guard.0.as_mut() {
                object.meta_mut().managed_fields = None;
            }
        })
        .default_backoff();
    tokio::spawn(reflector::reflector(writer, stream).for_each(|event| {
        if let Err(err) = event {
            tracing::warn!(kind = %K::kind(&()), error = %err, "tenant API cache watch failed; retrying");
        }
        std::future::ready(())
    }));
    store
}

fn ok<K: Clone>(guard: &DeserializeGuard<K>) -> Option<K> {
    guard.0.as_ref().ok().cloned()
}

impl Caches {
    /// Starts the watches; [`Caches::ready`] waits for their first lists.
    pub fn start(client: &Client) -> Self {
        Caches {
            organizations: watch(client),
            teams: watch(client),
            subscriptions: watch(client),
            plans: watch(client),
        }
    }

    pub async fn ready(&self) -> anyhow::Result<()> {
        let filled = tokio::join!(
            self.organizations.wait_until_ready(),
            self.teams.wait_until_ready(),
            self.subscriptions.wait_until_ready(),
            self.plans.wait_until_ready()
        );
        if filled.0.is_err() || filled.1.is_err() || filled.2.is_err() || filled.3.is_err() {
            anyhow::bail!("a cache stopped before it was filled");
        }
        Ok(())
    }

    pub fn organization(&self, name: &str) -> Option<Organization> {
        self.organizations.get(&ObjectRef::new(name)).and_then(|g| ok(&g))
    }

    /// Every organization (the console's platform pages).
    pub fn organizations(&self) -> Vec<Organization> {
        self.organizations.state().iter().filter_map(|g| ok(g)).collect()
    }

    pub fn subscription(&self, name: &str) -> Option<Subscription> {
        self.subscriptions.get(&ObjectRef::new(name)).and_then(|g| ok(&g))
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions.state().iter().filter_map(|g| ok(g)).collect()
    }

    pub fn teams(&self) -> Vec<Team> {
        self.teams.state().iter().filter_map(|g| ok(g)).collect()
    }

    pub fn plan(&self, name: &str) -> Option<Plan> {
        self.plans.get(&ObjectRef::new(name)).and_then(|g| ok(&g))
    }

    pub fn plans(&self) -> Vec<Plan> {
        self.plans.state().iter().filter_map(|g| ok(g)).collect()
    }

    pub fn teams_of(&self, organization: &str) -> Vec<Team> {
        let state = self.teams.state();
        state
            .iter()
            .filter_map(|g| g.0.as_ref().ok().filter(|t| t.spec.organization == organization).cloned())
            .collect()
    }

    pub fn subscriptions_of(&self, organization: &str) -> Vec<Subscription> {
        let state = self.subscriptions.state();
        state
            .iter()
            .filter_map(|g| g.0.as_ref().ok().filter(|s| s.spec.organization == organization).cloned())
            .collect()
    }
}
