//! What every reconcile shares: the client, the settings, informer caches, the event recorder.

use crate::api::{Organization, Plan, Subscription, Team};
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
    pub organizations: Store<DeserializeGuard<Organization>>,
    pub plans: Store<DeserializeGuard<Plan>>,
    pub subscriptions: Store<DeserializeGuard<Subscription>>,
    /// Metadata of managed namespaces and role bindings: who owns a namespace, which bindings exist.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub role_bindings: Store<PartialObjectMeta<RoleBinding>>,
    /// Metadata of managed quotas: their share annotation orders re-allocations.
    pub quotas: Store<PartialObjectMeta<ResourceQuota>>,
    pub teams: Store<DeserializeGuard<Team>>,
    pub limit_ranges: Store<PartialObjectMeta<LimitRange>>,
    pub network_policies: Store<PartialObjectMeta<NetworkPolicy>>,
    pub ingresses: Store<PartialObjectMeta<Ingress>>,
    pub services: Store<PartialObjectMeta<Service>>,
}

/// The cached metadata of a managed object, for `apply_if_changed`.
pub fn cached<K>(store: &Store<PartialObjectMeta<K>>, obj: &impl kube::Resource) -> Option<ObjectMeta>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let name = obj.meta().name.clone()?;
    let key = match &obj.meta().namespace {
        Some(ns) => kube::runtime::reflector::ObjectRef::new(&name).within(ns),
        None => kube::runtime::reflector::ObjectRef::new(&name),
    };
    store.get(&key).map(|m| m.metadata.clone())
}

impl Context {
    pub fn reporter() -> Reporter {
        Reporter { controller: "atlantiplex-operator".into(), instance: std::env::var("POD_NAME").ok() }
    }

    /// Organizations that deserialized, from the cache.
    pub fn valid_organizations(&self) -> Vec<Organization> {
        self.organizations.state().iter().filter_map(|g| g.0.as_ref().ok().cloned()).collect()
    }

    pub fn plan(&self, name: &str) -> Option<Plan> {
        let guard = self.plans.get(&kube::runtime::reflector::ObjectRef::new(name))?;
        guard.0.as_ref().ok().cloned()
    }

    pub fn organization(&self, name: &str) -> Option<Organization> {
        let guard = self.organizations.get(&kube::runtime::reflector::ObjectRef::new(name))?;
        guard.0.as_ref().ok().cloned()
    }

    /// Teams that deserialized, from the cache.
    pub fn valid_teams(&self) -> Vec<Team> {
        self.teams.state().iter().filter_map(|g| g.0.as_ref().ok().cloned()).collect()
    }

    pub fn valid_subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions.state().iter().filter_map(|g| g.0.as_ref().ok().cloned()).collect()
    }
}
