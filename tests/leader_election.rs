//! Two replicas with leader election: only the leader writes and talks to Stripe; when it is
//! killed the other takes over within the lease time and provisioning and billing continue with
//! no duplicate Stripe call; a leader that was paused past its lease stops writing at once and
//! exits when it wakes up.

#[path = "support/fake_stripe/mod.rs"]
mod fake_stripe;
mod support;

use fake_stripe::FakeStripe;
use std::time::{Duration, Instant};
use support::{OperatorProcess, cluster, http_get_with_token, org_yaml, wait_ready_on};

const LEASE_SECONDS: u64 = 6;

fn is_leader(h: &support::Harness, metrics_port: u16) -> bool {
    http_get_with_token(metrics_port, "/metrics", &h.metrics_token())
        .is_some_and(|m| m.lines().any(|l| l == "atlantiplex_leader 1"))
}

fn replica(h: &support::Harness, user: &str, metrics_port: u16, stripe: &str) -> OperatorProcess {
    let command = h.operator_command_as(user, metrics_port);
    let lease = LEASE_SECONDS.to_string();
    let args =
        ["--leader-election", "--lease-seconds", &lease, "--stripe-secret", "stripe", "--stripe-api-base", stripe];
    let operator = OperatorProcess::spawn(h, command, &format!("{user}.log"), &args);
    wait_ready_on(metrics_port);
    operator
}

fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[tokio::test]
async fn killing_the_leader_hands_over_and_a_paused_leader_stops_writing() {
    let h = cluster();
    let fake = FakeStripe::start("whsec_ha").await;
    let stripe = fake.url();
    h.create_stripe_secret("whsec_ha");
    let subscription = |name: &str| {
        format!(
            "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\nspec: {{organization: {name}, plan: professional, billingEmail: billing@{name}.example}}\n"
        )
    };
    let (port_a, port_b, port_c) =
        (devcluster::free_port().unwrap(), devcluster::free_port().unwrap(), devcluster::free_port().unwrap());
    let a = replica(&h, "replica-a", port_a, &stripe);
    until("replica a leads", Duration::from_secs(30), || is_leader(&h, port_a));
    let b = replica(&h, "replica-b", port_b, &stripe);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!is_leader(&h, port_b), "only one leader");

    h.apply_ok(
        &(1..=3).map(|i| org_yaml(&format!("ha-{i}"), &format!("ha-{i}"), "")).collect::<Vec<_>>().join("---\n"),
    );
    for i in 1..=3 {
        h.wait_ready("organization", &format!("ha-{i}"));
    }
    h.apply_ok(&subscription("ha-1"));
    support::eventually("ha-1 billed", || async {
        h.jsonpath(&["subscription", "ha-1"], "{.status.stripeState}") == "trialing"
    })
    .await;
    // (Each replica registers the webhook at start-up with its own identity in the skip
    // condition; these replicas run as different users so the audit log tells them apart, while
    // a real deployment's replicas share one ServiceAccount and write nothing there.)
    let registration = ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"];
    assert_eq!(
        h.plane.audited_state_changes_except("replica-b", &registration).unwrap(),
        0,
        "the follower wrote nothing"
    );
    assert!(h.plane.audited_state_changes("replica-a").unwrap() > 0);

    // Kill the leader: the follower takes over within the lease time, and provisions.
    a.kill();
    let takeover = until("replica b takes over", Duration::from_secs(LEASE_SECONDS + 5), || is_leader(&h, port_b));
    eprintln!("takeover after {takeover:?} (lease {LEASE_SECONDS} s)");
    h.apply_ok(&org_yaml("ha-4", "ha-4", ""));
    h.wait_ready("organization", "ha-4");
    h.apply_ok(&subscription("ha-4"));
    support::eventually("ha-4 billed by the new leader", || async {
        h.jsonpath(&["subscription", "ha-4"], "{.status.stripeState}") == "trialing"
    })
    .await;
    assert_eq!(
        (fake.count("create_customer"), fake.count("create_subscription")),
        (2, 2),
        "one customer and one subscription per organization, across the failover"
    );

    // A third replica joins; then the leader (b) is paused past its lease.
    let mut c = replica(&h, "replica-c", port_c, &stripe);
    let mut b = b;
    let _ = std::process::Command::new("kill").args(["-STOP", &b.pid().to_string()]).status();
    until("replica c takes over from the paused leader", Duration::from_secs(LEASE_SECONDS + 10), || {
        is_leader(&h, port_c)
    });
    // Work for the old leader to find when it wakes up: a change it will see in its watches (every
    // free organization's quota follows). A Plan, because Plans are not sent to the webhook: the
    // paused process still holds its share of the webhook port, and the API server's HTTP/2
    // connection may be pinned to it until its health check gives up (as a frozen Pod stays in a
    // Service until its readiness probe fails).
    h.kubectl_ok(&["patch", "plan", "free", "--type=merge", "-p", r#"{"spec":{"quota":{"pods":"21"}}}"#]);
    let writes_before = h.plane.audited_state_changes("replica-b").unwrap();
    let _ = std::process::Command::new("kill").args(["-CONT", &b.pid().to_string()]).status();
    until("the paused leader exits", Duration::from_secs(20), || b.exited());
    assert_eq!(
        h.plane.audited_state_changes("replica-b").unwrap(),
        writes_before,
        "a replica that lost the lease writes nothing after it wakes up"
    );
    let log = std::fs::read_to_string(&b.log).unwrap_or_default();
    assert!(log.contains("lost the leader lease"), "the old leader says why it stopped:\n{log}");
    assert!(!c.exited());
    h.apply_ok(&org_yaml("ha-5", "ha-5", ""));
    h.wait_ready("organization", "ha-5");
    assert_eq!((fake.count("create_customer"), fake.count("create_subscription")), (2, 2), "no Stripe call repeated");
}
