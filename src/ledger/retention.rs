//! Audit retention: records older than N days are deleted oldest first, a batch per statement, so a large
//! table is never locked for long and replication/WAL sees small transactions.

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::to_micros;
use jiff::{SignedDuration, Timestamp};

/// `--audit-retention-days` default: a bit over a year, so year-on-year questions can still be answered.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

/// Rows deleted per statement.
pub const RETENTION_BATCH: u32 = 5_000;

impl Ledger {
    /// Deletes audit records older than `days` before `now`; returns how many.
    pub async fn apply_audit_retention(&self, days: u32, now: Timestamp) -> Result<u64> {
        if days == 0 {
            return Err(LedgerError::invalid("retention", "0 days would delete every record; use at least 1"));
        }
        let cutoff = now
            .checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
            .map_err(|e| LedgerError::invalid("retention", e.to_string()))?;
        self.delete_audit_before(cutoff, RETENTION_BATCH).await
    }

    /// Deletes audit records stamped before `cutoff`, `batch` rows per statement.
    pub async fn delete_audit_before(&self, cutoff: Timestamp, batch: u32) -> Result<u64> {
        let batch = i64::from(batch.max(1));
        let mut total = 0;
        loop {
            // A subquery with LIMIT: both SQLite and PostgreSQL accept it (DELETE ... LIMIT is not portable).
            let deleted = sqlx::query(
                "DELETE FROM audit_log WHERE id IN \
                 (SELECT id FROM audit_log WHERE at_us < $1 ORDER BY at_us LIMIT $2)",
            )
            .bind(to_micros(cutoff))
            .bind(batch)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if (deleted as i64) < batch {
                return Ok(total);
            }
            // Let the audit writer and queries in between batches.
            tokio::task::yield_now().await;
        }
    }
}
