//! The admission policy (DESIGN.md §4): whether a request is allowed, decided from the request
//! and in-memory facts. Pure: no I/O, no clock, so every rule is unit-tested without a cluster.

mod finalizer;
mod identity_gate;
mod namespaced;
mod organization;
mod subscription;
pub(crate) mod team;

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod tests;

pub use finalizer::finalizer_ops;
pub use identity_gate::{identity_gate, mfa_gate, session_gate};
pub use namespaced::{
    ALLOWED_INGRESS_ANNOTATIONS, managed_object, namespace, organization_hosts, tenant_ingress, tenant_service,
};
pub use organization::{organization, signup_defaults};
pub use subscription::subscription;
pub use team::team;

use crate::api::{Organization, Plan, Role, Subject, SubjectKind, Subscription, Team};
use crate::tenancy::plan::effective_plan;

/// Annotation the mutating webhook puts on every new Organization: who created it. Sign-up
/// caps count it, so only platform admins may change it.
pub const CREATED_BY_ANNOTATION: &str = "atlantiplex.io/created-by";

/// The user making the request, as the API server authenticated it.
#[derive(Clone, Debug, Default)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
    /// A platform admin (system:masters, a configured group or user, cluster-admin binding).
    pub platform_admin: bool,
    /// When the person signed in at the identity provider (the ID token's `auth_time`, seconds
    /// since the epoch); none for certificates, service accounts and API keys.
    pub authenticated_at: Option<i64>,
    /// When the request is checked (seconds since the epoch): the clock, passed in.
    pub now: i64,
}

impl Requester {
    /// Whether an RBAC-style subject names this requester.
    pub fn is(&self, kind: SubjectKind, name: &str, namespace: Option<&str>) -> bool {
        match kind {
            SubjectKind::User => self.username == name,
            SubjectKind::Group => self.groups.iter().any(|g| g == name),
            SubjectKind::ServiceAccount => {
                let ns = namespace.unwrap_or_default();
                self.username
                    .strip_prefix("system:serviceaccount:")
                    .is_some_and(|rest| rest.split_once(':').is_some_and(|(n, sa)| n == ns && sa == name))
            }
        }
    }

    pub fn is_subject(&self, subject: &Subject) -> bool {
        self.is(subject.kind, &subject.name, subject.namespace.as_deref())
    }

    /// Whether the subject, as RBAC binds it in an organization (MFA twins when it requires
    /// MFA), names this requester.
    pub fn is_bound(&self, subject: &Subject, mfa_required: bool) -> bool {
        self.is_subject(&crate::identity::bound_subject(subject, mfa_required))
    }

    pub fn is_bound_as(&self, kind: SubjectKind, name: &str, namespace: Option<&str>, mfa_required: bool) -> bool {
        let subject = Subject { kind, name: name.to_string(), namespace: namespace.map(String::from) };
        self.is_bound(&subject, mfa_required)
    }

    /// Signed in with a second factor: the API server gave the MFA twins (see `identity`).
    pub fn second_factor(&self) -> bool {
        crate::identity::has_mfa_twin(&self.groups)
    }
}

/// The operation under review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// One request: the old object (update, delete) and the new one (create, update).
pub struct Request<'a, T> {
    pub operation: Operation,
    pub requester: &'a Requester,
    pub old: Option<&'a T>,
    pub new: Option<&'a T>,
}

impl<'a, T> Request<'a, T> {
    /// The object as it is after the request (the old one for deletes).
    pub fn object(&self) -> Option<&'a T> {
        self.new.or(self.old)
    }
}

/// Settings the policy needs.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    pub base_domain: String,
    pub default_plan: String,
    /// Any authenticated user may create an organization on the default plan.
    pub signup: bool,
    /// Organizations on the default plan one user may create through sign-up.
    pub signup_max_free_organizations: usize,
    /// External names a tenant's ExternalName Service may point at (`--allowed-external-name`).
    pub allowed_external_names: Vec<String>,
}

/// What the policy reads besides the request: the operator's caches, or fixtures in tests.
pub trait Facts {
    fn organization(&self, name: &str) -> Option<Organization>;
    /// Visits every organization without copying them all (sign-up caps, slugs, hosts).
    fn each_organization(&self, visit: &mut dyn FnMut(&Organization));
    fn teams_of(&self, organization: &str) -> Vec<Team>;
    fn subscriptions_of(&self, organization: &str) -> Vec<Subscription>;
    fn plan(&self, name: &str) -> Option<Plan>;
    /// A managed namespace's metadata (who holds a slug, see `tenancy::claim`).
    fn namespace(&self, name: &str) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>;
}

/// The outcome, with the rule that decided it (for the audit record and metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Stable rule name, e.g. `owners-only`; `allowed` when nothing objected.
    pub rule: &'static str,
    /// Why (denials: what to do instead).
    pub message: String,
    /// Allowed only because the caches do not know the organization (yet): the webhook asks the
    /// API server before it answers (see `Webhook::confirm`).
    pub unconfirmed: bool,
}

impl Decision {
    pub fn allow(reason: impl Into<String>) -> Self {
        Self { allowed: true, rule: "allowed", message: reason.into(), unconfirmed: false }
    }

    /// Allowed on what the caches do not show; to be confirmed from the API server.
    pub fn allow_unconfirmed(reason: impl Into<String>) -> Self {
        Self { unconfirmed: true, ..Self::allow(reason) }
    }

    pub fn deny(rule: &'static str, message: impl Into<String>) -> Self {
        Self { allowed: false, rule, message: message.into(), unconfirmed: false }
    }

    /// The text kubectl shows after "admission webhook ... denied the request:".
    pub fn user_message(&self) -> String {
        format!("[{}] {}", self.rule, self.message)
    }
}

/// Early return of the first denial.
macro_rules! check {
    ($e:expr) => {
        if let Err(denial) = $e {
            return denial;
        }
    };
}
pub(crate) use check;

/// The organization an object names, or the decision when it does not exist yet: GitOps applies
/// a directory in any order, and only platform admins may run ahead of it.
pub fn owning_organization(facts: &dyn Facts, who: &Requester, org_name: &str) -> Result<Organization, Decision> {
    match facts.organization(org_name) {
        Some(org) => Ok(org),
        None if who.platform_admin => Err(Decision::allow_unconfirmed("platform admin (organization not created yet)")),
        None => Err(Decision::deny(
            "unknown-organization",
            format!("organization {org_name} does not exist: create it first, or fix spec.organization"),
        )),
    }
}

/// The requester's strongest role in an organization: owners, members, and SSO groups when
/// the plan includes SSO — the same grants, bound the same way (MFA twins), as the controller's
/// RoleBindings.
pub fn organization_role(org: &Organization, who: &Requester, sso: bool) -> Option<Role> {
    role_in(org, who, sso, mfa_required(org))
}

/// The role the requester would have if the organization did not require MFA: tells "not a
/// member" from "a member who must sign in again with a second factor".
pub fn role_without_mfa(org: &Organization, who: &Requester, sso: bool) -> Option<Role> {
    role_in(org, who, sso, false)
}

pub fn mfa_required(org: &Organization) -> bool {
    org.spec.security.as_ref().is_some_and(|s| s.mfa_required)
}

fn role_in(org: &Organization, who: &Requester, sso: bool, mfa: bool) -> Option<Role> {
    let spec = &org.spec;
    let mut roles: Vec<Role> = Vec::new();
    if spec.owners.iter().any(|s| who.is_bound(s, mfa)) {
        roles.push(Role::Owner);
    }
    roles.extend(spec.members.iter().filter(|m| who.is_bound(&m.subject(), mfa)).map(|m| m.role));
    if sso {
        let mappings = spec.security.as_ref().map(|s| s.sso_group_mappings.as_slice()).unwrap_or_default();
        roles.extend(
            mappings.iter().filter(|m| who.is_bound(&crate::identity::sso_subject(&m.group), mfa)).map(|m| m.role),
        );
    }
    roles.into_iter().max_by_key(|r| r.rank())
}

/// The plan an organization is on now, and whether it exists.
pub fn plan_of(org: &Organization, facts: &dyn Facts, config: &PolicyConfig) -> (String, Option<Plan>) {
    let name = org.metadata.name.as_deref().unwrap_or_default();
    let subscriptions = facts.subscriptions_of(name);
    let choice = effective_plan(org, &subscriptions, &config.default_plan);
    let plan = facts.plan(&choice.plan);
    (choice.plan, plan)
}

pub fn sso_enabled(plan: Option<&Plan>) -> bool {
    plan.is_some_and(|p| p.spec.features.sso)
}

pub fn role_name(role: Option<Role>) -> String {
    role.map_or_else(|| "not a member".to_string(), |r| format!("{r:?}"))
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}
