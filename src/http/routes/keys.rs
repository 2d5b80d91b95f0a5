//! API keys through the API: listed without secrets, created (the key shown once), revoked. Owners and
//! Admins, or keys with `keys:write` (which hand out no scope they lack).

use crate::http::App;
use crate::http::Problem;
use crate::http::access::{Action, may_grant};
use crate::http::caller::Call;
use crate::http::views::{ApiKeyView, ApiKeysView, CreateApiKey, CreatedApiKey};
use crate::keys::{self, Scope};
use crate::ledger::{ApiKey, NewApiKey};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// Keys an organization may hold at once (revoked ones do not count).
pub const MAX_KEYS: usize = 100;

pub fn view(key: &ApiKey) -> ApiKeyView {
    ApiKeyView {
        id: key.id.clone(),
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        scopes: keys::parse_scopes(&key.scopes).unwrap_or_default(),
        origin: key.origin.clone(),
        created_by: key.created_by.clone(),
        created_at: key.created_at.to_string(),
        expires_at: key.expires_at.map(|t| t.to_string()),
        last_used_at: key.last_used_at.map(|t| t.to_string()),
        revoked_at: key.revoked_at.map(|t| t.to_string()),
    }
}

fn invalid(field: &str, detail: impl std::fmt::Display) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-key-request", "The key cannot be created", field, detail)
}

/// The organization's keys, oldest first, without secrets.
#[utoipa::path(get, path = "/v1/organizations/{org}/api-keys", tag = "api-keys",
    params(("org" = String, Path, description = "The Organization's object name")),
    responses((status = 200, description = "Success", body = ApiKeysView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
) -> Result<Json<ApiKeysView>, Problem> {
    call.authorize(Action::ManageKeys)?;
    let keys = app.ledger.api_keys(&call.org_name).await.map_err(super::ledger_unavailable)?;
    Ok(Json(ApiKeysView { keys: keys.iter().map(view).collect() }))
}

/// Creates a key; the answer holds the key itself, this once.
#[utoipa::path(post, path = "/v1/organizations/{org}/api-keys", tag = "api-keys",
    params(("org" = String, Path, description = "The Organization's object name")),
    request_body = CreateApiKey,
    responses((status = 201, description = "Success", body = CreatedApiKey), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    body: Body,
) -> Result<(StatusCode, Json<CreatedApiKey>), Problem> {
    call.authorize(Action::ManageKeys)?;
    let request: CreateApiKey = super::read_json(body, app.max_body_bytes).await?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name", "name must be 1–100 printable characters, e.g. \"ci-deploy\""));
    }
    let scopes = request.scopes.unwrap_or_else(|| vec![Scope::Read]);
    if scopes.is_empty() {
        return Err(invalid("scopes", "give at least one scope: read, usage:write or keys:write"));
    }
    may_grant(&call.grant, &scopes)?;
    let now = jiff::Timestamp::now();
    let expires_at = match request.expires_at.as_deref() {
        None => None,
        Some(text) => {
            let at: jiff::Timestamp = text.parse().map_err(|e| {
                invalid("expiresAt", format!("{text:?} is not an RFC 3339 time ({e}), e.g. 2027-01-31T00:00:00Z"))
            })?;
            if at <= now {
                return Err(invalid("expiresAt", format!("{at} is in the past: give a future time, or leave it out")));
            }
            Some(at)
        }
    };
    let existing = app.ledger.api_keys(&call.org_name).await.map_err(super::ledger_unavailable)?;
    if existing.iter().filter(|k| k.revoked_at.is_none()).count() >= MAX_KEYS {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "key-limit",
            "Too many keys",
            "name",
            format!("an organization holds at most {MAX_KEYS} unrevoked keys: revoke unused ones first"),
        ));
    }
    let secret = keys::generate().map_err(|_| super::ledger_unavailable("no random source"))?;
    let id = format!("key_{}", uuid::Uuid::now_v7().simple());
    let (hash, prefix, scopes_text) =
        (app.hasher.hash(&secret), keys::display_prefix(&secret), keys::scopes_text(&scopes));
    let stored = app
        .ledger
        .insert_api_key(&NewApiKey {
            id: &id,
            organization: &call.org_name,
            name,
            prefix: &prefix,
            hash: &hash,
            scopes: &scopes_text,
            origin: "api",
            created_by: &call.actor,
            expires_at,
        })
        .await
        .map_err(super::ledger_unavailable)?;
    app.keys.remember(stored.clone());
    tracing::info!(organization = %call.org_name, key = %id, by = %call.actor, scopes = %scopes_text, "API key created");
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key: secret, details: view(&stored) })))
}

/// Revokes a key: refused on every replica within a second.
#[utoipa::path(delete, path = "/v1/organizations/{org}/api-keys/{id}", tag = "api-keys",
    params(("org" = String, Path, description = "The Organization's object name"), ("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "Success", body = ApiKeyView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn revoke(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ApiKeyView>, Problem> {
    call.authorize(Action::ManageKeys)?;
    let Some(key) = app.ledger.api_key(&call.org_name, &id).await.map_err(super::ledger_unavailable)? else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-key",
            "No such key",
            "id",
            format!("organization {} has no API key {id:?}: list them with GET …/api-keys", call.org_name),
        ));
    };
    if let Some(resource) = key.origin.strip_prefix("ApiKey/") {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "declared-key",
            "The key is declared as a custom resource",
            "id",
            format!(
                "key {id} belongs to ApiKey {resource}: delete that object (kubectl delete apikey {resource}) to revoke it"
            ),
        ));
    }
    app.ledger.revoke_api_key(&call.org_name, &id).await.map_err(super::ledger_unavailable)?;
    let revoked = app.ledger.api_key(&call.org_name, &id).await.map_err(super::ledger_unavailable)?.unwrap_or(key);
    app.keys.remember(revoked.clone());
    tracing::info!(organization = %call.org_name, key = %id, by = %call.actor, "API key revoked");
    Ok(Json(view(&revoked)))
}
