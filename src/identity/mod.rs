//! Who a person is to Kubernetes and to the web, once an OpenID Connect provider signed them in.
//! Pure: no I/O, no clock (the caller passes `now`), so the naming, MFA and session rules are
//! unit-tested without a cluster and shared by the controllers (RBAC subjects), the webhook, the
//! tenant API and the console.
//!
//! The naming contract with kube-apiserver (`authentication_config` renders it):
//! - username: the `email` claim, unprefixed, so `spec.owners` lists people by address;
//! - groups: every IdP group `g` as `oidc:g`;
//! - after a login with a second factor, each identity also gets its **MFA twin**: `oidc:g#mfa`
//!   for every group and the group `<email>#mfa` for the user. An organization with
//!   `spec.security.mfaRequired` is bound to the twins only, so RBAC itself refuses a
//!   password-only token, reads included.

mod auth_config;
mod factor;
mod session;
#[cfg(test)]
mod tests;

pub use auth_config::{AuthenticationConfig, authentication_config};
pub use factor::{DEFAULT_SECOND_FACTORS, SecondFactors};
pub use session::{
    SessionCheck, SessionLimits, SessionState, WebSessionVerdict, effective_timeout_minutes, kubectl_write_check,
    web_session_verdict,
};

use crate::api::{Subject, SubjectKind};

/// What kube-apiserver puts before every IdP group.
pub const GROUP_PREFIX: &str = "oidc:";
/// What marks the MFA twin of an identity.
pub const MFA_SUFFIX: &str = "#mfa";
/// `userInfo.extra` keys the authentication config fills from the ID token.
pub const EXTRA_AMR: &str = "atlantiplex.io/amr";
pub const EXTRA_AUTH_TIME: &str = "atlantiplex.io/auth-time";

/// The Kubernetes group of an IdP group (`acme:owners` → `oidc:acme:owners`).
pub fn idp_group(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

/// The subject an SSO group mapping grants to (`oidc:<group>`).
pub fn sso_subject(group: &str) -> Subject {
    Subject { kind: SubjectKind::Group, name: idp_group(group), namespace: None }
}

/// The subject that RBAC binds for a grant: the subject itself, or — for people in an
/// organization that requires MFA — its MFA twin. Service accounts are machines and have no
/// second factor: they are bound as they are.
pub fn bound_subject(subject: &Subject, mfa_required: bool) -> Subject {
    if !mfa_required || subject.kind == SubjectKind::ServiceAccount || subject.name.ends_with(MFA_SUFFIX) {
        return subject.clone();
    }
    Subject { kind: SubjectKind::Group, name: format!("{}{MFA_SUFFIX}", subject.name), namespace: None }
}

/// The Kubernetes groups of a signed-in person, exactly as the authentication config maps them
/// (the web session uses this to see the person as kubectl would).
pub fn kubernetes_groups(email: &str, idp_groups: &[String], second_factor: bool) -> Vec<String> {
    let mut groups: Vec<String> = idp_groups.iter().map(|g| idp_group(g)).collect();
    if second_factor {
        groups.extend(idp_groups.iter().map(|g| format!("{GROUP_PREFIX}{g}{MFA_SUFFIX}")));
        groups.push(format!("{email}{MFA_SUFFIX}"));
    }
    groups.push("system:authenticated".into());
    groups
}

/// The login time the authentication config put in a user's extra (`EXTRA_AUTH_TIME`), if any.
pub fn auth_time(extra: Option<&std::collections::BTreeMap<String, Vec<String>>>) -> Option<i64> {
    extra?.get(EXTRA_AUTH_TIME)?.first()?.parse().ok()
}

/// Whether a requester carries any MFA twin (signed in with a second factor).
pub fn has_mfa_twin(groups: &[String]) -> bool {
    groups.iter().any(|g| g.ends_with(MFA_SUFFIX))
}
