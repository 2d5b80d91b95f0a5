//! The organization's audit log, newest first, in pages: `cursor` is the last entry's time and id, so a
//! page never repeats or skips an entry while new ones arrive.

use crate::http::App;
use crate::http::Problem;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::views::{AuditEntryView, AuditPage};
use crate::ledger::AuditQuery;
use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

pub const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries per page, 1–500 (default 100).
    pub limit: Option<u32>,
    /// The `nextCursor` of the page before.
    pub cursor: Option<String>,
}

fn bad_cursor() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-cursor",
        "Not a cursor of this API",
        "cursor",
        "pass the nextCursor of the previous page unchanged, or leave cursor out for the newest entries",
    )
}

fn encode(at: jiff::Timestamp, id: &str) -> String {
    format!("{}.{id}", at.as_microsecond())
}

fn decode(cursor: &str) -> Result<(jiff::Timestamp, String), Problem> {
    let (micros, id) = cursor.split_once('.').ok_or_else(bad_cursor)?;
    let at =
        micros.parse::<i64>().ok().and_then(|us| jiff::Timestamp::from_microsecond(us).ok()).ok_or_else(bad_cursor)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad_cursor());
    }
    Ok((at, id.to_string()))
}

/// One page of the organization's audit log.
#[utoipa::path(get, path = "/v1/organizations/{org}/audit", tag = "audit",
    params(("org" = String, Path, description = "The Organization's object name"), AuditParams),
    responses((status = 200, description = "Success", body = AuditPage), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn audit(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    call.authorize(Action::ReadAudit)?;
    let Query(params) = params.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "Bad query",
            "limit",
            format!("{e}: limit is a number 1–{MAX_PAGE}"),
        )
    })?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-limit",
            "Page size out of range",
            "limit",
            format!("limit {limit} is not in 1–{MAX_PAGE}: ask for fewer entries per page"),
        ));
    }
    let before = params.cursor.as_deref().map(decode).transpose()?;
    let query =
        AuditQuery { organization: Some(call.org_name.clone()), before, limit: Some(limit + 1), ..Default::default() };
    let mut entries = app.ledger.query_audit(&query).await.map_err(super::ledger_unavailable)?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = if more { entries.last().map(|e| encode(e.record.at, &e.id)) } else { None };
    let entries = entries
        .into_iter()
        .map(|e| AuditEntryView {
            id: e.id,
            at: e.record.at.to_string(),
            actor: e.record.actor,
            kind: e.record.kind,
            object: e.record.object,
            action: e.record.action,
            result: e.record.result.as_str().to_string(),
            reason: Some(e.record.reason).filter(|r| !r.is_empty()),
        })
        .collect();
    Ok(Json(AuditPage { entries, next_cursor }))
}
