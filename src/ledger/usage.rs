//! Metering's store (issue #15): accepted usage events, unique per (organization, source, id); their hourly
//! sums, kept by the very transaction that inserts the events; period totals; and the meter events pushed to
//! Stripe per window. What to accept and what to push is decided in `metering`; this keeps the result.
//!
//! Acknowledged = committed: [`Ledger::insert_usage_events`] returns after the transaction holding the new
//! events and their hourly sums committed, so an answer of "new" or "duplicate" is durable. Usage has no
//! journal yet (the audit writer's holds audit entries only): with the database down the caller gets an
//! error and the sender retries, which is safe, since events are idempotent by their id.

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::{column, to_micros};
use crate::metering::{Meter, Period, Push, PushedWindow, UsageEvent};
use jiff::Timestamp;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use std::collections::{BTreeMap, HashSet};

/// Rows per insert statement: 9 values each, well inside SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const ROWS_PER_STATEMENT: usize = 500;

/// Events per insert statement. SQLite looks each bound parameter up by a linear scan of the statement's
/// parameters (`sqlite3_bind_parameter_name`, as sqlx binds), so a statement's binding costs its parameter
/// count squared: at 500 rows (4,500 parameters) that was 60 % of the operator's CPU under load
/// (`make bench-usage`); at 50 rows it is a hundredth of that per row. PostgreSQL has no such cost, and
/// fewer round trips are better there.
fn events_per_statement(backend: super::Backend) -> usize {
    match backend {
        super::Backend::Sqlite => 50,
        super::Backend::Postgres => ROWS_PER_STATEMENT,
    }
}

/// What became of one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Inserted {
    /// Stored, and counted in its hour.
    New,
    /// An event with this organization, source and id was already stored (or came earlier in the batch).
    Duplicate,
}

/// One hour of one organization's meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageWindow {
    pub organization: String,
    pub meter: Meter,
    pub start: Timestamp,
    /// In the meter's base unit.
    pub quantity: i64,
    pub events: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushState {
    /// Recorded before the Stripe call; re-sent as recorded until Stripe acknowledges it.
    Pending,
    Sent,
}

impl PushState {
    fn as_str(self) -> &'static str {
        match self {
            PushState::Pending => "pending",
            PushState::Sent => "sent",
        }
    }
}

/// A meter event pushed (or about to be) to Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterPush {
    pub organization: String,
    pub meter: Meter,
    pub window_start: Timestamp,
    pub sequence: u32,
    pub identifier: String,
    pub covered: i64,
    pub micros: i64,
    pub state: PushState,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

impl MeterPush {
    /// As `metering::pushes_due` takes it.
    pub fn pushed(&self) -> PushedWindow {
        PushedWindow {
            window_start: self.window_start,
            sequence: self.sequence,
            covered: self.covered,
            micros: self.micros,
        }
    }
}

fn meter_column(row: &AnyRow) -> sqlx::Result<Meter> {
    let name: String = row.try_get("meter")?;
    Meter::parse(&name).ok_or_else(|| {
        sqlx::Error::Decode(Box::new(LedgerError::invalid("stored meter", format!("{name:?} is not a meter"))))
    })
}

impl<'r> FromRow<'r, AnyRow> for UsageWindow {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(UsageWindow {
            organization: row.try_get("organization")?,
            meter: meter_column(row)?,
            start: column(row, "window_start_us")?,
            quantity: row.try_get("quantity")?,
            events: row.try_get("events")?,
        })
    }
}

impl<'r> FromRow<'r, AnyRow> for MeterPush {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        let sequence: i64 = row.try_get("sequence")?;
        let state: String = row.try_get("state")?;
        let sent_at: Option<i64> = row.try_get("sent_at_us")?;
        let decode =
            |what: &'static str, detail: String| sqlx::Error::Decode(Box::new(LedgerError::invalid(what, detail)));
        Ok(MeterPush {
            organization: row.try_get("organization")?,
            meter: meter_column(row)?,
            window_start: column(row, "window_start_us")?,
            sequence: u32::try_from(sequence).map_err(|_| decode("stored push sequence", sequence.to_string()))?,
            identifier: row.try_get("identifier")?,
            covered: row.try_get("covered")?,
            micros: row.try_get("micros")?,
            state: match state.as_str() {
                "pending" => PushState::Pending,
                "sent" => PushState::Sent,
                _ => return Err(decode("stored push state", state)),
            },
            created_at: column(row, "created_at_us")?,
            sent_at: sent_at.map(super::time::from_micros).transpose().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        })
    }
}

const PUSH_COLUMNS: &str = "organization, meter, window_start_us, sequence, identifier, covered, micros, state, \
                            created_at_us, sent_at_us";

/// `($1,...,$n),($n+1,...)`: placeholders for `rows` rows of `per_row` values.
fn placeholders(rows: usize, per_row: usize) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..per_row {
            if col > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", row * per_row + col + 1));
        }
        sql.push(')');
    }
    sql
}

/// [`Ledger::replace_usage_windows`] within the caller's transaction (storage samples commit with their windows).
pub(super) async fn replace_windows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    organization: &str,
    meter: Meter,
    windows: &[(Timestamp, i64)],
) -> Result<()> {
    let now = to_micros(Timestamp::now());
    for chunk in windows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO usage_hourly (organization, meter, window_start_us, quantity, events, updated_at_us) \
             VALUES {} ON CONFLICT (organization, meter, window_start_us) DO UPDATE SET \
             quantity = excluded.quantity, updated_at_us = excluded.updated_at_us",
            placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for (start, quantity) in chunk {
            query = query
                .bind(organization)
                .bind(meter.as_str())
                .bind(to_micros(crate::metering::window_start(*start)))
                .bind(*quantity)
                .bind(0_i64)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Ledger {
    /// Stores one organization's accepted events and adds the new ones to their hourly sums, in one
    /// transaction; per event (in the order given) whether it was new or a duplicate. Storage is sampled, not
    /// reported: its windows go through [`Ledger::replace_usage_windows`].
    pub async fn insert_usage_events(&self, organization: &str, events: &[UsageEvent]) -> Result<Vec<Inserted>> {
        if events.iter().any(|e| e.meter == Meter::Storage) {
            return Err(LedgerError::invalid(
                "usage event",
                "storage is sampled by the operator, not reported as events: use replace_usage_windows",
            ));
        }
        // Inserted in key order, so two concurrent batches sharing keys lock them in the same order (PostgreSQL).
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| (&events[a].source, &events[a].id).cmp(&(&events[b].source, &events[b].id)));
        let now = to_micros(Timestamp::now());
        let _queued = match self.backend {
            super::Backend::Sqlite => Some(self.usage_writer.lock().await),
            super::Backend::Postgres => None,
        };
        let mut tx = self.pool.begin().await?;
        let mut stored: HashSet<(String, String)> = HashSet::new();
        for chunk in order.chunks(events_per_statement(self.backend)) {
            let sql = format!(
                "INSERT INTO usage_events (organization, source, id, meter, subject, at_us, window_start_us, quantity, \
                 received_at_us) VALUES {} ON CONFLICT (organization, source, id) DO NOTHING RETURNING source, id",
                placeholders(chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for &i in chunk {
                let e = &events[i];
                query = query
                    .bind(organization)
                    .bind(e.source.as_str())
                    .bind(e.id.as_str())
                    .bind(e.meter.as_str())
                    .bind(e.subject.as_str())
                    .bind(to_micros(e.time))
                    .bind(to_micros(e.window()))
                    .bind(e.quantity)
                    .bind(now);
            }
            for row in query.fetch_all(&mut *tx).await? {
                stored.insert((row.try_get("source")?, row.try_get("id")?));
            }
        }
        // The first of several copies in the batch is the one stored (rows go in in order); the rest are duplicates.
        let mut outcome = vec![Inserted::Duplicate; events.len()];
        let mut sums: BTreeMap<(Meter, i64), (i64, i64)> = BTreeMap::new();
        for &i in &order {
            let e = &events[i];
            if stored.remove(&(e.source.clone(), e.id.clone())) {
                outcome[i] = Inserted::New;
                let sum = sums.entry((e.meter, to_micros(e.window()))).or_default();
                *sum = (sum.0.saturating_add(e.quantity), sum.1 + 1);
            }
        }
        let sums: Vec<_> = sums.into_iter().collect();
        for chunk in sums.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO usage_hourly (organization, meter, window_start_us, quantity, events, updated_at_us) \
                 VALUES {} ON CONFLICT (organization, meter, window_start_us) DO UPDATE SET \
                 quantity = usage_hourly.quantity + excluded.quantity, events = usage_hourly.events + excluded.events, \
                 updated_at_us = excluded.updated_at_us",
                placeholders(chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for ((meter, start), (quantity, count)) in chunk {
                query =
                    query.bind(organization).bind(meter.as_str()).bind(*start).bind(*quantity).bind(*count).bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Sets whole windows of a sampled meter (storage: byte-seconds per hour, from `metering::storage`),
    /// replacing what they held: recomputing a window from the samples gives the same row again.
    pub async fn replace_usage_windows(
        &self,
        organization: &str,
        meter: Meter,
        windows: &[(Timestamp, i64)],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        replace_windows(&mut tx, organization, meter, windows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One organization's hourly windows of a meter starting in `[from, to)`, oldest first.
    pub async fn usage_windows(
        &self,
        organization: &str,
        meter: Meter,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageWindow>> {
        Ok(sqlx::query_as(
            "SELECT organization, meter, window_start_us, quantity, events FROM usage_hourly \
             WHERE organization = $1 AND meter = $2 AND window_start_us >= $3 AND window_start_us < $4 \
             ORDER BY window_start_us",
        )
        .bind(organization)
        .bind(meter.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per meter, the sum of the windows `period` holds (those whose last second is in it, as
    /// `metering::period` attributes them), in base units. Meters without usage are absent.
    pub async fn usage_totals(&self, organization: &str, period: &Period) -> Result<BTreeMap<Meter, i64>> {
        let (from, to) = period.window_starts();
        // PostgreSQL's SUM of BIGINT is NUMERIC: cast back so both backends return an integer.
        let rows = sqlx::query(
            "SELECT meter, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_hourly \
             WHERE organization = $1 AND window_start_us >= $2 AND window_start_us < $3 GROUP BY meter",
        )
        .bind(organization)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        let mut totals = BTreeMap::new();
        for row in rows {
            totals.insert(meter_column(&row)?, row.try_get::<i64, _>("quantity")?);
        }
        Ok(totals)
    }

    /// Records one round of pushes (from `metering::pushes_due`) as pending, all or nothing: `false`, and
    /// nothing recorded, when any of them (by window and sequence, or by identifier) is already recorded —
    /// another pusher got there first, so the round was computed from a stale view; compute it again.
    pub async fn record_meter_pushes(&self, organization: &str, meter: Meter, pushes: &[Push]) -> Result<bool> {
        let now = to_micros(Timestamp::now());
        let mut tx = self.pool.begin().await?;
        let mut recorded = 0;
        for chunk in pushes.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO meter_pushes ({PUSH_COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
                placeholders(chunk.len(), 10)
            );
            let mut query = sqlx::query(&sql);
            for p in chunk {
                query = query
                    .bind(organization)
                    .bind(meter.as_str())
                    .bind(to_micros(p.window_start))
                    .bind(i64::from(p.sequence))
                    .bind(p.identifier.as_str())
                    .bind(p.covered)
                    .bind(p.micros)
                    .bind(PushState::Pending.as_str())
                    .bind(now)
                    .bind(None::<i64>);
            }
            recorded += query.execute(&mut *tx).await?.rows_affected();
        }
        if recorded != pushes.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a pending push as acknowledged by Stripe; `false` when it was not pending (unknown, or sent).
    pub async fn mark_meter_push_sent(&self, identifier: &str, at: Timestamp) -> Result<bool> {
        let updated =
            sqlx::query("UPDATE meter_pushes SET state = $1, sent_at_us = $2 WHERE identifier = $3 AND state = $4")
                .bind(PushState::Sent.as_str())
                .bind(to_micros(at))
                .bind(identifier)
                .bind(PushState::Pending.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(updated == 1)
    }

    /// The pushes of one organization's meter for the windows `period` holds, oldest window first.
    pub async fn meter_pushes(&self, organization: &str, meter: Meter, period: &Period) -> Result<Vec<MeterPush>> {
        let (from, to) = period.window_starts();
        Ok(sqlx::query_as(&format!(
            "SELECT {PUSH_COLUMNS} FROM meter_pushes WHERE organization = $1 AND meter = $2 \
             AND window_start_us >= $3 AND window_start_us < $4 ORDER BY window_start_us, sequence"
        ))
        .bind(organization)
        .bind(meter.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pushes recorded but not acknowledged by Stripe (a crash or an error between the two), oldest first.
    pub async fn pending_meter_pushes(&self, limit: u32) -> Result<Vec<MeterPush>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PUSH_COLUMNS} FROM meter_pushes WHERE state = $1 ORDER BY created_at_us, identifier LIMIT $2"
        ))
        .bind(PushState::Pending.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
