//! API keys: only a SHA-256 of the secret is stored, so a leaked database leaks no usable key.

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::{column, from_micros, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

/// Hex SHA-256 of an API key secret: what [`Ledger::insert_api_key`] stores and [`Ledger::find_api_key`] looks up.
pub fn hash_api_key(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub organization: String,
    pub name: String,
    /// The first characters of the secret, shown to tell keys apart.
    pub prefix: String,
    pub hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl<'r> FromRow<'r, AnyRow> for ApiKey {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        let revoked: Option<i64> = row.try_get("revoked_at_us")?;
        Ok(ApiKey {
            id: row.try_get("id")?,
            organization: row.try_get("organization")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            hash: row.try_get("hash")?,
            created_at: column(row, "created_at_us")?,
            revoked_at: revoked
                .map(from_micros)
                .transpose()
                .map_err(|e: LedgerError| sqlx::Error::Decode(Box::new(e)))?,
        })
    }
}

const COLUMNS: &str = "id, organization, name, prefix, hash, created_at_us, revoked_at_us";

impl Ledger {
    /// Stores a key by its hash (see [`hash_api_key`]); never the secret itself.
    pub async fn insert_api_key(
        &self,
        id: &str,
        organization: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<()> {
        sqlx::query(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"))
            .bind(id)
            .bind(organization)
            .bind(name)
            .bind(prefix)
            .bind(hash)
            .bind(to_micros(Timestamp::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The key with this hash, revoked or not (the caller refuses revoked keys).
    pub async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Marks the key revoked; `false` when no such unrevoked key exists in the organization.
    pub async fn revoke_api_key(&self, organization: &str, id: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_at_us = $1 WHERE organization = $2 AND id = $3 AND revoked_at_us IS NULL",
        )
        .bind(to_micros(Timestamp::now()))
        .bind(organization)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn api_keys(&self, organization: &str) -> Result<Vec<ApiKey>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE organization = $1 ORDER BY created_at_us, id"
        ))
        .bind(organization)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex() {
        assert_eq!(super::hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
