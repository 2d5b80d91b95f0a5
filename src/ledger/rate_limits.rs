//! The tenant API's rate limits shared by replicas through PostgreSQL: one statement per allowed request, the GCRA
//! step of `crate::http::gcra` done atomically by the database on its own clock (DESIGN.md §9.3).
//!
//! Why the database's clock: replicas' clocks differ by milliseconds, and a limit of 100 requests per second
//! has a 10 ms emission interval. Why one statement: `INSERT … ON CONFLICT DO UPDATE … WHERE` takes the row
//! lock and re-checks the condition on the newest row version, so concurrent requests of one organization
//! queue on its row and each sees the others' effect: the limit holds exactly across replicas.
//!
//! Why its own connections, with `synchronous_commit = off`: a GCRA step is a write, and waiting for its WAL
//! flush (an fsync) on every API request made the statement the API's bottleneck (`make bench-api`). What an
//! asynchronous commit can lose in a database crash is the last few milliseconds of rate-limit state — a
//! few requests more pass once, nothing is billed or recorded wrongly — while every other ledger write keeps
//! its durable commit.

use super::error::{LedgerError, Result};
use super::{Backend, Ledger};

/// What the database decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedTake {
    /// The database's clock, µs since the epoch.
    pub now_us: i64,
    /// The theoretical arrival time after the request (allowed), or the one that refused it.
    pub tat_us: i64,
    pub allowed: bool,
}

const TAKE: &str = "WITH clock AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS now_us), \
     taken AS ( \
       INSERT INTO rate_limits AS r (key, tat_us) SELECT $1, now_us + $2 FROM clock \
       ON CONFLICT (key) DO UPDATE SET tat_us = GREATEST(r.tat_us, (SELECT now_us FROM clock)) + $2 \
       WHERE GREATEST(r.tat_us, (SELECT now_us FROM clock)) - (SELECT now_us FROM clock) <= $3 \
       RETURNING r.tat_us) \
     SELECT (SELECT now_us FROM clock) AS now_us, (SELECT tat_us FROM taken) AS taken_us";

/// A refused request's TAT, read after the refusal: the statement above sees the row as of its start, which a
/// concurrent winner may have moved since, and `Retry-After` is computed from it.
const CURRENT: &str = "SELECT tat_us, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS now_us \
     FROM rate_limits WHERE key = $1";

/// Connections of the rate-limit pool: a request waits for one while all are busy.
const RATE_LIMIT_CONNECTIONS: u32 = 16;

impl Ledger {
    async fn rate_limit_pool(&self) -> Result<&sqlx::AnyPool> {
        let pool = self
            .rate_limit_pool
            .get_or_try_init(|| async {
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(RATE_LIMIT_CONNECTIONS)
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::Executor::execute(conn, "SET synchronous_commit = off").await.map(|_| ())
                        })
                    })
                    .connect(&self.url)
                    .await
            })
            .await?;
        Ok(pool)
    }

    /// One GCRA step for `key`: allowed when the key's theoretical arrival time is at most `tolerance_us`
    /// ahead of now; then it moves `interval_us` further. PostgreSQL only.
    pub async fn take_rate_limit(&self, key: &str, interval_us: i64, tolerance_us: i64) -> Result<SharedTake> {
        if self.backend() != Backend::Postgres {
            return Err(LedgerError::invalid("rate limit store", "shared rate limits need PostgreSQL".to_string()));
        }
        use sqlx::Row as _;
        let pool = self.rate_limit_pool().await?;
        let row = sqlx::query(TAKE).bind(key).bind(interval_us).bind(tolerance_us).fetch_one(pool).await?;
        let now_us: i64 = row.try_get("now_us")?;
        let taken: Option<i64> = row.try_get("taken_us")?;
        if let Some(tat_us) = taken {
            return Ok(SharedTake { now_us, tat_us, allowed: true });
        }
        // Refused (rare under a sane client): a second statement for an exact Retry-After.
        let current = sqlx::query(CURRENT).bind(key).fetch_optional(pool).await?;
        Ok(match current {
            Some(row) => SharedTake { now_us: row.try_get("now_us")?, tat_us: row.try_get("tat_us")?, allowed: false },
            None => SharedTake { now_us, tat_us: now_us, allowed: false },
        })
    }
}
