//! Self-service sign-up through the mutating webhook, and what happens when the operator is
//! down: the cluster keeps working; only tenancy changes fail, closed, with a clear message.

mod support;

use support::{OperatorProcess, assert_denied_by, cluster};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn signup_then_operator_outage_fails_closed_for_tenancy_only() {
    let h = cluster();
    let operator =
        OperatorProcess::start_with(&h, "operator-signup.log", &["--signup", "--signup-max-free-organizations", "1"]);
    h.wait_operator_ready();

    // Sign-up: any authenticated user creates an organization and becomes its owner.
    let zoe = h.user("zoe", &[]);
    let signup = |name: &str| {
        format!(
            "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\nspec: {{slug: {name}, displayName: {name}}}\n"
        )
    };
    let out = zoe.create(&signup("zoe-studio"));
    assert!(out.status.success(), "sign-up: {}", stderr(&out));
    assert_eq!(h.jsonpath(&["organization", "zoe-studio"], "{.spec.owners[0].name}"), "zoe");
    assert_eq!(
        h.jsonpath(&["organization", "zoe-studio"], "{.metadata.annotations.atlantiplex\\.io/created-by}"),
        "zoe"
    );
    h.wait_ready("organization", "zoe-studio");
    support::eventually("the new owner reaches the organization", || async {
        zoe.kubectl(&["get", "organization", "zoe-studio"], None).status.success()
    })
    .await;
    assert!(
        h.can_i("zoe", "create", "deployments", "org-zoe-studio"),
        "the owner runs workloads in the home namespace"
    );
    let out = zoe.create(&signup("zoe-second"));
    assert_denied_by(
        &stderr(&out),
        "signup-cap",
        "you already created 1 organizations on plan free (the limit per user is 1)",
    );
    let forged = "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {name: zoe-other}\nspec: {slug: zoe-other, displayName: x, owners: [{kind: User, name: somebody}]}\n";
    let yuri = h.user("yuri", &[]);
    let out = yuri.create(forged);
    assert!(out.status.success(), "{}", stderr(&out));
    let owners = h.jsonpath(&["organization", "zoe-other"], "{.spec.owners[*].name}");
    assert_eq!(owners, "somebody yuri", "the requester is always made an owner");

    // The operator stops: everything outside tenancy keeps working.
    operator.kill();
    h.kubectl_ok(&["create", "namespace", "outage-plain"]);
    h.kubectl_ok(&["create", "configmap", "still-works", "-n", "default", "--from-literal=a=b"]);
    support::eventually("default service account", || async {
        h.kubectl(&["get", "serviceaccount", "default", "-n", "outage-plain"]).status.success()
    })
    .await;
    h.kubectl_ok(&["run", "still-runs", "-n", "outage-plain", "--image=registry.k8s.io/pause:3.10", "--restart=Never"]);
    h.kubectl_ok(&["create", "configmap", "tenant-data", "-n", "org-zoe-studio", "--from-literal=a=b"]);
    h.kubectl_ok(&["label", "namespace", "kube-system", "outage-test=yes", "--overwrite"]);

    // Tenancy changes fail closed, naming the webhook that could not be reached.
    let out = h.apply(&support::org_yaml("outage-org", "outage-org", ""));
    let err = stderr(&out);
    assert!(!out.status.success(), "creating an organization must fail while the operator is down");
    assert!(err.contains("failed calling webhook \"defaults.atlantiplex.io\""), "{err}");
    let err =
        h.kubectl(&["patch", "organization", "zoe-studio", "--type=merge", "-p", r#"{"spec":{"displayName":"Z"}}"#]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("failed calling webhook \"tenancy.atlantiplex.io\""));
    let err = h.kubectl(&["delete", "resourcequota", "atlantiplex-quota", "-n", "org-zoe-studio"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("failed calling webhook \"managed-objects.atlantiplex.io\""));
    assert_eq!(
        h.jsonpath(&["organization", "zoe-studio"], "{.spec.displayName}"),
        "zoe-studio",
        "nothing half-applied"
    );

    // Back up: tenancy works again without anyone touching the registration.
    let _operator = OperatorProcess::start_ready(&h, "operator-restarted.log");
    h.apply_ok(&support::org_yaml("outage-org", "outage-org", ""));
    h.wait_ready("organization", "outage-org");
}
