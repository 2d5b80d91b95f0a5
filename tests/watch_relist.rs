//! Objects that arrive while the operator's watches recover from an expired resourceVersion are
//! reconciled: a re-list is how a watch catches up, so everything it brings triggers.

mod support;

use std::time::Duration;
use support::{Harness, OperatorProcess, ROOT, org_yaml};

#[tokio::test]
async fn objects_created_while_the_watches_relist_after_410_gone_are_reconciled() {
    // A plane of its own: the test restarts its API server.
    let mut plane = devcluster::ControlPlane::start(devcluster::Options::for_tests().expect("options"))
        .await
        .expect("control plane");
    let h = Harness { plane: Box::leak(Box::new((*plane).clone())) };
    h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/crds/")]);
    h.kubectl_ok(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/examples/plans.yaml")]);
    let operator = OperatorProcess::start_ready(&h, "operator-relist.log");
    h.apply_ok(&org_yaml("before", "before", ""));
    h.wait_ready("organization", "before");

    // Down for long enough that the watches' retry back-off grows to seconds: what is created
    // right after the restart reaches the operator through the re-list, not a watch event.
    plane.restart_apiserver(Duration::from_secs(15)).await.expect("API server restarts");
    for name in ["during-a", "during-b", "during-c"] {
        h.apply_ok(&org_yaml(name, name, ""));
    }
    h.apply_ok(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {name: before.late}\nspec: {organization: before}\n",
    );
    // After the restart the watches' back-off may have grown to tens of seconds on a busy machine:
    // a deadline well past the default one.
    let ready = |target: &str| {
        h.kubectl_ok(&["wait", "--for=condition=Ready", target, "--timeout=240s"]);
    };
    for name in ["during-a", "during-b", "during-c"] {
        ready(&format!("organization/{name}"));
    }
    ready("team/before.late");

    // The path under test was taken: the resumed watches were refused as too old and re-listed.
    let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
    assert!(
        log.contains("too old resource version") || log.contains("410"),
        "the operator's watches should have met 410 Gone after the restart; log: {}",
        operator.log.display()
    );
}
