//! The console benchmark's data, deterministic from a fixed seed: per organization a year of subscription
//! history (a trial, its conversion, monthly renewals, upgrades and downgrades across the paid plans of
//! `examples/plans.yaml` at their prices, payments that fail and recover or end in a cancellation,
//! reactivations), twelve monthly invoices, and for some organizations hourly usage events; the objects'
//! status as the operator would have written it; and a signed-in web session, as the sign-in callback
//! stores it.

use atlantiplex_operator::ledger::{Invoice, Ledger, NewApiKey, SessionTokens, SubscriptionChange, WebSession};
use atlantiplex_operator::metering::{Meter, UsageEvent};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// The paid plans of `examples/plans.yaml` with their monthly prices in cents, cheapest first.
pub const PLANS: [(&str, i64); 3] = [("starter", 999), ("professional", 2999), ("enterprise", 9999)];

/// Stripe's billing period as the benchmark models it.
const PERIOD: SignedDuration = SignedDuration::from_hours(24 * 30);
const TRIAL: SignedDuration = SignedDuration::from_hours(24 * 14);
pub const INVOICES_PER_ORG: usize = 12;

/// xorshift64*: small, fixed-seed, the same data on every run.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Never 0 (xorshift's fixed point); the multiply spreads nearby seeds.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn org_name(i: usize) -> String {
    format!("bench-{i:04}")
}

/// One organization's seeded history and where it ends up.
pub struct OrgSeed {
    pub name: String,
    pub changes: Vec<SubscriptionChange>,
    pub invoices: Vec<Invoice>,
    /// The plan and Stripe state now (the last change).
    pub plan: String,
    pub state: String,
    /// The billing period open now.
    pub period_start: Timestamp,
    pub period_end: Timestamp,
}

fn price(plan: usize) -> i64 {
    PLANS[plan].1
}

/// The organization's year: started 362–372 days ago as a trial; then one step per 30-day period.
pub fn org_history(index: usize, now: Timestamp) -> OrgSeed {
    let name = org_name(index);
    let mut rng = XorShift::new(0xC0_4501E ^ (index as u64 + 1));
    let start = now - SignedDuration::from_hours(24 * 362 + rng.below(24 * 10) as i64);
    let mut plan = match rng.below(100) {
        0..50 => 0,
        50..85 => 1,
        _ => 2,
    };
    let mut changes: Vec<SubscriptionChange> = Vec::new();
    let mut push = |at: Timestamp, plan: usize, state: &str, reason: &str| {
        if at <= now {
            changes.push(SubscriptionChange {
                id: format!("evt_bench_{index:04}_{:02}", changes.len()),
                organization: name.clone(),
                at,
                plan: PLANS[plan].0.to_string(),
                state: state.to_string(),
                price_cents: price(plan),
                currency: "usd".to_string(),
                billing_interval: "month".to_string(),
                reason: reason.to_string(),
            });
        }
    };
    push(start, plan, "trialing", "trial started");
    let anchor = start + TRIAL;
    let mut state = if rng.chance(12) {
        push(anchor, plan, "canceled", "trial ended without a payment method");
        "canceled"
    } else {
        push(anchor, plan, "active", "trial converted");
        "active"
    };
    // Plan of each billing period (for its invoice), and whether its invoice was paid.
    let mut periods: Vec<(usize, &str)> = vec![(plan, if state == "active" { "paid" } else { "void" })];
    for period in 1..INVOICES_PER_ORG {
        let renewal = anchor + PERIOD * period as i32;
        let hours = |rng: &mut XorShift, max: u64| SignedDuration::from_hours(1 + rng.below(max) as i64);
        match state {
            "canceled" => {
                if rng.chance(20) {
                    plan = rng.below(PLANS.len() as u64) as usize;
                    push(renewal + hours(&mut rng, 24 * 20), plan, "active", "reactivated");
                    state = "active";
                }
            }
            "past_due" => {
                if rng.chance(70) {
                    push(renewal - PERIOD + hours(&mut rng, 24 * 10), plan, "active", "payment recovered");
                    push(renewal, plan, "active", "renewed");
                    state = "active";
                } else {
                    push(renewal - PERIOD + SignedDuration::from_hours(24 * 14), plan, "canceled", "unpaid");
                    state = "canceled";
                }
            }
            _ => match rng.below(100) {
                0..9 if plan + 1 < PLANS.len() => {
                    push(renewal, plan, "active", "renewed");
                    plan += 1;
                    push(renewal + hours(&mut rng, 24 * 25), plan, "active", "upgraded");
                }
                9..14 if plan > 0 => {
                    plan -= 1;
                    push(renewal, plan, "active", "downgraded at renewal");
                }
                14..21 => {
                    push(renewal, plan, "past_due", "invoice payment failed");
                    state = "past_due";
                }
                21..24 => {
                    push(renewal, plan, "canceled", "canceled by the customer");
                    state = "canceled";
                }
                _ => push(renewal, plan, "active", "renewed"),
            },
        }
        let invoice = match state {
            "active" => "paid",
            "past_due" => "open",
            _ => "void",
        };
        periods.push((plan, invoice));
    }
    let current = (0..INVOICES_PER_ORG as i32).rev().map(|p| anchor + PERIOD * p).find(|s| *s <= now).unwrap_or(anchor);
    let invoices = periods
        .iter()
        .enumerate()
        .map(|(p, &(plan, status))| {
            let period_start = anchor + PERIOD * p as i32;
            // The open period's invoice is still a draft; a month past due is still open.
            let status = if period_start == current && status == "paid" { "draft" } else { status };
            let due = if status == "void" { 0 } else { price(plan) };
            Invoice {
                stripe_invoice_id: format!("in_bench_{index:04}_{p:02}"),
                organization: org_name(index),
                number: Some(format!("BENCH-{index:04}-{p:04}")),
                status: status.to_string(),
                currency: "usd".to_string(),
                amount_due_cents: due,
                amount_paid_cents: if status == "paid" { due } else { 0 },
                period_start,
                period_end: period_start + PERIOD,
                created_at: period_start,
                hosted_url: Some(format!("https://invoice.stripe.com/i/bench_{index:04}_{p:02}")),
            }
        })
        .collect();
    let last = changes.last();
    OrgSeed {
        plan: last.map_or(PLANS[plan].0.to_string(), |c| c.plan.clone()),
        state: last.map_or("active".to_string(), |c| c.state.clone()),
        name: org_name(index),
        changes,
        invoices,
        period_start: current,
        period_end: current + PERIOD,
    }
}

/// The Organization as applied (spec only): the bench's owner, four viewers.
pub fn organization_yaml(name: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\n\
         spec:\n  slug: {name}\n  displayName: Bench {name}\n  owners: [{{kind: User, name: owner@bench.example}}]\n  \
         members:\n{}",
        (1..=4)
            .map(|v| format!("  - {{kind: User, name: viewer{v}@{name}.example, role: Viewer}}\n"))
            .collect::<String>()
    )
}

pub const TEAMS: [&str; 2] = ["video", "web"];

pub fn team_yaml(org: &str, team: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{name: {org}.{team}}}\n\
         spec:\n  organization: {org}\n  quotaShare: 40\n  members: [{{kind: User, name: viewer1@{org}.example, role: Member}}]\n"
    )
}

pub fn subscription_yaml(seed: &OrgSeed) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\n\
         spec: {{organization: {name}, plan: {plan}, billingEmail: billing@{name}.example}}\n",
        name = seed.name,
        plan = seed.plan
    )
}

/// The Organization's status as the operator writes it once the tenant is provisioned.
pub fn organization_status(seed: &OrgSeed, teams: usize) -> Value {
    let phase = match seed.state.as_str() {
        "past_due" => "PastDue",
        "canceled" => "Suspended",
        _ => "Active",
    };
    let name = &seed.name;
    json!({"status": {
        "phase": phase,
        "effectivePlan": if seed.state == "canceled" { "free" } else { seed.plan.as_str() },
        "namespace": format!("org-{name}"),
        "url": format!("https://{name}.bench.example"),
        "hosts": [format!("{name}.bench.example")],
        "usage": {
            "users": "5/25", "teams": format!("{teams}/10"), "namespaces": format!("{}/11", teams + 1),
            "userCount": 5, "teamCount": teams, "namespaceCount": teams + 1,
        },
    }})
}

pub fn team_status(org: &str, team: &str) -> Value {
    json!({"status": {"namespace": format!("{org}--{team}"), "path": format!("{org}/{team}"), "depth": 1}})
}

pub fn subscription_status(seed: &OrgSeed, index: usize) -> Value {
    json!({"status": {
        "stripeCustomerId": format!("cus_bench{index:04}"),
        "stripeSubscriptionId": format!("sub_bench{index:04}"),
        "stripeState": seed.state,
        "plan": seed.plan,
        "currentPeriodStart": seed.period_start.to_string(),
        "currentPeriodEnd": seed.period_end.to_string(),
    }})
}

/// What was seeded into the ledger.
#[derive(Default)]
pub struct Counts {
    pub subscription_changes: usize,
    pub invoices: usize,
    pub usage_events: usize,
    pub api_keys: usize,
}

pub async fn history(ledger: &Ledger, seeds: &[OrgSeed]) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    for seed in seeds {
        for change in &seed.changes {
            counts.subscription_changes += usize::from(ledger.record_subscription_change(change).await?);
        }
        for invoice in &seed.invoices {
            ledger.upsert_invoice(invoice).await?;
            counts.invoices += 1;
        }
    }
    Ok(counts)
}

/// API keys (hash only, never presented): three for the first organization, one for every third other.
pub async fn api_keys(ledger: &Ledger, orgs: usize) -> anyhow::Result<usize> {
    let mut stored = 0;
    for index in 0..orgs {
        let keys = if index == 1 { 3 } else { usize::from(index % 3 == 0) };
        for k in 0..keys {
            let (id, org) = (key_id(index, k), org_name(index));
            let hash = format!("{:064x}", XorShift::new((index * 10 + k) as u64).next_u64());
            ledger
                .insert_api_key(&NewApiKey {
                    id: &id,
                    organization: &org,
                    name: &format!("deploy-{k}"),
                    prefix: &format!("atp_{index:04}{k}"),
                    hash: &hash,
                    scopes: "read",
                    origin: "api",
                    created_by: "owner@bench.example",
                    expires_at: None,
                })
                .await?;
            stored += 1;
        }
    }
    Ok(stored)
}

fn key_id(index: usize, k: usize) -> String {
    format!("key_bench_{index:04}_{k}")
}

/// `days` of hourly events up to the last whole hour: bandwidth from the home namespace and the video
/// team's, stream time from the video team, API calls by one of the organization's keys.
pub fn usage_events(index: usize, now: Timestamp, days: i64) -> Vec<UsageEvent> {
    let org = org_name(index);
    let mut rng = XorShift::new(0x05A6E ^ (index as u64 + 1));
    let scale = 1 + rng.below(8) as i64;
    let this_hour = Timestamp::from_second(now.as_second() / 3600 * 3600).unwrap_or(now);
    let home = format!("org-{org}");
    let video = format!("{org}--video");
    let key = key_id(index, 0);
    let subjects = [
        (Meter::Bandwidth, format!("{home}/ingress")),
        (Meter::Bandwidth, format!("{video}/edge")),
        (Meter::StreamTime, format!("{video}/live")),
        (Meter::ApiCalls, format!("{home}/apikey:{key}")),
    ];
    let mut events = Vec::with_capacity((days * 24) as usize * subjects.len());
    for back in 1..=days * 24 {
        let hour = this_hour - SignedDuration::from_hours(back);
        // A day's curve: quiet at night (UTC), busy in the evening.
        let hour_of_day = hour.as_second() / 3600 % 24;
        let load = 1 + (12 - (hour_of_day - 18).abs().min(12));
        for (s, (meter, subject)) in subjects.iter().enumerate() {
            let noise = 50 + rng.below(100) as i64;
            let quantity = match meter {
                Meter::Bandwidth => scale * load * noise * (4 << 20),
                Meter::StreamTime => scale * load * noise * 2_000,
                _ => scale * load * noise / 4,
            };
            events.push(UsageEvent {
                source: "bench-seed".to_string(),
                id: format!("{back}-{s}"),
                meter: *meter,
                subject: subject.clone(),
                time: hour + SignedDuration::from_secs(rng.below(3600) as i64),
                quantity,
            });
        }
    }
    events
}

/// A session as the sign-in callback stores it: a platform admin (IdP group `platform-admins`) who owns
/// every bench organization, signed in with a second factor. Returns the cookie's id.
pub async fn session(ledger: &Ledger, now: Timestamp) -> anyhow::Result<String> {
    let id = atlantiplex_operator::http::signin::random_token();
    ledger
        .insert_web_session(&WebSession {
            id_hash: atlantiplex_operator::http::signin::session_hash(&id),
            subject: "bench-owner".to_string(),
            email: "owner@bench.example".to_string(),
            idp_groups: vec!["platform-admins".to_string()],
            amr: vec!["pwd".to_string(), "otp".to_string()],
            second_factor: true,
            auth_time: now,
            csrf_token: atlantiplex_operator::http::signin::random_token(),
            created_at: now,
            last_seen_at: now,
            tokens: SessionTokens::default(),
        })
        .await?;
    Ok(id)
}
