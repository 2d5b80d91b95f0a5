//! Where an ingestion request's time goes, measured in this process without HTTP: parsing and judging a
//! batch (`metering::event::parse_body` + `metering::intake::judge`, the CPU part of the endpoint), and the
//! ledger's `insert_usage_events` alone (the commit the 202 waits for), on the same database as the run.

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::event::{DEFAULT_GRACE, DEFAULT_MAX_BODY_BYTES, parse_body};
use atlantiplex_operator::metering::intake::{self, Owner};
use atlantiplex_operator::metering::{Meter, UsageEvent};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Median time to parse and judge one batch of `n` events.
pub fn parse_and_judge(n: usize) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(&crate::usage_load::batch("inproc", "org-bench-0", n))?;
    let owners = BTreeMap::from([(
        "org-bench-0".to_string(),
        Owner { organization: "bench-0".into(), stripe_period: Default::default() },
    )]);
    let mut samples = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let events = parse_body(&body, DEFAULT_MAX_BODY_BYTES)?;
        let judged = intake::judge(&events, &owners, jiff::Timestamp::now(), DEFAULT_GRACE)?;
        std::hint::black_box(intake::by_organization(&judged));
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(json!({
        "events": n,
        "body_bytes": body.len(),
        "ms_p50": crate::measure::percentile(&samples, 50.0).as_secs_f64() * 1e3,
    }))
}

fn events(prefix: &str, n: usize) -> Vec<UsageEvent> {
    let now = jiff::Timestamp::now();
    (0..n)
        .map(|i| UsageEvent {
            source: "bench/ledger".into(),
            id: format!("{prefix}-{i}"),
            meter: [Meter::ApiCalls, Meter::StreamTime].get(i % 10).copied().unwrap_or(Meter::Bandwidth),
            subject: format!("org-bench-0/stream-{}", i % 16),
            time: now,
            quantity: 1_048_576,
        })
        .collect()
}

/// `insert_usage_events` of `batches` batches of `n` events, `concurrency` at a time, on `ledger`.
pub async fn ledger_inserts(
    ledger: &Ledger,
    tag: &str,
    batches: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let prepared: Vec<Vec<UsageEvent>> = (0..batches).map(|b| events(&format!("{tag}-{b}"), n)).collect();
    let prepared = std::sync::Arc::new(prepared);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency.max(1) {
        let (ledger, prepared, next) = (ledger.clone(), prepared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<Duration> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = prepared.get(i) else { break };
                let t = Instant::now();
                // Batches go to 4 organizations, as the HTTPS run's do.
                ledger.insert_usage_events(&format!("inproc-{}", (c + i) % 4), batch).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = started.elapsed();
    latencies.sort();
    let ms = |p: f64| crate::measure::percentile(&latencies, p).as_secs_f64() * 1e3;
    Ok(json!({
        "events_per_batch": n,
        "concurrency": concurrency,
        "events_per_second": (latencies.len() * n) as f64 / wall.as_secs_f64(),
        "commit_ms_p50": ms(50.0),
        "commit_ms_p99": ms(99.0),
    }))
}
