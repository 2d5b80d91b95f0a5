//! `/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/signed-out` and `/v1/session`.

use super::sessions::{check_csrf, sign_in_url};
use super::{SignIn, cookie, random_token, session_hash};
use crate::http::client_address::client_address;
use crate::http::gcra::Rate;
use crate::http::routes::ledger_unavailable;
use crate::http::{App, Problem};
use crate::ledger::{SessionTokens, WebLogin, WebSession};
use crate::oidc::{LoginOptions, SignInError};
use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a sign-in returns to when it names nowhere (or somewhere off this site).
const DEFAULT_RETURN: &str = "/v1/session";

fn disabled() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "sign-in-disabled",
        "Web sign-in is off",
        "path",
        "this server has no identity provider (--oidc-issuer): use an API key or a Kubernetes token",
    )
}

fn signin(app: &App) -> Result<&SignIn, Problem> {
    app.signin.as_ref().ok_or_else(disabled)
}

fn unavailable(err: &SignInError) -> Problem {
    match err {
        SignInError::Unavailable { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "identity-provider-unavailable",
            "The identity provider is unavailable",
            "issuer",
            format!("{err}: retry in a moment"),
        ),
        SignInError::Refused(why) => Problem::new(
            StatusCode::BAD_REQUEST,
            "sign-in-refused",
            "The sign-in was refused",
            "code",
            format!("{why}: start again at /auth/login"),
        ),
    }
}

/// Only paths of this site: an open redirect would hand a fresh session's browser to anyone.
pub fn safe_return(return_to: Option<&str>) -> String {
    match return_to {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_string(),
        _ => DEFAULT_RETURN.to_string(),
    }
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// Ask the provider for a second factor (and a fresh login).
    #[serde(default)]
    second_factor: bool,
}

/// Sign-ins one client address may start: each stores a row before anyone is authenticated.
const LOGIN_RATE: Rate = Rate { requests_per_minute: 60, burst: 20, interval_us: 1_000_000 };

/// Starts a sign-in: remembers state, nonce and PKCE verifier, and sends the browser to the provider.
pub async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, Problem> {
    let signin = signin(&app)?;
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = client_address(peer.ip(), forwarded, &app.trusted_proxies);
    let verdict = app.limiter.take(&format!("signin:{client}"), LOGIN_RATE).await.map_err(ledger_unavailable)?;
    if !verdict.allowed {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "sign-in-rate",
            "Too many sign-ins",
            "client address",
            format!(
                "{client} started more than {} sign-ins a minute: retry after {} s",
                LOGIN_RATE.requests_per_minute, verdict.retry_after_seconds
            ),
        );
        problem.retry_after = Some(verdict.retry_after_seconds);
        return Err(problem);
    }
    let provider = signin.provider().await.map_err(|e| unavailable(&e))?;
    let begun = provider.begin(LoginOptions { force_login: query.second_factor, second_factor: query.second_factor });
    let login = WebLogin {
        state: begun.state,
        nonce: begun.nonce,
        pkce_verifier: begun.pkce_verifier,
        return_to: safe_return(query.return_to.as_deref()),
    };
    app.ledger.insert_web_login(&login).await.map_err(ledger_unavailable)?;
    Ok(see_other(&begun.url))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's redirect back: checks the state, exchanges the code, opens a session.
pub async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, Problem> {
    let signin = signin(&app)?;
    if let Some(error) = query.error {
        let why = query.error_description.unwrap_or_default();
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "sign-in-refused",
            "The sign-in was refused",
            "error",
            format!("the identity provider answered {error} ({why}): start again at /auth/login"),
        ));
    }
    let state = query.state.unwrap_or_default();
    let login = app.ledger.take_web_login(&state).await.map_err(ledger_unavailable)?.ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "sign-in-state",
            "Unknown sign-in",
            "state",
            "this sign-in was already finished, is older than 10 minutes, or was not started here: start again at /auth/login",
        )
    })?;
    let code = query.code.ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "sign-in-refused",
            "No code",
            "code",
            "the provider sent no code: start again",
        )
    })?;
    let provider = signin.provider().await.map_err(|e| unavailable(&e))?;
    let person = provider.finish(&code, &login.pkce_verifier, &login.nonce).await.map_err(|e| unavailable(&e))?;
    // A new id at every sign-in (no session fixation); the browser's previous session ends.
    if let Some(old) = cookie::session_id(&headers) {
        let _ = app.ledger.delete_web_session(&session_hash(&old)).await;
    }
    let id = random_token();
    let now = jiff::Timestamp::now();
    let session = WebSession {
        id_hash: session_hash(&id),
        subject: person.subject,
        email: person.email.clone(),
        idp_groups: person.groups,
        amr: person.amr,
        second_factor: person.second_factor,
        auth_time: jiff::Timestamp::from_second(person.auth_time).unwrap_or(now),
        csrf_token: random_token(),
        created_at: now,
        last_seen_at: now,
        tokens: SessionTokens {
            id_token: person.id_token,
            id_token_expires_at: jiff::Timestamp::from_second(person.expires_at).unwrap_or(now),
            refresh_token: person.refresh_token.unwrap_or_default(),
        },
    };
    app.ledger.insert_web_session(&session).await.map_err(ledger_unavailable)?;
    tracing::info!(email = %person.email, second_factor = session.second_factor, "signed in");
    let mut response = see_other(&login.return_to);
    response.headers_mut().insert(header::SET_COOKIE, cookie::set(&id, signin.limits.absolute_seconds));
    Ok(response)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// Ends the session (a form post with the CSRF token, or a request with X-CSRF-Token).
pub async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    let signin = signin(&app)?;
    let live = match signin.current(&app, &headers, "/").await {
        Ok(Some(live)) => live,
        // Nothing to end: clear whatever cookie the browser holds.
        Ok(None) | Err(_) => return Ok(signed_out_redirect()),
    };
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let form: LogoutForm = serde_urlencoded::from_bytes(&bytes).unwrap_or(LogoutForm { csrf: None });
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(String::from).or(form.csrf);
    check_csrf(&live, &Method::POST, sent.as_deref())?;
    app.ledger.delete_web_session(&live.id_hash).await.map_err(ledger_unavailable)?;
    tracing::info!(email = %live.session.email, "signed out");
    Ok(signed_out_redirect())
}

fn signed_out_redirect() -> Response {
    let mut response = see_other("/auth/signed-out");
    response.headers_mut().insert(header::SET_COOKIE, cookie::clear());
    response
}

pub async fn signed_out() -> Html<String> {
    Html(format!(
        "<!doctype html><title>Signed out</title><p>You are signed out. <a href=\"{}\">Sign in again</a></p>",
        sign_in_url(DEFAULT_RETURN, false)
    ))
}

/// The signed-in person, as the tenant API sees them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub email: String,
    /// The identity provider's groups.
    pub idp_groups: Vec<String>,
    /// The Kubernetes groups the role table reads (`oidc:<group>`, and the `#mfa` twins after a second factor).
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub second_factor: bool,
    pub platform_admin: bool,
    pub signed_in_at: String,
    /// Ends then however active (`--session-absolute-minutes`).
    pub expires_at: String,
    /// Ends then without another request (an organization's shorter timeout applies on its routes).
    pub idle_expires_at: String,
    /// Send it as X-CSRF-Token (or the csrf form field) with every change.
    pub csrf_token: String,
}

/// The current web session.
#[utoipa::path(get, path = "/v1/session", tag = "session",
    responses((status = 200, description = "Signed in", body = SessionView), (status = 401, description = "No live session: sign in at /auth/login", body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn session(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<SessionView>, Problem> {
    let signin = signin(&app)?;
    let live = signin.current(&app, &headers, DEFAULT_RETURN).await?.ok_or_else(|| {
        let mut problem = Problem::new(
            StatusCode::UNAUTHORIZED,
            "session-none",
            "Not signed in",
            "session",
            "sign in at /auth/login",
        );
        problem.sign_in = Some(sign_in_url(DEFAULT_RETURN, false));
        problem
    })?;
    signin.touch(&app, &live).await;
    let s = &live.session;
    let seconds = |n: i64| jiff::SignedDuration::from_secs(n);
    Ok(Json(SessionView {
        email: s.email.clone(),
        idp_groups: s.idp_groups.clone(),
        groups: live.requester.groups.clone(),
        amr: s.amr.clone(),
        second_factor: s.second_factor,
        platform_admin: live.requester.platform_admin,
        signed_in_at: s.created_at.to_string(),
        expires_at: (s.created_at + seconds(signin.limits.absolute_seconds)).to_string(),
        idle_expires_at: (jiff::Timestamp::now() + seconds(signin.limits.idle_seconds)).to_string(),
        csrf_token: s.csrf_token.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_sites_paths_are_return_targets() {
        assert_eq!(safe_return(Some("/v1/organizations/acme?days=90")), "/v1/organizations/acme?days=90");
        for foreign in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "evil", ""] {
            assert_eq!(safe_return(Some(foreign)), DEFAULT_RETURN, "{foreign}");
        }
        assert_eq!(safe_return(None), DEFAULT_RETURN);
    }

    #[test]
    fn the_sign_in_link_keeps_the_path_and_asks_for_a_second_factor() {
        assert_eq!(
            sign_in_url("/v1/organizations/globex", true),
            "/auth/login?return_to=/v1/organizations/globex&second_factor=true"
        );
        assert_eq!(sign_in_url("/v1/x?days=30&y=1", false), "/auth/login?return_to=/v1/x%3Fdays%3D30%26y%3D1");
    }
}
