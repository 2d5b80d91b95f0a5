//! Subscription rules: only an Owner changes plan or billing; one subscription per
//! organization; no plan whose limits the organization's current usage exceeds.

use super::{
    Decision, Facts, Operation, PolicyConfig, Request, name_of, organization_role, owning_organization, plan_of,
    role_name, sso_enabled,
};
use crate::api::{Organization, Plan, Role, Subscription};
use crate::tenancy::plan::user_count;

pub fn subscription(config: &PolicyConfig, facts: &dyn Facts, req: &Request<Subscription>) -> Decision {
    let Some(sub) = req.object() else { return Decision::allow("nothing to review") };
    let who = req.requester;
    let org_name = &sub.spec.organization;
    let org = match owning_organization(facts, who, org_name) {
        Ok(org) => org,
        Err(decision) => return decision,
    };
    if !who.platform_admin {
        let (_, current) = plan_of(&org, facts, config);
        let role = organization_role(&org, who, sso_enabled(current.as_ref()));
        if role != Some(Role::Owner) {
            return Decision::deny(
                "billing-owners-only",
                format!(
                    "only an Owner of organization {org_name} may change its plan or billing (you are {}): ask an owner",
                    role_name(role)
                ),
            );
        }
    }
    let name = name_of(&sub.metadata);
    match (req.operation, req.old, req.new) {
        (Operation::Create, _, Some(new)) => {
            let others: Vec<String> = facts
                .subscriptions_of(org_name)
                .into_iter()
                .filter(|s| s.metadata.deletion_timestamp.is_none() && name_of(&s.metadata) != name)
                .map(|s| name_of(&s.metadata).to_string())
                .collect();
            if let Some(other) = others.first() {
                return Decision::deny(
                    "subscription-exists",
                    format!(
                        "organization {org_name} already has Subscription {other}: change its spec.plan instead of adding another"
                    ),
                );
            }
            target_plan(facts, who.platform_admin, &org, &new.spec.plan)
        }
        (Operation::Update, Some(old), Some(new)) if old.spec.plan != new.spec.plan => {
            target_plan(facts, who.platform_admin, &org, &new.spec.plan)
        }
        (Operation::Delete, Some(_), _) if org.metadata.deletion_timestamp.is_none() => {
            // Without a Subscription the organization falls back to the default plan.
            match facts.plan(&config.default_plan) {
                Some(plan) => fits(&org, facts, &plan).map_or_else(
                    |excess| {
                        Decision::deny(
                            "downgrade",
                            format!(
                                "deleting the Subscription puts organization {org_name} on plan {}, which its usage exceeds: {excess} first",
                                config.default_plan
                            ),
                        )
                    },
                    |_| Decision::allow("usage fits the default plan"),
                ),
                None => Decision::allow("default plan not defined"),
            }
        }
        _ => Decision::allow("no plan change"),
    }
}

fn target_plan(facts: &dyn Facts, platform_admin: bool, org: &Organization, plan_name: &str) -> Decision {
    let Some(plan) = facts.plan(plan_name) else {
        return Decision::deny(
            "unknown-plan",
            format!("plan {plan_name} does not exist: use one listed by `kubectl get plans`"),
        );
    };
    if plan.spec.internal && !platform_admin {
        return Decision::deny(
            "internal-plan",
            format!("plan {plan_name} is internal: only platform admins assign it"),
        );
    }
    match fits(org, facts, &plan) {
        Ok(()) => Decision::allow("usage fits the plan"),
        Err(excess) => Decision::deny(
            "downgrade",
            format!("organization {} uses more than plan {plan_name} allows: {excess} first", name_of(&org.metadata)),
        ),
    }
}

/// Whether current usage fits the plan; otherwise what to remove.
fn fits(org: &Organization, facts: &dyn Facts, plan: &Plan) -> Result<(), String> {
    let limits = &plan.spec.limits;
    let org_teams = facts.teams_of(name_of(&org.metadata));
    let users = user_count(org, &org_teams);
    let teams = org_teams.iter().filter(|t| t.metadata.deletion_timestamp.is_none()).count() as i32;
    let mut excess = Vec::new();
    if let Some(limit) = limits.users.filter(|l| users > *l) {
        excess.push(format!(
            "remove {} of its {users} users (owners, members and team members; limit {limit})",
            users - limit
        ));
    }
    if let Some(limit) = limits.teams.filter(|l| teams > *l) {
        excess.push(format!("delete {} of its {teams} teams (limit {limit})", teams - limit));
    }
    if excess.is_empty() { Ok(()) } else { Err(excess.join(" and ")) }
}
