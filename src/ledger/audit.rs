//! Audit records: the type callers fill in, batch inserts, and queries.

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::{column, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    /// An admission request let through.
    Allowed,
    /// An admission request refused.
    Denied,
    /// A controller action that took effect.
    Succeeded,
    /// A controller action that failed.
    Failed,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Allowed => "allowed",
            AuditResult::Denied => "denied",
            AuditResult::Succeeded => "succeeded",
            AuditResult::Failed => "failed",
        }
    }
}

impl std::str::FromStr for AuditResult {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "allowed" => Ok(AuditResult::Allowed),
            "denied" => Ok(AuditResult::Denied),
            "succeeded" => Ok(AuditResult::Succeeded),
            "failed" => Ok(AuditResult::Failed),
            other => Err(LedgerError::invalid("audit result", other.to_string())),
        }
    }
}

/// One decision or action: who (`actor`) did what (`action`) to which object (`kind`/`object`) of which
/// organization, what came of it (`result`) and why (`reason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub actor: String,
    /// The organization's name; empty for records about the platform as a whole.
    pub organization: String,
    /// The object's kind, e.g. `Organization`, `Team`, `Subscription`.
    pub kind: String,
    pub object: String,
    /// e.g. `create`, `update` for admission; `created`, `provisioned`, `plan-changed`, `suspended`,
    /// `deleted` for controller actions.
    pub action: String,
    pub result: AuditResult,
    pub reason: String,
}

impl AuditRecord {
    /// A record stamped now, without a reason.
    pub fn new(
        actor: impl Into<String>,
        organization: impl Into<String>,
        kind: impl Into<String>,
        object: impl Into<String>,
        action: impl Into<String>,
        result: AuditResult,
    ) -> Self {
        AuditRecord {
            at: Timestamp::now(),
            actor: actor.into(),
            organization: organization.into(),
            kind: kind.into(),
            object: object.into(),
            action: action.into(),
            result,
            reason: String::new(),
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// A stored audit record with its id (UUID v7, so ids sort by time of recording).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    #[serde(flatten)]
    pub record: AuditRecord,
}

impl<'r> FromRow<'r, AnyRow> for AuditEntry {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        let result: String = row.try_get("result")?;
        Ok(AuditEntry {
            id: row.try_get("id")?,
            record: AuditRecord {
                at: column(row, "at_us")?,
                actor: row.try_get("actor")?,
                organization: row.try_get("organization")?,
                kind: row.try_get("kind")?,
                object: row.try_get("object")?,
                action: row.try_get("action")?,
                result: result.parse().map_err(|e: LedgerError| sqlx::Error::Decode(Box::new(e)))?,
                reason: row.try_get("reason")?,
            },
        })
    }
}

/// Filters of an audit query; every field is optional. Results are newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    pub organization: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    pub actor: Option<String>,
    /// Only records older than this one (its time and id): the cursor of the page after it.
    #[serde(skip)]
    pub before: Option<(Timestamp, String)>,
    /// At most this many records (default and maximum [`AuditQuery::MAX_LIMIT`]).
    pub limit: Option<u32>,
}

impl AuditQuery {
    pub const MAX_LIMIT: u32 = 10_000;
}

/// Columns in insert order; the batch insert binds 9 values per row.
const COLUMNS: &str = "id, at_us, organization, actor, kind, object, action, result, reason";
const PER_ROW: usize = 9;

impl Ledger {
    /// Inserts records in one statement; ids already present are skipped, so a retried batch is harmless.
    /// Returns how many rows were new.
    /// As `insert_audit_batch`, given up after `limit`: a blocked insert must not hold up acknowledgements.
    /// A batch given up on may still commit later; ids make the retry a no-op then.
    pub async fn insert_audit_batch_within(&self, entries: &[AuditEntry], limit: std::time::Duration) -> Result<u64> {
        tokio::time::timeout(limit, self.insert_audit_batch(entries))
            .await
            .map_err(|_| LedgerError::TimedOut { seconds: limit.as_secs().max(1) })?
    }

    pub async fn insert_audit_batch(&self, entries: &[AuditEntry]) -> Result<u64> {
        let mut inserted = 0;
        // SQLite allows 32,766 bound values per statement, PostgreSQL 65,535.
        for chunk in entries.chunks(1_000) {
            let mut sql = format!("INSERT INTO audit_log ({COLUMNS}) VALUES ");
            for row in 0..chunk.len() {
                if row > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for col in 0..PER_ROW {
                    if col > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", row * PER_ROW + col + 1));
                }
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut query = sqlx::query(&sql);
            for e in chunk {
                let r = &e.record;
                query = query
                    .bind(e.id.as_str())
                    .bind(to_micros(r.at))
                    .bind(r.organization.as_str())
                    .bind(r.actor.as_str())
                    .bind(r.kind.as_str())
                    .bind(r.object.as_str())
                    .bind(r.action.as_str())
                    .bind(r.result.as_str())
                    .bind(r.reason.as_str());
            }
            inserted += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(inserted)
    }

    /// Audit records matching `q`, newest first.
    pub async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if q.organization.is_some() {
            sql.push_str(&format!(" AND organization = {}", next()));
        }
        if q.since.is_some() {
            sql.push_str(&format!(" AND at_us >= {}", next()));
        }
        if q.until.is_some() {
            sql.push_str(&format!(" AND at_us < {}", next()));
        }
        if q.actor.is_some() {
            sql.push_str(&format!(" AND actor = {}", next()));
        }
        if q.before.is_some() {
            let (at, same_at, id) = (next(), next(), next());
            sql.push_str(&format!(" AND (at_us < {at} OR (at_us = {same_at} AND id < {id}))"));
        }
        sql.push_str(&format!(" ORDER BY at_us DESC, id DESC LIMIT {}", next()));
        let mut query = sqlx::query_as::<_, AuditEntry>(&sql);
        if let Some(org) = &q.organization {
            query = query.bind(org.as_str());
        }
        if let Some(since) = q.since {
            query = query.bind(to_micros(since));
        }
        if let Some(until) = q.until {
            query = query.bind(to_micros(until));
        }
        if let Some(actor) = &q.actor {
            query = query.bind(actor.as_str());
        }
        if let Some((at, id)) = &q.before {
            query = query.bind(to_micros(*at)).bind(to_micros(*at)).bind(id.as_str());
        }
        let limit = q.limit.unwrap_or(AuditQuery::MAX_LIMIT).min(AuditQuery::MAX_LIMIT);
        query = query.bind(i64::from(limit));
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// How many audit records there are (all, or of one organization).
    pub async fn count_audit(&self, organization: Option<&str>) -> Result<i64> {
        let count = match organization {
            Some(org) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE organization = $1")
                    .bind(org)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(&self.pool).await?,
        };
        Ok(count)
    }

    /// Whether a record with this id is stored.
    pub async fn audit_exists(&self, id: &str) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE id = $1").bind(id).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }
}
