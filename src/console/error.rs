//! A console page that cannot be shown: the same rule, reason and fix as the tenant API's problem,
//! as a page; a session that must sign in again is sent to sign in.

use crate::http::Problem;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ConsoleError {
    /// Web sign-in is not configured (`--oidc-issuer`).
    SignInOff,
    /// Sign in at this URL, then come back.
    SignIn(String),
    /// A refusal of the API's gate or of the role table.
    Problem(Box<Problem>),
    /// A form that cannot be read.
    BadForm(String),
}

impl From<Problem> for ConsoleError {
    fn from(problem: Problem) -> Self {
        match &problem.sign_in {
            Some(url) => ConsoleError::SignIn(url.clone()),
            None => ConsoleError::Problem(Box::new(problem)),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    rule: &'a str,
    detail: &'a str,
}

pub fn error_page(status: StatusCode, title: &str, rule: &str, detail: &str) -> Response {
    let html = ErrorPage { title, rule, detail }.render().unwrap_or_else(|_| detail.to_string());
    let mut response = (status, axum::response::Html(html)).into_response();
    super::security_headers(response.headers_mut());
    response
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignInOff => error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console needs web sign-in",
                "sign-in-off",
                "this tenant API runs without --oidc-issuer, so nobody can sign in to the console: \
                 configure web sign-in (docs/sso.md)",
            ),
            ConsoleError::SignIn(location) => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
            ConsoleError::Problem(problem) => {
                let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::FORBIDDEN);
                error_page(status, &problem.title, &problem.rule, &problem.detail)
            }
            ConsoleError::BadForm(why) => {
                error_page(StatusCode::BAD_REQUEST, "The form cannot be read", "invalid-form", &why)
            }
        }
    }
}
