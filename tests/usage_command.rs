//! `atlantiplex-operator usage`: the real binary against a SQLite ledger holding inserted usage events.
//! - without a cluster: the totals over the window and the period, in billing units, with a note that the
//!   plan is unknown; the JSON's per-meter totals, daily and hourly sums; an unknown organization names the
//!   organizations that have usage; a bad `--since` names the accepted forms;
//! - with a real API server (an Organization, its Subscription and the shipped Plans; no operator needed):
//!   used against included and the overage the usage would cost on its plan.

mod support;

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::{Meter, UsageEvent};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const GIB: i64 = 1 << 30;

fn event(id: &str, meter: Meter, time: Timestamp, quantity: i64) -> UsageEvent {
    UsageEvent { source: "edge/test".into(), id: id.into(), meter, subject: "org-acme".into(), time, quantity }
}

/// A ledger in `dir` with acme's usage now (2 TiB + 1 GiB of bandwidth, 1,250,499 API calls, 90 minutes of
/// stream time) and 40 days ago (outside the window and the period); globex has some too.
async fn ledger_with_usage(dir: &Path) -> String {
    let url = format!("sqlite://{}?mode=rwc", dir.join("ledger.db").display());
    let ledger = Ledger::connect(&url).await.expect("ledger");
    let now = Timestamp::now();
    let old = now - SignedDuration::from_hours(40 * 24);
    let events = [
        event("bw-1", Meter::Bandwidth, now, 2 << 40),
        event("bw-2", Meter::Bandwidth, now, GIB),
        event("calls", Meter::ApiCalls, now, 1_250_499),
        event("stream", Meter::StreamTime, now, 5_400_000),
        event("bw-old", Meter::Bandwidth, old, 7 * GIB),
    ];
    ledger.insert_usage_events("acme", &events).await.expect("insert");
    ledger.insert_usage_events("globex", &events[..1]).await.expect("insert");
    ledger.close().await;
    url
}

fn usage(url: &str, kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"))
        .arg("usage")
        .args(["--database-url", url])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "usage failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn meter<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["meters"].as_array().and_then(|m| m.iter().find(|m| m["meter"] == name)).expect("meter in the JSON")
}

fn line<'a>(table: &'a str, meter: &str) -> &'a str {
    table.lines().find(|l| l.starts_with(meter)).unwrap_or_else(|| panic!("no {meter} line in:\n{table}"))
}

#[tokio::test]
async fn usage_from_the_ledger_without_a_cluster() {
    let dir = tempdir("usage-no-cluster");
    let url = ledger_with_usage(&dir).await;
    let nowhere = dir.join("no-kubeconfig");

    let table = ok(&usage(&url, &nowhere, &["--org", "acme"]));
    assert!(table.starts_with("organization acme   plan unknown\n"), "{table}");
    let bandwidth = line(&table, "bandwidth");
    // 2 TiB + 1 GiB in the window and in the period; the 7 GiB of 40 days ago in neither.
    assert!(bandwidth.contains("2049 GiB") && bandwidth.trim_end().ends_with('?'), "{bandwidth}");
    assert!(line(&table, "api_calls").contains("1250.499 k calls"), "{table}");
    assert!(line(&table, "stream_time").contains("1.5 h"), "{table}");
    assert!(table.contains("note: no cluster reachable"), "{table}");
    assert!(!table.contains("overage this period"), "{table}");

    let json: Value = serde_json::from_str(&ok(&usage(&url, &nowhere, &["--org", "acme", "-o", "json"]))).unwrap();
    assert_eq!(json["organization"], "acme");
    assert!(json.get("plan").is_none() && json.get("total_cents").is_none(), "{json}");
    let bw = meter(&json, "bandwidth");
    assert_eq!(bw["window"]["quantity"], (2_i64 << 40) + GIB);
    assert_eq!(bw["window"]["events"], 2);
    assert_eq!(bw["period"]["billed"], "2049");
    assert_eq!(bw["billing_unit"], "GiB");
    assert_eq!(bw["daily"].as_array().map(Vec::len), Some(1));
    assert_eq!(bw["hourly"][0]["quantity"], (2_i64 << 40) + GIB);
    assert_eq!(meter(&json, "api_calls")["period"]["billed"], "1250.499");
    assert_eq!(meter(&json, "storage")["period"]["quantity"], 0);
    // A longer window takes in the old usage.
    let json: Value =
        serde_json::from_str(&ok(&usage(&url, &nowhere, &["--org", "acme", "--since", "60d", "-o", "json"]))).unwrap();
    assert_eq!(meter(&json, "bandwidth")["window"]["quantity"], (2_i64 << 40) + 8 * GIB);
    assert_eq!(meter(&json, "bandwidth")["period"]["quantity"], (2_i64 << 40) + GIB);

    let unknown = failed(&usage(&url, &nowhere, &["--org", "nosuch"]));
    assert!(unknown.contains(r#"no usage for organization "nosuch""#), "{unknown}");
    assert!(unknown.contains("organizations with usage in") && unknown.contains("acme, globex"), "{unknown}");
    let bad = failed(&usage(&url, &nowhere, &["--org", "acme", "--since", "last week"]));
    assert!(bad.contains(r#"--since "last week""#) && bad.contains("e.g. --since 30d"), "{bad}");
    let future = failed(&usage(&url, &nowhere, &["--org", "acme", "--since", "2999-01-01T00:00:00Z"]));
    assert!(future.contains("is not in the past"), "{future}");
}

#[tokio::test]
async fn usage_against_the_plan_of_a_real_organization() {
    let h = support::cluster();
    h.apply_ok(&support::org_yaml("acme", "acme", ""));
    h.apply_ok(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {name: acme}\n\
         spec: {organization: acme, plan: professional, billingEmail: billing@acme.example}\n",
    );
    h.apply_ok(&support::org_yaml("initech", "initech", ""));
    let dir = tempdir("usage-cluster");
    let url = ledger_with_usage(&dir).await;
    let kubeconfig = h.plane.kubeconfig.clone();

    let table = ok(&usage(&url, &kubeconfig, &["--org", "acme"]));
    assert!(table.starts_with("organization acme   plan professional\n"), "{table}");
    // Professional includes 2 TiB and 1,000,000 calls, and bills beyond: 1 GiB × 6¢ and 250.499 k × 1¢.
    let bandwidth = line(&table, "bandwidth");
    assert!(
        bandwidth.contains("2048 GiB") && bandwidth.contains("100%") && bandwidth.contains("Reached"),
        "{bandwidth}"
    );
    assert!(bandwidth.ends_with("Bill 6¢/GiB: 1 $0.06"), "{bandwidth}");
    assert!(line(&table, "api_calls").ends_with("Bill 1¢/1,000 calls: 250.499 $2.50"), "{table}");
    assert!(table.contains("overage this period, if billed: $2.56"), "{table}");
    assert!(!table.contains("note:"), "{table}");

    let json: Value = serde_json::from_str(&ok(&usage(&url, &kubeconfig, &["--org", "acme", "-o", "json"]))).unwrap();
    assert_eq!(json["plan"], "professional");
    assert_eq!(json["total_cents"], 256);
    assert_eq!(meter(&json, "bandwidth")["plan"]["included"], "2048");
    assert_eq!(meter(&json, "api_calls")["plan"]["billed_beyond"], "250.499");
    assert_eq!(meter(&json, "stream_time")["plan"]["percent"], 0);

    // No Subscription: the default plan (free) blocks beyond its limits and bills nothing; no usage yet is
    // zeros, not an error.
    let table = ok(&usage(&url, &kubeconfig, &["--org", "initech"]));
    assert!(table.starts_with("organization initech   plan free\n"), "{table}");
    assert!(line(&table, "bandwidth").contains("50 GiB") && line(&table, "api_calls").contains("unlimited"), "{table}");
    assert!(table.contains("no usage in the window"), "{table}");

    let unknown = failed(&usage(&url, &kubeconfig, &["--org", "nosuch"]));
    assert!(unknown.contains(r#"no Organization "nosuch" in the cluster and no usage for it"#), "{unknown}");
    assert!(unknown.contains("acme, globex"), "{unknown}");
    // globex has usage but no Organization (deleted): shown, with the plan unknown.
    let table = ok(&usage(&url, &kubeconfig, &["--org", "globex"]));
    assert!(table.contains(r#"note: no Organization "globex" in the cluster"#), "{table}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atlantiplex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
