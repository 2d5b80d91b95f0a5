//! The tenant API benchmark's in-process parts: a key check as a request makes it (`keys::parse`, the keyed
//! hash, the lookup in the real `KeyTable` holding every organization's key), and the PostgreSQL rate-limit
//! statement alone (`Ledger::take_rate_limit`, one per request on replicas sharing PostgreSQL).

use atlantiplex_operator::http::key_table::KeyTable;
use atlantiplex_operator::keys::{self, Hasher};
use atlantiplex_operator::ledger::Ledger;
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn per_op_ns(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_secs_f64() * 1e9 / n.max(1) as f64
}

/// `iterations` key checks over `presented` (every organization's key in turn) against the key table
/// loaded from `ledger`: mean ns per check, percentiles of individually timed checks, and the three parts.
pub async fn key_check(
    ledger: &Ledger,
    hasher: &Hasher,
    presented: &[String],
    iterations: usize,
) -> anyhow::Result<Value> {
    let table = KeyTable::start(ledger.clone()).await?;
    anyhow::ensure!(
        table.len() >= presented.len(),
        "the key table holds {} keys, not {}",
        table.len(),
        presented.len()
    );
    let check = |key: &str| -> anyhow::Result<bool> {
        let parsed = keys::parse(key).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(table.find_cached(&hasher.hash(parsed)).is_some())
    };
    // Warm up (caches, branch predictors), and every key must be found.
    for key in presented {
        anyhow::ensure!(check(key)?, "a bench key is not in the key table");
    }
    let n = presented.len();
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..iterations {
        found += usize::from(check(black_box(&presented[i % n]))?);
    }
    let total = started.elapsed();
    anyhow::ensure!(found == iterations, "{} of {iterations} checks found their key", found);
    // Individually timed (Instant::now costs some 20–40 ns of each sample).
    let timed = (iterations / 10).max(1000);
    let mut samples = Vec::with_capacity(timed);
    for i in 0..timed {
        let t = Instant::now();
        black_box(check(black_box(&presented[i % n]))?);
        samples.push(t.elapsed());
    }
    samples.sort();
    let parts = (iterations / 5).max(1000);
    let started = Instant::now();
    for i in 0..parts {
        black_box(keys::parse(black_box(&presented[i % n])).is_ok());
    }
    let parse_ns = per_op_ns(started.elapsed(), parts);
    let hashes: Vec<String> = presented.iter().map(|k| hasher.hash(k)).collect();
    let started = Instant::now();
    for i in 0..parts {
        black_box(hasher.hash(black_box(&presented[i % n])));
    }
    let hash_ns = per_op_ns(started.elapsed(), parts);
    let started = Instant::now();
    for i in 0..parts {
        black_box(table.find_cached(black_box(&hashes[i % n])));
    }
    let lookup_ns = per_op_ns(started.elapsed(), parts);
    let ns = |p: f64| crate::measure::percentile(&samples, p).as_secs_f64() * 1e9;
    Ok(json!({
        "keys_in_table": table.len(),
        "iterations": iterations,
        "ns_per_check": per_op_ns(total, iterations),
        "timed_samples": timed,
        "ns_p50": ns(50.0),
        "ns_p99": ns(99.0),
        "ns_max": samples.last().map(|d| d.as_secs_f64() * 1e9).unwrap_or(0.0),
        "parse_ns": parse_ns,
        "hash_ns": hash_ns,
        "lookup_ns": lookup_ns,
    }))
}

/// `calls` rate-limit steps from `callers` concurrent tasks, over `keys` distinct keys (1: every caller on
/// the same row, which they queue on). The limit is the bench plan's (600,000 per minute, burst 100,000),
/// so every step is allowed, as under the load runs.
pub async fn take_rate_limit(
    ledger: &Ledger,
    label: &str,
    callers: usize,
    calls: usize,
    keys: usize,
) -> anyhow::Result<Value> {
    let (interval_us, tolerance_us) = (100_i64, 99_999 * 100_i64);
    let key_names: Arc<Vec<String>> = Arc::new((0..keys.max(1)).map(|k| format!("bench-rl-{label}-{k}")).collect());
    // Warm up: the pool's connections and the prepared statement on each.
    for i in 0..(8 * callers).max(100) {
        ledger.take_rate_limit(&key_names[i % key_names.len()], interval_us, tolerance_us).await?;
    }
    let per_caller = calls.div_ceil(callers.max(1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers.max(1) {
        let (ledger, key_names) = (ledger.clone(), key_names.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_caller);
            let mut allowed = 0usize;
            for i in 0..per_caller {
                let key = &key_names[(c + i * callers) % key_names.len()];
                let t = Instant::now();
                let taken = ledger.take_rate_limit(key, interval_us, tolerance_us).await?;
                latencies.push(t.elapsed());
                allowed += usize::from(taken.allowed);
            }
            anyhow::Ok((latencies, allowed))
        }));
    }
    let mut latencies = Vec::with_capacity(per_caller * callers);
    let mut allowed = 0;
    for task in tasks {
        let (l, a) = task.await??;
        latencies.extend(l);
        allowed += a;
    }
    let wall = started.elapsed();
    latencies.sort();
    let ms = |p: f64| crate::measure::percentile(&latencies, p).as_secs_f64() * 1e3;
    Ok(json!({
        "callers": callers,
        "distinct_keys": key_names.len(),
        "calls": latencies.len(),
        "allowed": allowed,
        "wall_seconds": wall.as_secs_f64(),
        "per_second": latencies.len() as f64 / wall.as_secs_f64(),
        "latency_ms_p50": ms(50.0),
        "latency_ms_p99": ms(99.0),
        "latency_ms_max": latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    }))
}
