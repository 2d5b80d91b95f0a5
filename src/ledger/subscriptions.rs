//! Subscription history: every plan or state change with its time and price (MRR and churn are computed
//! from it later).

use super::Ledger;
use super::error::Result;
use super::time::{column, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionChange {
    /// Unique id of the change (e.g. the Stripe event id that caused it); a repeated id is not stored twice.
    pub id: String,
    pub organization: String,
    pub at: Timestamp,
    pub plan: String,
    /// e.g. `trialing`, `active`, `past_due`, `canceled`, `suspended`.
    pub state: String,
    /// Price per billing interval in the currency's smallest unit.
    pub price_cents: i64,
    pub currency: String,
    /// `month` or `year`.
    pub billing_interval: String,
    pub reason: String,
}

impl<'r> FromRow<'r, AnyRow> for SubscriptionChange {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(SubscriptionChange {
            id: row.try_get("id")?,
            organization: row.try_get("organization")?,
            at: column(row, "at_us")?,
            plan: row.try_get("plan")?,
            state: row.try_get("state")?,
            price_cents: row.try_get("price_cents")?,
            currency: row.try_get("currency")?,
            billing_interval: row.try_get("billing_interval")?,
            reason: row.try_get("reason")?,
        })
    }
}

impl Ledger {
    /// Stores a change; `false` when a change with this id was already stored.
    pub async fn record_subscription_change(&self, change: &SubscriptionChange) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO subscription_history \
             (id, organization, at_us, plan, state, price_cents, currency, billing_interval, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(change.id.as_str())
        .bind(change.organization.as_str())
        .bind(to_micros(change.at))
        .bind(change.plan.as_str())
        .bind(change.state.as_str())
        .bind(change.price_cents)
        .bind(change.currency.as_str())
        .bind(change.billing_interval.as_str())
        .bind(change.reason.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Changes in `[since, until)`, of one organization or all, oldest first.
    pub async fn subscription_history(
        &self,
        organization: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<SubscriptionChange>> {
        let base = "SELECT id, organization, at_us, plan, state, price_cents, currency, billing_interval, reason \
                    FROM subscription_history WHERE at_us >= $1 AND at_us < $2";
        let rows = match organization {
            Some(org) => {
                sqlx::query_as(&format!("{base} AND organization = $3 ORDER BY at_us, id"))
                    .bind(to_micros(since))
                    .bind(to_micros(until))
                    .bind(org)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as(&format!("{base} ORDER BY at_us, id"))
                    .bind(to_micros(since))
                    .bind(to_micros(until))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// The organization's latest change at or before `at` (its plan and price then), if any.
    pub async fn subscription_at(&self, organization: &str, at: Timestamp) -> Result<Option<SubscriptionChange>> {
        Ok(sqlx::query_as(
            "SELECT id, organization, at_us, plan, state, price_cents, currency, billing_interval, reason \
             FROM subscription_history WHERE organization = $1 AND at_us <= $2 ORDER BY at_us DESC, id DESC LIMIT 1",
        )
        .bind(organization)
        .bind(to_micros(at))
        .fetch_optional(&self.pool)
        .await?)
    }
}
