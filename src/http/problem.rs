//! RFC 9457 problem details, the one error shape of the tenant API and usage ingestion: `type` names the
//! stable rule (`urn:atlantiplex:problem:<rule>`), `detail` starts with `[rule]` as the webhook's denials do
//! and says what to do, `field` names what was wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:atlantiplex:problem:<rule>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// `[rule] what happened, and the fix`.
    pub detail: String,
    /// The stable rule name, e.g. `rate-limit`, `scope`, `plan-api-access`.
    pub rule: String,
    /// The request part at fault: a header, a path or query parameter, or a body field.
    pub field: String,
    /// For a refused rate: seconds until a request passes again (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For a refused session: where to sign in again (and come back); browsers are redirected there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, rule: &str, title: &str, field: &str, detail: impl std::fmt::Display) -> Self {
        Problem {
            type_: format!("urn:atlantiplex:problem:{rule}"),
            title: title.into(),
            status: status.as_u16(),
            detail: format!("[{rule}] {detail}"),
            rule: rule.into(),
            field: field.into(),
            retry_after: None,
            sign_in: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after;
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
