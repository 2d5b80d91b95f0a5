//! Names and labels of everything the operator manages. Ownership is keyed on these, never on
//! ownerReferences alone, so re-installing the CRDs cannot garbage-collect a tenant.

use std::collections::BTreeMap;

/// The prefix of every label and annotation of ours.
pub const PREFIX: &str = "atlantiplex.io/";
pub const MANAGED: &str = "atlantiplex.io/managed";
/// The organization's slug.
pub const ORGANIZATION: &str = "atlantiplex.io/organization";
/// The Organization object's metadata.name (what a change maps back to).
pub const ORGANIZATION_OBJECT: &str = "atlantiplex.io/organization-object";
/// The Team object's metadata.name, on a team namespace and its objects.
pub const TEAM_OBJECT: &str = "atlantiplex.io/team-object";
/// `home` for an organization's own namespace, `team` for a team's.
pub const NAMESPACE_KIND: &str = "atlantiplex.io/namespace-kind";
pub const TENANT_ANNOTATION: &str = "atlantiplex.io/tenant";

pub const FIELD_MANAGER: &str = "atlantiplex-operator";
pub const ORGANIZATION_FINALIZER: &str = "atlantiplex.io/organization-cleanup";
pub const TEAM_FINALIZER: &str = "atlantiplex.io/team-cleanup";
/// On each ResourceQuota: the namespace's share of the plan in parts per million, so the next
/// re-allocation knows which quotas shrink (applied first) and which grow.
pub const QUOTA_SHARE_ANNOTATION: &str = "atlantiplex.io/quota-share-ppm";

pub const QUOTA_NAME: &str = "atlantiplex-quota";
pub const LIMIT_RANGE_NAME: &str = "atlantiplex-limits";
pub const NETWORK_POLICY_NAME: &str = "atlantiplex-isolation";
pub const INGRESS_NAME: &str = "atlantiplex-tenant";
pub const SUSPENDED_SERVICE_NAME: &str = "atlantiplex-suspended";
/// Where a tenant's traffic goes while a Block usage limit is reached.
pub const LIMIT_REACHED_SERVICE_NAME: &str = "atlantiplex-limit-reached";
pub const BINDING_PREFIX: &str = "atlantiplex-";

pub fn home_namespace(slug: &str) -> String {
    format!("org-{slug}")
}

/// `<slug>--<team>`: slugs never contain `--`, so no two teams of any organizations collide,
/// and no team namespace looks like a home namespace.
pub fn team_namespace(slug: &str, team_short_name: &str) -> String {
    format!("{slug}--{team_short_name}")
}

/// Labels on every object managed for an organization.
pub fn managed_labels(slug: &str, org_object: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED.to_string(), "true".to_string()),
        (ORGANIZATION.to_string(), slug.to_string()),
        (ORGANIZATION_OBJECT.to_string(), org_object.to_string()),
    ])
}

/// Selector for everything the operator manages.
pub fn managed_selector() -> String {
    format!("{MANAGED}=true")
}
