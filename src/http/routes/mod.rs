//! The `/v1` routes. Each handler takes the admitted [`Call`](super::caller::Call), asks for its action, and
//! answers with a view type of `super::views` or a [`Problem`](super::Problem).

pub mod audit;
pub mod billing;
pub mod keys;
pub mod organization;
pub mod usage;

use super::App;
use super::Problem;
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// Every route; the organization routes behind [`super::caller::admit`].
pub fn router(app: Arc<App>) -> Router {
    let organization = Router::new()
        .route("/v1/organizations/{org}", get(organization::get_organization))
        .route("/v1/organizations/{org}/members", get(organization::members))
        .route("/v1/organizations/{org}/teams", get(organization::teams))
        .route("/v1/organizations/{org}/billing", get(billing::billing))
        .route("/v1/organizations/{org}/usage", get(usage::usage).post(usage::ingest))
        .route("/v1/organizations/{org}/audit", get(audit::audit))
        .route("/v1/organizations/{org}/api-keys", get(keys::list).post(keys::create))
        .route("/v1/organizations/{org}/api-keys/{id}", delete(keys::revoke))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), super::caller::admit));
    Router::new()
        .route(OPENAPI_PATH, get(super::openapi::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/auth/login", get(super::signin::routes::login))
        .route("/auth/callback", get(super::signin::routes::callback))
        .route("/auth/logout", axum::routing::post(super::signin::routes::logout))
        .route("/auth/signed-out", get(super::signin::routes::signed_out))
        .route("/v1/session", get(super::signin::routes::session))
        .merge(organization)
        .merge(crate::console::router(app.clone()))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such endpoint",
        "path",
        format!("{} is not an endpoint of this API: see {OPENAPI_PATH} for the ones there are", uri.path()),
    )
}

/// The body as JSON of type `T`, at most `max` bytes: 413 or 400 naming the field otherwise.
pub async fn read_json<T: DeserializeOwned>(body: Body, max: usize) -> Result<T, Problem> {
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| too_large(max))?;
    serde_json::from_slice(&bytes).map_err(|err| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "The body is not what this endpoint takes",
            "body",
            format!("{err}: send a JSON object as described in {OPENAPI_PATH}"),
        )
    })
}

pub fn too_large(max: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "The body is too large",
        "body",
        format!("bodies are limited to {max} bytes: send less per request"),
    )
}

pub fn ledger_unavailable(err: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ledger-unavailable",
        "The ledger did not answer",
        "request",
        format!("{err}: retry in a moment"),
    )
}

pub fn condition_true(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    crate::api::condition(conditions, "Ready").is_some_and(|c| c.status == "True")
}
