//! Usage events (idempotent by the reporter's id) and their hourly/daily roll-ups, which the metering work
//! fills and billing reads.

use super::Ledger;
use super::error::Result;
use super::time::{column, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The reporter's id for the event: reporting it again has no effect.
    pub id: String,
    pub organization: String,
    /// e.g. `api_requests`, `storage_gib_hours`.
    pub metric: String,
    pub quantity: i64,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollupPeriod {
    Hour,
    Day,
}

impl RollupPeriod {
    fn as_str(self) -> &'static str {
        match self {
            RollupPeriod::Hour => "hour",
            RollupPeriod::Day => "day",
        }
    }

    fn micros(self) -> i64 {
        match self {
            RollupPeriod::Hour => 3_600_000_000,
            RollupPeriod::Day => 86_400_000_000,
        }
    }
}

/// The sum of one metric of one organization over one hour or (UTC) day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRollup {
    pub organization: String,
    pub metric: String,
    pub period_start: Timestamp,
    pub quantity: i64,
    pub events: i64,
}

impl<'r> FromRow<'r, AnyRow> for UsageRollup {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(UsageRollup {
            organization: row.try_get("organization")?,
            metric: row.try_get("metric")?,
            period_start: column(row, "period_start_us")?,
            quantity: row.try_get("quantity")?,
            events: row.try_get("events")?,
        })
    }
}

impl Ledger {
    /// Stores the event; `false` when an event with this id was already stored.
    pub async fn insert_usage_event(&self, event: &UsageEvent) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO usage_events (id, organization, metric, quantity, at_us, recorded_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id.as_str())
        .bind(event.organization.as_str())
        .bind(event.metric.as_str())
        .bind(event.quantity)
        .bind(to_micros(event.at))
        .bind(to_micros(Timestamp::now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Recomputes the roll-ups of every period that overlaps `[from, to)` from the events (whole periods, so
    /// running it again, or after late events arrive, gives the same sums). Returns the roll-up rows written.
    pub async fn roll_up_usage(&self, period: RollupPeriod, from: Timestamp, to: Timestamp) -> Result<u64> {
        let size = period.micros();
        let start = to_micros(from).div_euclid(size) * size;
        let end = (to_micros(to) + size - 1).div_euclid(size) * size;
        // `WHERE` before `GROUP BY` and no join: SQLite then parses the ON CONFLICT of an INSERT ... SELECT.
        let written = sqlx::query(
            "INSERT INTO usage_rollups (organization, metric, period, period_start_us, quantity, events, updated_at_us) \
             SELECT organization, metric, $1, (at_us / $2) * $2, CAST(SUM(quantity) AS BIGINT), COUNT(*), $3 \
             FROM usage_events WHERE at_us >= $4 AND at_us < $5 \
             GROUP BY organization, metric, (at_us / $2) * $2 \
             ON CONFLICT (organization, metric, period, period_start_us) DO UPDATE SET \
             quantity = excluded.quantity, events = excluded.events, updated_at_us = excluded.updated_at_us",
        )
        .bind(period.as_str())
        .bind(size)
        .bind(to_micros(Timestamp::now()))
        .bind(start)
        .bind(end)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(written)
    }

    /// Roll-ups of one organization's metric with periods starting in `[from, to)`, oldest first.
    pub async fn usage_rollups(
        &self,
        organization: &str,
        metric: &str,
        period: RollupPeriod,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageRollup>> {
        Ok(sqlx::query_as(
            "SELECT organization, metric, period_start_us, quantity, events FROM usage_rollups \
             WHERE organization = $1 AND metric = $2 AND period = $3 AND period_start_us >= $4 AND period_start_us < $5 \
             ORDER BY period_start_us",
        )
        .bind(organization)
        .bind(metric)
        .bind(period.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?)
    }
}
