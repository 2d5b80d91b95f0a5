//! Stripe webhook events already processed: Stripe redelivers events, and each must take effect once.

use super::Ledger;
use super::error::Result;
use super::time::to_micros;

impl Ledger {
    /// Records the event as processed; `true` the first time, `false` when it was already recorded.
    pub async fn mark_stripe_event_processed(
        &self,
        event_id: &str,
        organization: &str,
        event_type: &str,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO stripe_events (event_id, organization, event_type, processed_at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(organization)
        .bind(event_type)
        .bind(to_micros(jiff::Timestamp::now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    pub async fn stripe_event_processed(&self, event_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stripe_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }
}
