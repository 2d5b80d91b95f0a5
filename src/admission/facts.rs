//! The policy's facts and platform-admin identities, read from the operator's informer caches:
//! no API round trip per admission request.

use super::policy::Facts;
use super::settings::AdmissionSettings;
use crate::api::{Organization, Plan, Subscription, Team};
use crate::controller::Context;
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::ObjectRef;

pub struct CacheFacts<'a>(pub &'a Context);

impl Facts for CacheFacts<'_> {
    fn organization(&self, name: &str) -> Option<Organization> {
        self.0.organization(name)
    }

    fn each_organization(&self, visit: &mut dyn FnMut(&Organization)) {
        for guard in self.0.organizations.state() {
            if let Ok(org) = &guard.0 {
                visit(org);
            }
        }
    }

    fn teams_of(&self, organization: &str) -> Vec<Team> {
        self.0.teams_of(organization)
    }

    fn subscriptions_of(&self, organization: &str) -> Vec<Subscription> {
        self.0.subscriptions_of(organization)
    }

    fn plan(&self, name: &str) -> Option<Plan> {
        self.0.plan(name)
    }

    fn namespace(&self, name: &str) -> Option<ObjectMeta> {
        self.0.namespaces.get(&ObjectRef::new(name)).map(|m| m.metadata.clone())
    }
}

/// Who may do everything: configured groups and users, the operator itself, Kubernetes' own
/// controllers (they delete a terminating namespace's contents), and cluster-admin bindings.
pub struct PlatformAdmins {
    groups: Vec<String>,
    users: Vec<String>,
}

/// The identities Kubernetes' controllers act as.
const SYSTEM_CONTROLLER_USER: &str = "system:kube-controller-manager";
const SYSTEM_CONTROLLER_GROUP: &str = "system:serviceaccounts:kube-system";

impl PlatformAdmins {
    pub fn new(settings: &AdmissionSettings, operator_user: Option<String>) -> Self {
        let mut users = settings.platform_admin_users.clone();
        users.extend(operator_user);
        users.push(SYSTEM_CONTROLLER_USER.into());
        let mut groups = settings.platform_admin_groups.clone();
        groups.push(SYSTEM_CONTROLLER_GROUP.into());
        Self { groups, users }
    }

    pub fn contains(&self, ctx: &Context, username: &str, groups: &[String]) -> bool {
        if self.users.iter().any(|u| u == username) || groups.iter().any(|g| self.groups.contains(g)) {
            return true;
        }
        ctx.cluster_role_bindings.state().iter().any(|binding| {
            binding.role_ref.kind == "ClusterRole"
                && binding.role_ref.name == "cluster-admin"
                && binding.subjects.iter().flatten().any(|s| subject_matches(s, username, groups))
        })
    }
}

fn subject_matches(subject: &Subject, username: &str, groups: &[String]) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == username,
        "Group" => groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = subject.namespace.as_deref().unwrap_or_default();
            username == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

/// The caches, with one organization and its Subscriptions as just read from the API server.
pub struct FreshFacts<'a> {
    pub cache: CacheFacts<'a>,
    pub name: &'a str,
    pub org: Option<Organization>,
    pub subscriptions: Vec<Subscription>,
}

impl Facts for FreshFacts<'_> {
    fn organization(&self, name: &str) -> Option<Organization> {
        if name == self.name { self.org.clone() } else { self.cache.organization(name) }
    }

    fn each_organization(&self, visit: &mut dyn FnMut(&Organization)) {
        self.cache.each_organization(visit)
    }

    fn teams_of(&self, organization: &str) -> Vec<Team> {
        self.cache.teams_of(organization)
    }

    fn subscriptions_of(&self, organization: &str) -> Vec<Subscription> {
        if organization == self.name { self.subscriptions.clone() } else { self.cache.subscriptions_of(organization) }
    }

    fn plan(&self, name: &str) -> Option<Plan> {
        self.cache.plan(name)
    }

    fn namespace(&self, name: &str) -> Option<ObjectMeta> {
        self.cache.namespace(name)
    }
}
