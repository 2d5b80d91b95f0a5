//! Billing periods of metered organizations, as the meter pusher saw them in Stripe, and each period's
//! comparison with Stripe's meter totals once it can no longer change (`metering::reconcile`).

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::{column, to_micros};
use crate::metering::Period;
use crate::metering::reconcile::MeterReconciliation;
use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A billing period the pusher pushes for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillingPeriod {
    pub organization: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub customer: String,
    pub plan: String,
    pub reconciled_at: Option<Timestamp>,
    pub matched: Option<bool>,
    pub meters: Vec<MeterReconciliation>,
}

impl BillingPeriod {
    pub fn period(&self) -> Result<Period> {
        Period::new(self.start, self.end).map_err(|e| LedgerError::invalid("stored billing period", e.to_string()))
    }
}

const COLUMNS: &str = "organization, start_us, end_us, customer, plan, reconciled_at_us, matched, reconciliation";

fn row_to_period(row: &AnyRow) -> sqlx::Result<BillingPeriod> {
    let reconciled: Option<i64> = row.try_get("reconciled_at_us")?;
    let matched: Option<i64> = row.try_get("matched")?;
    let text: Option<String> = row.try_get("reconciliation")?;
    Ok(BillingPeriod {
        organization: row.try_get("organization")?,
        start: column(row, "start_us")?,
        end: column(row, "end_us")?,
        customer: row.try_get("customer")?,
        plan: row.try_get("plan")?,
        reconciled_at: reconciled.and_then(|us| Timestamp::from_microsecond(us).ok()),
        matched: matched.map(|m| m != 0),
        meters: text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
    })
}

impl Ledger {
    /// Records the period open now (or updates its plan and customer); a period already compared stays so.
    /// An earlier open period that was to end after this one starts ended early (a cancellation, a new
    /// billing cycle anchor): it ends where this one starts.
    pub async fn upsert_billing_period(
        &self,
        organization: &str,
        period: &Period,
        customer: &str,
        plan: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE billing_periods SET end_us = $1 WHERE organization = $2 AND start_us < $1 AND end_us > $1 \
             AND reconciled_at_us IS NULL",
        )
        .bind(to_micros(period.start))
        .bind(organization)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO billing_periods (organization, start_us, end_us, customer, plan) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (organization, start_us) DO UPDATE SET end_us = excluded.end_us, \
             customer = excluded.customer, plan = excluded.plan",
        )
        .bind(organization)
        .bind(to_micros(period.start))
        .bind(to_micros(period.end))
        .bind(customer)
        .bind(plan)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every period not compared yet, oldest first.
    pub async fn unreconciled_billing_periods(&self) -> Result<Vec<BillingPeriod>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM billing_periods WHERE reconciled_at_us IS NULL ORDER BY end_us, organization"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_to_period).collect::<sqlx::Result<_>>()?)
    }

    /// Stores a period's comparison with Stripe.
    pub async fn record_reconciliation(
        &self,
        organization: &str,
        start: Timestamp,
        matched: bool,
        meters: &[MeterReconciliation],
        at: Timestamp,
    ) -> Result<()> {
        let text = serde_json::to_string(meters).map_err(|e| LedgerError::invalid("reconciliation", e.to_string()))?;
        sqlx::query(
            "UPDATE billing_periods SET reconciled_at_us = $1, matched = $2, reconciliation = $3 \
             WHERE organization = $4 AND start_us = $5",
        )
        .bind(to_micros(at))
        .bind(i64::from(matched))
        .bind(text)
        .bind(organization)
        .bind(to_micros(start))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The organization's most recently ended period that was compared.
    pub async fn latest_reconciliation(&self, organization: &str) -> Result<Option<BillingPeriod>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM billing_periods WHERE organization = $1 AND reconciled_at_us IS NOT NULL \
             ORDER BY end_us DESC LIMIT 1"
        ))
        .bind(organization)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(row_to_period).transpose()?)
    }
}
