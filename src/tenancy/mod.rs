//! Pure tenancy decisions: from an organization, its plan and the settings, the exact objects
//! the tenant needs. No I/O here; the controller applies what this returns.

pub mod access;
pub mod claim;
pub mod dunning;
mod ingress;
pub mod labels;
mod network;
pub mod plan;
pub mod quantity;
pub mod quota;
mod rbac;
pub mod teams;

use crate::api::{Organization, Plan};
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub use rbac::{ROLE_BINDINGS, binding_name};

/// Everything one organization's home namespace should contain.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTenant {
    pub namespace: Namespace,
    pub quota: ResourceQuota,
    pub limit_range: LimitRange,
    /// One binding per role that has subjects.
    pub bindings: Vec<RoleBinding>,
    /// Managed binding names that must not exist (their role has no subjects now).
    pub absent_bindings: Vec<String>,
    pub network_policy: NetworkPolicy,
    pub suspended_service: Service,
    pub limit_reached_service: Service,
    pub ingress: Ingress,
    pub hosts: Vec<String>,
    pub url: String,
    /// Parts of the spec the plan does not allow, and were therefore left out.
    pub warnings: Vec<String>,
}

/// What the builders need to know about the tenant.
pub struct Tenant<'a> {
    pub org: &'a Organization,
    pub plan_name: &'a str,
    pub plan: &'a Plan,
    /// Suspended by hand or by dunning.
    pub suspended: bool,
    /// A meter whose overage is Block reached 100 % this billing period: traffic goes to the
    /// limit-reached page (data and workloads kept).
    pub usage_blocked: bool,
    /// The home namespace's share of the plan's quota (parts per million, see `quota::allocate`).
    pub home_share_ppm: i64,
    pub settings: &'a Settings,
}

impl Tenant<'_> {
    /// People reach this organization only through their MFA twins (see `identity`).
    pub fn mfa_required(&self) -> bool {
        self.org.spec.security.as_ref().is_some_and(|s| s.mfa_required)
    }

    pub fn slug(&self) -> &str {
        &self.org.spec.slug
    }

    pub fn org_object(&self) -> String {
        self.org.metadata.name.clone().unwrap_or_default()
    }

    pub fn namespace(&self) -> String {
        labels::home_namespace(self.slug())
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        labels::managed_labels(self.slug(), &self.org_object())
    }

    /// Metadata of a managed object in the home namespace.
    pub fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace()),
            labels: Some(self.labels()),
            ..Default::default()
        }
    }
}

pub fn desired_tenant(tenant: &Tenant) -> DesiredTenant {
    let mut warnings = Vec::new();
    let (bindings, absent_bindings) = rbac::bindings(tenant, &mut warnings);
    let (ingress, hosts) = ingress::ingress(tenant, &mut warnings);
    let scheme = if tenant.org.spec.ingress.as_ref().is_some_and(|i| i.tls) { "https" } else { "http" };
    DesiredTenant {
        namespace: home_namespace(tenant.org),
        quota: quota::resource_quota(tenant, tenant.meta(labels::QUOTA_NAME), tenant.home_share_ppm),
        limit_range: quota::limit_range(tenant),
        bindings,
        absent_bindings,
        network_policy: network::network_policy(tenant, &mut warnings),
        suspended_service: ingress::suspended_service(tenant),
        limit_reached_service: ingress::limit_reached_service(tenant),
        url: format!("{scheme}://{}", hosts[0]),
        ingress,
        hosts,
        warnings,
    }
}

/// The home namespace: its labels say whose it is, its annotations which Organization holds the
/// slug (uid and owners, see `claim`). Needs no plan, so the slug can be claimed before one exists.
pub fn home_namespace(org: &Organization) -> Namespace {
    let slug = &org.spec.slug;
    let mut labels = labels::managed_labels(slug, org.metadata.name.as_deref().unwrap_or_default());
    labels.insert(labels::NAMESPACE_KIND.into(), "home".into());
    // Tenants run untrusted workloads: the baseline Pod Security Standard blocks privilege.
    labels.insert("pod-security.kubernetes.io/enforce".into(), "baseline".into());
    let annotations = BTreeMap::from([
        (claim::ORGANIZATION_UID.to_string(), org.metadata.uid.clone().unwrap_or_default()),
        (claim::OWNERS.to_string(), claim::owners_value(&org.spec.owners)),
    ]);
    Namespace {
        metadata: ObjectMeta {
            name: Some(labels::home_namespace(slug)),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod team_tests;
