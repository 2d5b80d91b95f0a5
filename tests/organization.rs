//! The Organization controller end to end, against a real control plane with the operator
//! binary running: what a platform engineer sees with kubectl.

mod support;

use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use support::{cluster_with_operator, eventually, exists, org_yaml};

fn quota_pods(h: &support::Harness, ns: &str) -> String {
    h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", ns], "{.spec.hard.pods}")
}

#[tokio::test]
async fn applied_organization_becomes_ready_with_its_tenant_objects() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml(
        "provision",
        "provision",
        "  members:\n    - { kind: User, name: bob, role: Member }\n    - { kind: User, name: carol, role: Viewer }\n    - { kind: Group, name: provision-admins, role: Admin }\n",
    ));
    h.wait_ready("organization", "provision");

    let ns = "org-provision";
    let labels = h.jsonpath(&["namespace", ns], "{.metadata.labels}");
    for expected in [r#""atlantiplex.io/managed":"true""#, r#""atlantiplex.io/organization":"provision""#] {
        assert!(labels.contains(expected), "namespace labels {labels}");
    }
    assert_eq!(
        h.jsonpath(&["namespace", ns], "{.metadata.ownerReferences}"),
        "",
        "no ownerReferences on tenant namespaces"
    );
    assert_eq!(quota_pods(&h, ns), "20", "free plan quota");
    assert_eq!(h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", ns], "{.spec.hard.requests\\.storage}"), "5Gi");
    assert_eq!(h.jsonpath(&["limitrange", "atlantiplex-limits", "-n", ns], "{.spec.limits[0].default.cpu}"), "500m");
    assert_eq!(h.jsonpath(&["rolebinding", "atlantiplex-owner", "-n", ns], "{.subjects[0].name}"), "provision-owner");
    assert_eq!(h.jsonpath(&["rolebinding", "atlantiplex-member", "-n", ns], "{.roleRef.name}"), "edit");
    assert_eq!(h.jsonpath(&["networkpolicy", "atlantiplex-isolation", "-n", ns], "{.spec.policyTypes[0]}"), "Ingress");
    assert_eq!(
        h.jsonpath(&["ingress", "atlantiplex-tenant", "-n", ns], "{.spec.rules[0].host}"),
        "provision.atlantiplex.local"
    );

    // The role table, as the API server's own authorizer applies it.
    assert!(h.can_i("provision-owner", "create", "rolebindings", ns), "owner administers the namespace");
    assert!(h.can_i("bob", "create", "deployments", ns), "member edits workloads");
    assert!(!h.can_i("bob", "create", "rolebindings", ns), "member cannot grant access");
    assert!(h.can_i("carol", "list", "pods", ns), "viewer reads");
    assert!(!h.can_i("carol", "create", "pods", ns), "viewer cannot change");
    assert!(!h.can_i("bob", "list", "pods", "default"), "nothing outside the tenant");

    let status = h.jsonpath(
        &["organization", "provision"],
        "{.status.phase} {.status.effectivePlan} {.status.url} {.status.usage.users}",
    );
    assert_eq!(status, "Active free http://provision.atlantiplex.local 4/5");
    let events = h.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "involvedObject.name=provision",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("Provisioned"), "events: {events}");
}

#[tokio::test]
async fn member_and_plan_changes_are_followed() {
    let h = cluster_with_operator();
    let client = h.client().await;
    let ns = "org-follow";
    h.apply_ok(&org_yaml("follow", "follow", "  members:\n    - { kind: User, name: vera, role: Viewer }\n"));
    h.wait_ready("organization", "follow");
    assert!(h.can_i("vera", "list", "pods", ns));

    // Vera leaves, Mo joins as a member: the viewer binding goes, the member binding appears.
    h.apply_ok(&org_yaml("follow", "follow", "  members:\n    - { kind: User, name: mo, role: Member }\n"));
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    eventually("viewer binding removed", || async { !exists(&bindings, "atlantiplex-viewer").await }).await;
    eventually("member binding created", || async { exists(&bindings, "atlantiplex-member").await }).await;
    assert!(!h.can_i("vera", "list", "pods", ns));
    assert!(h.can_i("mo", "create", "deployments", ns));

    // A Subscription moves it to professional: the quota follows.
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: { name: follow }\nspec: { organization: follow, plan: professional, billingEmail: billing@follow.example }\n");
    eventually("professional quota", || async { quota_pods(&h, ns) == "200" }).await;
    assert_eq!(h.jsonpath(&["organization", "follow"], "{.status.effectivePlan}"), "professional");

    // Editing the Plan itself re-maps every tenant on it.
    let plans: Api<atlantiplex_operator::api::Plan> = Api::all(client.clone());
    let bump = serde_json::json!({"spec": {"quota": {"pods": "201"}}});
    plans.patch("professional", &PatchParams::default(), &Patch::Merge(&bump)).await.unwrap();
    eventually("plan edit re-mapped", || async { quota_pods(&h, ns) == "201" }).await;
    let restore = serde_json::json!({"spec": {"quota": {"pods": "200"}}});
    plans.patch("professional", &PatchParams::default(), &Patch::Merge(&restore)).await.unwrap();

    // Downgrade to starter, then remove the Subscription: back to free.
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: { name: follow }\nspec: { organization: follow, plan: starter, billingEmail: billing@follow.example }\n");
    eventually("starter quota", || async { quota_pods(&h, ns) == "50" }).await;
    h.kubectl_ok(&["delete", "subscription", "follow"]);
    eventually("free quota", || async { quota_pods(&h, ns) == "20" }).await;
    eventually("an event for each plan change", || async {
        let events = h.event_messages("follow", "PlanChanged");
        ["from free to professional", "from professional to starter", "from starter to free"]
            .iter()
            .all(|e| events.contains(e))
    })
    .await;
}

#[tokio::test]
async fn deleted_or_edited_managed_objects_are_repaired() {
    let h = cluster_with_operator();
    let client = h.client().await;
    let ns = "org-drift";
    h.apply_ok(&org_yaml("drift", "drift", ""));
    h.wait_ready("organization", "drift");

    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let edit = serde_json::json!({"spec": {"hard": {"pods": "999"}}});
    quotas.patch("atlantiplex-quota", &PatchParams::default(), &Patch::Merge(&edit)).await.unwrap();
    eventually("quota edit reverted", || async { quota_pods(&h, ns) == "20" }).await;

    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let limits: Api<LimitRange> = Api::namespaced(client.clone(), ns);
    bindings.delete("atlantiplex-owner", &DeleteParams::default()).await.unwrap();
    policies.delete("atlantiplex-isolation", &DeleteParams::default()).await.unwrap();
    ingresses.delete("atlantiplex-tenant", &DeleteParams::default()).await.unwrap();
    limits.delete("atlantiplex-limits", &DeleteParams::default()).await.unwrap();
    quotas.delete("atlantiplex-quota", &DeleteParams::default()).await.unwrap();
    eventually("every deleted object re-created", || async {
        exists(&bindings, "atlantiplex-owner").await
            && exists(&policies, "atlantiplex-isolation").await
            && exists(&ingresses, "atlantiplex-tenant").await
            && exists(&limits, "atlantiplex-limits").await
            && exists(&quotas, "atlantiplex-quota").await
    })
    .await;
    assert!(h.can_i("drift-owner", "create", "rolebindings", ns));
}

#[tokio::test]
async fn suspension_cuts_new_workloads_and_routes_to_the_suspended_page() {
    let h = cluster_with_operator();
    let ns = "org-pause";
    h.apply_ok(&org_yaml("pause", "pause", ""));
    h.wait_ready("organization", "pause");
    h.apply_ok(&org_yaml("pause", "pause", "  suspended: true\n"));
    eventually("suspended", || async { h.jsonpath(&["organization", "pause"], "{.status.phase}") == "Suspended" })
        .await;
    assert_eq!(quota_pods(&h, ns), "0");
    let backend =
        h.jsonpath(&["ingress", "atlantiplex-tenant", "-n", ns], "{.spec.rules[0].http.paths[0].backend.service.name}");
    assert_eq!(backend, "atlantiplex-suspended");
    h.apply_ok(&org_yaml("pause", "pause", "  suspended: false\n"));
    eventually("resumed", || async { h.jsonpath(&["organization", "pause"], "{.status.phase}") == "Active" }).await;
    assert_eq!(quota_pods(&h, ns), "20");
}

#[tokio::test]
async fn retain_keeps_the_namespace_and_its_data_and_removes_access() {
    let h = cluster_with_operator();
    let client = h.client().await;
    h.apply_ok(&org_yaml("keeper", "keeper", "  deletionPolicy: Retain\n"));
    h.wait_ready("organization", "keeper");
    h.kubectl_ok(&["create", "configmap", "recordings", "-n", "org-keeper", "--from-literal=take=1"]);
    h.kubectl_ok(&["delete", "organization", "keeper", "--timeout=60s"]);

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get("org-keeper").await.expect("namespace retained");
    assert!(ns.metadata.deletion_timestamp.is_none());
    assert_eq!(
        h.kubectl_ok(&["get", "configmap", "recordings", "-n", "org-keeper", "-o", "jsonpath={.data.take}"]),
        "1"
    );
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "org-keeper");
    assert!(
        bindings.list(&Default::default()).await.unwrap().items.iter().all(|b| !b
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .starts_with("atlantiplex-"))
    );
    assert!(!h.can_i("keeper-owner", "list", "pods", "org-keeper"));

    // Re-creating the organization adopts the retained namespace and its data.
    h.apply_ok(&org_yaml("keeper", "keeper", ""));
    h.wait_ready("organization", "keeper");
    assert!(h.can_i("keeper-owner", "list", "pods", "org-keeper"));
    assert_eq!(
        h.kubectl_ok(&["get", "configmap", "recordings", "-n", "org-keeper", "-o", "jsonpath={.data.take}"]),
        "1"
    );
}

#[tokio::test]
async fn delete_policy_removes_the_namespace() {
    let h = cluster_with_operator();
    let client = h.client().await;
    h.apply_ok(&org_yaml("doomed", "doomed", "  deletionPolicy: Delete\n"));
    h.wait_ready("organization", "doomed");
    h.kubectl_ok(&["create", "configmap", "data", "-n", "org-doomed"]);
    // kubectl waits for the finalizer, which waits until the namespace is gone.
    h.kubectl_ok(&["delete", "organization", "doomed", "--timeout=90s"]);
    let namespaces: Api<Namespace> = Api::all(client);
    eventually("namespace gone", || async { !exists(&namespaces, "org-doomed").await }).await;
}
