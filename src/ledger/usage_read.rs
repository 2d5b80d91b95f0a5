//! Reading usage back for people (the `usage` command): every meter's hourly windows of one organization in
//! one query, and which organizations have any usage at all (to name them when asked for one that has none).

use super::Ledger;
use super::error::Result;
use super::time::to_micros;
use super::usage::UsageWindow;
use jiff::Timestamp;

impl Ledger {
    /// One organization's hourly windows of every meter starting in `[from, to)`, by meter then time.
    pub async fn usage_windows_all(
        &self,
        organization: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageWindow>> {
        Ok(sqlx::query_as(
            "SELECT organization, meter, window_start_us, quantity, events FROM usage_hourly \
             WHERE organization = $1 AND window_start_us >= $2 AND window_start_us < $3 \
             ORDER BY meter, window_start_us",
        )
        .bind(organization)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The organizations with any stored usage, sorted.
    pub async fn usage_organizations(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT organization FROM usage_hourly ORDER BY organization")
            .fetch_all(&self.pool)
            .await?)
    }
}
