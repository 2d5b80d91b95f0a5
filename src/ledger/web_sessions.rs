//! Web sign-in state: sign-ins in flight (used once, within [`LOGIN_TTL`]) and server-side sessions,
//! keyed by the SHA-256 of the cookie's random id (the id itself is never stored).

use super::Ledger;
use super::error::Result;
use super::time::{column, to_micros};
use jiff::{SignedDuration, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

/// How long a sign-in may take at the identity provider before its state is refused.
pub const LOGIN_TTL: SignedDuration = SignedDuration::from_mins(10);

/// A sign-in in flight: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSession {
    pub id_hash: String,
    pub subject: String,
    pub email: String,
    pub idp_groups: Vec<String>,
    pub amr: Vec<String>,
    pub second_factor: bool,
    pub auth_time: Timestamp,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The sign-in's ID token, the console's credential at the Kubernetes API (empty before migration 7).
    pub tokens: SessionTokens,
}

/// The tokens a session acts with.
#[derive(Clone, PartialEq, Default)]
pub struct SessionTokens {
    pub id_token: String,
    pub id_token_expires_at: Timestamp,
    /// Empty when the provider gave none (no `offline_access`).
    pub refresh_token: String,
}

/// Tokens are credentials: never printed.
impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens")
            .field("id_token", &if self.id_token.is_empty() { "none" } else { "<redacted>" })
            .field("id_token_expires_at", &self.id_token_expires_at)
            .field("refresh_token", &if self.refresh_token.is_empty() { "none" } else { "<redacted>" })
            .finish()
    }
}

impl<'r> FromRow<'r, AnyRow> for WebSession {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        let groups: String = row.try_get("idp_groups")?;
        let amr: String = row.try_get("amr")?;
        let second_factor: i64 = row.try_get("second_factor")?;
        Ok(WebSession {
            id_hash: row.try_get("id_hash")?,
            subject: row.try_get("subject")?,
            email: row.try_get("email")?,
            idp_groups: groups.lines().filter(|g| !g.is_empty()).map(String::from).collect(),
            amr: amr.split_whitespace().map(String::from).collect(),
            second_factor: second_factor != 0,
            auth_time: column(row, "auth_time_us")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: column(row, "created_at_us")?,
            last_seen_at: column(row, "last_seen_at_us")?,
            tokens: SessionTokens {
                id_token: row.try_get("id_token")?,
                id_token_expires_at: column(row, "id_token_expires_us")?,
                refresh_token: row.try_get("refresh_token")?,
            },
        })
    }
}

const SESSION_COLUMNS: &str = "id_hash, subject, email, idp_groups, amr, second_factor, auth_time_us, csrf_token, \
                               created_at_us, last_seen_at_us, id_token, id_token_expires_us, refresh_token";

impl Ledger {
    pub async fn insert_web_login(&self, login: &WebLogin) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_logins (state, nonce, pkce_verifier, return_to, created_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(login.state.as_str())
        .bind(login.nonce.as_str())
        .bind(login.pkce_verifier.as_str())
        .bind(login.return_to.as_str())
        .bind(to_micros(Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in with this state, once: a replayed or stale callback finds nothing. Stale sign-ins
    /// of others are removed on the way.
    pub async fn take_web_login(&self, state: &str) -> Result<Option<WebLogin>> {
        let oldest = to_micros(Timestamp::now() - LOGIN_TTL);
        let row = sqlx::query(
            "DELETE FROM web_logins WHERE state = $1 AND created_at_us >= $2 \
             RETURNING state, nonce, pkce_verifier, return_to",
        )
        .bind(state)
        .bind(oldest)
        .fetch_optional(&self.pool)
        .await?;
        self.delete_stale_web_logins().await?;
        Ok(match row {
            Some(row) => Some(WebLogin {
                state: row.try_get("state")?,
                nonce: row.try_get("nonce")?,
                pkce_verifier: row.try_get("pkce_verifier")?,
                return_to: row.try_get("return_to")?,
            }),
            None => None,
        })
    }

    /// Removes sign-ins older than [`LOGIN_TTL`] (started and never finished); returns how many.
    pub async fn delete_stale_web_logins(&self) -> Result<u64> {
        let oldest = to_micros(Timestamp::now() - LOGIN_TTL);
        let n = sqlx::query("DELETE FROM web_logins WHERE created_at_us < $1").bind(oldest).execute(&self.pool).await?;
        Ok(n.rows_affected())
    }

    pub async fn insert_web_session(&self, session: &WebSession) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO web_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(session.id_hash.as_str())
        .bind(session.subject.as_str())
        .bind(session.email.as_str())
        .bind(session.idp_groups.join("\n"))
        .bind(session.amr.join(" "))
        .bind(i64::from(session.second_factor))
        .bind(to_micros(session.auth_time))
        .bind(session.csrf_token.as_str())
        .bind(to_micros(session.created_at))
        .bind(to_micros(session.last_seen_at))
        .bind(session.tokens.id_token.as_str())
        .bind(to_micros(session.tokens.id_token_expires_at))
        .bind(session.tokens.refresh_token.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces a session's tokens after a refresh; `false` when the session has ended meanwhile.
    pub async fn update_web_session_tokens(&self, id_hash: &str, tokens: &SessionTokens) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE web_sessions SET id_token = $1, id_token_expires_us = $2, refresh_token = $3 WHERE id_hash = $4",
        )
        .bind(tokens.id_token.as_str())
        .bind(to_micros(tokens.id_token_expires_at))
        .bind(tokens.refresh_token.as_str())
        .bind(id_hash)
        .execute(&self.pool)
        .await?;
        Ok(n.rows_affected() == 1)
    }

    pub async fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>> {
        Ok(sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM web_sessions WHERE id_hash = $1"))
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Records activity (a later time never goes back).
    pub async fn touch_web_session(&self, id_hash: &str, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET last_seen_at_us = $1 WHERE id_hash = $2 AND last_seen_at_us < $1")
            .bind(to_micros(at))
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session (logout, expiry); `false` when there was none.
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(n.rows_affected() == 1)
    }

    /// Removes sessions created before `before` (older than any absolute limit); returns how many.
    pub async fn delete_web_sessions_created_before(&self, before: Timestamp) -> Result<u64> {
        let n = sqlx::query("DELETE FROM web_sessions WHERE created_at_us < $1")
            .bind(to_micros(before))
            .execute(&self.pool)
            .await?;
        Ok(n.rows_affected())
    }
}
