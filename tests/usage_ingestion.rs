//! Usage ingestion end to end: `POST /v1/usage` on the operator's HTTPS usage port, against the real API
//! server (TokenReview, SubjectAccessReview, RoleBindings) and the operator's ledger.
//! - a ServiceAccount bound to `atlantiplex-usage-reporter` in a tenant namespace reports a batch → 202 with
//!   each event's outcome; the same batch again → all duplicate; the ledger counts each event once;
//! - no binding → 403; bound in organization A, reporting for B's namespace → 403, nothing recorded;
//! - malformed bodies, an unknown type, over 1,000 events, an oversized body, no or a made-up token → 4xx
//!   naming the field and the fix, nothing recorded.

mod support;
#[path = "support/usage.rs"]
mod usage;

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::{Meter, period::calendar_month};
use serde_json::{Value, json};
use support::{Harness, cluster_with_operator, eventually, org_yaml, status_of};
use usage::{REPORTER_ROLE, json_body, post_usage, reporter};

/// What the operator asks the API server (`kubectl auth can-i` cannot: it refuses resources without an API).
fn may_report(h: &Harness, user: &str, namespace: &str) -> bool {
    let namespace_group = user.split(':').nth(2).unwrap_or_default();
    let review = format!(
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: {user}\n  groups: \
         [system:serviceaccounts, 'system:serviceaccounts:{namespace_group}', system:authenticated]\n  \
         resourceAttributes: {{group: atlantiplex.io, resource: usageevents, verb: create, namespace: {namespace}}}\n"
    );
    let out = h.kubectl_stdin(&["create", "-o", "jsonpath={.status.allowed}", "-f", "-"], &review);
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

fn event(id: &str, subject: &str, meter: &str, value: &str) -> Value {
    let time = jiff::Timestamp::now().to_string();
    json!({"specversion": "1.0", "id": id, "source": "edge/test", "type": format!("io.atlantiplex.usage.{meter}"),
           "time": time, "subject": subject, "data": {"value": value}})
}

async fn totals(h: &Harness, organization: &str) -> std::collections::BTreeMap<Meter, i64> {
    let ledger = Ledger::connect(&h.plane.dir.join("ledger.db").display().to_string()).await.expect("ledger");
    let period = calendar_month(jiff::Timestamp::now()).expect("period");
    let totals = ledger.usage_totals(organization, &period).await.expect("totals");
    ledger.close().await;
    totals
}

fn assert_problem(reply: &str, status: u16, rule: &str, field: &str, words: &str) {
    assert_eq!(status_of(reply), status, "{reply}");
    assert!(reply.to_lowercase().contains("content-type: application/problem+json"), "{reply}");
    let problem = json_body(reply);
    assert_eq!(problem["type"], format!("urn:atlantiplex:problem:{rule}"), "{reply}");
    assert_eq!(problem["status"], status, "{reply}");
    assert_eq!(problem["field"], field, "{reply}");
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()), "{reply}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(words), "expected {words:?} in: {detail}");
}

#[tokio::test]
async fn reporters_bound_in_a_tenant_namespace_report_each_event_once_and_nobody_else_reports() {
    let h = cluster_with_operator();
    h.apply_ok(REPORTER_ROLE);
    h.apply_ok(&org_yaml("ingest-a", "ingest-a", ""));
    h.apply_ok(&org_yaml("ingest-b", "ingest-b", ""));
    h.wait_ready("organization", "ingest-a");
    h.wait_ready("organization", "ingest-b");
    let edge = reporter(&h, "org-ingest-a", "edge", true);

    // A batch for the home namespace and a stream in it: 202, each event accepted.
    let batch = json!([
        event("bw-1", "org-ingest-a", "bandwidth", "1048576"),
        event("bw-2", "org-ingest-a/stream-1", "bandwidth", "1024"),
        event("st-1", "org-ingest-a/stream-1", "stream_time", "90.5"),
        event("api-1", "org-ingest-a", "api_calls", "3"),
    ])
    .to_string();
    // RBAC takes the new binding within moments; asked first, so the operator caches no early refusal.
    eventually("RBAC allows the reporter to create usageevents in org-ingest-a", || async {
        may_report(&h, "system:serviceaccount:org-ingest-a:edge", "org-ingest-a")
    })
    .await;
    let reply = post_usage(&h, Some(&edge), &batch).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    let report = json_body(&reply);
    assert_eq!((report["accepted"].as_u64(), report["duplicate"].as_u64()), (Some(4), Some(0)), "{reply}");
    assert_eq!(report["results"][0], json!({"index": 0, "id": "bw-1", "outcome": "accepted"}));
    // The same batch again (a retry): all duplicate, nothing counted twice.
    let again = post_usage(&h, Some(&edge), &batch).await;
    assert_eq!(status_of(&again), 202, "{again}");
    let report = json_body(&again);
    assert_eq!((report["accepted"].as_u64(), report["duplicate"].as_u64()), (Some(0), Some(4)), "{again}");
    assert!(report["results"].as_array().unwrap().iter().all(|r| r["outcome"] == "duplicate"), "{again}");
    let counted = totals(&h, "ingest-a").await;
    assert_eq!(counted.get(&Meter::Bandwidth), Some(&(1048576 + 1024)), "{counted:?}");
    assert_eq!(counted.get(&Meter::StreamTime), Some(&90_500), "milliseconds: {counted:?}");
    assert_eq!(counted.get(&Meter::ApiCalls), Some(&3), "{counted:?}");

    // One bad event costs only itself: an unknown type and an unmanaged namespace are rejected by name.
    let mixed = json!([
        event("ok-1", "org-ingest-a", "bandwidth", "10"),
        event("bad-type", "org-ingest-a", "storage", "10"),
        event("bad-ns", "kube-system", "bandwidth", "10"),
    ])
    .to_string();
    let reply = post_usage(&h, Some(&edge), &mixed).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    let results = json_body(&reply)["results"].clone();
    assert_eq!(results[0]["outcome"], "accepted", "{reply}");
    assert_eq!((results[1]["rule"].as_str(), results[1]["field"].as_str()), (Some("unknown-type"), Some("type")));
    assert!(results[1]["reason"].as_str().unwrap().contains("send io.atlantiplex.usage.bandwidth"), "{reply}");
    assert_eq!(
        (results[2]["rule"].as_str(), results[2]["field"].as_str()),
        (Some("unknown-namespace"), Some("subject"))
    );

    // A ServiceAccount without the binding: 403, naming the namespace and the RoleBinding to create.
    let unbound = reporter(&h, "org-ingest-a", "unbound", false);
    let one = json!(event("nobind-1", "org-ingest-a", "bandwidth", "5")).to_string();
    let reply = post_usage(&h, Some(&unbound), &one).await;
    assert_problem(&reply, 403, "forbidden-namespace", "subject", "RoleBinding in namespace org-ingest-a");
    // Bound in A, reporting for B's namespace (alone, or within a batch of A's): refused, nothing recorded.
    let for_b = json!(event("cross-1", "org-ingest-b", "bandwidth", "7")).to_string();
    let reply = post_usage(&h, Some(&edge), &for_b).await;
    assert_problem(&reply, 403, "forbidden-namespace", "subject", "org-ingest-b");
    let both =
        json!([event("cross-2", "org-ingest-a", "bandwidth", "7"), event("cross-3", "org-ingest-b", "bandwidth", "7")])
            .to_string();
    assert_eq!(status_of(&post_usage(&h, Some(&edge), &both).await), 403);

    // Bad requests: a 4xx problem naming the field and the fix.
    assert_problem(&post_usage(&h, None, &one).await, 401, "unauthenticated", "Authorization", "Authorization: Bearer");
    assert_problem(
        &post_usage(&h, Some("made-up-token"), &one).await,
        401,
        "unauthenticated",
        "Authorization",
        "does not accept the token",
    );
    assert_problem(&post_usage(&h, Some(&edge), "{not json").await, 400, "not-json", "body", "send one CloudEvent");
    assert_problem(&post_usage(&h, Some(&edge), "\"text\"").await, 400, "not-events", "body", "a JSON string");
    assert_problem(&post_usage(&h, Some(&edge), "[]").await, 400, "empty-batch", "body", "at least one event");
    let many: Vec<Value> = (0..1001).map(|i| event(&format!("many-{i}"), "org-ingest-a", "bandwidth", "1")).collect();
    let many = Value::Array(many).to_string();
    assert!(many.len() < 1 << 20, "under the size limit, over the count");
    assert_problem(&post_usage(&h, Some(&edge), &many).await, 400, "batch-too-large", "body", "at most 1000 events");
    let huge = format!("[{}]", vec![json!(event("x", "org-ingest-a", "bandwidth", "1")).to_string(); 6000].join(","));
    assert!(huge.len() > 1 << 20);
    assert_problem(&post_usage(&h, Some(&edge), &huge).await, 413, "body-too-large", "body", "send fewer events");

    // None of the refused requests recorded anything: only ok-1 joined the first batch's totals.
    let counted = totals(&h, "ingest-a").await;
    assert_eq!(counted.get(&Meter::Bandwidth), Some(&(1048576 + 1024 + 10)), "{counted:?}");
    assert!(totals(&h, "ingest-b").await.is_empty(), "nothing for B");
}

#[tokio::test]
async fn reported_usage_shows_in_the_status_and_crossing_80_percent_sets_the_condition_with_an_event() {
    let h = cluster_with_operator();
    h.apply_ok(REPORTER_ROLE);
    // The free plan includes 50Gi of bandwidth a month (examples/plans.yaml).
    h.apply_ok(&org_yaml("metered", "metered", ""));
    h.wait_ready("organization", "metered");
    let edge = reporter(&h, "org-metered", "edge", true);
    eventually("RBAC allows the reporter", || async {
        may_report(&h, "system:serviceaccount:org-metered:edge", "org-metered")
    })
    .await;
    let usage = |path: &str| h.jsonpath(&["organization", "metered"], path);

    // 10 GiB: shown as used/included, the condition Ok.
    let ten_gib = (10_u64 << 30).to_string();
    let reply =
        post_usage(&h, Some(&edge), &json!(event("m-1", "org-metered", "bandwidth", &ten_gib)).to_string()).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    eventually("status.usage shows 10Gi of 50Gi", || async { usage("{.status.usage.bandwidth}") == "10Gi/50Gi" }).await;
    let condition =
        r#"{.status.conditions[?(@.type=="UsageLimit")].status} {.status.conditions[?(@.type=="UsageLimit")].reason}"#;
    assert_eq!(usage(condition), "True Ok");
    assert_eq!(usage("{.status.usage.streamTime}"), "0m/10h");
    assert_eq!(usage("{.status.usage.closestMeter}"), "bandwidth 10Gi/50Gi (20%)");

    // 31 GiB more: 41 of 50 (82 %) — Warning, with an event.
    let more = (31_u64 << 30).to_string();
    let reply = post_usage(&h, Some(&edge), &json!(event("m-2", "org-metered", "bandwidth", &more)).to_string()).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    eventually("the UsageLimit condition says Warning", || async { usage(condition) == "True Warning" }).await;
    assert_eq!(usage("{.status.usage.bandwidth}"), "41Gi/50Gi");
    let message = usage(r#"{.status.conditions[?(@.type=="UsageLimit")].message}"#);
    assert!(message.contains("bandwidth 41Gi/50Gi (82%)"), "{message}");
    eventually("a UsageWarning event", || async {
        let events = h.event_messages("metered", "UsageWarning");
        events.contains("bandwidth 41Gi/50Gi (82%)")
    })
    .await;
    // The gauges: used and included per meter, in base units (bytes).
    let token = h.metrics_token();
    let metrics = support::http_get_with_token(h.metrics_port(), "/metrics", &token).unwrap_or_default();
    let used =
        format!("atlantiplex_organization_usage{{organization=\"metered\",resource=\"bandwidth\"}} {}", 41_u64 << 30);
    let included =
        format!("atlantiplex_organization_limit{{organization=\"metered\",resource=\"bandwidth\"}} {}", 50_u64 << 30);
    assert!(metrics.contains(&used) && metrics.contains(&included), "{used} and {included} in:\n{metrics}");
    let wide = h.kubectl_ok(&["get", "organization", "metered", "-o", "wide"]);
    assert!(wide.contains("METERED") && wide.contains("bandwidth 41Gi/50Gi (82%)"), "{wide}");
}

#[tokio::test]
async fn a_free_organization_over_its_bandwidth_is_routed_to_the_limit_reached_page_until_it_upgrades() {
    let h = cluster_with_operator();
    h.apply_ok(REPORTER_ROLE);
    h.apply_ok(&org_yaml("capped", "capped", ""));
    h.wait_ready("organization", "capped");
    let edge = reporter(&h, "org-capped", "edge", true);
    eventually("RBAC allows the reporter", || async {
        may_report(&h, "system:serviceaccount:org-capped:edge", "org-capped")
    })
    .await;
    let backend = || {
        h.jsonpath(
            &["ingress", "atlantiplex-tenant", "-n", "org-capped"],
            "{.spec.rules[0].http.paths[0].backend.service.name}",
        )
    };
    let condition =
        r#"{.status.conditions[?(@.type=="UsageLimit")].status} {.status.conditions[?(@.type=="UsageLimit")].reason}"#;
    let usage = |path: &str| h.jsonpath(&["organization", "capped"], path);
    assert_eq!(backend(), "studio");

    // 51 GiB on the free plan's 50Gi with overage Block: blocked, the workloads and data stay.
    let over = (51_u64 << 30).to_string();
    let reply = post_usage(&h, Some(&edge), &json!(event("c-1", "org-capped", "bandwidth", &over)).to_string()).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    eventually("the UsageLimit condition says Reached", || async { usage(condition) == "False Reached" }).await;
    eventually("the ingress routes to the limit-reached page", || async { backend() == "atlantiplex-limit-reached" })
        .await;
    assert_eq!(
        h.jsonpath(&["service", "atlantiplex-limit-reached", "-n", "org-capped"], "{.spec.type} {.spec.externalName}"),
        "ExternalName limit-reached.atlantiplex-system.svc.cluster.local"
    );
    assert_eq!(
        h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "org-capped"], "{.spec.hard.pods}"),
        "20",
        "pods kept"
    );
    let message = usage(r#"{.status.conditions[?(@.type=="UsageLimit")].message}"#);
    assert!(message.contains("bandwidth 51Gi/50Gi (102%) (blocked"), "{message}");

    // An upgrade to a plan where it fits (starter: 500Gi, billed beyond) restores the tenant at once.
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: { name: capped }\nspec: { organization: capped, plan: starter, billingEmail: billing@capped.example }\n");
    eventually("the ingress routes to the tenant again", || async { backend() == "studio" }).await;
    eventually("the UsageLimit condition says Ok", || async { usage(condition) == "True Ok" }).await;
    assert_eq!(usage("{.status.usage.bandwidth}"), "51Gi/500Gi");
}

#[tokio::test]
async fn usage_taken_in_by_another_replica_shows_in_the_leader_s_status() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("elsewhere", "elsewhere", ""));
    h.wait_ready("organization", "elsewhere");
    // What a follower's ingestion does: commit the events to the shared ledger. The leader hears nothing
    // through its own channel; it finds the change in the ledger.
    let ledger = Ledger::connect(&h.plane.dir.join("ledger.db").display().to_string()).await.expect("ledger");
    let usage = atlantiplex_operator::metering::UsageEvent {
        source: "follower/edge".into(),
        id: "f-1".into(),
        meter: Meter::Bandwidth,
        subject: "org-elsewhere".into(),
        time: jiff::Timestamp::now(),
        quantity: 5 << 30,
    };
    ledger.insert_usage_events("elsewhere", &[usage]).await.expect("insert");
    ledger.close().await;
    eventually("status.usage shows 5Gi of 50Gi", || async {
        h.jsonpath(&["organization", "elsewhere"], "{.status.usage.bandwidth}") == "5Gi/50Gi"
    })
    .await;
}
