//! A database for one test: a SQLite file in a temporary directory, or a fresh database on the test
//! binary's PostgreSQL server (started on first use). The directory also holds the audit journal.

use atlantiplex_operator::ledger::{AuditLog, AuditLogOptions, Backend, Ledger};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub struct TestDb {
    pub url: String,
    pub dir: PathBuf,
    pub backend: Backend,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "atlantiplex-ledger-test-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = temp_dir("sqlite");
        let url = format!("sqlite://{}?mode=rwc", dir.join("ledger.db").display());
        TestDb { url, dir, backend: Backend::Sqlite }
    }

    /// Fails (never skips) when the PostgreSQL binaries are missing.
    pub fn postgres() -> TestDb {
        let server = pgserver::shared().unwrap_or_else(|e| panic!("PostgreSQL for the ledger tests: {e:#}"));
        let dir = temp_dir("pg");
        let name = format!("ledger_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let url = server.create_database(&name).unwrap_or_else(|e| panic!("{e:#}"));
        TestDb { url, dir, backend: Backend::Postgres }
    }

    pub async fn ledger(&self) -> Ledger {
        Ledger::connect(&self.url).await.unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url))
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.join("audit.journal")
    }

    /// Options for tests: a quick retry interval so recoveries show within seconds.
    pub fn audit_options(&self) -> AuditLogOptions {
        let mut options = AuditLogOptions::new(self.journal());
        options.retry_interval = Duration::from_millis(200);
        options
    }

    pub async fn audit_log(&self, ledger: &Ledger) -> AuditLog {
        AuditLog::start(ledger.clone(), self.audit_options()).await.expect("audit log starts")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
