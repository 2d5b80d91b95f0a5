//! The identity rules every reviewed write to an organization passes first: a member of an
//! organization that requires MFA must have signed in with a second factor, and a kubectl login
//! must be younger than the organization's session timeout. RBAC already refuses password-only
//! tokens in MFA organizations (see `identity`); this gives the reason in words, and covers the
//! cluster-scoped objects (Organization, Team, Subscription) that RBAC grants more widely.

use super::{Decision, Requester, mfa_required, role_without_mfa, sso_enabled};
use crate::api::{Organization, Plan};
use crate::identity::{SessionCheck, effective_timeout_minutes, kubectl_write_check};

/// The denial, if any, before the object's own rules: [`mfa_gate`], then [`session_gate`].
pub fn identity_gate(org: &Organization, plan_name: &str, plan: Option<&Plan>, who: &Requester) -> Option<Decision> {
    mfa_gate(org, plan, who).or_else(|| session_gate(org, plan_name, plan, who))
}

/// Machines have no second factor and no login session; platform admins answer to the platform.
fn exempt(who: &Requester) -> bool {
    who.platform_admin || who.username.starts_with("system:serviceaccount:")
}

/// A member of an organization that requires MFA, signed in without a second factor.
pub fn mfa_gate(org: &Organization, plan: Option<&Plan>, who: &Requester) -> Option<Decision> {
    if exempt(who) {
        return None;
    }
    let name = org.metadata.name.as_deref().unwrap_or_default();
    if mfa_required(org) && !who.second_factor() && role_without_mfa(org, who, sso_enabled(plan)).is_some() {
        return Some(Decision::deny(
            "mfa-required",
            format!(
                "organization {name} requires MFA: sign in again with a second factor \
                 (atlantiplex-operator login --second-factor), then retry"
            ),
        ));
    }
    None
}

/// A login older than the organization's session timeout (for changes: reads end with the token).
pub fn session_gate(org: &Organization, plan_name: &str, plan: Option<&Plan>, who: &Requester) -> Option<Decision> {
    if exempt(who) {
        return None;
    }
    let name = org.metadata.name.as_deref().unwrap_or_default();
    let own = org.spec.security.as_ref().and_then(|s| s.session_timeout_minutes);
    let limit = effective_timeout_minutes(own, plan.and_then(|p| p.spec.session_timeout_minutes));
    match kubectl_write_check(who.authenticated_at, who.now, limit) {
        SessionCheck::Fresh => None,
        SessionCheck::TooOld { age_minutes, limit_minutes } => Some(Decision::deny(
            "session-expired",
            format!(
                "you signed in {age_minutes} minutes ago and organization {name} (plan {plan_name}) accepts changes \
                 only within {limit_minutes} minutes of signing in: sign in again (atlantiplex-operator login), then retry"
            ),
        )),
    }
}
