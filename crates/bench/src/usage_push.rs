//! The hourly push for 1,000 organizations × 4 meters: one closed hour of usage on every meter of every
//! organization, pushed to stripe-mock (Stripe's OpenAPI mock, both ports on loopback) by the operator's own
//! per-period code (`billing::meter_push::push_period`), 16 periods at a time as the leader's pusher does.
//! Measures the round's wall time, meter events sent per second, and a second round with nothing due (the
//! steady state between hours). stripe-mock answers in about a millisecond; real Stripe in ~100-300 ms, so
//! against Stripe the round is bound by the 16 concurrent calls (see docs/benchmarks.md).

use atlantiplex_operator::api::Plan;
use atlantiplex_operator::billing::meter_push::{Pushing, push_period};
use atlantiplex_operator::billing::stripe::StripeApi;
use atlantiplex_operator::billing::{Billing, BillingSettings};
use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::{Meter, Period, UsageEvent};
use atlantiplex_operator::metrics::Metrics;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

const CONCURRENT_PERIODS: usize = 16;

fn professional() -> anyhow::Result<Plan> {
    let plans = include_str!("../../../examples/plans.yaml");
    for doc in plans.split("\n---") {
        let plan: Plan = serde_yaml::from_str(doc)?;
        if plan.metadata.name.as_deref() == Some("professional") {
            return Ok(plan);
        }
    }
    anyhow::bail!("examples/plans.yaml has no professional plan")
}

/// One backend: `ledger_url` must be an empty database.
pub async fn hourly_push(backend: &str, ledger_url: &str, organizations: usize) -> anyhow::Result<Value> {
    let mock = devcluster::StripeMock::start()?;
    let ledger = Ledger::connect(ledger_url).await?;
    let metrics = Arc::new(Metrics::new());
    let api = StripeApi::new("sk_test_bench", Some(&mock.url()), metrics.clone())?;
    let billing = Billing::enabled(BillingSettings::default(), api.clone(), None, None);
    let plan = professional()?;
    let now = Timestamp::now();
    let hour = atlantiplex_operator::metering::window_start(now) - SignedDuration::from_hours(1);
    let period = Period::new(now - SignedDuration::from_hours(240), now + SignedDuration::from_hours(480))?;
    eprintln!("hourly push ({backend}): {organizations} organizations × 4 meters of usage into the ledger...");
    for i in 0..organizations {
        let org = format!("org{i:04}");
        let at = hour + SignedDuration::from_mins(30);
        let events: Vec<UsageEvent> =
            [(Meter::Bandwidth, 5 << 30), (Meter::ApiCalls, 1_500), (Meter::StreamTime, 1_800_000)]
                .into_iter()
                .map(|(meter, quantity)| UsageEvent {
                    source: "bench".into(),
                    id: format!("{org}-{meter}"),
                    meter,
                    subject: format!("org-{org}"),
                    time: at,
                    quantity,
                })
                .collect();
        ledger.insert_usage_events(&org, &events).await?;
        ledger.replace_usage_windows(&org, Meter::Storage, &[(hour, (10_i64 << 30) * 3_600)]).await?;
        ledger.upsert_billing_period(&org, &period, &format!("cus_bench{i:04}"), "professional").await?;
    }
    let pushing = Pushing { billing: &billing, api: &api, ledger: &ledger, metrics: &metrics };
    let grace = SignedDuration::from_hours(48);
    let round = || async {
        let periods = ledger.unreconciled_billing_periods().await?;
        let failures = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        futures::stream::iter(periods)
            .for_each_concurrent(CONCURRENT_PERIODS, |p| {
                let (pushing, plan, failures) = (&pushing, &plan, &failures);
                async move {
                    if let Err(err) = push_period(pushing, &p, plan, grace, Timestamp::now()).await {
                        eprintln!("push failed for {}: {err}", p.organization);
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
            .await;
        anyhow::Ok((started.elapsed(), failures.into_inner()))
    };
    eprintln!("hourly push ({backend}): the round...");
    let (first, failed) = round().await?;
    let sent = count(&metrics, "result=\"sent\"");
    let (idle, _) = round().await?;
    let pending = ledger.pending_meter_pushes(10).await?.len();
    ledger.close().await;
    let seconds = first.as_secs_f64();
    Ok(json!({
        "backend": backend,
        "organizations": organizations,
        "meters": 4,
        "meter_events_sent": sent,
        "failed_periods": failed,
        "pending_after": pending,
        "concurrent_periods": CONCURRENT_PERIODS,
        "round_seconds": seconds,
        "meter_events_per_second": sent as f64 / seconds.max(1e-9),
        "idle_round_seconds": idle.as_secs_f64(),
        "stripe": "stripe-mock v0.203.0 on loopback",
    }))
}

/// Sum of `atlantiplex_meter_pushes_total` samples whose labels contain `filter`.
fn count(metrics: &Metrics, filter: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("atlantiplex_meter_pushes_total") && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
