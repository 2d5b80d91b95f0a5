//! Which organizations' usage changed lately, whichever replica took it in: the leader's status follows
//! usage that reached a follower (`controller::usage_watch`).

use super::Ledger;
use super::error::Result;
use super::time::to_micros;
use jiff::Timestamp;

impl Ledger {
    /// Organizations with an hourly window written after `since` (ingestion or storage sampling).
    pub async fn organizations_with_usage_since(&self, since: Timestamp) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT organization FROM usage_hourly WHERE updated_at_us > $1 ORDER BY organization",
        )
        .bind(to_micros(since))
        .fetch_all(&self.pool)
        .await?)
    }
}
