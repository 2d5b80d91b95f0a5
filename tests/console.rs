//! The console end to end, in a real headless Chromium (Debian's chromium and chromedriver) against the
//! real kube-apiserver, Ory Hydra and its development login page, the operator and the tenant API:
//! people sign in through the real login form; each page's content is read from the DOM; changes are
//! made at the Kubernetes API as the signed-in person, so a Viewer's attempt is refused with the
//! webhook's own message; the billing portal opens a session at stripe-mock; the platform's revenue
//! figures match a seeded history whose movements are known; a session that has ended is sent back to
//! sign in. Every page is saved as a PNG under target/screenshots/.

#[path = "support/chrome.rs"]
mod chrome;
// The single sign-on support serves tests/sso.rs too; not all of it is used here.
#[allow(dead_code)]
#[path = "support/sso.rs"]
mod sso_support;
#[path = "support/mod.rs"]
mod support;

use atlantiplex_operator::ledger::{Invoice, Ledger, SubscriptionChange};
use atlantiplex_operator::metering::Meter;
use atlantiplex_operator::metering::event::UsageEvent;
use chrome::{Chrome, Page, sign_in_dev_login};
use devcluster::idp::Person;
use jiff::{SignedDuration, Timestamp};
use sso_support::{DEV_PASSWORD, sso};
use std::time::{Duration, Instant};

const OLIVIA: &str = "olivia@console.example";
const ADAM: &str = "adam@console.example";
const VERA: &str = "vera@console.example";
const TERRY: &str = "terry@console.example";
const PAT: &str = "pat@console.example";

fn base() -> String {
    format!("https://127.0.0.1:{}", sso().api_port)
}

/// An enterprise Organization (white-label colours) owned by `owner`, with adam as Admin and vera as
/// Viewer; Ready, on its plan.
fn tenant(name: &str, owner: &str) {
    let h = &sso().h;
    h.apply_ok(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\nspec:\n  slug: {name}\n  \
         displayName: {name} Studios\n  owners: [{{kind: User, name: {owner}}}]\n  \
         members: [{{kind: User, name: {ADAM}, role: Admin}}, {{kind: User, name: {VERA}, role: Viewer}}]\n  \
         branding: {{primaryColor: '#7c3aed', secondaryColor: '#0e7490'}}\n---\n\
         apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\n\
         spec: {{organization: {name}, plan: enterprise, billingEmail: billing@{name}.example}}\n"
    ));
    h.wait_ready("organization", name);
    let deadline = Instant::now() + Duration::from_secs(90);
    while h.jsonpath(&["organization", name], "{.status.effectivePlan}") != "enterprise" {
        assert!(Instant::now() < deadline, "organization {name} did not move to the enterprise plan");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn team(org: &str, short: &str, parent: Option<&str>, share: Option<i32>) -> String {
    let name = format!("{org}.{short}");
    let parent = parent.map(|p| format!("\n  parent: {org}.{p}")).unwrap_or_default();
    let share = share.map(|s| format!("\n  quotaShare: {s}")).unwrap_or_default();
    sso().h.apply_ok(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{name: {name}}}\nspec:\n  organization: {org}{parent}{share}\n"
    ));
    name
}

async fn ledger() -> Ledger {
    Ledger::connect(&sso().api_ledger.display().to_string()).await.expect("the tenant API's ledger")
}

/// A browser signed in as `email` on the real login page, at `path` of the console.
async fn signed_in(email: &str, path: &str) -> Page {
    let page = Chrome::session().await;
    page.goto(&format!("{}{path}", base())).await;
    sign_in_dev_login(&page, email, DEV_PASSWORD, None).await;
    page.wait_for_url("the console after sign-in", |url| url.contains("/console")).await;
    page
}

async fn show(page: &Page, path: &str) {
    page.goto(&format!("{}{path}", base())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_sees_the_organization_billing_usage_and_team() {
    let org = "con-acme";
    tokio::task::block_in_place(|| {
        tenant(org, OLIVIA);
        tenant("con-other", "nobody@else.example");
        for name in [team(org, "video", None, Some(40)), team(org, "live", Some("video"), None)] {
            sso().h.wait_ready("team", &name);
        }
    });
    let ledger = ledger().await;
    ledger
        .upsert_invoice(&Invoice {
            stripe_invoice_id: "in_con_acme_1".into(),
            organization: org.into(),
            number: Some("CONACME-0001".into()),
            status: "paid".into(),
            currency: "usd".into(),
            amount_due_cents: 49_900,
            amount_paid_cents: 49_900,
            period_start: Timestamp::now() - SignedDuration::from_hours(24 * 40),
            period_end: Timestamp::now() - SignedDuration::from_hours(24 * 10),
            created_at: Timestamp::now() - SignedDuration::from_hours(24 * 10),
            hosted_url: Some("https://invoice.stripe.com/i/con_acme_1".into()),
        })
        .await
        .expect("invoice");
    // Usage from the team's namespace (the video team streams), reported as a tenant would.
    let now = Timestamp::now();
    let events: Vec<UsageEvent> = (0..5)
        .map(|day| UsageEvent {
            source: "console-test".into(),
            id: format!("bw-{day}"),
            meter: Meter::Bandwidth,
            subject: format!("{org}--video/stream-{day}"),
            time: now - SignedDuration::from_hours(24 * day + 1),
            quantity: (day + 1) << 30,
        })
        .collect();
    ledger.insert_usage_events(org, &events).await.expect("usage");

    // An API key, used: its calls reach the API-calls meter (flushed every 10 s) under its id.
    let web = sso().web_sign_in(&Person::password_only(OLIVIA, &[]), "/v1/session").await;
    let csrf = web.csrf().await;
    let created = web
        .request(
            "POST",
            &format!("/v1/organizations/{org}/api-keys"),
            &[("x-csrf-token", &csrf), ("content-type", "application/json")],
            Some(r#"{"name":"encoder"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let key = created.json()["key"].as_str().expect("key").to_string();
    let program = sso().browser();
    for _ in 0..3 {
        let answer = program
            .request("GET", &format!("/v1/organizations/{org}"), &[("authorization", &format!("Bearer {key}"))], None)
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    let page = signed_in(OLIVIA, &format!("/console/orgs/{org}")).await;
    page.wait_for_text("[data-testid=plan]", "enterprise").await;
    page.wait_for_text("[data-testid=signed-in-as]", OLIVIA).await;
    let members = page.text("[data-testid=members]").await;
    assert!(members.contains(VERA) && members.contains("Viewer") && members.contains(OLIVIA), "{members}");
    let tree = page.text("[data-testid=team-tree]").await;
    assert!(tree.contains("con-acme.video") && tree.contains("con-acme.live") && tree.contains("40 %"), "{tree}");
    assert!(tree.contains("con-acme--video"), "team namespaces are shown: {tree}");
    let bars = page.text("[data-testid=usage-bars]").await;
    assert!(bars.contains("Users") && bars.contains("Bandwidth"), "{bars}");
    let html = page.html().await;
    assert!(html.contains("--brand:#7c3aed"), "the organization's white-label colour themes the page");
    assert!(html.contains("con-acme Studios"), "the white-label product name is the organization's");
    page.wait_for("[data-testid=audit]").await;
    page.screenshot("console-overview").await;

    show(&page, &format!("/console/orgs/{org}/billing")).await;
    let invoices = page.wait_for_text("[data-testid=invoices]", "CONACME-0001").await;
    assert!(invoices.contains("$499.00") && invoices.contains("paid"), "{invoices}");
    let hosted = page.find("[data-testid=hosted-invoice]").await.expect("hosted invoice link");
    assert_eq!(hosted.attr("href").await.expect("href").as_deref(), Some("https://invoice.stripe.com/i/con_acme_1"));
    let upcoming = page.text("[data-testid=upcoming]").await;
    assert!(upcoming.contains("Plan enterprise (flat)"), "{upcoming}");
    page.wait_for("[data-testid=change-plan]").await;
    page.screenshot("console-billing").await;

    show(&page, &format!("/console/orgs/{org}/usage")).await;
    page.wait_for("[data-testid=chart-bandwidth] svg").await;
    let top = page.text("[data-testid=top-teams]").await;
    assert!(top.contains("con-acme.video") && top.contains("15 GiB"), "1+2+3+4+5 GiB from the video team: {top}");
    // The key's calls arrive with the meter's next flush.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        show(&page, &format!("/console/orgs/{org}/usage")).await;
        if page.find("[data-testid=calls-by-key]").await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "API calls by key never appeared");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let calls = page.text("[data-testid=calls-by-key]").await;
    assert!(calls.contains("encoder") && calls.contains('3'), "{calls}");
    page.screenshot("console-usage").await;
    show(&page, &format!("/console/orgs/{org}/usage?days=90")).await;
    page.wait_for_text("nav.tabs a[aria-current=page]", "90 days").await;

    show(&page, &format!("/console/orgs/{org}/team")).await;
    page.wait_for("[data-testid=add-member]").await;
    page.screenshot("console-team").await;

    // Another organization's pages are not there for her.
    show(&page, "/console/orgs/con-other").await;
    page.wait_for_text("[data-testid=rule]", "unknown-organization").await;
    show(&page, "/console").await;
    let memberships = page.wait_for_text("[data-testid=memberships]", "con-acme").await;
    assert!(!memberships.contains("con-other"), "{memberships}");
    page.screenshot("console-home").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_refused_with_the_webhooks_message_and_an_admin_changes_the_team() {
    let org = "con-team";
    tokio::task::block_in_place(|| tenant(org, OLIVIA));
    let page = signed_in(VERA, &format!("/console/orgs/{org}/team")).await;
    page.fill("[data-testid=add-member] input[name=name]", "zed@console.example").await;
    page.submit("[data-testid=add-member]").await;
    let refused = page.wait_for_text("[data-testid=write-error]", "members-admins-only").await;
    assert!(refused.contains("denied the request") && refused.contains("you are Viewer"), "{refused}");
    page.screenshot("console-viewer-refused").await;
    page.close().await;
    let members = sso().h.jsonpath(&["organization", org], "{.spec.members[*].name}");
    assert!(!members.contains("zed@"), "nothing was changed: {members}");

    // adam (Admin) acts after his ID token has expired: the console renews it with the refresh token.
    let page = signed_in(ADAM, &format!("/console/orgs/{org}/team")).await;
    let expired = format!("UPDATE web_sessions SET id_token_expires_us = 0 WHERE email = '{ADAM}'");
    sso().ledger_exec(&expired).await;
    page.fill("[data-testid=add-member] input[name=name]", "zed@console.example").await;
    page.submit("[data-testid=add-member]").await;
    page.wait_for_text("[data-testid=done]", "Member added").await;
    let members = page.wait_for_text("[data-testid=members]", "zed@console.example").await;
    assert!(members.contains("Viewer"), "{members}");
    let stored = sso().h.jsonpath(&["organization", org], "{.spec.members[*].name}");
    assert!(stored.contains("zed@console.example"), "the Organization holds the new member: {stored}");
    let renewed: i64 = sqlx::query_scalar(&format!(
        "SELECT id_token_expires_us FROM web_sessions WHERE email = '{ADAM}' ORDER BY created_at_us DESC LIMIT 1"
    ))
    .fetch_one(ledger().await.pool())
    .await
    .expect("adam's session");
    assert!(renewed > Timestamp::now().as_microsecond(), "the ID token was renewed");

    page.fill("[data-testid=create-team] input[name=name]", "clips").await;
    page.fill("[data-testid=create-team] input[name=quota_share]", "25").await;
    page.submit("[data-testid=create-team]").await;
    page.wait_for_text("[data-testid=done]", "Team created").await;
    page.wait_for_text("[data-testid=teams]", "con-team.clips").await;
    tokio::task::block_in_place(|| sso().h.wait_ready("team", "con-team.clips"));
    page.screenshot("console-team-changed").await;
    page.client()
        .find(fantoccini::Locator::Css("[data-testid=members] form:has(input[value='zed@console.example']) button"))
        .await
        .expect("zed's remove button")
        .click()
        .await
        .expect("remove");
    // The console asks before it removes someone (htmx's confirm); the person says yes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.client().accept_alert().await.is_err() {
        assert!(Instant::now() < deadline, "no confirmation was asked before removing a member");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    page.wait_for_text("[data-testid=done]", "Member removed").await;
    let stored = sso().h.jsonpath(&["organization", org], "{.spec.members[*].name}");
    assert!(!stored.contains("zed@console.example"), "{stored}");
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manage_billing_opens_a_stripe_billing_portal_session() {
    let org = "con-bill";
    tokio::task::block_in_place(|| {
        tenant(org, OLIVIA);
        // The customer Stripe would have made (this plane runs the operator without Stripe).
        sso().h.kubectl_ok(&[
            "patch",
            "subscription",
            org,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"stripeCustomerId":"cus_console_test"}}"#,
        ]);
    });
    let web = sso().web_sign_in(&Person::password_only(OLIVIA, &[]), "/console").await;
    let page = web.get(&format!("/console/orgs/{org}/billing")).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("data-testid=\"portal\""), "the button is on: {}", page.body);
    let csrf = web.csrf().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let opened =
        web.request("POST", &format!("/console/orgs/{org}/billing/portal"), &form, Some(&format!("csrf={csrf}"))).await;
    assert_eq!(opened.status, 303, "{opened:?}");
    assert!(opened.location().starts_with("https://") && !opened.location().contains("127.0.0.1"), "{opened:?}");
    let forged = web.request("POST", &format!("/console/orgs/{org}/billing/portal"), &form, Some("csrf=forged")).await;
    assert_eq!(forged.status, 403, "a form without the session's token is refused: {forged:?}");
    assert!(forged.body.contains("csrf"), "{}", forged.body);
    // Without a session: sent to sign in, and back here after.
    let anonymous = sso().browser().get(&format!("/console/orgs/{org}/billing")).await;
    assert_eq!(anonymous.status, 303, "{anonymous:?}");
    assert!(anonymous.location().starts_with("/auth/login?return_to=/console/orgs/con-bill/billing"), "{anonymous:?}");
    // A stranger, signed in, with a valid CSRF token of their own: no such organization for them, and
    // nothing is written.
    let stranger = sso().web_sign_in(&Person::password_only(TERRY, &[]), "/console").await;
    let token = stranger.csrf().await;
    let add = format!("csrf={token}&kind=User&name=mallory%40evil.example&role=Admin");
    for path in ["team/members", "billing/plan", "billing/portal"] {
        let answer = stranger.request("POST", &format!("/console/orgs/{org}/{path}"), &form, Some(&add)).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        assert!(answer.body.contains("unknown-organization"), "{path}: {}", answer.body);
    }
    let members = sso().h.jsonpath(&["organization", org], "{.spec.members[*].name}");
    assert!(!members.contains("mallory"), "{members}");
    // A Viewer has no billing page (as no billing in the API).
    let viewer = sso().web_sign_in(&Person::password_only(VERA, &[]), "/console").await;
    let refused = viewer.get(&format!("/console/orgs/{org}/billing")).await;
    assert_eq!(refused.status, 403, "{refused:?}");
}

/// The first instant of the month `back` months before this one, plus `offset`.
fn month_start(back: i64, offset: SignedDuration) -> Timestamp {
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().first_of_month();
    let first = today.checked_sub(jiff::Span::new().months(back)).expect("month");
    first.to_zoned(jiff::tz::TimeZone::UTC).expect("zoned").timestamp() + offset
}

fn change(id: &str, org: &str, at: Timestamp, plan: &str, state: &str, cents: i64) -> SubscriptionChange {
    SubscriptionChange {
        id: format!("seed-{id}"),
        organization: org.into(),
        at,
        plan: plan.into(),
        state: state.into(),
        price_cents: cents,
        currency: "usd".into(),
        billing_interval: "month".into(),
        reason: "console-test".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_admins_see_revenue_that_matches_a_seeded_history() {
    let day = |d: i64| SignedDuration::from_hours(24 * d);
    let minute = |m: i64| SignedDuration::from_mins(m);
    // Two months ago: a, c and d start paying (new 400). Last month: b's trial converts (new 50), d
    // upgrades (expansion 200), c cancels (churn 200), f's trial ends unconverted. This month: c comes
    // back (reactivation 150), d downgrades (contraction 50). e is on the internal plan: never counted.
    let history = [
        change("a1", "rev-a", month_start(2, day(1)), "starter", "active", 10_000),
        change("c1", "rev-c", month_start(2, day(3)), "professional", "active", 20_000),
        change("d1", "rev-d", month_start(2, day(4)), "starter", "active", 10_000),
        change("b1", "rev-b", month_start(2, day(2)), "starter", "trialing", 5_000),
        change("b2", "rev-b", month_start(1, day(4)), "starter", "active", 5_000),
        change("d2", "rev-d", month_start(1, day(5)), "professional", "active", 30_000),
        change("c2", "rev-c", month_start(1, day(9)), "professional", "canceled", 20_000),
        change("f1", "rev-f", month_start(1, day(6)), "starter", "trialing", 5_000),
        change("f2", "rev-f", month_start(1, day(19)), "starter", "canceled", 5_000),
        change("e1", "rev-e", month_start(2, day(1)), "admin", "active", 0),
        change("c3", "rev-c", month_start(0, minute(1)), "starter", "active", 15_000),
        change("d3", "rev-d", month_start(0, minute(2)), "professional", "active", 25_000),
    ];
    let ledger = ledger().await;
    for row in &history {
        ledger.record_subscription_change(row).await.expect("history");
    }
    let last_month = month_start(1, day(1)).strftime("%Y-%m").to_string();
    let this_month = month_start(0, day(1)).strftime("%Y-%m").to_string();

    let page = signed_in(PAT, "/console/admin/revenue").await;
    // The figures are recomputed every 30 s: wait for the seeded ones.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if page.find("[data-testid=revenue-USD] [data-testid=mrr]").await.is_some()
            && page.text("[data-testid=revenue-USD] [data-testid=mrr]").await == "$550.00"
        {
            break;
        }
        assert!(Instant::now() < deadline, "MRR never became $550.00: {}", page.html().await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        show(&page, "/console/admin/revenue").await;
    }
    let usd = "[data-testid=revenue-USD]";
    assert_eq!(page.text(&format!("{usd} [data-testid=arr]")).await, "$6,600.00");
    assert_eq!(page.text(&format!("{usd} [data-testid=paying]")).await, "4");
    assert_eq!(page.text(&format!("{usd} [data-testid=arpa]")).await, "$137.50");
    assert_eq!(page.text(&format!("{usd} [data-testid=net-new]")).await, "+$100.00");
    let cell = |month: &str, k: &str| format!("{usd} tr[data-month='{month}'] td[data-k='{k}']");
    for (k, want) in [
        ("new", "$50.00"),
        ("expansion", "$200.00"),
        ("churn", "$200.00"),
        ("contraction", "$0.00"),
        ("net-new", "+$50.00"),
        ("end", "$450.00"),
        ("logo-churn", "33.3 %"),
        ("trial-conversion", "50.0 %"),
    ] {
        assert_eq!(page.text(&cell(&last_month, k)).await, want, "{last_month} {k}");
    }
    for (k, want) in [("reactivation", "$150.00"), ("contraction", "$50.00"), ("new", "$0.00"), ("end", "$550.00")] {
        assert_eq!(page.text(&cell(&this_month, k)).await, want, "{this_month} {k}");
    }
    page.wait_for(&format!("{usd} svg")).await;
    page.screenshot("console-revenue").await;

    show(&page, "/console/admin?plan=enterprise").await;
    let rows = page.wait_for_text("[data-testid=organizations]", "enterprise").await;
    assert!(!rows.contains("starter"), "filtered by plan: {rows}");
    page.wait_for("[data-testid=adoption]").await;
    page.screenshot("console-platform").await;
    page.close().await;

    // Not a platform admin: refused with the rule.
    let web = sso().web_sign_in(&Person::password_only(OLIVIA, &[]), "/console").await;
    let refused = web.get("/console/admin/revenue").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("platform-admins-only"), "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_has_ended_is_sent_back_to_sign_in() {
    let page = signed_in(TERRY, "/console").await;
    page.wait_for_text("main", "no role in any organization").await;
    let idle =
        format!("UPDATE web_sessions SET last_seen_at_us = last_seen_at_us - 7200000000 WHERE email = '{TERRY}'");
    sso().ledger_exec(&idle).await;
    show(&page, "/console").await;
    let url = page.wait_for_url("the login page", |url| url.contains("login_challenge")).await;
    assert!(url.contains("/login"), "{url}");
    page.wait_for("form input[name=email]").await;
    page.screenshot("console-signed-out").await;
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM web_sessions WHERE email = '{TERRY}'"))
        .fetch_one(ledger().await.pool())
        .await
        .expect("count");
    assert_eq!(left, 0, "the idle session was removed");
    page.close().await;
}
