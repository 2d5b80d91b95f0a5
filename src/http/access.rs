//! Who may do what through the tenant API, pure. A person's role comes from the one role table
//! (`admission::policy::organization_role`, the webhook's), a key's rights from its scopes. Reading follows
//! DESIGN.md §4: everyone with a role reads the organization, its members, teams and usage; billing, the
//! audit log and keys are Owner and Admin business. Platform readers (people RBAC lets `get` every
//! Organization, such as cluster admins) read everything but manage no keys.

use super::problem::Problem;
use crate::api::{Plan, Role};
use crate::keys::Scope;
use axum::http::StatusCode;

/// What an endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The organization, members, teams, usage.
    Read,
    /// Subscription and invoices.
    ReadBilling,
    ReadAudit,
    /// List, create and revoke API keys.
    ManageKeys,
    /// Report usage.
    WriteUsage,
}

impl Action {
    fn scope(self) -> Scope {
        match self {
            Action::Read | Action::ReadBilling | Action::ReadAudit => Scope::Read,
            Action::ManageKeys => Scope::KeysWrite,
            Action::WriteUsage => Scope::UsageWrite,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::Read => "read the organization",
            Action::ReadBilling => "read billing",
            Action::ReadAudit => "read the audit log",
            Action::ManageKeys => "manage API keys",
            Action::WriteUsage => "report usage",
        }
    }
}

/// What the caller holds in the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An organization API key with these scopes.
    Key(Vec<Scope>),
    /// A person (or service account) with a role; team roles count as theirs in the organization.
    Role(Role),
    /// Allowed to `get` every Organization by RBAC (cluster admins): reads only.
    PlatformReader,
}

impl Grant {
    pub fn describe(&self) -> String {
        match self {
            Grant::Key(scopes) => format!("API key with scopes [{}]", crate::keys::scopes_text(scopes)),
            Grant::Role(role) => format!("role {role:?}"),
            Grant::PlatformReader => "platform reader".to_string(),
        }
    }
}

/// A person's strongest role through the organization's teams (team roles count as theirs in it).
pub fn team_role<'a>(
    teams: impl IntoIterator<Item = &'a crate::api::Team>,
    who: &crate::admission::policy::Requester,
    mfa_required: bool,
) -> Option<Role> {
    teams
        .into_iter()
        .flat_map(|t| t.spec.members.iter())
        .filter(|m| who.is_bound_as(m.kind, &m.name, m.namespace.as_deref(), mfa_required))
        .map(|m| m.role)
        .max_by_key(|r| r.rank())
}

/// Allowed, or the 403 naming what is missing and who can do it.
pub fn authorize(grant: &Grant, action: Action) -> Result<(), Problem> {
    let allowed = match grant {
        Grant::Key(scopes) => scopes.contains(&action.scope()),
        Grant::Role(role) => match action {
            Action::Read => true,
            _ => matches!(role, Role::Owner | Role::Admin),
        },
        Grant::PlatformReader => action != Action::ManageKeys && action != Action::WriteUsage,
    };
    if allowed {
        return Ok(());
    }
    let fix = match grant {
        Grant::Key(_) => format!("use a key with scope {} (an Owner or Admin can create one)", action.scope().as_str()),
        _ => "ask an Owner or Admin of the organization (only they may)".to_string(),
    };
    let rule = if matches!(grant, Grant::Key(_)) { "scope" } else { "role" };
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        rule,
        "Not allowed",
        "Authorization",
        format!("the caller ({}) may not {}: {fix}", grant.describe(), action.describe()),
    ))
}

/// A key may only hand out scopes it holds itself; people who manage keys hand out any.
pub fn may_grant(grant: &Grant, requested: &[Scope]) -> Result<(), Problem> {
    let Grant::Key(own) = grant else { return Ok(()) };
    let beyond: Vec<&str> = requested.iter().filter(|s| !own.contains(s)).map(|s| s.as_str()).collect();
    if beyond.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "scope-escalation",
        "A key cannot grant more than it holds",
        "scopes",
        format!(
            "this key lacks [{}], so it cannot create a key with them: leave them out, or have an Owner or Admin \
             create the key",
            beyond.join(", ")
        ),
    ))
}

/// API access is a plan feature: without it, a 403 naming the cheapest plan that has it.
/// `catalog` (every Plan) is read only to name the upgrade of a refusal.
pub fn api_access(
    organization: &str,
    plan_name: &str,
    plan: Option<&Plan>,
    catalog: impl FnOnce() -> Vec<Plan>,
) -> Result<(), Problem> {
    if plan.is_some_and(|p| p.spec.features.api_access) {
        return Ok(());
    }
    let upgrade = catalog()
        .iter()
        .filter(|p| p.spec.features.api_access && !p.spec.internal)
        .min_by_key(|p| p.spec.price.amount_cents)
        .and_then(|p| p.metadata.name.clone());
    let fix = match upgrade {
        Some(name) => format!("upgrade to plan {name} (or any plan with features.apiAccess) in its Subscription"),
        None => "no plan in this installation includes features.apiAccess; ask the platform team".to_string(),
    };
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "plan-api-access",
        "The plan has no API access",
        "organization",
        format!("organization {organization} is on plan {plan_name}, which does not include API access: {fix}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_role_table_and_keys_their_scopes() {
        for action in [Action::Read, Action::ReadBilling, Action::ReadAudit, Action::ManageKeys, Action::WriteUsage] {
            assert!(authorize(&Grant::Role(Role::Owner), action).is_ok());
            assert!(authorize(&Grant::Role(Role::Admin), action).is_ok());
        }
        for role in [Role::TeamAdmin, Role::Member, Role::Viewer] {
            assert!(authorize(&Grant::Role(role), Action::Read).is_ok());
            let refused = authorize(&Grant::Role(role), Action::ReadBilling).unwrap_err();
            assert_eq!((refused.status, refused.rule.as_str()), (403, "role"));
            assert!(refused.detail.contains("Owner or Admin"), "{}", refused.detail);
        }
        let reader = Grant::Key(vec![Scope::Read]);
        assert!(authorize(&reader, Action::ReadAudit).is_ok());
        let refused = authorize(&reader, Action::WriteUsage).unwrap_err();
        assert_eq!(refused.rule, "scope");
        assert!(refused.detail.contains("scope usage:write"), "{}", refused.detail);
        assert!(authorize(&Grant::PlatformReader, Action::ReadBilling).is_ok());
        assert!(authorize(&Grant::PlatformReader, Action::ManageKeys).is_err());
    }

    #[test]
    fn a_plan_without_api_access_is_refused_naming_the_cheapest_plan_with_it() {
        let plan = |name: &str, cents: i64, api: bool| -> Plan {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "atlantiplex.io/v1alpha1", "kind": "Plan", "metadata": {"name": name},
                "spec": {"price": {"amountCents": cents, "currency": "usd", "interval": "Month"}, "features": {"apiAccess": api}}
            }))
            .unwrap()
        };
        let catalog = vec![plan("free", 0, false), plan("enterprise", 9999, true), plan("professional", 2999, true)];
        let free = catalog[0].clone();
        let refused = api_access("acme", "free", Some(&free), || catalog.clone()).unwrap_err();
        assert_eq!((refused.status, refused.rule.as_str()), (403, "plan-api-access"));
        assert!(refused.detail.contains("upgrade to plan professional"), "{}", refused.detail);
        let professional = catalog[2].clone();
        assert!(api_access("acme", "professional", Some(&professional), || unreachable!()).is_ok());
    }

    #[test]
    fn a_key_grants_only_what_it_holds() {
        let key = Grant::Key(vec![Scope::Read, Scope::KeysWrite]);
        assert!(may_grant(&key, &[Scope::Read]).is_ok());
        let refused = may_grant(&key, &[Scope::Read, Scope::UsageWrite]).unwrap_err();
        assert!(refused.detail.contains("[usage:write]"), "{}", refused.detail);
        assert!(may_grant(&Grant::Role(Role::Admin), &Scope::ALL).is_ok());
    }
}
