//! Teams, pure: where a team sits in its organization's tree, and what its namespace contains.

use super::labels::{
    LIMIT_RANGE_NAME, MANAGED, NAMESPACE_KIND, NETWORK_POLICY_NAME, ORGANIZATION, ORGANIZATION_OBJECT, TEAM_OBJECT,
    managed_labels, team_namespace,
};
use super::rbac::{bindings_from_grants, organization_grants};
use super::{Tenant, network, quota};
use crate::api::{Role, Team};
use k8s_openapi::api::core::v1::{LimitRange, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// Why a team cannot be provisioned; each names what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamProblem {
    ParentNotFound { parent: String },
    Cycle { path: Vec<String> },
    DepthExceeded { depth: usize, max: usize },
    TeamLimitExceeded { limit: i32, plan: String },
}

impl TeamProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            TeamProblem::ParentNotFound { .. } => "ParentNotFound",
            TeamProblem::Cycle { .. } => "Cycle",
            TeamProblem::DepthExceeded { .. } => "DepthExceeded",
            TeamProblem::TeamLimitExceeded { .. } => "TeamLimitExceeded",
        }
    }

    pub fn message(&self) -> String {
        match self {
            TeamProblem::ParentNotFound { parent } => format!(
                "spec.parent {parent:?} does not exist: create that Team, point spec.parent at an existing team, or remove spec.parent"
            ),
            TeamProblem::Cycle { path } => {
                format!("spec.parent forms a cycle ({}): point one of them at another parent", path.join(" -> "))
            }
            TeamProblem::DepthExceeded { depth, max } => format!(
                "the team would be {depth} levels deep but at most {max} are allowed: attach it to a team higher up"
            ),
            TeamProblem::TeamLimitExceeded { limit, plan } => format!(
                "plan {plan} allows {limit} teams and this organization already has them: delete a team or upgrade the plan"
            ),
        }
    }
}

/// A team's place in its organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Ancestors from the top-level team down to the parent.
    pub ancestors: Vec<String>,
    /// `<slug>/<top>/.../<team>` with short names.
    pub path: String,
    pub depth: usize,
    pub namespace: String,
}

/// The team's name inside its organization: metadata.name is `<organization>.<team>`.
pub fn short_name(team: &Team) -> String {
    let name = team.metadata.name.as_deref().unwrap_or_default();
    name.strip_prefix(&format!("{}.", team.spec.organization)).unwrap_or(name).to_string()
}

/// Teams of one organization by name (deleting ones included: they still hold their place).
pub type TeamIndex<'a> = BTreeMap<String, &'a Team>;

pub fn index<'a>(organization: &str, teams: impl IntoIterator<Item = &'a Team>) -> TeamIndex<'a> {
    teams
        .into_iter()
        .filter(|t| t.spec.organization == organization)
        .map(|t| (t.metadata.name.clone().unwrap_or_default(), t))
        .collect()
}

/// Walks up from `team` to its top-level ancestor.
pub fn place(team: &Team, slug: &str, teams: &TeamIndex, max_depth: usize) -> Result<Placement, TeamProblem> {
    let name = team.metadata.name.clone().unwrap_or_default();
    let mut ancestors = Vec::new();
    let mut seen = BTreeSet::from([name.clone()]);
    let mut parent = team.spec.parent.clone();
    while let Some(p) = parent {
        if !seen.insert(p.clone()) {
            let mut path = vec![name.clone()];
            path.extend(ancestors.iter().cloned());
            path.push(p);
            return Err(TeamProblem::Cycle { path });
        }
        let Some(parent_team) = teams.get(&p) else {
            return Err(TeamProblem::ParentNotFound { parent: p });
        };
        ancestors.push(p.clone());
        parent = parent_team.spec.parent.clone();
    }
    ancestors.reverse();
    let depth = ancestors.len() + 1;
    if depth > max_depth {
        return Err(TeamProblem::DepthExceeded { depth, max: max_depth });
    }
    let mut path = vec![slug.to_string()];
    path.extend(ancestors.iter().filter_map(|a| teams.get(a)).map(|t| short_name(t)));
    path.push(short_name(team));
    Ok(Placement { ancestors, path: path.join("/"), depth, namespace: team_namespace(slug, &short_name(team)) })
}

/// Teams within the plan's team limit: the oldest first (creation time, then name).
pub fn within_team_limit(teams: &TeamIndex, limit: Option<i32>) -> BTreeSet<String> {
    let mut ordered: Vec<&&Team> = teams.values().collect();
    ordered.sort_by_key(|t| (t.metadata.creation_timestamp.clone(), t.metadata.name.clone()));
    let take = limit.map(|l| l.max(0) as usize).unwrap_or(usize::MAX);
    ordered.into_iter().take(take).filter_map(|t| t.metadata.name.clone()).collect()
}

/// Every team whose ancestors include `name` (its subtree, without itself).
pub fn descendants(name: &str, teams: &TeamIndex) -> Vec<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, t) in teams {
        if let Some(p) = &t.spec.parent {
            children.entry(p.as_str()).or_default().push(n.as_str());
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![name];
    let mut seen = BTreeSet::from([name]);
    while let Some(current) = stack.pop() {
        for child in children.get(current).into_iter().flatten() {
            if seen.insert(child) {
                out.push(child.to_string());
                stack.push(child);
            }
        }
    }
    out
}

/// Everything a team's namespace contains but its quota (the organization allocates that).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTeam {
    pub namespace: Namespace,
    pub limit_range: LimitRange,
    pub bindings: Vec<RoleBinding>,
    pub absent_bindings: Vec<String>,
    pub network_policy: NetworkPolicy,
}

/// The team's objects: the organization's owners and admins administer every team namespace;
/// a team's members, and the members of every ancestor, get their team role in it.
pub fn desired_team(tenant: &Tenant, team: &Team, placement: &Placement, teams: &TeamIndex) -> DesiredTeam {
    let team_name = team.metadata.name.clone().unwrap_or_default();
    let mut labels = managed_labels(tenant.slug(), &tenant.org_object());
    labels.insert(TEAM_OBJECT.into(), team_name.clone());
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(placement.namespace.clone()),
        labels: Some(labels.clone()),
        ..Default::default()
    };

    let mut ignored = Vec::new();
    let mut grants: Vec<_> = organization_grants(tenant, &mut ignored)
        .into_iter()
        .filter(|(_, role)| matches!(role, Role::Owner | Role::Admin))
        .collect();
    for member_of in placement.ancestors.iter().chain(std::iter::once(&team_name)) {
        if let Some(t) = teams.get(member_of) {
            grants.extend(t.spec.members.iter().map(|m| {
                let subject =
                    crate::api::Subject { kind: m.kind, name: m.name.clone(), namespace: m.namespace.clone() };
                (crate::identity::bound_subject(&subject, tenant.mfa_required()), m.role)
            }));
        }
    }
    let (bindings, absent_bindings) = bindings_from_grants(meta, grants);

    let mut ns_labels = labels.clone();
    ns_labels.insert(NAMESPACE_KIND.into(), "team".into());
    ns_labels.insert("pod-security.kubernetes.io/enforce".into(), "baseline".into());
    let namespace = Namespace {
        metadata: ObjectMeta { name: Some(placement.namespace.clone()), labels: Some(ns_labels), ..Default::default() },
        ..Default::default()
    };
    let mut limit_range = quota::limit_range(tenant);
    limit_range.metadata = meta(LIMIT_RANGE_NAME);
    let mut network_policy = network::network_policy(tenant, &mut ignored);
    network_policy.metadata = meta(NETWORK_POLICY_NAME);
    DesiredTeam { namespace, limit_range, bindings, absent_bindings, network_policy }
}

/// Labels that select every object of one team.
pub fn team_selector(team_name: &str) -> String {
    format!("{MANAGED}=true,{TEAM_OBJECT}={team_name}")
}

/// Labels that select every namespace of one organization (home and teams).
pub fn organization_selector(slug: &str, org_object: &str) -> String {
    format!("{MANAGED}=true,{ORGANIZATION}={slug},{ORGANIZATION_OBJECT}={org_object}")
}

/// The namespaces asking for the organization's budget, in creation order (home first), and
/// the placement of each team that is provisioned: placed in the tree and within the limit.
pub fn quota_claims(
    home_namespace: &str,
    slug: &str,
    teams: &TeamIndex,
    team_limit: Option<i32>,
    max_depth: usize,
) -> (Vec<super::quota::QuotaClaim>, BTreeMap<String, Placement>) {
    let within = within_team_limit(teams, team_limit);
    let mut ordered: Vec<&&Team> = teams.values().collect();
    ordered.sort_by_key(|t| (t.metadata.creation_timestamp.clone(), t.metadata.name.clone()));
    let mut claims =
        vec![super::quota::QuotaClaim { namespace: home_namespace.to_string(), team: None, percent: None }];
    let mut placements = BTreeMap::new();
    for team in ordered {
        let name = team.metadata.name.clone().unwrap_or_default();
        if !within.contains(&name) {
            continue;
        }
        if let Ok(placement) = place(team, slug, teams, max_depth) {
            claims.push(super::quota::QuotaClaim {
                namespace: placement.namespace.clone(),
                team: Some(name.clone()),
                percent: team.spec.quota_share,
            });
            placements.insert(name, placement);
        }
    }
    (claims, placements)
}
