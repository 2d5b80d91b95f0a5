//! What every reconcile shares: the client, the settings, informer caches, the event recorder.

use crate::api::{Organization, Plan, Subscription, Team};
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

pub struct Context {
    pub client: Client,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Where tenant-changing actions are recorded (None: not recorded, e.g. in benchmarks).
    pub audit: Option<crate::ledger::AuditLog>,
    pub settings: Settings,
    /// Stripe client, ledger and billing settings (billing may be disabled).
    pub billing: std::sync::Arc<crate::billing::Billing>,
    /// The ledger (usage totals for the status), whether or not billing is enabled.
    pub ledger: Option<crate::ledger::Ledger>,
    pub recorder: Recorder,
    /// Our writes the caches do not show yet: a reconcile waits for them instead of repeating them.
    pub own_writes: super::own_writes::OwnWrites,
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
    /// Each organization's ClusterRole and binding to its own custom resources.
    pub access_roles: Store<PartialObjectMeta<ClusterRole>>,
    pub access_bindings: Store<PartialObjectMeta<ClusterRoleBinding>>,
    /// Every ClusterRoleBinding (whole): the webhook treats cluster-admin subjects as platform admins.
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
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

    /// Organizations with this slug, from the cache. Filters before cloning: reconciles run
    /// per organization, so copying every cached object each time would be quadratic.
    pub fn organizations_with_slug(&self, slug: &str) -> Vec<Organization> {
        self.organizations
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().filter(|o| o.spec.slug == slug).cloned())
            .collect()
    }

    pub fn plan(&self, name: &str) -> Option<Plan> {
        let guard = self.plans.get(&kube::runtime::reflector::ObjectRef::new(name))?;
        guard.0.as_ref().ok().cloned()
    }

    pub fn organization(&self, name: &str) -> Option<Organization> {
        let guard = self.organizations.get(&kube::runtime::reflector::ObjectRef::new(name))?;
        guard.0.as_ref().ok().cloned()
    }

    /// The teams of one organization, from the cache.
    pub fn teams_of(&self, organization: &str) -> Vec<Team> {
        self.teams
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().filter(|t| t.spec.organization == organization).cloned())
            .collect()
    }

    /// The subscriptions of one organization, from the cache.
    pub fn subscriptions_of(&self, organization: &str) -> Vec<Subscription> {
        self.subscriptions
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().filter(|s| s.spec.organization == organization).cloned())
            .collect()
    }
}
