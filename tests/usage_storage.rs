//! Storage metering end to end: the operator (sampling every 2 s through the hidden `--storage-sample-seconds`)
//! against the real control plane and its SQLite ledger. An Organization with a Team; PersistentVolumeClaims
//! created in the home and the team namespace, one resized; every sample shows in the ledger, the storage
//! windows are the step function of the samples, `status.usage.storage` grows; deleted claims are sampled as 0
//! once; a restarted operator fills the gap with the last sample.
//!
//! Resizing needs a bound claim (the API server's PersistentVolumeClaimResize admission) of a StorageClass with
//! `allowVolumeExpansion`. The test plane runs no volume binder or provisioner (no kubelet, no storage), so the
//! test marks the claim Bound through its status subresource, as the binder would; the API server then admits
//! the resize as in any cluster, and the operator sees only the claim's `requests.storage`, as always. For the
//! same reason (no pvc-protection controller) the test lifts a deleted claim's finalizer itself.

mod support;

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::period::calendar_month;
use atlantiplex_operator::metering::storage::byte_seconds;
use atlantiplex_operator::metering::{Meter, StorageSample};
use support::{Harness, OperatorProcess, cluster, eventually, org_yaml};

const GIB: i64 = 1 << 30;
const SAMPLE_EVERY: [&str; 2] = ["--storage-sample-seconds", "2"];

const STORAGE_CLASS: &str = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: expandable}\n\
                             provisioner: example.com/none\nallowVolumeExpansion: true\n";

fn claim_yaml(namespace: &str, name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  storageClassName: expandable\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

async fn ledger(h: &Harness) -> Ledger {
    Ledger::connect(&h.plane.dir.join("ledger.db").display().to_string()).await.expect("ledger")
}

/// The organization's stored samples (all of them: the test is far younger than the two days kept).
async fn samples(h: &Harness, organization: &str) -> Vec<StorageSample> {
    let ledger = ledger(h).await;
    let from = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let samples = ledger.storage_samples(organization, from).await.expect("samples");
    ledger.close().await;
    samples
}

async fn latest_bytes(h: &Harness, organization: &str) -> Option<i64> {
    samples(h, organization).await.last().map(|s| s.bytes)
}

/// The windows hold exactly the step function of the samples, from the first sample to the last.
async fn assert_windows_follow_the_samples(h: &Harness, organization: &str) {
    let ledger = ledger(h).await;
    let period = calendar_month(jiff::Timestamp::now()).expect("period");
    let samples = samples(h, organization).await;
    let windows = ledger.usage_windows(organization, Meter::Storage, period.start, period.end).await.expect("windows");
    let totals = ledger.usage_totals(organization, &period).await.expect("totals");
    ledger.close().await;
    let (first, last) = (samples.first().expect("a sample").at, samples.last().expect("a sample").at);
    let stored: i64 = windows.iter().map(|w| w.quantity).sum();
    assert_eq!(i128::from(stored), byte_seconds(&samples, first, last), "windows {windows:?} from {samples:?}");
    assert_eq!(totals.get(&Meter::Storage), Some(&stored));
}

/// `status.usage.storage`'s used part in bytes ("4.1Ki/5Gi" → 4198), with its limit part.
fn storage_status(h: &Harness, organization: &str) -> (f64, String) {
    let line = h.jsonpath(&["organization", organization], "{.status.usage.storage}");
    let Some((used, limit)) = line.split_once('/') else { return (-1.0, line) };
    let split = used.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(used.len());
    let (number, suffix) = used.split_at(split);
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unexpected unit in {line:?}"),
    };
    (number.parse::<f64>().unwrap_or(-1.0) * scale, limit.to_string())
}

/// Waits until `status.usage.storage` shows more than `than`; the new value.
async fn storage_grows(h: &Harness, organization: &str, than: f64) -> f64 {
    let mut seen = than;
    eventually(&format!("status.usage.storage of {organization} to grow beyond {than} bytes"), || {
        let (used, _) = storage_status(h, organization);
        seen = used;
        async move { used > than }
    })
    .await;
    seen
}

#[tokio::test]
async fn claims_created_and_resized_in_home_and_team_namespaces_are_sampled_into_the_status() {
    let h = cluster();
    let operator = OperatorProcess::start_with(&h, "operator-storage.log", &SAMPLE_EVERY);
    h.wait_operator_ready();
    h.apply_ok(STORAGE_CLASS);
    // The free plan: storage 5Gi (examples/plans.yaml), 40 % of it (2Gi) in the team's namespace.
    h.apply_ok(&org_yaml("stash", "stash", ""));
    h.apply_ok(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {name: stash.media}\nspec: {organization: stash, quotaShare: 40}\n",
    );
    h.wait_ready("organization", "stash");
    h.wait_ready("team", "stash.media");
    assert_eq!(h.jsonpath(&["organization", "stash"], "{.status.usage.storage}"), "0/5Gi", "no storage yet");
    assert!(samples(&h, "stash").await.is_empty(), "an organization that never had storage writes no samples");

    // A claim in the home namespace (once the quota admission knows the quota's usage).
    eventually("a 1Gi claim in org-stash is admitted", || async {
        h.apply(&claim_yaml("org-stash", "data", "1Gi")).status.success()
    })
    .await;
    eventually("a sample of 1Gi", || async { latest_bytes(&h, "stash").await == Some(GIB) }).await;
    let (first, limit) = {
        let mut shown = (0.0, String::new());
        eventually("status.usage.storage shows GiB-months used", || {
            shown = storage_status(&h, "stash");
            let used = shown.0;
            async move { used > 0.0 }
        })
        .await;
        shown
    };
    assert_eq!(limit, "5Gi", "the free plan includes 5 GiB-months");

    // And one in the team namespace: its storage counts for the same organization.
    eventually("a 1Gi claim in stash--media is admitted", || async {
        h.apply(&claim_yaml("stash--media", "media", "1Gi")).status.success()
    })
    .await;
    // Seen twice: a sample equal to the last one is still written (it extends the step).
    eventually("two samples of 2Gi (home and team)", || async {
        samples(&h, "stash").await.iter().filter(|s| s.bytes == 2 * GIB).count() >= 2
    })
    .await;
    let second = storage_grows(&h, "stash", first).await;

    // Resized: bound (as the volume binder would mark it), then 1Gi → 2Gi.
    h.kubectl_ok(&[
        "patch",
        "pvc",
        "data",
        "-n",
        "org-stash",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}}"#,
    ]);
    h.kubectl_ok(&[
        "patch",
        "pvc",
        "data",
        "-n",
        "org-stash",
        "--type=merge",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
    ]);
    eventually("a sample of 3Gi after the resize", || async { latest_bytes(&h, "stash").await == Some(3 * GIB) }).await;
    let third = storage_grows(&h, "stash", second).await;
    let held = samples(&h, "stash").await;
    let seen: Vec<i64> = held.iter().map(|s| s.bytes).collect();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "samples only grew: {seen:?}");
    assert_windows_follow_the_samples(&h, "stash").await;

    // A restart (SIGKILL): the new operator samples at once, and the gap holds the last sample.
    let before = held.last().expect("a sample").at;
    operator.kill();
    let _operator = OperatorProcess::start_with(&h, "operator-storage-2.log", &SAMPLE_EVERY);
    h.wait_operator_ready();
    eventually("a sample after the restart", || async {
        samples(&h, "stash").await.last().is_some_and(|s| s.at > before)
    })
    .await;
    assert_windows_follow_the_samples(&h, "stash").await;
    storage_grows(&h, "stash", third).await;

    // The claims deleted: one last sample of 0, and the GiB-months used so far stay. A claim being deleted
    // counts until it is gone; the test plane runs no pvc-protection controller, so the test lifts the
    // finalizer as that controller does once no pod uses the claim.
    for (namespace, name) in [("org-stash", "data"), ("stash--media", "media")] {
        h.kubectl_ok(&["delete", "pvc", name, "-n", namespace, "--wait=false"]);
        h.kubectl_ok(&[
            "patch",
            "pvc",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
    eventually("a sample of 0 once the claims are gone", || async { latest_bytes(&h, "stash").await == Some(0) }).await;
    assert_windows_follow_the_samples(&h, "stash").await;
    let (after, _) = storage_status(&h, "stash");
    assert!(after >= third, "GiB-months used this period never shrink: {after} < {third}");

    // Every sample was counted.
    let token = h.metrics_token();
    let metrics = support::http_get_with_token(h.metrics_port(), "/metrics", &token).unwrap_or_default();
    assert!(metrics.contains("atlantiplex_storage_samples_total{result=\"taken\"}"), "{metrics}");
}
