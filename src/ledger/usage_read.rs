//! Reading usage back for people (the `usage` command and the console): every meter's hourly windows of one
//! organization in one query, usage by subject (the console's top teams and API keys), the platform's daily
//! totals, and which organizations have any usage at all (to name them when asked for one that has none).

use super::Ledger;
use super::error::Result;
use super::time::to_micros;
use super::usage::UsageWindow;
use crate::metering::Meter;
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

    /// As [`Ledger::usage_windows_all`], summed per UTC day (`start` is the day's first instant): what a
    /// daily series needs, read as a 24th of the rows (the console's 90-day charts).
    pub async fn usage_days_all(&self, organization: &str, from: Timestamp, to: Timestamp) -> Result<Vec<UsageWindow>> {
        const DAY_US: i64 = 86_400_000_000;
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT meter, (window_start_us / 86400000000) * 86400000000 AS day_us, \
             CAST(SUM(quantity) AS BIGINT), CAST(SUM(events) AS BIGINT) FROM usage_hourly \
             WHERE organization = $1 AND window_start_us >= $2 AND window_start_us < $3 \
             GROUP BY meter, day_us ORDER BY meter, day_us",
        )
        .bind(organization)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(meter, day, quantity, events)| {
                debug_assert_eq!(day % DAY_US, 0);
                Some(UsageWindow {
                    organization: organization.to_string(),
                    meter: Meter::parse(&meter)?,
                    start: Timestamp::from_microsecond(day).ok()?,
                    quantity,
                    events,
                })
            })
            .collect())
    }

    /// The organizations with any stored usage, sorted.
    pub async fn usage_organizations(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT organization FROM usage_hourly ORDER BY organization")
            .fetch_all(&self.pool)
            .await?)
    }

    /// One organization's usage since `from` per subject (`<namespace>[/<what>]`) and meter, in base units.
    pub async fn usage_by_subject(&self, organization: &str, from: Timestamp) -> Result<Vec<SubjectUsage>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT subject, meter, CAST(SUM(quantity) AS BIGINT) FROM usage_events \
             WHERE organization = $1 AND window_start_us >= $2 GROUP BY subject, meter",
        )
        .bind(organization)
        .bind(to_micros(from))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(subject, meter, quantity)| {
                Some(SubjectUsage { subject, meter: Meter::parse(&meter)?, quantity })
            })
            .collect())
    }

    /// Every organization's usage per meter and hourly window starting in `[from, to)`, summed: the
    /// platform's usage trend.
    pub async fn platform_usage(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Meter, Timestamp, i64)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT meter, window_start_us, CAST(SUM(quantity) AS BIGINT) FROM usage_hourly \
             WHERE window_start_us >= $1 AND window_start_us < $2 GROUP BY meter, window_start_us",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(meter, start, quantity)| {
                Some((Meter::parse(&meter)?, Timestamp::from_microsecond(start).ok()?, quantity))
            })
            .collect())
    }
}

/// Usage of one subject on one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectUsage {
    pub subject: String,
    pub meter: Meter,
    pub quantity: i64,
}
