//! Usage-based billing end to end: usage reported to `POST /v1/usage` → the ledger's hourly windows → the
//! leader's pusher → Stripe Billing Meters (the stateful fake, with meters, identifier dedupe, metered prices
//! and usage lines on invoices) → the invoice, and the period's totals compared with Stripe's at close.
//! - one meter event per (organization, meter, window); the same batch twice adds nothing; a late event for
//!   a pushed window is one correction;
//! - the operator SIGKILLed between Stripe's acceptance of a meter event and the ledger's commit: after a
//!   restart the event is re-sent with its identifier, Stripe keeps one, and its total equals the ledger's;
//! - the closed period's invoice carries the overage beyond the free first tier, priced as the ledger says;
//!   `UsageReconciled` is True, and False naming the difference when Stripe holds usage the ledger did not send.

#[path = "support/fake_stripe/mod.rs"]
mod fake_stripe;
mod support;
#[path = "support/usage.rs"]
mod usage;

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::{Meter, Period, charges, plan_terms};
use fake_stripe::{FakeStripe, unix_now};
use serde_json::{Value, json};
use support::{Harness, OperatorProcess, cluster, eventually, org_yaml, status_of};
use usage::{REPORTER_ROLE, json_body, post_usage, reporter};

const WEBHOOK_SECRET: &str = "whsec_usage_billing";
const HOUR: i64 = 3_600;
const ORG: &str = "meterco";

/// A paid plan with small allowances, so a test's usage goes beyond them: 1 GiB of bandwidth then 10 cents
/// per GiB, 1 stream hour then 50 cents per hour; storage and API calls unlimited (never metered in Stripe).
const PLAN: &str = "apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata: {name: metered}\nspec:\n  displayName: Metered\n  \
    price: {amountCents: 1000, currency: usd, interval: Month}\n  trialDays: 0\n  \
    limits: {users: 10, teams: 2, bandwidth: 1Gi, streamHours: 1, namespaces: 3}\n  \
    overage:\n    bandwidth: {action: Bill, centsPerGiB: 10}\n    streamHours: {action: Bill, centsPerHour: 50}\n  \
    quota: {pods: \"10\"}\n  features: {apiAccess: false, customDomains: false, whiteLabel: false, sso: false, ipAllowList: false}\n  \
    support: Email\n";

fn start_operator(h: &Harness, fake: &FakeStripe, log: &str) -> OperatorProcess {
    let url = fake.url();
    let operator = OperatorProcess::start_with(
        h,
        log,
        &[
            "--stripe-secret",
            "stripe",
            "--stripe-api-base",
            &url,
            "--meter-push-seconds",
            "1",
            // No late usage once a period closed, so the comparison with Stripe follows the close at once.
            "--usage-grace-hours",
            "0",
            "--stripe-resync-minutes",
            "30",
        ],
    );
    h.wait_operator_ready();
    operator
}

fn event(id: &str, meter: &str, at: i64, value: &str) -> Value {
    let time = jiff::Timestamp::from_second(at).expect("time").to_string();
    json!({"specversion": "1.0", "id": id, "source": "edge/billing-test", "type": format!("io.atlantiplex.usage.{meter}"),
           "time": time, "subject": format!("org-{ORG}/stream-1"), "data": {"value": value}})
}

async fn report(h: &Harness, token: &str, events: &[Value]) -> Value {
    let reply = post_usage(h, Some(token), &Value::Array(events.to_vec()).to_string()).await;
    assert_eq!(status_of(&reply), 202, "{reply}");
    json_body(&reply)
}

fn outcomes(answer: &Value) -> Vec<String> {
    answer["results"].as_array().expect("results").iter().map(|r| r["outcome"].as_str().unwrap_or("").into()).collect()
}

fn identifier(meter: &str, window: i64) -> String {
    format!("atp-{ORG}-{meter}-{}", window / HOUR)
}

/// The fake's meter events for the customer, as (identifier, value), sorted.
fn stripe_events(fake: &FakeStripe, customer: &str) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> =
        fake.meter_events_of(customer).into_iter().map(|(id, value, _)| (id, value)).collect();
    events.sort();
    events
}

async fn wait_for_event(fake: &FakeStripe, customer: &str, id: &str) {
    eventually(&format!("meter event {id} in Stripe"), || async {
        stripe_events(fake, customer).iter().any(|(i, _)| i == id)
    })
    .await;
}

fn condition(h: &Harness, kind: &str, field: &str) -> String {
    h.jsonpath(&["subscription", ORG], &format!("{{.status.conditions[?(@.type==\"{kind}\")].{field}}}"))
}

#[tokio::test]
async fn usage_reaches_stripe_once_per_window_and_the_invoice_bills_the_overage() {
    let h = cluster();
    let fake = FakeStripe::start(WEBHOOK_SECRET).await;
    fake.send_webhooks_to(h.metrics_port(), "/stripe/webhook");
    h.create_stripe_secret(WEBHOOK_SECRET);
    h.apply_ok(REPORTER_ROLE);
    h.apply_ok(PLAN);
    let operator = start_operator(&h, &fake, "operator-usage-billing.log");

    h.apply_ok(&org_yaml(ORG, ORG, ""));
    h.wait_ready("organization", ORG);
    h.apply_ok(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {ORG}}}\nspec: {{organization: {ORG}, plan: metered, billingEmail: billing@{ORG}.example, trial: false}}\n"
    ));
    eventually("subscription active", || async {
        h.jsonpath(&["subscription", ORG], "{.status.stripeState}") == "active"
    })
    .await;
    let customer = h.jsonpath(&["subscription", ORG], "{.status.stripeCustomerId}");
    let stripe_sub = h.jsonpath(&["subscription", ORG], "{.status.stripeSubscriptionId}");
    // The flat price and one metered price per billed meter, each on its meter.
    let items = fake.world(|w| w.subscriptions[&stripe_sub]["items"]["data"].as_array().cloned().unwrap_or_default());
    let usage_types: Vec<&str> = items.iter().filter_map(|i| i["price"]["recurring"]["usage_type"].as_str()).collect();
    assert_eq!(usage_types, ["licensed", "metered", "metered"], "{items:?}");
    let event_names: Vec<String> = fake.world(|w| w.meters.values().map(|m| m["event_name"].to_string()).collect());
    assert_eq!(event_names.len(), 2, "{event_names:?}");
    assert!(
        event_names.iter().any(|n| n.contains("atp_bandwidth"))
            && event_names.iter().any(|n| n.contains("atp_stream_time"))
    );
    let tiers = &items[1]["price"]["tiers"];
    assert_eq!(tiers[0]["up_to"], 1, "the allowance is a free first tier: {tiers}");
    assert_eq!(tiers[0]["unit_amount_decimal"], "0");

    // The period started 3 hours ago, so three hourly windows of it are closed.
    let hour = unix_now() / HOUR * HOUR;
    let start = hour - 3 * HOUR;
    fake.set_period(&stripe_sub, start, hour + 30 * 24 * HOUR).await;
    let start_text = jiff::Timestamp::from_second(start).expect("start").to_string();
    eventually("the Stripe period in the status", || async {
        h.jsonpath(&["subscription", ORG], "{.status.currentPeriodStart}") == start_text
    })
    .await;

    let token = reporter(&h, &format!("org-{ORG}"), "edge", true);
    let batch = [
        event("bw-1", "bandwidth", start + 600, "2147483648"),
        event("bw-2", "bandwidth", start + HOUR + 600, "1073741824"),
        event("st-1", "stream_time", start + HOUR + 1_200, "5400"),
    ];
    assert_eq!(outcomes(&report(&h, &token, &batch).await), ["accepted"; 3]);
    let (bw0, bw1, st1) = (
        identifier("bandwidth", start),
        identifier("bandwidth", start + HOUR),
        identifier("stream_time", start + HOUR),
    );
    for id in [&bw0, &bw1, &st1] {
        wait_for_event(&fake, &customer, id).await;
    }
    // The same batch again changes nothing; a late event for a window already pushed is one correction,
    // out of order (its window is older than the newest pushed).
    assert_eq!(outcomes(&report(&h, &token, &batch).await), ["duplicate"; 3]);
    assert_eq!(
        outcomes(&report(&h, &token, &[event("bw-late", "bandwidth", start + 1_800, "536870912")]).await),
        ["accepted"]
    );
    let correction = format!("{bw0}-c1");
    wait_for_event(&fake, &customer, &correction).await;
    let mut want = vec![
        (bw0.clone(), "2".to_string()),
        (correction.clone(), "0.5".to_string()),
        (bw1.clone(), "1".to_string()),
        (st1.clone(), "1.5".to_string()),
    ];
    want.sort();
    assert_eq!(stripe_events(&fake, &customer), want, "one event per window, one correction");

    // SIGKILL after Stripe took a meter event and before the ledger marked it sent.
    fake.hang_next("/v1/billing/meter_events", std::time::Duration::from_secs(60));
    assert_eq!(
        outcomes(&report(&h, &token, &[event("st-2", "stream_time", start + 2 * HOUR + 300, "1800")]).await),
        ["accepted"]
    );
    let st2 = identifier("stream_time", start + 2 * HOUR);
    wait_for_event(&fake, &customer, &st2).await;
    operator.kill();
    let ledger = Ledger::connect(&h.plane.dir.join("ledger.db").display().to_string()).await.expect("ledger");
    let pending = ledger.pending_meter_pushes(10).await.expect("pending");
    assert_eq!(
        pending.iter().map(|p| p.identifier.as_str()).collect::<Vec<_>>(),
        [st2.as_str()],
        "in doubt after the kill"
    );
    let _operator = start_operator(&h, &fake, "operator-usage-billing-restarted.log");
    eventually("the pending push settled", || async {
        ledger.pending_meter_pushes(10).await.expect("pending").is_empty()
    })
    .await;
    assert!(fake.count("duplicate_meter_event") >= 1, "re-sent with the same identifier");
    let kept = stripe_events(&fake, &customer);
    assert_eq!(kept.iter().filter(|(i, _)| *i == st2).count(), 1, "Stripe kept it once: {kept:?}");

    // The period closes: its invoice bills the flat price and, per meter, what is beyond the free tier.
    let period =
        Period::new(jiff::Timestamp::from_second(start).expect("start"), jiff::Timestamp::now()).expect("period");
    let totals = ledger.usage_totals(ORG, &period).await.expect("totals");
    assert_eq!(totals.get(&Meter::Bandwidth), Some(&(3_758_096_384)), "3.5 GiB");
    assert_eq!(totals.get(&Meter::StreamTime), Some(&(7_200_000)), "2 hours");
    fake.world(|w| w.now = unix_now());
    fake.close_period(&stripe_sub).await;
    let plan: atlantiplex_operator::api::Plan = serde_yaml::from_str(PLAN).expect("plan");
    let expected = charges(&plan_terms(&plan.spec).expect("terms"), &totals, &period);
    assert_eq!(expected.total_cents, 25 + 50, "2.5 GiB × 10¢ + 1 hour × 50¢");
    let lines = fake.world(|w| w.usage_lines.clone());
    let billed: i64 = lines.iter().map(|l| l.cents).sum();
    assert_eq!(billed, expected.total_cents, "Stripe's usage lines equal the ledger's charge: {lines:?}");
    eventually("the invoice in the status", || async {
        h.jsonpath(&["subscription", ORG], "{.status.latestInvoice.amountCents}")
            == (1000 + expected.total_cents).to_string()
    })
    .await;

    // Compared with Stripe's summaries once the period is final (no grace here): equal.
    eventually("UsageReconciled True", || async { condition(&h, "UsageReconciled", "status") == "True" }).await;
    let message = condition(&h, "UsageReconciled", "message");
    assert!(message.contains("bandwidth 3.5 GiB") && message.contains("stream_time 2 hour"), "{message}");

    // Usage in Stripe that the ledger never sent (another system reporting on our meter): a difference.
    let bandwidth_meter =
        fake.world(|w| w.meters.values().find(|m| m["event_name"] == "atp_bandwidth").map(|m| m["event_name"].clone()));
    fake.world(|w| {
        w.meter_events.push(json!({"object": "billing.meter_event", "created": w.now, "livemode": false,
            "event_name": bandwidth_meter, "identifier": "foreign-1", "timestamp": unix_now(),
            "payload": {"stripe_customer_id": customer, "value": "0.25"}}));
    });
    // The fake's clock 2 s on, so the period has a length and holds that event.
    fake.world(|w| w.now = unix_now() + 2);
    fake.close_period(&stripe_sub).await;
    eventually("UsageReconciled False", || async { condition(&h, "UsageReconciled", "reason") == "Mismatch" }).await;
    let message = condition(&h, "UsageReconciled", "message");
    assert!(
        message.contains("bandwidth: Stripe holds 0.25 GiB, the ledger 0 GiB (0.25 GiB more in Stripe)"),
        "{message}"
    );
    assert!(h.event_messages(ORG, "Mismatch").contains("0.25 GiB more in Stripe"));
    ledger.close().await;
}
