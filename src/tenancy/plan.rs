//! Which plan an organization is on, and its usage against the plan's limits.

use super::dunning::Standing;
use crate::api::{Organization, Plan, Subject, Subscription, Team, Usage};
use std::collections::BTreeSet;

/// The plan an organization is on and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanChoice {
    pub plan: String,
    /// The Subscription it comes from; None when the organization has none (default plan).
    pub subscription: Option<String>,
    pub warnings: Vec<String>,
    /// The subscription's standing with Stripe (Unbilled without one).
    pub standing: Standing,
}

/// An organization without a Subscription is on the default plan. With several, the oldest
/// wins and the rest are reported. The Subscription's Stripe state decides (DESIGN.md §2):
/// active, trialing and past_due keep the plan in effect (`status.plan`, which lags `spec.plan`
/// while a downgrade waits for the period end); unpaid, canceled, paused and a first payment not
/// yet made fall back to the default plan. Whether to suspend is `dunning::verdict`.
pub fn effective_plan<'a>(
    org: &Organization,
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
    default_plan: &str,
) -> PlanChoice {
    let org_name = org.metadata.name.as_deref().unwrap_or_default();
    let mut mine: Vec<&Subscription> = subscriptions
        .into_iter()
        .filter(|s| s.spec.organization == org_name && s.metadata.deletion_timestamp.is_none())
        .collect();
    mine.sort_by(|a, b| {
        let key = |s: &Subscription| (s.metadata.creation_timestamp.clone(), s.metadata.name.clone());
        key(a).cmp(&key(b))
    });
    let mut warnings = Vec::new();
    if mine.len() > 1 {
        let ignored: Vec<&str> = mine[1..].iter().filter_map(|s| s.metadata.name.as_deref()).collect();
        warnings.push(format!(
            "organization has {} Subscriptions; using the oldest and ignoring {}: delete the extra ones",
            mine.len(),
            ignored.join(", ")
        ));
    }
    let Some(sub) = mine.first() else {
        return PlanChoice {
            plan: default_plan.to_string(),
            subscription: None,
            warnings,
            standing: Standing::Unbilled,
        };
    };
    let status = sub.status.as_ref();
    let standing = Standing::from_stripe(
        status.and_then(|s| s.stripe_state.as_deref()),
        status.and_then(|s| s.past_due_since.as_deref()),
    );
    let plan = if !standing.keeps_plan() {
        default_plan.to_string()
    } else if standing == Standing::Unbilled {
        sub.spec.plan.clone()
    } else {
        status.and_then(|s| s.plan.clone()).unwrap_or_else(|| sub.spec.plan.clone())
    };
    PlanChoice { plan, subscription: sub.metadata.name.clone(), warnings, standing }
}

/// The plan's user count: every distinct subject with any role in the organization — its owners,
/// its members, and the members of each of its live teams (a team member gets access as surely
/// as an organization member). A Group or ServiceAccount subject counts as one user: the operator
/// cannot see who is in a group. SSO group mappings do not count: the identity provider decides
/// who is in those groups, and SSO is an Enterprise feature with no user limit.
///
/// One function for the webhook (which refuses a change that adds users beyond the limit) and the
/// controller (which reports `status.usage.users`).
pub fn user_count<'a>(org: &Organization, teams: impl IntoIterator<Item = &'a Team>) -> i32 {
    let org_name = org.metadata.name.as_deref().unwrap_or_default();
    let team_members = teams
        .into_iter()
        .filter(|t| t.spec.organization == org_name && t.metadata.deletion_timestamp.is_none())
        .flat_map(|t| t.spec.members.iter())
        .map(|m| Subject { kind: m.kind, name: m.name.clone(), namespace: m.namespace.clone() });
    let subjects: BTreeSet<Subject> = org
        .spec
        .owners
        .iter()
        .cloned()
        .chain(org.spec.members.iter().map(|m| m.subject()))
        .chain(team_members)
        .collect();
    subjects.len() as i32
}

/// Usage against the plan, and a message for each limit exceeded.
pub fn usage(plan: &Plan, users: i32, teams: i32, namespaces: i32) -> (Usage, Vec<String>) {
    let limits = &plan.spec.limits;
    let plan_name = plan.metadata.name.as_deref().unwrap_or_default();
    let show = |used: i32, limit: Option<i32>| match limit {
        Some(limit) => format!("{used}/{limit}"),
        None => format!("{used}/unlimited"),
    };
    let mut exceeded = Vec::new();
    let mut check = |what: &str, used: i32, limit: Option<i32>, fix: &str| {
        if let Some(limit) = limit.filter(|l| used > *l) {
            exceeded.push(format!(
                "{used} {what} but plan {plan_name} allows {limit}: {fix} {} or upgrade the plan",
                used - limit
            ));
        }
    };
    check("users", users, limits.users, "remove");
    check("teams", teams, limits.teams, "delete");
    check("namespaces", namespaces, limits.namespaces, "delete teams to free");
    let usage = Usage {
        users: show(users, limits.users),
        teams: show(teams, limits.teams),
        namespaces: show(namespaces, limits.namespaces),
        user_count: users,
        team_count: teams,
        namespace_count: namespaces,
        ..Default::default()
    };
    (usage, exceeded)
}
