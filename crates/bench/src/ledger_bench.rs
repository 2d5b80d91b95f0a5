//! `ledger-bench`: sustained audit records per second through `AuditLog`, on SQLite (a file) and on a
//! PostgreSQL server it starts itself (crates/pgserver), with the default writer options. Two workloads:
//! - queued: producers call `record` (fire and forget) as fast as they can; the rate counts until every
//!   record is in the database (`flush`), journal spills and their replay included;
//! - durable: concurrent callers of `record_durable`, each waiting for its commit; rate and ack latency.
//!
//! Prints a table and writes JSON (default bench-results/ledger.json).

mod machine;

use anyhow::Context as _;
use atlantiplex_operator::ledger::{AuditLog, AuditLogOptions, AuditRecord, AuditResult, Ledger};
use clap::Parser;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Records of the queued workload, per backend.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Producer tasks of the queued workload.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Records of the durable workload, per backend.
    #[arg(long, default_value_t = 50_000)]
    durable_records: usize,
    /// Concurrent `record_durable` callers.
    #[arg(long, default_value_t = 64)]
    durable_callers: usize,
    #[arg(long, default_value = "bench-results/ledger.json")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = std::env::temp_dir().join(format!("atlantiplex-ledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut results = Vec::new();

    eprintln!("sqlite: {} queued, {} durable records...", args.records, args.durable_records);
    let sqlite_url = format!("sqlite://{}?mode=rwc", scratch.join("ledger.db").display());
    results.push(run_backend("sqlite", &sqlite_url, &scratch.join("sqlite.journal"), &args).await?);

    eprintln!("postgres: starting a server...");
    let server = pgserver::PgServer::start().context("starting PostgreSQL")?;
    let version = std::process::Command::new(pgserver::bin_dir()?.join("postgres")).arg("--version").output()?;
    let pg_url = server.create_database("ledger_bench")?;
    eprintln!("postgres: {} queued, {} durable records...", args.records, args.durable_records);
    results.push(run_backend("postgres", &pg_url, &scratch.join("pg.journal"), &args).await?);
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);

    let report = json!({
        "date": jiff::Timestamp::now().to_string(),
        "machine": machine::machine(),
        "postgres": String::from_utf8_lossy(&version.stdout).trim(),
        "sqlite": "bundled with sqlx (libsqlite3-sys), WAL, synchronous=FULL",
        "writer": { "queue_capacity": 10_000, "max_batch": 500 },
        "results": results,
    });
    print_table(&report);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", args.out.display());
    Ok(())
}

fn rec(producer: usize, i: usize) -> AuditRecord {
    AuditRecord::new(
        format!("user{}@acme.example", producer % 7),
        format!("org{}", i % 50),
        "Organization",
        format!("org{}", i % 50),
        "update",
        AuditResult::Allowed,
    )
    .with_reason("plan professional allows 100 users")
}

async fn run_backend(name: &str, url: &str, journal: &Path, args: &Args) -> anyhow::Result<serde_json::Value> {
    let ledger = Ledger::connect(url).await?;
    let log = AuditLog::start(ledger.clone(), AuditLogOptions::new(journal)).await?;

    // Queued: fire and forget, until everything is stored.
    let started = Instant::now();
    let per = args.records / args.producers.max(1);
    let mut tasks = Vec::new();
    for p in 0..args.producers.max(1) {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                log.record(rec(p, i))?;
                // Producers in a real operator are request handlers: let others run now and then.
                if i % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let produced = started.elapsed();
    log.flush().await?;
    let queued_wall = started.elapsed();
    let spilled = log.stats().journaled;
    let queued_total = per * args.producers.max(1);
    anyhow::ensure!(ledger.count_audit(None).await? as usize == queued_total, "{name}: records missing after flush");

    // Durable: each caller waits for its commit.
    let started = Instant::now();
    let per = args.durable_records / args.durable_callers.max(1);
    let mut tasks = Vec::new();
    for c in 0..args.durable_callers.max(1) {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for i in 0..per {
                let t = Instant::now();
                log.record_durable(rec(c, i)).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let durable_wall = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
    let stats = log.stats();
    anyhow::ensure!(stats.lost == 0 && stats.failed == 0, "{name}: {stats:?}");
    Ok(json!({
        "backend": name,
        "queued": {
            "records": queued_total,
            "producers": args.producers,
            "wall_seconds": queued_wall.as_secs_f64(),
            "records_per_second": queued_total as f64 / queued_wall.as_secs_f64(),
            "producer_seconds": produced.as_secs_f64(),
            "spilled_to_journal": spilled,
        },
        "durable": {
            "records": latencies.len(),
            "callers": args.durable_callers,
            "wall_seconds": durable_wall.as_secs_f64(),
            "records_per_second": latencies.len() as f64 / durable_wall.as_secs_f64(),
            "ack_ms_p50": ms(pct(0.50)),
            "ack_ms_p99": ms(pct(0.99)),
        },
        "writer": stats,
    }))
}

fn print_table(report: &serde_json::Value) {
    let empty = Vec::new();
    let results = report["results"].as_array().unwrap_or(&empty);
    println!(
        "{:<42}{}",
        "",
        results.iter().map(|r| format!("{:>14}", r["backend"].as_str().unwrap_or("?"))).collect::<String>()
    );
    let row = |label: &str, f: &dyn Fn(&serde_json::Value) -> String| {
        println!("{label:<42}{}", results.iter().map(|r| format!("{:>14}", f(r))).collect::<String>());
    };
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    row("queued: records", &|r| r["queued"]["records"].to_string());
    row("queued: records/s (until all stored)", &|r| format!("{:.0}", num(&r["queued"]["records_per_second"])));
    row("queued: spilled to journal (full queue)", &|r| r["queued"]["spilled_to_journal"].to_string());
    row("durable: records", &|r| r["durable"]["records"].to_string());
    row("durable: records/s", &|r| format!("{:.0}", num(&r["durable"]["records_per_second"])));
    row("durable: ack p50 / p99 (ms)", &|r| {
        format!("{:.1} / {:.1}", num(&r["durable"]["ack_ms_p50"]), num(&r["durable"]["ack_ms_p99"]))
    });
}
