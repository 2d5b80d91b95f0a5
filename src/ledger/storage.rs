//! Storage samples (issue #15): each organization's provisioned bytes as the operator's sampler saw them, kept
//! so that storage's hourly windows are a function of stored facts — recomputed the same by whichever replica
//! leads after a restart or a leader change. What to sample and which windows a sample changes is decided in
//! `metering::sampling`; this keeps the result.
//!
//! Acknowledged = committed: [`Ledger::record_storage_sample`] commits the sample, the windows it completes
//! and the pruning of old samples in one transaction, so the windows never disagree with the samples.

use super::Ledger;
use super::error::Result;
use super::time::{column, to_micros};
use super::usage::replace_windows;
use crate::metering::sampling::Round;
use crate::metering::{Meter, StorageSample};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

fn sample(row: &AnyRow) -> sqlx::Result<StorageSample> {
    Ok(StorageSample { at: column(row, "at_us")?, bytes: row.try_get("bytes")? })
}

impl Ledger {
    /// Every organization's newest sample.
    pub async fn latest_storage_samples(&self) -> Result<BTreeMap<String, StorageSample>> {
        let rows = sqlx::query(
            "SELECT s.organization, s.at_us, s.bytes FROM storage_samples s JOIN \
             (SELECT organization, MAX(at_us) AS at_us FROM storage_samples GROUP BY organization) newest \
             ON s.organization = newest.organization AND s.at_us = newest.at_us",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut latest = BTreeMap::new();
        for row in rows {
            latest.insert(row.try_get("organization")?, sample(&row)?);
        }
        Ok(latest)
    }

    /// One organization's samples from `from` on, and the newest one before it (in force at `from`), oldest
    /// first: the history `metering::sampling::plan_round` needs.
    pub async fn storage_samples(&self, organization: &str, from: Timestamp) -> Result<Vec<StorageSample>> {
        let from = to_micros(from);
        let rows = sqlx::query(
            "SELECT at_us, bytes FROM storage_samples WHERE organization = $1 AND at_us >= \
             (SELECT COALESCE(MAX(at_us), $2) FROM storage_samples WHERE organization = $3 AND at_us <= $4) \
             ORDER BY at_us",
        )
        .bind(organization)
        .bind(from)
        .bind(organization)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(sample).collect::<sqlx::Result<_>>()?)
    }

    /// Stores one round's sample, replaces the storage windows it completes, and deletes the samples before
    /// `keep_from` except the newest of them (still in force there), in one transaction. A sample already
    /// stored for that second (another replica's, during a leader change) is kept as it is.
    pub async fn record_storage_sample(&self, organization: &str, round: &Round) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO storage_samples (organization, at_us, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (organization, at_us) DO NOTHING",
        )
        .bind(organization)
        .bind(to_micros(round.sample.at))
        .bind(round.sample.bytes)
        .execute(&mut *tx)
        .await?;
        replace_windows(&mut tx, organization, Meter::Storage, &round.windows).await?;
        let keep_from = to_micros(round.keep_from);
        // NULL when no sample is that old: `at_us < NULL` deletes nothing.
        sqlx::query(
            "DELETE FROM storage_samples WHERE organization = $1 AND at_us < \
             (SELECT MAX(at_us) FROM storage_samples WHERE organization = $2 AND at_us <= $3)",
        )
        .bind(organization)
        .bind(organization)
        .bind(keep_from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
