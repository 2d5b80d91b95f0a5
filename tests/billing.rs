//! Billing end to end: the operator against the real control plane and the stateful fake Stripe
//! (tests/support/fake_stripe), webhooks signed as Stripe signs them.

#[path = "support/fake_stripe/mod.rs"]
mod fake_stripe;
mod support;

use fake_stripe::{FakeStripe, post_webhook, sign, unix_now};
use std::time::Duration;
use support::{Harness, OperatorProcess, cluster, eventually, org_yaml};

const WEBHOOK_SECRET: &str = "whsec_e2e_fake";
const DAY: i64 = 86_400;
/// 0.0002 days: a grace period of about 17 s.
const GRACE_DAYS: &str = "0.0002";

fn subscription_yaml(name: &str, plan: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\nspec: {{organization: {name}, plan: {plan}, billingEmail: billing@{name}.example}}\n"
    )
}

fn sub_field(h: &Harness, name: &str, path: &str) -> String {
    h.jsonpath(&["subscription", name], path)
}

fn org_field(h: &Harness, name: &str, path: &str) -> String {
    h.jsonpath(&["organization", name], path)
}

async fn wait_sub(h: &Harness, name: &str, path: &str, want: &str) {
    eventually(&format!("subscription {name} {path} = {want}"), || async { sub_field(h, name, path) == want }).await;
}

async fn wait_org(h: &Harness, name: &str, path: &str, want: &str) {
    eventually(&format!("organization {name} {path} = {want}"), || async { org_field(h, name, path) == want }).await;
}

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
            "--grace-period-days",
            GRACE_DAYS,
            // Long: state changes in this test must arrive through webhooks, not the re-sync.
            "--stripe-resync-minutes",
            "30",
        ],
    );
    h.wait_operator_ready();
    operator
}

#[tokio::test]
async fn subscription_lifecycle_through_stripe() {
    let h = cluster();
    let fake = FakeStripe::start(WEBHOOK_SECRET).await;
    fake.send_webhooks_to(h.metrics_port(), "/stripe/webhook");
    h.create_stripe_secret(WEBHOOK_SECRET);
    let mut operator = start_operator(&h, &fake, "operator-billing.log");

    // Trial: the first paid subscription starts with the plan's 14-day trial.
    h.apply_ok(&org_yaml("acme", "acme", ""));
    h.apply_ok(&subscription_yaml("acme", "professional"));
    wait_sub(&h, "acme", "{.status.stripeState}", "trialing").await;
    wait_org(&h, "acme", "{.status.phase}", "Trialing").await;
    assert_eq!(org_field(&h, "acme", "{.status.effectivePlan}"), "professional");
    assert!(!sub_field(&h, "acme", "{.status.trialEnd}").is_empty());
    assert_eq!(sub_field(&h, "acme", "{.status.conditions[?(@.type==\"Billing\")].reason}"), "Trialing");
    assert_eq!(
        (fake.count("create_customer"), fake.count("create_subscription"), fake.count("create_price")),
        (1, 1, 5),
        "the flat price and one metered price per meter professional bills beyond its allowance"
    );
    let stripe_sub = sub_field(&h, "acme", "{.status.stripeSubscriptionId}");

    // Trial ends → the first invoice is paid → active (through the webhook).
    fake.advance(15 * DAY).await;
    wait_sub(&h, "acme", "{.status.stripeState}", "active").await;
    wait_org(&h, "acme", "{.status.phase}", "Active").await;
    assert!(!sub_field(&h, "acme", "{.status.latestInvoice.hostedUrl}").is_empty());

    // Upgrade: at once, with a prorated invoice.
    h.kubectl_ok(&["patch", "subscription", "acme", "--type=merge", "-p", r#"{"spec":{"plan":"enterprise"}}"#]);
    wait_sub(&h, "acme", "{.status.plan}", "enterprise").await;
    wait_org(&h, "acme", "{.status.effectivePlan}", "enterprise").await;
    assert_eq!(fake.count("proration always_invoice"), 1);
    assert_eq!(fake.count("create_subscription"), 1, "a plan change is not a new subscription");

    // Webhooks: duplicate, out of order, bad signature, stale timestamp.
    let port = h.metrics_port();
    let events = fake.world(|w| w.events.clone());
    let last = serde_json::to_vec(events.last().expect("events sent")).expect("json");
    let (status, body) = post_webhook(port, "/stripe/webhook", &sign(WEBHOOK_SECRET, unix_now(), &last), &last).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    let created = events.iter().find(|e| e["type"] == "customer.subscription.created").expect("created event");
    let mut stale_copy = created.clone();
    stale_copy["id"] = serde_json::json!("evt_replayed_old_state");
    let old = serde_json::to_vec(&stale_copy).expect("json");
    let (status, _) = post_webhook(port, "/stripe/webhook", &sign(WEBHOOK_SECRET, unix_now(), &old), &old).await;
    assert_eq!(status, 200);
    let (status, body) = post_webhook(port, "/stripe/webhook", &sign("whsec_wrong", unix_now(), &old), &old).await;
    assert_eq!(status, 400, "bad signature: {body}");
    let (status, body) =
        post_webhook(port, "/stripe/webhook", &sign(WEBHOOK_SECRET, unix_now() - 600, &old), &old).await;
    assert_eq!(status, 400, "stale timestamp: {body}");
    // A window for a wrong roll-back to show: "nothing changes" cannot be polled for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sub_field(&h, "acme", "{.status.stripeState}"),
        "active",
        "an old event re-reads Stripe, never rolls back"
    );

    // Downgrade: Stripe bills the cheaper price from the next period; the plan stays until then.
    h.kubectl_ok(&["patch", "subscription", "acme", "--type=merge", "-p", r#"{"spec":{"plan":"starter"}}"#]);
    wait_sub(&h, "acme", "{.status.scheduledPlan}", "starter").await;
    assert_eq!(sub_field(&h, "acme", "{.status.plan}"), "enterprise");
    assert_eq!(org_field(&h, "acme", "{.status.effectivePlan}"), "enterprise");
    assert_eq!(fake.count("proration none"), 1);
    // Changing one's mind before the period ends: back to the plan paid for, charged nothing again.
    h.kubectl_ok(&["patch", "subscription", "acme", "--type=merge", "-p", r#"{"spec":{"plan":"enterprise"}}"#]);
    wait_sub(&h, "acme", "{.status.scheduledPlan}", "").await;
    assert_eq!(sub_field(&h, "acme", "{.status.plan}"), "enterprise");
    assert_eq!((fake.count("proration none"), fake.count("proration always_invoice")), (2, 1));
    h.kubectl_ok(&["patch", "subscription", "acme", "--type=merge", "-p", r#"{"spec":{"plan":"starter"}}"#]);
    wait_sub(&h, "acme", "{.status.scheduledPlan}", "starter").await;
    assert_eq!(sub_field(&h, "acme", "{.status.plan}"), "enterprise");

    // Dunning: payment fails → past_due → grace → suspended → paid → active.
    fake.set_failing(true);
    fake.advance(31 * DAY).await;
    wait_sub(&h, "acme", "{.status.stripeState}", "past_due").await;
    // The paid period ended: the downgrade took effect.
    wait_sub(&h, "acme", "{.status.plan}", "starter").await;
    assert_eq!(sub_field(&h, "acme", "{.status.scheduledPlan}"), "");
    wait_org(&h, "acme", "{.status.phase}", "PastDue").await;
    wait_org(&h, "acme", "{.status.phase}", "Suspended").await;
    let pods = || {
        h.kubectl_ok(&[
            "get",
            "resourcequota",
            "atlantiplex-quota",
            "-n",
            "org-acme",
            "-o",
            "jsonpath={.spec.hard.pods}",
        ])
    };
    eventually("quota cut to zero pods", || async { pods() == "0" }).await;
    let backend = h.kubectl_ok(&[
        "get",
        "ingress",
        "atlantiplex-tenant",
        "-n",
        "org-acme",
        "-o",
        "jsonpath={.spec.rules[0].http.paths[0].backend.service.name}",
    ]);
    assert_eq!(backend, "atlantiplex-suspended");
    fake.set_failing(false);
    fake.pay(&stripe_sub).await;
    wait_sub(&h, "acme", "{.status.stripeState}", "active").await;
    wait_org(&h, "acme", "{.status.phase}", "Active").await;
    eventually("quota restored", || async { pods() != "0" }).await;

    // Killed between the Stripe call and the status write: exactly one subscription afterwards.
    h.apply_ok(&org_yaml("globex", "globex", ""));
    h.wait_ready("organization", "globex");
    fake.hang_next("/v1/subscriptions", Duration::from_secs(30));
    h.apply_ok(&subscription_yaml("globex", "starter"));
    eventually("the subscription was created in Stripe", || async { fake.count("create_subscription") == 2 }).await;
    operator.kill();
    assert_eq!(sub_field(&h, "globex", "{.status.stripeSubscriptionId}"), "", "no status was written");
    operator = start_operator(&h, &fake, "operator-billing-2.log");
    wait_sub(&h, "globex", "{.status.stripeState}", "trialing").await;
    assert_eq!(fake.count("create_subscription"), 2, "found again, not created twice");
    assert_eq!(fake.count("create_customer"), 2);

    // Deletion cancels in Stripe; the organization falls back to free.
    h.kubectl_ok(&["delete", "subscription", "acme", "--wait=false"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while h.kubectl(&["get", "subscription", "acme"]).status.success() {
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().filter(|l| !l.contains("DEBUG")).collect();
            panic!(
                "the Subscription was not deleted; operator log:\n{}",
                tail[tail.len().saturating_sub(40)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(fake.count("DELETE /v1/subscriptions/{id}"), 1);
    let state = fake.world(|w| w.subscriptions[&stripe_sub]["status"].clone());
    assert_eq!(state, "canceled");
    wait_org(&h, "acme", "{.status.effectivePlan}", "free").await;
    drop(operator);
}
