//! Small settings, per organization or global (organization `""`).

use super::Ledger;
use super::error::Result;
use super::time::to_micros;

impl Ledger {
    pub async fn setting(&self, organization: &str, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE organization = $1 AND name = $2")
            .bind(organization)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_setting(&self, organization: &str, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (organization, name, value, updated_at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (organization, name) DO UPDATE SET value = excluded.value, updated_at_us = excluded.updated_at_us",
        )
        .bind(organization)
        .bind(name)
        .bind(value)
        .bind(to_micros(jiff::Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
