//! What can go wrong with the ledger, each message naming the file or URL and the fix.

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "SQLite database {path} is not a valid database file ({cause}): restore it from a backup, or move it \
         away so that a new, empty ledger is created"
    )]
    Corrupt { path: String, cause: String },
    #[error(
        "SQLite database {path} is read-only ({detail}): make the file and its directory writable by the operator's \
         user, or point DATABASE_URL at a writable location"
    )]
    ReadOnly { path: String, detail: String },
    #[error("cannot open SQLite database {path} ({cause}): check that its directory exists and is writable")]
    CannotOpen { path: String, cause: String },
    #[error(
        "cannot reach the database at {url} within {timeout_secs}s ({cause}): check that the server is running and \
         that DATABASE_URL's host, port, database and credentials are right"
    )]
    Unreachable { url: String, timeout_secs: u64, cause: String },
    #[error(
        "the database at {url} has schema version {applied} applied, but this binary knows versions up to {known}: \
         a newer atlantiplex-operator migrated it. Upgrade this binary (or restore a backup from before the upgrade)"
    )]
    SchemaTooNew { url: String, applied: i64, known: i64 },
    #[error("migrating the database at {url} failed: {cause}")]
    Migration { url: String, cause: String },
    #[error("ledger database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("audit journal {path}: {cause}")]
    Journal { path: String, cause: String },
    #[error(
        "writing to the ledger database took longer than {seconds}s (a lock held elsewhere, or an overloaded \
         server): the records are kept in the journal and retried"
    )]
    TimedOut { seconds: u64 },
    #[error("the audit log has stopped (its writer task ended)")]
    Closed,
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

impl LedgerError {
    /// A short, stable label for metrics and conditions.
    pub fn category(&self) -> &'static str {
        match self {
            LedgerError::InvalidUrl { .. } => "invalid_url",
            LedgerError::Corrupt { .. } => "corrupt",
            LedgerError::ReadOnly { .. } => "read_only",
            LedgerError::CannotOpen { .. } => "cannot_open",
            LedgerError::Unreachable { .. } => "unreachable",
            LedgerError::SchemaTooNew { .. } => "schema_too_new",
            LedgerError::Migration { .. } => "migration",
            LedgerError::Database(_) => "database",
            LedgerError::Journal { .. } => "journal",
            LedgerError::TimedOut { .. } => "timed_out",
            LedgerError::Closed => "closed",
            LedgerError::Invalid { .. } => "invalid",
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        LedgerError::Invalid { what, reason: reason.into() }
    }
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
