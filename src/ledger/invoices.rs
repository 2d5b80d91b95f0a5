//! Invoices mirrored from Stripe: upserted on every invoice webhook, listed per organization.

use super::Ledger;
use super::error::Result;
use super::time::{column, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub stripe_invoice_id: String,
    pub organization: String,
    pub number: Option<String>,
    /// Stripe's status: `draft`, `open`, `paid`, `uncollectible`, `void`.
    pub status: String,
    pub currency: String,
    pub amount_due_cents: i64,
    pub amount_paid_cents: i64,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub created_at: Timestamp,
    pub hosted_url: Option<String>,
}

impl<'r> FromRow<'r, AnyRow> for Invoice {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Invoice {
            stripe_invoice_id: row.try_get("stripe_invoice_id")?,
            organization: row.try_get("organization")?,
            number: row.try_get("number")?,
            status: row.try_get("status")?,
            currency: row.try_get("currency")?,
            amount_due_cents: row.try_get("amount_due_cents")?,
            amount_paid_cents: row.try_get("amount_paid_cents")?,
            period_start: column(row, "period_start_us")?,
            period_end: column(row, "period_end_us")?,
            created_at: column(row, "created_at_us")?,
            hosted_url: row.try_get("hosted_url")?,
        })
    }
}

impl Ledger {
    /// Inserts the invoice or replaces the stored copy (Stripe's latest state wins).
    pub async fn upsert_invoice(&self, invoice: &Invoice) -> Result<()> {
        sqlx::query(
            "INSERT INTO invoices (stripe_invoice_id, organization, number, status, currency, amount_due_cents, \
             amount_paid_cents, period_start_us, period_end_us, created_at_us, updated_at_us, hosted_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (stripe_invoice_id) DO UPDATE SET organization = excluded.organization, \
             number = excluded.number, status = excluded.status, currency = excluded.currency, \
             amount_due_cents = excluded.amount_due_cents, amount_paid_cents = excluded.amount_paid_cents, \
             period_start_us = excluded.period_start_us, period_end_us = excluded.period_end_us, \
             created_at_us = excluded.created_at_us, updated_at_us = excluded.updated_at_us, \
             hosted_url = excluded.hosted_url",
        )
        .bind(invoice.stripe_invoice_id.as_str())
        .bind(invoice.organization.as_str())
        .bind(invoice.number.as_deref())
        .bind(invoice.status.as_str())
        .bind(invoice.currency.as_str())
        .bind(invoice.amount_due_cents)
        .bind(invoice.amount_paid_cents)
        .bind(to_micros(invoice.period_start))
        .bind(to_micros(invoice.period_end))
        .bind(to_micros(invoice.created_at))
        .bind(to_micros(Timestamp::now()))
        .bind(invoice.hosted_url.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The organization's invoices, newest first.
    pub async fn invoices(&self, organization: &str, limit: u32) -> Result<Vec<Invoice>> {
        Ok(sqlx::query_as(
            "SELECT stripe_invoice_id, organization, number, status, currency, amount_due_cents, amount_paid_cents, \
             period_start_us, period_end_us, created_at_us, hosted_url FROM invoices WHERE organization = $1 \
             ORDER BY created_at_us DESC, stripe_invoice_id DESC LIMIT $2",
        )
        .bind(organization)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
