//! The ledger: history that does not belong in etcd — audit records, processed Stripe events, subscription
//! history, invoices, usage, API key hashes, settings — in SQLite (a file, the default) or PostgreSQL
//! (`DATABASE_URL=postgres://...`), through sqlx with the same embedded migrations and the same queries.
//!
//! - [`Ledger::connect`] opens the database, migrates it (safely when replicas start together) and refuses,
//!   with a message naming the fix, a corrupt or read-only file, an unreachable server or a newer schema.
//! - [`AuditLog`] writes audit records off the caller's path: a bounded queue, a batching writer task, and a
//!   local journal that takes whatever the database cannot (full queue, database down) until it can.
//! - The `Ledger` methods in `stripe`, `subscriptions`, `invoices`, `usage`, `storage`, `api_keys` and
//!   `settings` are the stores the billing and metering work uses; [`http::router`] serves audit queries.

mod api_keys;
mod audit;
mod billing_periods;
mod connect;
mod error;
pub mod format;
pub mod http;
mod invoices;
mod journal;
mod migrations;
mod rate_limits;
mod retention;
mod settings;
mod spill;
mod storage;
mod stripe;
mod subscriptions;
mod time;
mod usage;
mod usage_changes;
mod usage_read;
mod web_sessions;
mod writer;

pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditEntry, AuditQuery, AuditRecord, AuditResult};
pub use billing_periods::BillingPeriod as LedgerBillingPeriod;
pub use error::{LedgerError, Result};
pub use invoices::Invoice;
pub use migrations::LATEST_VERSION;
pub use rate_limits::SharedTake;
pub use retention::{DEFAULT_RETENTION_DAYS, RETENTION_BATCH};
pub use subscriptions::SubscriptionChange;
pub use time::{parse_duration, parse_time_bound};
pub use usage::{Inserted, MeterPush, PushState, UsageWindow};
pub use usage_read::SubjectUsage;
pub use web_sessions::{LOGIN_TTL, SessionTokens, WebLogin, WebSession};
pub use writer::{
    Accepted, AuditCounters, AuditHealth, AuditLog, AuditLogOptions, AuditStats, Durability, HealthState,
};

use std::sync::Arc;
use std::time::Duration;

/// The default `--database-url`: a SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://atlantiplex-ledger.db?mode=rwc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// How long to wait for a connection (start-up fails after it when PostgreSQL is unreachable).
    pub connect_timeout: Duration,
    pub max_connections: u32,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { connect_timeout: Duration::from_secs(5), max_connections: 8 }
    }
}

/// An open, migrated ledger database. Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Ledger {
    pool: sqlx::AnyPool,
    backend: Backend,
    target: Arc<str>,
    sqlite_path: Option<Arc<std::path::Path>>,
    /// SQLite has one writer: usage batches queue here in arrival order instead of retrying on SQLITE_BUSY,
    /// whose back-off is not first come, first served (a batch could wait past the busy timeout).
    usage_writer: Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL: the connections of the tenant API's rate limits, opened on first use (see `rate_limits`).
    rate_limit_pool: Arc<tokio::sync::OnceCell<sqlx::AnyPool>>,
    url: Arc<str>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("backend", &self.backend).field("target", &self.target).finish()
    }
}

impl Ledger {
    /// Opens `sqlite://PATH?mode=rwc`, a plain file path (SQLite, created when missing), `sqlite::memory:`, or
    /// `postgres://...`, and applies the migrations this binary has.
    pub async fn connect(url: &str) -> Result<Ledger> {
        Self::connect_with(url, &LedgerOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: &LedgerOptions) -> Result<Ledger> {
        let target = connect::Target::parse(url)?;
        let pool = connect::open(&target, options).await?;
        let sqlite_path = match &target {
            connect::Target::Sqlite { path: Some(p), .. } => Some(Arc::from(p.as_path())),
            _ => None,
        };
        Ok(Ledger {
            pool,
            backend: target.backend(),
            target: target.display().into(),
            sqlite_path,
            usage_writer: Default::default(),
            rate_limit_pool: Default::default(),
            url: url.into(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file path, or the URL without its password: for logs and messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The SQLite file, when the ledger is one (the audit journal goes next to it by default).
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    /// The connection pool, for queries this module does not offer yet.
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// The newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&self.pool).await?;
        Ok(version.unwrap_or(0))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
