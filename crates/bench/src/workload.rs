//! The benchmark's tenants: N organizations on the free plan, each with an owner and four
//! members, and T teams; and the exact objects the operator would create for them, for the
//! baseline client.

use atlantiplex_operator::api::{Organization, Plan, Team};
use atlantiplex_operator::settings::Settings;
use atlantiplex_operator::tenancy::labels::{QUOTA_NAME, TEAM_OBJECT, home_namespace};
use atlantiplex_operator::tenancy::{Tenant, desired_tenant, quota, teams};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::{Value, json};

pub const PLAN: &str = "free";

pub fn plans() -> anyhow::Result<Vec<Plan>> {
    let text = include_str!("../../../examples/plans.yaml");
    serde_yaml::Deserializer::from_str(text).map(|doc| Ok(Plan::deserialize(doc)?)).collect()
}

pub fn org_name(i: usize) -> String {
    format!("bench-{i:05}")
}

pub fn organization(i: usize) -> anyhow::Result<Organization> {
    let name = org_name(i);
    Ok(serde_json::from_value(json!({
        "apiVersion": "atlantiplex.io/v1alpha1",
        "kind": "Organization",
        "metadata": { "name": name },
        "spec": {
            "slug": name,
            "displayName": format!("Bench {i}"),
            "owners": [{ "kind": "User", "name": format!("owner@{name}.example") }],
            "members": [
                { "kind": "Group", "name": format!("{name}-admins"), "role": "Admin" },
                { "kind": "User", "name": format!("m1@{name}.example"), "role": "Member" },
                { "kind": "User", "name": format!("m2@{name}.example"), "role": "Member" },
                { "kind": "User", "name": format!("v1@{name}.example"), "role": "Viewer" },
            ],
        },
    }))?)
}

pub fn team(i: usize, t: usize) -> anyhow::Result<Team> {
    let org = org_name(i);
    Ok(serde_json::from_value(json!({
        "apiVersion": "atlantiplex.io/v1alpha1",
        "kind": "Team",
        "metadata": { "name": format!("{org}.team{t}") },
        "spec": {
            "organization": org,
            "members": [{ "kind": "User", "name": format!("lead{t}@{org}.example"), "role": "TeamAdmin" }],
        },
    }))?)
}

/// Everything the operator creates for organization `i` and its teams, as the baseline
/// applies it: the namespace first, then the rest. Built by the operator's own pure code.
pub fn baseline_objects(i: usize, team_count: usize, plan: &Plan) -> anyhow::Result<Vec<Vec<Value>>> {
    let org = organization(i)?;
    let team_objects: Vec<Team> = (0..team_count).map(|t| team(i, t)).collect::<anyhow::Result<_>>()?;
    let settings = Settings::default();
    let home = home_namespace(&org.spec.slug);
    let index = teams::index(&org_name(i), team_objects.iter());
    let (claims, placements) =
        teams::quota_claims(&home, &org.spec.slug, &index, plan.spec.limits.teams, settings.max_team_depth);
    let allocation = quota::allocate(&claims);
    let home_share_ppm = allocation.shares.get(&home).copied().unwrap_or(quota::WHOLE);
    let tenant = Tenant {
        org: &org,
        plan_name: PLAN,
        plan,
        suspended: false,
        usage_blocked: false,
        settings: &settings,
        home_share_ppm,
    };
    let desired = desired_tenant(&tenant);

    let mut waves = vec![vec![serde_json::to_value(&desired.namespace)?]];
    let mut rest = vec![
        serde_json::to_value(&desired.quota)?,
        serde_json::to_value(&desired.limit_range)?,
        serde_json::to_value(&desired.network_policy)?,
        serde_json::to_value(&desired.suspended_service)?,
        serde_json::to_value(&desired.ingress)?,
    ];
    for b in &desired.bindings {
        rest.push(serde_json::to_value(b)?);
    }
    let mut team_namespaces = Vec::new();
    for team in &team_objects {
        let name = team.metadata.name.clone().unwrap_or_default();
        let Some(placement) = placements.get(&name) else { continue };
        let desired_team = teams::desired_team(&tenant, team, placement, &index);
        team_namespaces.push(serde_json::to_value(&desired_team.namespace)?);
        let mut labels = tenant.labels();
        labels.insert(TEAM_OBJECT.into(), name.clone());
        let meta = ObjectMeta {
            name: Some(QUOTA_NAME.into()),
            namespace: Some(placement.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        let share = allocation.shares.get(&placement.namespace).copied().unwrap_or(0);
        rest.push(serde_json::to_value(quota::resource_quota(&tenant, meta, share))?);
        rest.push(serde_json::to_value(&desired_team.limit_range)?);
        rest.push(serde_json::to_value(&desired_team.network_policy)?);
        for b in &desired_team.bindings {
            rest.push(serde_json::to_value(b)?);
        }
    }
    waves[0].extend(team_namespaces);
    waves.push(rest);
    Ok(waves)
}
