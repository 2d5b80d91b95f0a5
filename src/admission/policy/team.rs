//! Team rules: Owners and Admins manage every team; a TeamAdmin manages the members of their
//! teams and creates or deletes sub-teams under them. Nobody exceeds the plan's team count.

use super::{
    Decision, Facts, Operation, PolicyConfig, Request, Requester, check, organization_role, owning_organization,
    plan_of, role_name, sso_enabled,
};
use crate::api::{Organization, Role, Team};
use crate::tenancy::plan::user_count;
use crate::tenancy::teams::TeamProblem;
use std::collections::{BTreeMap, BTreeSet};

pub fn team(config: &PolicyConfig, facts: &dyn Facts, req: &Request<Team>) -> Decision {
    let Some(team) = req.object() else { return Decision::allow("nothing to review") };
    let org_name = &team.spec.organization;
    let who = req.requester;
    let org = match owning_organization(facts, who, org_name) {
        Ok(org) => org,
        Err(decision) => return decision,
    };
    let (plan_name, plan) = plan_of(&org, facts, config);
    let org_role = organization_role(&org, who, sso_enabled(plan.as_ref()));
    let teams: BTreeMap<String, Team> =
        facts.teams_of(org_name).into_iter().filter_map(|t| Some((t.metadata.name.clone()?, t))).collect();
    let scope = Scope { org_role, teams: &teams, who, mfa: super::mfa_required(&org) };
    let name = team.metadata.name.as_deref().unwrap_or_default();
    let is_manager = matches!(org_role, Some(Role::Owner | Role::Admin)) || who.platform_admin;

    match (req.operation, req.old, req.new) {
        (Operation::Create, _, Some(new)) => {
            if !is_manager && !scope.admin_of(new.spec.parent.as_deref(), None) {
                return Decision::deny(
                    "teams-admins-only",
                    match &new.spec.parent {
                        Some(parent) => format!(
                            "creating a sub-team of {parent} needs role Owner or Admin of organization {org_name}, or TeamAdmin of {parent} or a team above it (you are {})",
                            role_name(scope.role(new.spec.parent.as_deref(), None))
                        ),
                        None => format!(
                            "creating a top-level team needs role Owner or Admin of organization {org_name} (you are {}): ask an admin, or create it under a team you administer with spec.parent",
                            role_name(org_role)
                        ),
                    },
                );
            }
            if let Some(limit) = plan.as_ref().and_then(|p| p.spec.limits.teams) {
                let existing = teams
                    .values()
                    .filter(|t| t.metadata.deletion_timestamp.is_none() && t.metadata.name.as_deref() != Some(name))
                    .count();
                if existing as i32 + 1 > limit {
                    return Decision::deny(
                        "plan-teams",
                        format!(
                            "plan {plan_name} allows {limit} teams and organization {org_name} has {existing}: delete a team or upgrade the plan"
                        ),
                    );
                }
            }
            if !who.platform_admin {
                check!(no_escalation(&scope, new.spec.parent.as_deref(), name, None, new));
            }
            check!(no_cycle(&org, &teams, new));
            check!(within_user_limit(&org, &teams, new, &plan_name, plan.as_ref()));
            Decision::allow(if is_manager { "organization owner or admin" } else { "TeamAdmin of the parent team" })
        }
        (Operation::Update, Some(old), Some(new)) => {
            if !who.platform_admin {
                let team_admin = scope.admin_of(Some(name), None);
                if new.spec.members != old.spec.members && !is_manager && !team_admin {
                    return Decision::deny(
                        "team-members-admins-only",
                        format!(
                            "changing the members of team {name} needs role Owner or Admin of organization {org_name}, or TeamAdmin of {name} or a team above it (you are {})",
                            role_name(scope.role(Some(name), None))
                        ),
                    );
                }
                if new.spec.parent != old.spec.parent
                    && !is_manager
                    && !(scope.admin_of(old.spec.parent.as_deref(), None)
                        && scope.admin_of(new.spec.parent.as_deref(), None))
                {
                    return Decision::deny(
                        "teams-admins-only",
                        format!(
                            "moving team {name} needs role Owner or Admin of organization {org_name}, or TeamAdmin above both its old and its new parent"
                        ),
                    );
                }
                if new.spec.quota_share != old.spec.quota_share && !is_manager {
                    return Decision::deny(
                        "teams-admins-only",
                        format!(
                            "changing spec.quotaShare of team {name} needs role Owner or Admin of organization {org_name} (quota is the organization's budget)"
                        ),
                    );
                }
                let may_delete = is_manager || scope.admin_of(old.spec.parent.as_deref(), None);
                if new.spec.allow_cascade_delete != old.spec.allow_cascade_delete && !may_delete {
                    return Decision::deny(
                        "teams-admins-only",
                        format!(
                            "changing spec.allowCascadeDelete of team {name} needs the right to delete it: Owner or Admin of organization {org_name}, or TeamAdmin above the team"
                        ),
                    );
                }
                let labels =
                    old.metadata.labels != new.metadata.labels || old.metadata.annotations != new.metadata.annotations;
                if labels && !is_manager && !team_admin {
                    return Decision::deny(
                        "metadata-admins-only",
                        format!(
                            "changing labels or annotations of team {name} needs role Owner, Admin or TeamAdmin of it"
                        ),
                    );
                }
                if old.metadata.finalizers != new.metadata.finalizers
                    || old.metadata.owner_references != new.metadata.owner_references
                {
                    return Decision::deny(
                        "operator-managed",
                        "metadata.finalizers and metadata.ownerReferences are managed by the operator: leave them unchanged",
                    );
                }
            }
            check!(no_escalation(&scope, old.spec.parent.as_deref(), name, Some(old), new));
            if new.spec.parent != old.spec.parent {
                check!(no_cycle(&org, &teams, new));
            }
            check!(within_user_limit(&org, &teams, new, &plan_name, plan.as_ref()));
            Decision::allow("allowed by the role table")
        }
        (Operation::Delete, Some(old), _) => {
            if is_manager || scope.admin_of(old.spec.parent.as_deref(), None) {
                Decision::allow("owner, admin, or TeamAdmin above the team")
            } else {
                Decision::deny(
                    "teams-admins-only",
                    format!(
                        "deleting team {name} needs role Owner or Admin of organization {org_name}, or TeamAdmin of a team above it (you are {})",
                        role_name(scope.role(Some(name), None))
                    ),
                )
            }
        }
        _ => Decision::allow("nothing to review"),
    }
}

/// The requester's roles in one organization's team tree.
struct Scope<'a> {
    org_role: Option<Role>,
    teams: &'a BTreeMap<String, Team>,
    who: &'a Requester,
    /// The organization requires MFA: team members count through their MFA twins.
    mfa: bool,
}

impl Scope<'_> {
    /// Strongest role from the organization and from `start` and every team above it, reading
    /// `replacement` instead of the cached team of the same name.
    fn role(&self, start: Option<&str>, replacement: Option<&Team>) -> Option<Role> {
        let mut best = self.org_role;
        let mut seen = BTreeSet::new();
        let mut next = start.map(str::to_string);
        while let Some(name) = next.take() {
            if !seen.insert(name.clone()) {
                break; // a cycle (the controller reports it)
            }
            let team = match replacement {
                Some(t) if t.metadata.name.as_deref() == Some(&name) => Some(t),
                _ => self.teams.get(&name),
            };
            let Some(team) = team else { break };
            for m in team
                .spec
                .members
                .iter()
                .filter(|m| self.who.is_bound_as(m.kind, &m.name, m.namespace.as_deref(), self.mfa))
            {
                if best.is_none_or(|b| m.role.rank() > b.rank()) {
                    best = Some(m.role);
                }
            }
            next = team.spec.parent.clone();
        }
        best
    }

    fn admin_of(&self, start: Option<&str>, replacement: Option<&Team>) -> bool {
        start.is_some() && self.role(start, replacement).is_some_and(|r| r.rank() >= Role::TeamAdmin.rank())
    }
}

/// The requester's role in the team after the change must not exceed the one before.
fn no_escalation(
    scope: &Scope,
    parent: Option<&str>,
    name: &str,
    old: Option<&Team>,
    new: &Team,
) -> Result<(), Decision> {
    let before = match old {
        Some(old) => scope.role(Some(name), Some(old)),
        None => scope.role(parent, None),
    };
    let after = scope.role(Some(name), Some(new));
    if after.map(|r| r.rank()) > before.map(|r| r.rank()) {
        return Err(Decision::deny(
            "self-escalation",
            format!(
                "you cannot raise your own role in team {name} (from {} to {}): ask an owner, an admin, or a platform admin",
                role_name(before),
                role_name(after)
            ),
        ));
    }
    Ok(())
}

/// The team tree with `new` in place of the cached team of its name.
fn tree_with<'a>(teams: &'a BTreeMap<String, Team>, new: &'a Team) -> impl Iterator<Item = &'a Team> + Clone {
    let name = new.metadata.name.as_deref();
    teams.values().filter(move |t| t.metadata.name.as_deref() != name).chain(std::iter::once(new))
}

/// A parent chain that comes back to the team would take every team in it out of the tree (and
/// out of the quota allocation): refused for everyone, platform admins included. A parent that
/// does not exist yet is fine (GitOps applies in any order; the controller waits for it).
fn no_cycle(org: &Organization, teams: &BTreeMap<String, Team>, new: &Team) -> Result<(), Decision> {
    let org_name = org.metadata.name.as_deref().unwrap_or_default();
    let index = crate::tenancy::teams::index(org_name, tree_with(teams, new));
    match crate::tenancy::teams::place(new, &org.spec.slug, &index, usize::MAX) {
        Err(problem @ TeamProblem::Cycle { .. }) => Err(Decision::deny("team-cycle", problem.message())),
        _ => Ok(()),
    }
}

/// Team members are users of the organization: a change may not take it past the plan's limit.
fn within_user_limit(
    org: &Organization,
    teams: &BTreeMap<String, Team>,
    new: &Team,
    plan_name: &str,
    plan: Option<&crate::api::Plan>,
) -> Result<(), Decision> {
    let before = user_count(org, teams.values());
    let after = user_count(org, tree_with(teams, new));
    super::organization::users_within_limit(plan_name, plan, before, after)
}
