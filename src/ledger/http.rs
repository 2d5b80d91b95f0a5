//! `GET /api/v1/audit`: audit queries as JSON, for dashboards. The operator's HTTP server mounts
//! [`router`] behind its bearer-token check (`get` on the non-resource URL /api/v1/audit, see
//! `crate::http_auth`): the records name every tenant's users and actions.
//!
//! Query parameters: `org`, `since` and `until` (a duration back from now such as `24h`, or RFC 3339),
//! `actor`, `limit` (at most 10,000). Answers `{"records": [...], "count": N}`, newest first; 400 with
//! `{"error": "..."}` for bad parameters, 503 when the database fails.

use super::{AuditQuery, Ledger, LedgerError, parse_time_bound};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router(ledger: Ledger) -> Router {
    Router::new().route("/api/v1/audit", get(audit)).with_state(ledger)
}

#[derive(Debug, Deserialize)]
struct Params {
    org: Option<String>,
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    limit: Option<u32>,
}

async fn audit(State(ledger): State<Ledger>, Query(params): Query<Params>) -> Response {
    let query = match to_query(params) {
        Ok(q) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response(),
    };
    match ledger.query_audit(&query).await {
        Ok(records) => Json(json!({ "count": records.len(), "records": records })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "audit query failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

fn to_query(params: Params) -> Result<AuditQuery, LedgerError> {
    let now = jiff::Timestamp::now();
    Ok(AuditQuery {
        organization: params.org.filter(|o| !o.is_empty()),
        since: params.since.as_deref().map(|s| parse_time_bound(s, now)).transpose()?,
        until: params.until.as_deref().map(|s| parse_time_bound(s, now)).transpose()?,
        actor: params.actor.filter(|a| !a.is_empty()),
        before: None,
        limit: params.limit,
    })
}
