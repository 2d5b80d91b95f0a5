//! RoleBindings from the role table (DESIGN.md §4): one binding per role, each subject bound
//! once, at its strongest role.

use super::Tenant;
use super::labels::BINDING_PREFIX;
use crate::api::{Role, Subject, SubjectKind};
use crate::identity;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The roles with a binding in tenant namespaces, and the built-in ClusterRole each is bound to.
pub const ROLE_BINDINGS: [(Role, &str); 5] = [
    (Role::Owner, "admin"),
    (Role::Admin, "admin"),
    (Role::TeamAdmin, "admin"),
    (Role::Member, "edit"),
    (Role::Viewer, "view"),
];

pub fn binding_name(role: Role) -> String {
    format!("{BINDING_PREFIX}{}", role.as_str())
}

/// Desired bindings of the home namespace, and the names of role bindings that must not exist.
pub fn bindings(tenant: &Tenant, warnings: &mut Vec<String>) -> (Vec<RoleBinding>, Vec<String>) {
    bindings_from_grants(|name| tenant.meta(name), organization_grants(tenant, warnings))
}

/// One binding per role that has subjects, each subject at its strongest role.
pub fn bindings_from_grants(
    meta: impl Fn(&str) -> ObjectMeta,
    grants: impl IntoIterator<Item = (Subject, Role)>,
) -> (Vec<RoleBinding>, Vec<String>) {
    let strongest = strongest_roles(grants);
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for (role, cluster_role) in ROLE_BINDINGS {
        let subjects: Vec<RbacSubject> =
            strongest.iter().filter(|(_, r)| **r == role).map(|(s, _)| rbac_subject(s)).collect();
        if subjects.is_empty() {
            absent.push(binding_name(role));
            continue;
        }
        present.push(RoleBinding {
            metadata: meta(&binding_name(role)),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: cluster_role.into(),
            },
            subjects: Some(subjects),
        });
    }
    (present, absent)
}

/// The organization's grants: owners, members and (plans with SSO) identity-provider groups, as
/// RBAC binds them (`identity::bound_subject`: MFA twins when the organization requires MFA).
pub fn organization_grants(tenant: &Tenant, warnings: &mut Vec<String>) -> Vec<(Subject, Role)> {
    let spec = &tenant.org.spec;
    let mut grants: Vec<(Subject, Role)> = spec.owners.iter().map(|s| (s.clone(), Role::Owner)).collect();
    grants.extend(spec.members.iter().map(|m| (m.subject(), m.role)));
    let sso = spec.security.as_ref().map(|s| s.sso_group_mappings.as_slice()).unwrap_or_default();
    if !sso.is_empty() {
        if tenant.plan.spec.features.sso {
            grants.extend(sso.iter().map(|m| (identity::sso_subject(&m.group), m.role)));
        } else {
            warnings.push(format!(
                "spec.security.ssoGroupMappings ignored: plan {} does not include SSO (upgrade to a plan with features.sso)",
                tenant.plan_name
            ));
        }
    }
    let mfa = tenant.mfa_required();
    grants.into_iter().map(|(subject, role)| (identity::bound_subject(&subject, mfa), role)).collect()
}

/// Each subject with the strongest role any of its grants gives it.
pub fn strongest_roles(grants: impl IntoIterator<Item = (Subject, Role)>) -> BTreeMap<Subject, Role> {
    let mut strongest: BTreeMap<Subject, Role> = BTreeMap::new();
    for (subject, role) in grants {
        let entry = strongest.entry(subject).or_insert(role);
        if role.rank() > entry.rank() {
            *entry = role;
        }
    }
    strongest
}

pub(super) fn rbac_subject(subject: &Subject) -> RbacSubject {
    match subject.kind {
        SubjectKind::User | SubjectKind::Group => RbacSubject {
            kind: if subject.kind == SubjectKind::User { "User" } else { "Group" }.into(),
            name: subject.name.clone(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        },
        SubjectKind::ServiceAccount => RbacSubject {
            kind: "ServiceAccount".into(),
            name: subject.name.clone(),
            api_group: None,
            namespace: subject.namespace.clone(),
        },
    }
}
