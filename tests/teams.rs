//! Teams end to end: a nested tree with inherited access, moves, member removal, quota shares
//! that never exceed the plan, limits, blocked and cascading deletion, organization deletion.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use support::{Harness, cluster_with_operator, eventually, exists, org_yaml};

fn team_yaml(org: &str, short: &str, parent: Option<&str>, extra: &str) -> String {
    let parent = parent.map(|p| format!("  parent: {org}.{p}\n")).unwrap_or_default();
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata:\n  name: {org}.{short}\nspec:\n  organization: {org}\n{parent}{extra}"
    )
}

fn subscription(org: &str, plan: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{ name: {org} }}\nspec: {{ organization: {org}, plan: {plan}, billingEmail: billing@{org}.example }}\n"
    )
}

fn ready_reason(h: &Harness, kind: &str, name: &str) -> String {
    h.jsonpath(&[kind, name], "{.status.conditions[?(@.type==\"Ready\")].reason}")
}

/// Sum of `hard.pods` over every namespace of an organization.
fn pods_budget(h: &Harness, org: &str) -> (i64, usize) {
    let out = h.kubectl_ok(&[
        "get",
        "resourcequota",
        "-A",
        "-l",
        &format!("atlantiplex.io/organization-object={org}"),
        "-o",
        "jsonpath={range .items[*]}{.spec.hard.pods}{\"\\n\"}{end}",
    ]);
    let values: Vec<i64> = out.lines().map(|l| l.parse().expect("pods is an integer")).collect();
    (values.iter().sum(), values.len())
}

#[tokio::test]
async fn a_three_level_tree_inherits_access_moves_and_loses_it_everywhere() {
    let h = cluster_with_operator();
    h.apply_ok(&subscription("tree", "professional"));
    h.apply_ok(&org_yaml(
        "tree",
        "tree",
        "  members:\n    - { kind: User, name: adam, role: Admin }\n    - { kind: User, name: mia, role: Member }\n",
    ));
    h.apply_ok(
        &[
            team_yaml("tree", "eng", None, "  members: [{ kind: User, name: erin, role: TeamAdmin }]\n"),
            team_yaml("tree", "video", Some("eng"), "  members: [{ kind: User, name: vic, role: Member }]\n"),
            team_yaml("tree", "encoding", Some("video"), "  members: [{ kind: User, name: enzo, role: Viewer }]\n"),
            team_yaml("tree", "audio", None, "  members: [{ kind: User, name: aud, role: Member }]\n"),
        ]
        .join("---\n"),
    );
    for team in ["tree.eng", "tree.video", "tree.encoding", "tree.audio"] {
        h.wait_ready("team", team);
    }
    assert_eq!(
        h.jsonpath(&["team", "tree.encoding"], "{.status.path} {.status.depth} {.status.namespace}"),
        "tree/eng/video/encoding 3 tree--encoding"
    );

    // A grant on an ancestor reaches every descendant; org owners and admins administer all.
    for ns in ["tree--eng", "tree--video", "tree--encoding"] {
        assert!(h.can_i("erin", "create", "rolebindings", ns), "erin (TeamAdmin of eng) administers {ns}");
        assert!(h.can_i("adam", "create", "rolebindings", ns), "org admin administers {ns}");
        assert!(h.can_i("tree-owner", "delete", "pods", ns), "owner administers {ns}");
        assert!(!h.can_i("mia", "list", "pods", ns), "org members reach teams only through membership");
    }
    assert!(!h.can_i("vic", "list", "pods", "tree--eng"), "no access upwards");
    assert!(h.can_i("vic", "create", "deployments", "tree--encoding"), "vic (Member of video) edits encoding");
    assert!(h.can_i("enzo", "list", "pods", "tree--encoding"));
    assert!(!h.can_i("enzo", "create", "pods", "tree--encoding"));
    assert!(!h.can_i("aud", "list", "pods", "tree--encoding"));

    // Move encoding under audio: video's members lose it, audio's gain it.
    h.apply_ok(&team_yaml(
        "tree",
        "encoding",
        Some("audio"),
        "  members: [{ kind: User, name: enzo, role: Viewer }]\n",
    ));
    eventually("aud gains encoding", || async { h.can_i("aud", "create", "deployments", "tree--encoding") }).await;
    eventually("vic loses encoding", || async { !h.can_i("vic", "list", "pods", "tree--encoding") }).await;
    assert!(!h.can_i("erin", "list", "pods", "tree--encoding"));
    eventually("path follows", || async {
        h.jsonpath(&["team", "tree.encoding"], "{.status.path}") == "tree/audio/encoding"
    })
    .await;

    // Removing erin from the top of her tree removes her everywhere below.
    h.apply_ok(&team_yaml("tree", "eng", None, "  members: []\n"));
    eventually("erin loses eng and video", || async {
        !h.can_i("erin", "list", "pods", "tree--eng") && !h.can_i("erin", "list", "pods", "tree--video")
    })
    .await;
    assert_eq!(h.jsonpath(&["organization", "tree"], "{.status.usage.teams}"), "4/20");
}

#[tokio::test]
async fn quota_shares_never_exceed_the_plan() {
    let h = cluster_with_operator();
    h.apply_ok(&subscription("budget", "starter")); // pods: 50 across the organization
    h.apply_ok(&org_yaml("budget", "budget", ""));
    h.wait_ready("organization", "budget");
    assert_eq!(pods_budget(&h, "budget"), (50, 1), "the home namespace holds the whole plan alone");

    h.apply_ok(&team_yaml("budget", "big", None, "  quotaShare: 60\n"));
    h.apply_ok(&team_yaml("budget", "small", None, ""));
    h.wait_ready("team", "budget.big");
    h.wait_ready("team", "budget.small");
    eventually("three namespaces share the plan", || async { pods_budget(&h, "budget").1 == 3 }).await;
    eventually("big holds 60%", || async {
        h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "budget--big"], "{.spec.hard.pods}") == "30"
    })
    .await;
    let (sum, _) = pods_budget(&h, "budget");
    assert!(sum <= 50, "sum {sum} exceeds the plan");

    // A share that does not fit is refused on the team, and the sum still holds.
    h.apply_ok(&team_yaml("budget", "greedy", None, "  quotaShare: 70\n"));
    eventually("greedy's share is rejected", || async {
        h.jsonpath(&["team", "budget.greedy"], "{.status.conditions[?(@.type==\"QuotaShare\")].reason}")
            == "ShareRejected"
    })
    .await;
    let message = h.jsonpath(&["team", "budget.greedy"], "{.status.conditions[?(@.type==\"QuotaShare\")].message}");
    assert!(message.contains("at most 40%"), "{message}");
    eventually("four namespaces", || async { pods_budget(&h, "budget").1 == 4 }).await;
    let (sum, _) = pods_budget(&h, "budget");
    assert!(sum <= 50, "sum {sum} exceeds the plan");

    // Deleting a team gives its share back.
    h.kubectl_ok(&["delete", "team", "budget.greedy", "budget.big", "--timeout=60s"]);
    eventually("the remaining namespaces share everything", || async {
        h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "org-budget"], "{.spec.hard.pods}") == "25"
    })
    .await;
    // The deleted teams' namespaces are retained (policy Retain) with their data but no budget.
    assert_eq!(h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "budget--big"], "{.spec.hard.pods}"), "0");
    let (sum, _) = pods_budget(&h, "budget");
    assert!(sum <= 50, "sum {sum} exceeds the plan");
}

#[tokio::test]
async fn team_count_depth_and_missing_parents_are_reported_and_not_provisioned() {
    let h = cluster_with_operator();
    let client = h.client().await;
    let namespaces: Api<Namespace> = Api::all(client);
    // GitOps may apply teams before their organization (any order): the webhook lets platform
    // admins run ahead, and the controller then enforces the limit. Oldest teams win (then the
    // name, within one second).
    for short in ["t1", "t2", "t3"] {
        h.apply_ok(&team_yaml("small", short, None, ""));
    }
    h.apply_ok(&org_yaml("small", "small", "")); // free: 2 teams
    h.wait_ready("organization", "small");
    eventually("third team refused", || async { ready_reason(&h, "team", "small.t3") == "TeamLimitExceeded" }).await;
    let message = h.jsonpath(&["team", "small.t3"], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(message.contains("plan free allows 2 teams"), "{message}");
    assert!(!exists(&namespaces, "small--t3").await, "nothing provisioned for it");
    eventually("organization reports the overage", || async {
        h.jsonpath(&["organization", "small"], "{.status.usage.teams}") == "3/2"
    })
    .await;
    assert_eq!(
        h.jsonpath(&["organization", "small"], "{.status.conditions[?(@.type==\"WithinLimits\")].status}"),
        "False"
    );
    // Once the organization exists, the webhook refuses teams beyond the plan up front.
    let err = h.apply_err(&team_yaml("small", "t4", None, ""));
    assert!(err.contains("[plan-teams] plan free allows 2 teams and organization small has 3"), "{err}");

    h.apply_ok(&subscription("deep", "professional"));
    h.apply_ok(&org_yaml("deep", "deep", ""));
    h.wait_ready("organization", "deep");
    let chain: Vec<String> = (1..=6)
        .map(|i| team_yaml("deep", &format!("d{i}"), (i > 1).then(|| format!("d{}", i - 1)).as_deref(), ""))
        .collect();
    h.apply_ok(&chain.join("---\n"));
    h.wait_ready("team", "deep.d5");
    eventually("sixth level refused", || async { ready_reason(&h, "team", "deep.d6") == "DepthExceeded" }).await;
    assert!(!exists(&namespaces, "deep--d6").await);

    h.apply_ok(&team_yaml("deep", "orphan", Some("missing"), ""));
    eventually("missing parent reported", || async { ready_reason(&h, "team", "deep.orphan") == "ParentNotFound" })
        .await;
    let message = h.jsonpath(&["team", "deep.orphan"], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(message.contains("spec.parent \"deep.missing\" does not exist"), "{message}");
}

#[tokio::test]
async fn malformed_teams_are_refused_by_the_api_server() {
    let h = cluster_with_operator();
    let err = h.apply_err(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: { name: video }\nspec: { organization: acme }\n",
    );
    assert!(err.contains("a Team is named <organization>.<team>"), "{err}");
    let err = h.apply_err(
        &team_yaml("acme", "video", None, "")
            .replace("  organization: acme\n", "  organization: acme\n  parent: globex.eng\n"),
    );
    assert!(err.contains("spec.parent must name another Team of the same organization"), "{err}");
    let err = h.apply_err(&team_yaml("acme", "video", None, "  members: [{ kind: User, name: x, role: Admin }]\n"));
    assert!(err.contains("team members have role TeamAdmin, Member or Viewer"), "{err}");
}

#[tokio::test]
async fn deleting_a_parent_waits_for_children_unless_cascading() {
    let h = cluster_with_operator();
    let client = h.client().await;
    let namespaces: Api<Namespace> = Api::all(client);
    h.apply_ok(&subscription("fam", "professional"));
    h.apply_ok(&org_yaml("fam", "fam", "  deletionPolicy: Delete\n"));
    h.wait_ready("organization", "fam");
    h.apply_ok(&[team_yaml("fam", "parent", None, ""), team_yaml("fam", "child", Some("parent"), "")].join("---\n"));
    h.wait_ready("team", "fam.child");

    h.kubectl_ok(&["delete", "team", "fam.parent", "--wait=false"]);
    eventually("deletion blocked", || async { ready_reason(&h, "team", "fam.parent") == "DeletionBlocked" }).await;
    let message = h.jsonpath(&["team", "fam.parent"], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(message.contains("fam.child") && message.contains("allowCascadeDelete"), "{message}");
    assert!(exists(&namespaces, "fam--parent").await);

    h.kubectl_ok(&["patch", "team", "fam.parent", "--type=merge", "-p", r#"{"spec":{"allowCascadeDelete":true}}"#]);
    eventually("parent and child gone", || async {
        h.kubectl_ok(&["get", "teams", "-o", "name"]).lines().all(|l| !l.contains("fam."))
    })
    .await;
    eventually("their namespaces deleted (policy Delete)", || async {
        !exists(&namespaces, "fam--parent").await && !exists(&namespaces, "fam--child").await
    })
    .await;
}

#[tokio::test]
async fn deleting_an_organization_takes_its_teams_per_its_policy() {
    let h = cluster_with_operator();
    let client = h.client().await;
    let namespaces: Api<Namespace> = Api::all(client);
    h.apply_ok(&org_yaml("gone", "gone", "  deletionPolicy: Delete\n"));
    h.apply_ok(&org_yaml("stays", "stays", ""));
    h.apply_ok(
        &[
            team_yaml("gone", "a", None, ""),
            team_yaml("stays", "a", None, "  members: [{ kind: User, name: sam, role: Member }]\n"),
        ]
        .join("---\n"),
    );
    h.wait_ready("team", "gone.a");
    h.wait_ready("team", "stays.a");

    h.kubectl_ok(&["delete", "organization", "gone", "stays", "--timeout=90s"]);
    eventually("Delete policy removes home and team namespaces", || async {
        !exists(&namespaces, "org-gone").await && !exists(&namespaces, "gone--a").await
    })
    .await;
    assert!(exists(&namespaces, "org-stays").await && exists(&namespaces, "stays--a").await, "Retain keeps both");
    assert!(!h.can_i("sam", "list", "pods", "stays--a"), "access removed");
    assert!(
        h.kubectl_ok(&["get", "teams", "-o", "name"]).lines().all(|l| !l.contains("gone.") && !l.contains("stays."))
    );
}

#[tokio::test]
async fn teams_outside_the_tree_hold_no_quota_and_cycles_are_refused() {
    let h = cluster_with_operator();
    h.apply_ok(&subscription("chain", "professional"));
    h.apply_ok(&org_yaml("chain", "chain", ""));
    h.wait_ready("organization", "chain");
    // A chain five deep (the default maximum), the deepest holding a large share.
    let chain = [
        ("t1", None, 10),
        ("t2", Some("t1"), 10),
        ("t3", Some("t2"), 10),
        ("t4", Some("t3"), 10),
        ("t5", Some("t4"), 40),
    ];
    let docs: Vec<String> =
        chain.iter().map(|(t, p, share)| team_yaml("chain", t, *p, &format!("  quotaShare: {share}\n"))).collect();
    h.apply_ok(&docs.join("---\n"));
    h.apply_ok(&team_yaml("chain", "top", None, ""));
    for (t, _, _) in chain {
        h.wait_ready("team", &format!("chain.{t}"));
    }
    wait_budget(&h, "chain", (200, 7)).await;

    // A cycle is refused outright, for platform admins too.
    let err = h.apply_err(&team_yaml("chain", "t1", Some("t5"), "  quotaShare: 10\n"));
    assert!(err.contains("[team-cycle]") && err.contains("chain.t1 -> chain.t5"), "{err}");

    // Moving the chain under another team pushes t5 past the maximum depth: it leaves the tree,
    // and its quota drops to zero before the home namespace grows back.
    h.kubectl_ok(&["patch", "team", "chain.t1", "--type=merge", "-p", r#"{"spec":{"parent":"chain.top"}}"#]);
    eventually("t5 out of the tree", || async { ready_reason(&h, "team", "chain.t5") == "DepthExceeded" }).await;
    eventually("its quota at zero", || async {
        h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "chain--t5"], "{.spec.hard.pods}") == "0"
    })
    .await;
    for _ in 0..20 {
        let (pods, _) = pods_budget(&h, "chain");
        assert!(pods <= 200, "the namespaces together hold {pods} pods against the plan's 200");
    }
    wait_budget(&h, "chain", (200, 7)).await;
}

/// Waits until the organization's quotas hold `wanted` (pods in total, quotas); fails showing
/// every quota as last seen.
async fn wait_budget(h: &Harness, org: &str, wanted: (i64, usize)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while pods_budget(h, org) != wanted {
        if std::time::Instant::now() > deadline {
            let quotas = h.kubectl_ok(&[
                "get", "resourcequota", "-A", "-l", &format!("atlantiplex.io/organization-object={org}"),
                "-o", "custom-columns=NS:.metadata.namespace,PODS:.spec.hard.pods,SHARE:.metadata.annotations.atlantiplex\\.io/quota-share-ppm",
            ]);
            let teams = h.kubectl_ok(&["get", "teams", "-o", "wide"]);
            panic!("{org}'s quotas never reached {wanted:?}:\n{quotas}\n{teams}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_tenant_applied_at_once_is_admitted_on_its_subscriptions_plan() {
    let h = cluster_with_operator();
    // Organization, Subscription and more teams than the default plan allows, in one apply (as
    // `kubectl apply -f tenant/` or a GitOps sync sends them): the webhook's caches may not show
    // the Subscription yet, and a plan-limit denial is confirmed against the API server first.
    for org in ["burst-a", "burst-b", "burst-c"] {
        let teams: Vec<String> = ["one", "two", "three", "four"].iter().map(|t| team_yaml(org, t, None, "")).collect();
        let tenant = [org_yaml(org, org, ""), subscription(org, "professional"), teams.join("---\n")].join("---\n");
        h.apply_ok(&tenant);
    }
    for org in ["burst-a", "burst-b", "burst-c"] {
        for t in ["one", "two", "three", "four"] {
            h.wait_ready("team", &format!("{org}.{t}"));
        }
    }
}
