//! Deleting and re-creating the CRDs (an uninstall/reinstall) never deletes a tenant's
//! namespace, data or access — even for organizations with deletionPolicy Delete.

mod support;

use support::{cluster_with_operator, org_yaml};

#[tokio::test]
async fn removing_the_crds_keeps_every_tenant_and_reinstalling_readopts_them() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("durable", "durable", "  deletionPolicy: Delete\n"));
    h.apply_ok(&org_yaml("kept", "kept", ""));
    h.wait_ready("organization", "durable");
    h.wait_ready("organization", "kept");
    h.kubectl_ok(&["create", "configmap", "recordings", "-n", "org-durable", "--from-literal=take=1"]);

    h.kubectl_ok(&["delete", "crd", "organizations.atlantiplex.io", "--timeout=90s"]);
    for (ns, owner) in [("org-durable", "durable-owner"), ("org-kept", "kept-owner")] {
        let phase = h.jsonpath(&["namespace", ns], "{.status.phase}");
        assert_eq!(phase, "Active", "{ns} survives CRD removal");
        assert!(h.can_i(owner, "list", "pods", ns), "{owner} keeps access");
    }
    assert_eq!(
        h.kubectl_ok(&["get", "configmap", "recordings", "-n", "org-durable", "-o", "jsonpath={.data.take}"]),
        "1"
    );

    h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{}/crds/organizations.yaml", support::ROOT)]);
    h.kubectl_ok(&["wait", "--for=condition=Established", "crd/organizations.atlantiplex.io", "--timeout=60s"]);
    h.apply_ok(&org_yaml("durable", "durable", "  deletionPolicy: Delete\n"));
    h.wait_ready("organization", "durable");
    assert_eq!(h.jsonpath(&["organization", "durable"], "{.status.namespace}"), "org-durable");
    assert_eq!(
        h.kubectl_ok(&["get", "configmap", "recordings", "-n", "org-durable", "-o", "jsonpath={.data.take}"]),
        "1"
    );
}
