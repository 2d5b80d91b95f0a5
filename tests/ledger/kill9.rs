//! kill -9 during a burst of audit writes loses nothing that was acknowledged.
//!
//! The test binary runs itself again as the writer (`child_process` below, active only with
//! LEDGER_KILL9_URL set): 16 tasks call `record_durable` as fast as they can and print `ACK <id>` after each
//! acknowledgement. The parent kills it with SIGKILL mid-burst, opens the ledger like a restarted operator
//! (which replays the journal) and checks that every printed id is stored.

use super::TestDb;
use atlantiplex_operator::ledger::{AuditLog, AuditLogOptions, AuditRecord, AuditResult, Ledger};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const URL_ENV: &str = "LEDGER_KILL9_URL";
const JOURNAL_ENV: &str = "LEDGER_KILL9_JOURNAL";
/// Acknowledgements to see before the kill.
const KILL_AFTER: usize = 1_500;

pub async fn acknowledged_records_survive_kill9(db: TestDb) {
    // Migrate first so the child starts writing at once.
    db.ledger().await.close().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9::child_process", "--nocapture", "--test-threads=1"])
        .env(URL_ENV, &db.url)
        .env(JOURNAL_ENV, db.journal())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id() as i32;
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut killed = false;
        let started = Instant::now();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.to_string());
            }
            if !killed && (acked.len() >= KILL_AFTER || started.elapsed() > Duration::from_secs(60)) {
                // SAFETY: plain syscall on our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = true;
            }
        }
        // Everything printed before the kill is read: the pipe is drained to EOF.
        (acked, killed)
    });
    let (acked, killed) = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    let status = child.wait().unwrap();
    assert!(killed, "the burst ended before the kill");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL), "{status:?}");
    assert!(acked.len() >= KILL_AFTER, "only {} acknowledgements", acked.len());

    // A restarted operator: open the ledger, start the audit log (replays the journal).
    let ledger = db.ledger().await;
    let _log = AuditLog::start(ledger.clone(), AuditLogOptions::new(db.journal())).await.unwrap();
    let stored: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM audit_log").fetch_all(ledger.pool()).await.unwrap().into_iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!("kill -9: {} acknowledged, all stored ({} rows in total)", acked.len(), stored.len());
}

/// The writer process of the kill -9 test; does nothing in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let (Ok(url), Ok(journal)) = (std::env::var(URL_ENV), std::env::var(JOURNAL_ENV)) else { return };
    let ledger = Ledger::connect(&url).await.unwrap();
    let log = AuditLog::start(ledger, AuditLogOptions::new(journal)).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            // Bounded: the parent kills us long before this ends.
            for i in 0..100_000 {
                let record = AuditRecord::new(
                    "burst",
                    "acme",
                    "Organization",
                    format!("t{task}-{i}"),
                    "update",
                    AuditResult::Succeeded,
                );
                let accepted = log.record_durable(record).await.unwrap();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ACK {}", accepted.id);
                let _ = out.flush();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
