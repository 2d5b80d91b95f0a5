//! Killing the operator in the middle of provisioning and starting a new one converges, with
//! nothing duplicated and nothing left behind; a second pass writes nothing.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use support::{OPERATOR_USER, OperatorProcess, cluster, eventually};

const ORGS: usize = 20;

#[tokio::test]
async fn operator_killed_mid_provisioning_converges_after_restart() {
    let h = cluster();
    let client = h.client().await;
    let yaml: String = (0..ORGS)
        .map(|i| {
            support::org_yaml(
                &format!("restart-{i}"),
                &format!("restart-{i}"),
                "  members:\n    - { kind: User, name: member, role: Member }\n",
            )
        })
        .collect::<Vec<_>>()
        .join("---\n");
    h.apply_ok(&yaml);

    let first = OperatorProcess::start(&h, "operator-first.log");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let selector = ListParams::default().labels("atlantiplex.io/managed=true");
    eventually("provisioning under way", || async { !namespaces.list(&selector).await.unwrap().items.is_empty() })
        .await;
    first.kill();

    let second = OperatorProcess::start(&h, "operator-second.log");
    for i in 0..ORGS {
        h.wait_ready("organization", &format!("restart-{i}"));
    }
    assert_eq!(namespaces.list(&selector).await.unwrap().items.len(), ORGS, "one namespace per organization");
    for i in (0..ORGS).step_by(7) {
        let ns = format!("org-restart-{i}");
        let names = h.kubectl_ok(&[
            "get",
            "resourcequota,limitrange,rolebinding,networkpolicy,ingress,service",
            "-n",
            &ns,
            "-l",
            "atlantiplex.io/managed=true",
            "-o",
            "name",
        ]);
        let mut names: Vec<&str> = names.lines().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "ingress.networking.k8s.io/atlantiplex-tenant",
                "limitrange/atlantiplex-limits",
                "networkpolicy.networking.k8s.io/atlantiplex-isolation",
                "resourcequota/atlantiplex-quota",
                "rolebinding.rbac.authorization.k8s.io/atlantiplex-member",
                "rolebinding.rbac.authorization.k8s.io/atlantiplex-owner",
                "service/atlantiplex-limit-reached",
                "service/atlantiplex-suspended",
            ],
            "exactly the managed objects of {ns}"
        );
    }

    // Idempotence: a third operator re-syncs every organization without writing anything.
    let before: Vec<String> = resource_versions(&h);
    second.kill();
    let writes_before = h.plane.audited_state_changes(OPERATOR_USER).unwrap();
    assert!(writes_before > ORGS, "the audit log records the provisioning writes");
    let third = OperatorProcess::start(&h, "operator-third.log");
    let third_log = third.log.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&third_log).unwrap_or_default();
        let reconciled = |i: usize| {
            let name = format!("name=restart-{i}");
            log.lines().any(|l| l.contains("reconciled") && l.split_whitespace().any(|w| w == name))
        };
        if (0..ORGS).all(reconciled) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new operator did not reconcile every organization:\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let after = resource_versions(&h);
    third.kill();
    assert_eq!(before, after, "a re-sync changes no object");
    let writes_after = h.plane.audited_state_changes(OPERATOR_USER).unwrap();
    assert_eq!(writes_after, writes_before, "a restarted operator sends no write request at all");
}

/// resourceVersions of every Organization and managed object: any write would change one.
fn resource_versions(h: &support::Harness) -> Vec<String> {
    let out = h.kubectl_ok(&[
        "get",
        "organizations,namespaces,resourcequota,limitrange,rolebinding,networkpolicy,ingress,service",
        "-A",
        "-l",
        "atlantiplex.io/managed=true",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.resourceVersion}{\"\\n\"}{end}",
    ]);
    let orgs = h.kubectl_ok(&[
        "get",
        "organizations",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.resourceVersion}{\"\\n\"}{end}",
    ]);
    let mut lines: Vec<String> = out.lines().chain(orgs.lines()).map(String::from).collect();
    lines.sort();
    lines
}
