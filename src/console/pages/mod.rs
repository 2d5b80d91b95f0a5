//! One module per page; each builds its view from the same functions as the tenant API's JSON
//! (`http::routes::*::*_view`) and renders a compiled template of `templates/console/`.

pub mod admin;
pub mod billing;
pub mod home;
pub mod overview;
pub mod team;
pub mod usage;

use super::error::ConsoleError;
use askama::Template;
use axum::response::{Html, IntoResponse, Response};

/// A rendered page; a template error (a bug) is a 500 page naming it.
pub fn render(page: &impl Template) -> Result<Response, ConsoleError> {
    match page.render() {
        Ok(html) => Ok(Html(html).into_response()),
        Err(err) => Err(ConsoleError::Problem(Box::new(crate::http::Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "render",
            "The page could not be rendered",
            "page",
            format!("{err}: this is a bug, please report it"),
        )))),
    }
}

/// After a change, the page says what was done (`?done=`); only these fixed messages, never text from
/// the URL, are shown.
pub fn done_message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "member-added" => "Member added, or their role changed.",
        "member-unchanged" => "Already a member with that role: nothing changed.",
        "member-removed" => "Member removed.",
        "team-created" => "Team created: its namespace is being prepared.",
        "team-deleted" => "Team deleted.",
        "plan-changed" => "Plan change requested: the subscription moves to it at Stripe.",
        _ => return None,
    })
}

/// The status of the page that shows a refused change; a sign-in that must be renewed first sends
/// the browser to sign in and back to `back`.
pub fn refusal_status(err: &super::writes::WriteError, back: &str) -> Result<axum::http::StatusCode, ConsoleError> {
    use super::writes::WriteError;
    use axum::http::StatusCode;
    match err {
        WriteError::Refused { code, .. } => Ok(StatusCode::from_u16(*code).unwrap_or(StatusCode::FORBIDDEN)),
        WriteError::SignInAgain(_) => {
            Err(ConsoleError::SignIn(crate::http::signin::sessions::sign_in_url(back, false)))
        }
        WriteError::Unavailable(_) => Ok(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// A number out of the metering report's decimal text ("12.5").
pub fn number(text: &str) -> f64 {
    text.trim().parse().unwrap_or(0.0)
}
