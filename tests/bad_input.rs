//! Bad input is refused by the API server with a message naming the field, or reported as a
//! condition — and nothing is half-provisioned.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use support::{cluster, cluster_with_operator, exists, org_yaml};

#[tokio::test]
async fn invalid_slug_is_refused_by_the_api_server() {
    let h = cluster_with_operator();
    let err = h.apply_err(&org_yaml("bad-slug", "Bad_Slug", ""));
    assert!(err.contains("spec.slug") && err.contains("should match"), "{err}");
    let err = h.apply_err(&org_yaml("long-slug", &"a".repeat(31), ""));
    assert!(err.contains("spec.slug") && err.contains("30"), "{err}");
}

#[tokio::test]
async fn slug_cannot_change() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("fixed", "fixed", ""));
    let err = h.apply_err(&org_yaml("fixed", "renamed", ""));
    assert!(err.contains("spec.slug is immutable"), "{err}");
}

#[tokio::test]
async fn unknown_or_misplaced_roles_are_refused() {
    let h = cluster_with_operator();
    let err = h.apply_err(&org_yaml("roles", "roles", "  members:\n    - { kind: User, name: x, role: Superuser }\n"));
    assert!(err.contains("spec.members[0].role") && err.contains("Unsupported value"), "{err}");
    let err = h.apply_err(&org_yaml("roles", "roles", "  members:\n    - { kind: User, name: x, role: TeamAdmin }\n"));
    assert!(err.contains("organization members have role Admin, Member or Viewer"), "{err}");
    let err = h.apply_err(&org_yaml(
        "roles",
        "roles",
        "  members:\n    - { kind: ServiceAccount, name: ci, role: Member }\n",
    ));
    assert!(err.contains("namespace is required for kind ServiceAccount"), "{err}");
    let err = h.apply_err(&org_yaml("roles", "roles", "  security:\n    ipAllowList: [not-a-cidr]\n"));
    assert!(err.contains("ipAllowList") && err.contains("CIDR"), "{err}");
}

#[tokio::test]
async fn plan_overage_is_checked_by_the_api_server() {
    let h = cluster();
    let plan = |spec: &str| {
        format!("apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata:\n  name: overage-check\nspec:\n{spec}")
    };
    let err = h.apply_err(&plan(
        "  price: { amountCents: 999 }\n  limits: { bandwidth: 10Gi }\n  overage: { bandwidth: { action: Bill } }\n",
    ));
    assert!(
        err.contains("spec.overage.bandwidth") && err.contains("action Bill needs a price: set centsPerGiB"),
        "{err}"
    );
    let err = h.apply_err(&plan(
        "  price: { amountCents: 999 }\n  limits: { storage: 10Gi }\n  overage: { storage: { action: Block, centsPerGiBMonth: 5 } }\n",
    ));
    assert!(err.contains("action Block bills nothing: remove centsPerGiBMonth"), "{err}");
    let err = h.apply_err(&plan(
        "  price: { amountCents: 999 }\n  overage: { apiCalls: { action: Bill, centsPerThousandCalls: 2 } }\n",
    ));
    assert!(err.contains("overage.apiCalls applies beyond limits.apiCalls, which is absent (unlimited)"), "{err}");
    let err = h.apply_err(&plan(
        "  price: { amountCents: 0 }\n  limits: { streamHours: 10 }\n  overage: { streamHours: { action: Bill, centsPerHour: 5 } }\n",
    ));
    assert!(err.contains("overage action Bill needs a billed plan"), "{err}");
    let err = h.apply_err(&plan(
        "  price: { amountCents: 999 }\n  limits: { streamHours: 10 }\n  overage: { streamHours: { action: Charge } }\n",
    ));
    assert!(err.contains("spec.overage.streamHours.action") && err.contains("Unsupported value"), "{err}");
    // Pay as you go: nothing included, every call billed.
    h.apply_ok(&plan(
        "  price: { amountCents: 999 }\n  limits: { apiCalls: 0 }\n  overage: { apiCalls: { action: Bill, centsPerThousandCalls: 3 } }\n",
    ));
    h.kubectl_ok(&["delete", "plan", "overage-check"]);
}

#[tokio::test]
async fn unknown_plan_is_reported_and_nothing_is_provisioned() {
    let h = cluster_with_operator();
    let client = h.client().await;
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: { name: nowhere }\nspec: { organization: nowhere, plan: platinum, billingEmail: b@nowhere.example }\n");
    // The caches of different kinds are separate watches: let the Subscription be seen before the
    // Organization arrives (otherwise the first reconcile may still see no Subscription).
    support::eventually("the subscription is seen", || async {
        !h.jsonpath(&["subscription", "nowhere"], "{.status.conditions[?(@.type==\"Ready\")].reason}").is_empty()
    })
    .await;
    h.apply_ok(&org_yaml("nowhere", "nowhere", ""));
    support::eventually("PlanNotFound condition", || async {
        h.jsonpath(&["organization", "nowhere"], "{.status.conditions[?(@.type==\"Ready\")].reason}") == "PlanNotFound"
    })
    .await;
    let message = h.jsonpath(&["organization", "nowhere"], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(message.contains("\"platinum\"") && message.contains("Subscription nowhere"), "{message}");
    let sub_reason = h.jsonpath(&["subscription", "nowhere"], "{.status.conditions[?(@.type==\"Ready\")].reason}");
    assert_eq!(sub_reason, "PlanNotFound");
    assert!(!exists(&Api::<Namespace>::all(client.clone()), "org-nowhere").await, "nothing half-provisioned");

    // Fixing the plan provisions it.
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: { name: nowhere }\nspec: { organization: nowhere, plan: starter, billingEmail: b@nowhere.example }\n");
    h.wait_ready("organization", "nowhere");
}

#[tokio::test]
async fn a_slug_used_by_another_organization_is_refused_and_not_taken_over() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("first-taken", "taken", ""));
    h.wait_ready("organization", "first-taken");
    // The webhook refuses the second organization outright (the controller's SlugConflict
    // condition remains the backstop for objects that predate the webhook).
    // The webhook decides from its caches, which trail writes: a dry run shows when it sees the
    // first organization (the controller's SlugConflict is the backstop for that window).
    let second = org_yaml("second-taken", "taken", "").replace("taken-owner", "mallory");
    support::eventually("the webhook sees the first organization", || async {
        let out = h.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &second);
        !out.status.success()
    })
    .await;
    let err = h.apply_err(&second);
    support::assert_denied_by(
        &err,
        "slug-in-use",
        "slug taken is already used by organization first-taken: choose another spec.slug",
    );
    assert!(h.kubectl(&["get", "organization", "second-taken"]).stderr.starts_with(b"Error from server (NotFound)"));
    assert_eq!(
        h.jsonpath(&["namespace", "org-taken"], "{.metadata.labels.atlantiplex\\.io/organization-object}"),
        "first-taken"
    );
    assert!(!h.can_i("mallory", "list", "pods", "org-taken"), "the second organization's owner gets nothing");
    assert!(h.can_i("taken-owner", "list", "pods", "org-taken"));
}
