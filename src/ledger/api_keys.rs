//! API keys: only the keyed hash of a key is stored (see `crate::keys`), with its scopes, expiry, last use
//! and origin. Every change but the last-use time bumps `updated_at_us`, which the tenant API's replicas
//! poll ([`Ledger::api_keys_changed_since`]) so that a revocation on one replica holds on all within a second.

use super::Ledger;
use super::error::{LedgerError, Result};
use super::time::{column, from_micros, to_micros};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub organization: String,
    pub name: String,
    /// `atp_live_` and the first 4 random characters, to tell keys apart.
    pub prefix: String,
    pub hash: String,
    /// Space-separated, sorted (`crate::keys::scopes_text`).
    pub scopes: String,
    /// `api` or `ApiKey/<name>`.
    pub origin: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// A key to store (the hash, never the key).
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub organization: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a str,
    pub scopes: &'a str,
    pub origin: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<Timestamp>,
}

fn optional(row: &AnyRow, name: &str) -> sqlx::Result<Option<Timestamp>> {
    let us: Option<i64> = row.try_get(name)?;
    us.map(from_micros).transpose().map_err(|e: LedgerError| sqlx::Error::Decode(Box::new(e)))
}

impl<'r> FromRow<'r, AnyRow> for ApiKey {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(ApiKey {
            id: row.try_get("id")?,
            organization: row.try_get("organization")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            hash: row.try_get("hash")?,
            scopes: row.try_get("scopes")?,
            origin: row.try_get("origin")?,
            created_by: row.try_get("created_by")?,
            created_at: column(row, "created_at_us")?,
            expires_at: optional(row, "expires_at_us")?,
            revoked_at: optional(row, "revoked_at_us")?,
            last_used_at: optional(row, "last_used_at_us")?,
            updated_at: column(row, "updated_at_us")?,
        })
    }
}

const COLUMNS: &str = "id, organization, name, prefix, hash, scopes, origin, created_by, created_at_us, \
                       expires_at_us, revoked_at_us, last_used_at_us, updated_at_us";

/// A new row's values: created and updated now, never revoked or used yet.
const VALUES: &str = "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $9)";

/// `sql` (an insert of [`VALUES`]) with `key` bound, stamped now.
fn bind_new<'q>(sql: &'q str, key: &NewApiKey<'q>) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(key.id)
        .bind(key.organization)
        .bind(key.name)
        .bind(key.prefix)
        .bind(key.hash)
        .bind(key.scopes)
        .bind(key.origin)
        .bind(key.created_by)
        .bind(to_micros(Timestamp::now()))
        .bind(key.expires_at.map(to_micros))
}

impl Ledger {
    /// Stores a new key. A second key with the same id or hash is an error.
    pub async fn insert_api_key(&self, key: &NewApiKey<'_>) -> Result<ApiKey> {
        bind_new(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES {VALUES}"), key).execute(&self.pool).await?;
        self.api_key(key.organization, key.id)
            .await?
            .ok_or_else(|| LedgerError::invalid("api key", format!("{} vanished after its insert", key.id)))
    }

    /// Stores or updates the key declared by an `ApiKey` resource (its id is the resource's): the hash of the
    /// key its Secret holds, its scopes and expiry. A revoked key stays revoked.
    pub async fn upsert_declared_api_key(&self, key: &NewApiKey<'_>) -> Result<()> {
        bind_new(
            &format!(
                "INSERT INTO api_keys ({COLUMNS}) VALUES {VALUES} \
             ON CONFLICT (id) DO UPDATE SET prefix = excluded.prefix, hash = excluded.hash, \
             scopes = excluded.scopes, expires_at_us = excluded.expires_at_us, updated_at_us = excluded.updated_at_us \
             WHERE api_keys.hash <> excluded.hash OR api_keys.scopes <> excluded.scopes \
             OR COALESCE(api_keys.expires_at_us, -1) <> COALESCE(excluded.expires_at_us, -1)"
            ),
            key,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The key with this hash, revoked or not (the caller refuses revoked and expired keys).
    pub async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn api_key(&self, organization: &str, id: &str) -> Result<Option<ApiKey>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE organization = $1 AND id = $2"))
            .bind(organization)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Marks the key revoked; `false` when no such unrevoked key exists in the organization.
    pub async fn revoke_api_key(&self, organization: &str, id: &str) -> Result<bool> {
        let now = to_micros(Timestamp::now());
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_at_us = $1, updated_at_us = $1 \
             WHERE organization = $2 AND id = $3 AND revoked_at_us IS NULL",
        )
        .bind(now)
        .bind(organization)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The organization's keys, oldest first.
    pub async fn api_keys(&self, organization: &str) -> Result<Vec<ApiKey>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE organization = $1 ORDER BY created_at_us, id"
        ))
        .bind(organization)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Organizations with at least one key neither revoked nor expired at `now` (feature adoption).
    pub async fn organizations_with_usable_keys(&self, now: Timestamp) -> Result<std::collections::BTreeSet<String>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT organization FROM api_keys \
             WHERE revoked_at_us IS NULL AND (expires_at_us IS NULL OR expires_at_us > $1)",
        )
        .bind(to_micros(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(names.into_iter().collect())
    }

    /// Keys changed at or after `since` (all keys for `None`): what a replica's key table refreshes from.
    pub async fn api_keys_changed_since(&self, since: Option<Timestamp>) -> Result<Vec<ApiKey>> {
        let since = since.map_or(i64::MIN, to_micros);
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE updated_at_us >= $1"))
            .bind(since)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records when keys were last used (batched by the caller; a later time never goes back).
    pub async fn touch_api_keys(&self, used: &[(String, Timestamp)]) -> Result<()> {
        for (id, at) in used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at_us = $1 WHERE id = $2 \
                 AND (last_used_at_us IS NULL OR last_used_at_us < $1)",
            )
            .bind(to_micros(*at))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}
