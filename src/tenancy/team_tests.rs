use super::quantity::to_milli;
use super::quota::{QuotaClaim, WHOLE, allocate, resource_quota};
use super::teams::*;
use super::{Tenant, labels};
use crate::api::*;
use crate::settings::Settings;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

fn shipped_plan(name: &str) -> Plan {
    serde_yaml::Deserializer::from_str(include_str!("../../examples/plans.yaml"))
        .map(|doc| Plan::deserialize(doc).unwrap())
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap()
}

fn acme() -> Organization {
    serde_yaml::from_str(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: { name: acme }\nspec:\n  slug: acme\n  displayName: Acme\n  owners: [{ kind: User, name: olga }]\n  members:\n    - { kind: User, name: adam, role: Admin }\n    - { kind: User, name: mia, role: Member }\n",
    )
    .unwrap()
}

/// `acme.<short>` with an optional parent short name, created in the order given by `minute`.
fn team(short: &str, parent: Option<&str>, minute: u32, members: &str) -> Team {
    let parent = parent.map(|p| format!("  parent: acme.{p}\n")).unwrap_or_default();
    serde_yaml::from_str(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{ name: acme.{short}, creationTimestamp: '2026-01-01T00:{minute:02}:00Z' }}\nspec:\n  organization: acme\n{parent}  members: [{members}]\n"
    ))
    .unwrap()
}

fn tree() -> Vec<Team> {
    vec![
        team("engineering", None, 1, "{ kind: User, name: erin, role: TeamAdmin }"),
        team("video", Some("engineering"), 2, "{ kind: User, name: vic, role: Member }"),
        team(
            "encoding",
            Some("video"),
            3,
            "{ kind: User, name: enzo, role: Viewer }, { kind: User, name: vic, role: Viewer }",
        ),
        team("sales", None, 4, ""),
    ]
}

#[test]
fn placement_gives_path_depth_ancestors_and_a_collision_free_namespace() {
    let teams = tree();
    let index = index("acme", &teams);
    let p = place(&teams[2], "acme", &index, 5).unwrap();
    assert_eq!(p.path, "acme/engineering/video/encoding");
    assert_eq!(p.depth, 3);
    assert_eq!(p.ancestors, ["acme.engineering", "acme.video"]);
    assert_eq!(p.namespace, "acme--encoding");
    assert_eq!(place(&teams[3], "acme", &index, 5).unwrap().depth, 1);
    // Slugs never contain "--": org "a-b" team "c" and org "a" team "b-c" stay apart.
    assert_ne!(labels::team_namespace("a-b", "c"), labels::team_namespace("a", "b-c"));
}

#[test]
fn missing_parent_cycle_and_depth_are_refused_with_what_to_change() {
    let orphan = team("orphan", Some("gone"), 5, "");
    let teams = vec![orphan.clone()];
    let err = place(&orphan, "acme", &index("acme", &teams), 5).unwrap_err();
    assert_eq!(err, TeamProblem::ParentNotFound { parent: "acme.gone".into() });
    assert!(err.message().contains("spec.parent \"acme.gone\" does not exist"));

    let a = team("a", Some("b"), 1, "");
    let b = team("b", Some("a"), 2, "");
    let teams = vec![a.clone(), b];
    let err = place(&a, "acme", &index("acme", &teams), 5).unwrap_err();
    assert_eq!(err.reason(), "Cycle");
    assert!(err.message().contains("acme.a -> acme.b"), "{}", err.message());

    let teams = tree();
    let err = place(&teams[2], "acme", &index("acme", &teams), 2).unwrap_err();
    assert_eq!(err, TeamProblem::DepthExceeded { depth: 3, max: 2 });
    assert!(err.message().contains("at most 2"));
}

#[test]
fn team_limit_keeps_the_oldest_teams() {
    let teams = tree();
    let index = index("acme", &teams);
    let within = within_team_limit(&index, Some(2));
    assert_eq!(within.into_iter().collect::<Vec<_>>(), ["acme.engineering", "acme.video"]);
    assert_eq!(within_team_limit(&index, None).len(), 4);
}

#[test]
fn subtree_of_a_team_is_exactly_its_descendants() {
    let teams = tree();
    let index = index("acme", &teams);
    let mut below = descendants("acme.engineering", &index);
    below.sort();
    assert_eq!(below, ["acme.encoding", "acme.video"]);
    assert!(descendants("acme.sales", &index).is_empty());
}

fn bindings_of(desired: &DesiredTeam) -> Vec<(String, String, Vec<String>)> {
    desired
        .bindings
        .iter()
        .map(|b| {
            let subjects = b.subjects.clone().unwrap_or_default().into_iter().map(|s| s.name).collect();
            (b.metadata.name.clone().unwrap(), b.role_ref.name.clone(), subjects)
        })
        .collect()
}

#[test]
fn grants_on_ancestors_reach_every_descendant_and_org_admins_administer_all() {
    let org = acme();
    let plan = shipped_plan("professional");
    let settings = Settings::default();
    let tenant = Tenant {
        org: &org,
        plan_name: "professional",
        plan: &plan,
        suspended: false,
        usage_blocked: false,
        settings: &settings,
        home_share_ppm: 0,
    };
    let teams = tree();
    let index = index("acme", &teams);
    let placement = place(&teams[2], "acme", &index, 5).unwrap();
    let desired = desired_team(&tenant, &teams[2], &placement, &index);
    assert_eq!(
        bindings_of(&desired),
        [
            ("atlantiplex-owner".into(), "admin".into(), vec!["olga".into()]),
            ("atlantiplex-admin".into(), "admin".into(), vec!["adam".into()]),
            ("atlantiplex-teamadmin".into(), "admin".into(), vec!["erin".into()]),
            // vic is Member on the parent and Viewer here: the stronger grant wins.
            ("atlantiplex-member".into(), "edit".into(), vec!["vic".into()]),
            ("atlantiplex-viewer".into(), "view".into(), vec!["enzo".into()]),
        ]
    );
    assert!(
        !bindings_of(&desired).iter().any(|(_, _, s)| s.contains(&"mia".to_string())),
        "org members get teams only through team membership"
    );
    let ns_labels = desired.namespace.metadata.labels.clone().unwrap();
    assert_eq!(ns_labels[labels::TEAM_OBJECT], "acme.encoding");
    assert_eq!(ns_labels[labels::NAMESPACE_KIND], "team");
    assert_eq!(ns_labels[labels::ORGANIZATION], "acme");
    assert_eq!(desired.network_policy.metadata.namespace.as_deref(), Some("acme--encoding"));

    // Removing erin from the top-level team removes her from every descendant.
    let mut teams = tree();
    teams[0].spec.members.clear();
    let index = super::teams::index("acme", &teams);
    let desired = desired_team(&tenant, &teams[2], &placement, &index);
    assert!(desired.absent_bindings.contains(&"atlantiplex-teamadmin".to_string()));
}

fn claim(ns: &str, percent: Option<i32>) -> QuotaClaim {
    QuotaClaim { namespace: ns.into(), team: (ns != "home").then(|| ns.into()), percent }
}

#[test]
fn allocation_grants_explicit_shares_oldest_first_and_splits_the_rest_equally() {
    let a = allocate(&[claim("home", None), claim("t1", Some(50)), claim("t2", None), claim("t3", Some(30))]);
    assert_eq!(a.shares["t1"], WHOLE / 2);
    assert_eq!(a.shares["t3"], 300_000);
    assert_eq!(a.shares["home"], 100_000);
    assert_eq!(a.shares["t2"], 100_000);
    assert!(a.rejected.is_empty());

    let a = allocate(&[claim("home", None), claim("t1", Some(80)), claim("t2", Some(30))]);
    assert!(a.rejected["t2"].contains("at most 20%"), "{:?}", a.rejected);
    assert_eq!(a.shares["t1"], 800_000);
    assert_eq!(a.shares["home"] + a.shares["t2"], 200_000);
}

#[test]
fn allocation_never_exceeds_the_plan_for_any_sequence_of_claims() {
    // Every prefix of a sequence of team creations, with awkward shares and counts.
    let percents = [None, Some(33), Some(33), None, Some(34), Some(1), None, Some(99), None];
    for n in 0..=percents.len() {
        let mut claims = vec![claim("home", None)];
        claims.extend(percents[..n].iter().enumerate().map(|(i, p)| claim(&format!("t{i}"), *p)));
        let shares: i64 = allocate(&claims).shares.values().sum();
        assert!(shares <= WHOLE, "{n} teams: {shares}");
    }
}

#[test]
fn quota_values_are_rounded_down_so_namespaces_sum_within_the_plan() {
    let org = acme();
    let plan = shipped_plan("free");
    let settings = Settings::default();
    let tenant = Tenant {
        org: &org,
        plan_name: "free",
        plan: &plan,
        suspended: false,
        usage_blocked: false,
        settings: &settings,
        home_share_ppm: 0,
    };
    let third = WHOLE / 3;
    let hard = |share| resource_quota(&tenant, ObjectMeta::default(), share).spec.unwrap().hard.unwrap();
    let one = hard(third);
    for resource in ["requests.cpu", "limits.memory", "pods", "requests.storage"] {
        let total = to_milli(&hard(WHOLE)[resource]).unwrap();
        assert!(to_milli(&one[resource]).unwrap() * 3 <= total, "{resource}");
    }
    assert_eq!(one["requests.cpu"].0, "666m");
    assert_eq!(one["pods"].0, "6", "counts are whole numbers (20 / 3, rounded down)");
    let zero = hard(0);
    assert_eq!(zero["pods"].0, "0");
}
