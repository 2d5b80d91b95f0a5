//! The log filter, changeable while the operator runs: `GET /log-level` shows it, `PUT
//! /log-level` with a filter such as `debug` or `info,atlantiplex_operator::billing=trace` in the
//! body replaces it. On the metrics port, behind a bearer token RBAC allows (`get` / `put` on the
//! non-resource URL /log-level): trace logs request bodies, and `off` would hide everything.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tracing_subscriber::{EnvFilter, Registry, reload};

pub type Handle = reload::Handle<EnvFilter, Registry>;

pub fn router(handle: Handle) -> Router {
    let read = handle.clone();
    Router::new().route(
        "/log-level",
        get(move || async move {
            read.with_current(|filter| format!("{filter}\n")).unwrap_or_else(|e| format!("unavailable: {e}\n"))
        })
        .put(move |body: String| async move {
            let wanted = body.trim().to_string();
            match EnvFilter::try_new(&wanted) {
                Err(err) => (StatusCode::BAD_REQUEST, format!("invalid log filter {wanted:?}: {err}\n")),
                Ok(filter) => match handle.reload(filter) {
                    Ok(()) => {
                        tracing::info!(filter = %wanted, "log filter changed");
                        (StatusCode::OK, format!("{wanted}\n"))
                    }
                    Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot change the filter: {err}\n")),
                },
            }
        }),
    )
}
