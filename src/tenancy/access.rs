//! Kubernetes RBAC that lets an organization's people reach its own custom resources at all
//! (the admission webhook then decides each write by the role table). Per organization, a
//! ClusterRole names exactly its Organization, Teams and Subscriptions, so nobody can read or
//! touch another tenant's objects; creating is granted to everyone and judged by the webhook.

use super::Tenant;
use super::rbac::{organization_grants, rbac_subject};
use crate::api::{Subject, Team};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// Everyone may read the plan catalogue and ask to create tenancy objects; the webhook decides.
pub const TENANT_ROLE: &str = "atlantiplex:tenant";
const GROUP: &str = "atlantiplex.io";
/// Verbs on the organization's own objects (list is not name-scoped in RBAC, so it is not granted).
const OBJECT_VERBS: [&str; 5] = ["get", "watch", "update", "patch", "delete"];

pub fn access_name(org_object: &str) -> String {
    format!("atlantiplex:organization:{org_object}")
}

fn rule(resource: &str, names: Vec<String>, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![GROUP.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then_some(names),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        non_resource_urls: None,
    }
}

/// The organization's ClusterRole and its binding to everyone with a role in it.
pub fn organization_access(
    tenant: &Tenant,
    teams: &[&Team],
    subscriptions: &[String],
) -> (ClusterRole, ClusterRoleBinding) {
    let name = access_name(&tenant.org_object());
    let meta = ObjectMeta { name: Some(name.clone()), labels: Some(tenant.labels()), ..Default::default() };
    // Sorted: the caches list teams in no particular order, and a reordered rule is a needless write.
    let team_names: Vec<String> =
        teams.iter().filter_map(|t| t.metadata.name.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let subscriptions: Vec<String> = subscriptions.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let mut rules = vec![rule("organizations", vec![tenant.org_object()], &OBJECT_VERBS)];
    if !team_names.is_empty() {
        rules.push(rule("teams", team_names, &OBJECT_VERBS));
    }
    if !subscriptions.is_empty() {
        rules.push(rule("subscriptions", subscriptions, &OBJECT_VERBS));
    }
    let mut subjects: BTreeSet<Subject> =
        organization_grants(tenant, &mut Vec::new()).into_iter().map(|(subject, _)| subject).collect();
    subjects.extend(teams.iter().flat_map(|t| t.spec.members.iter()).map(|m| {
        let subject = Subject { kind: m.kind, name: m.name.clone(), namespace: m.namespace.clone() };
        crate::identity::bound_subject(&subject, tenant.mfa_required())
    }));
    let role = ClusterRole { metadata: meta.clone(), rules: Some(rules), aggregation_rule: None };
    let binding = ClusterRoleBinding {
        metadata: meta,
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "ClusterRole".into(), name },
        subjects: Some(subjects.iter().map(rbac_subject).collect()),
    };
    (role, binding)
}

/// The cluster-wide role every authenticated user has, and its binding.
pub fn tenant_access() -> (ClusterRole, ClusterRoleBinding) {
    let labels = BTreeMap::from([("app.kubernetes.io/name".to_string(), "atlantiplex-operator".to_string())]);
    let meta = ObjectMeta { name: Some(TENANT_ROLE.into()), labels: Some(labels), ..Default::default() };
    let role = ClusterRole {
        metadata: meta.clone(),
        rules: Some(vec![
            rule("plans", vec![], &["get", "list", "watch"]),
            rule("organizations", vec![], &["create"]),
            rule("teams", vec![], &["create"]),
            rule("subscriptions", vec![], &["create"]),
        ]),
        aggregation_rule: None,
    };
    let binding = ClusterRoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: TENANT_ROLE.into(),
        },
        subjects: Some(vec![RbacSubject {
            kind: "Group".into(),
            name: "system:authenticated".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    };
    (role, binding)
}
