//! The session behind a request's cookie, and the checks a session-authenticated call passes.

use super::{SignIn, TOUCH_EVERY, cookie, session_hash};
use crate::admission::policy::{Requester, mfa_required, role_without_mfa, sso_enabled};
use crate::api::{Organization, Plan};
use crate::http::{App, Problem};
use crate::identity::{SessionState, WebSessionVerdict, effective_timeout_minutes, web_session_verdict};
use crate::ledger::WebSession;
use axum::http::{HeaderMap, Method, StatusCode};

/// A session that is alive, and the person as the role table sees them.
pub struct LiveSession {
    pub id_hash: String,
    pub session: WebSession,
    pub requester: Requester,
}

fn sign_in_again(status: StatusCode, rule: &str, detail: String, return_to: &str, second_factor: bool) -> Problem {
    let mut problem = Problem::new(status, rule, "Sign in again", "session", detail);
    problem.sign_in = Some(sign_in_url(return_to, second_factor));
    problem
}

/// Where a browser goes to sign in and come back to `return_to`.
pub fn sign_in_url(return_to: &str, second_factor: bool) -> String {
    let mut url = format!("/auth/login?return_to={}", urlencode(return_to));
    if second_factor {
        url.push_str("&second_factor=true");
    }
    url
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl SignIn {
    /// The live session of the request's cookie: `None` without a cookie; a 401 naming why when
    /// the session is unknown, idle or too old (and then it is removed).
    pub async fn current(&self, app: &App, headers: &HeaderMap, path: &str) -> Result<Option<LiveSession>, Problem> {
        let Some(id) = cookie::session_id(headers) else { return Ok(None) };
        let id_hash = session_hash(&id);
        let stored = app.ledger.web_session(&id_hash).await.map_err(crate::http::routes::ledger_unavailable)?;
        let Some(session) = stored else {
            return Err(sign_in_again(
                StatusCode::UNAUTHORIZED,
                "session-unknown",
                "this session has ended (signed out, expired, or never started here): sign in again".into(),
                path,
                false,
            ));
        };
        let now = jiff::Timestamp::now();
        let state =
            SessionState { created_at: session.created_at.as_second(), last_seen_at: session.last_seen_at.as_second() };
        if let Some(problem) = ended(web_session_verdict(state, self.limits, now.as_second()), path) {
            let _ = app.ledger.delete_web_session(&id_hash).await;
            return Err(problem);
        }
        let mut groups = crate::identity::kubernetes_groups(&session.email, &session.idp_groups, session.second_factor);
        let platform_admin = groups.iter().any(|g| self.platform_admin_groups.contains(g));
        groups.sort();
        let requester = Requester {
            username: session.email.clone(),
            groups,
            platform_admin,
            // Web sessions age by their idle and absolute limits, not by the kubectl rule on auth_time.
            authenticated_at: None,
            now: now.as_second(),
        };
        Ok(Some(LiveSession { id_hash, session, requester }))
    }

    /// Records the request as the session's activity, once the caller has admitted it (a refused
    /// request must not keep a session alive), at most every [`TOUCH_EVERY`].
    pub async fn touch(&self, app: &App, live: &LiveSession) {
        let now = jiff::Timestamp::now();
        if now.duration_since(live.session.last_seen_at) >= TOUCH_EVERY
            && let Err(err) = app.ledger.touch_web_session(&live.id_hash, now).await
        {
            tracing::warn!(%err, "cannot record a session's activity");
        }
    }

    /// The organization's own rules for a session: its (tighter) idle limit, and MFA.
    pub fn check_organization(
        &self,
        live: &LiveSession,
        organization: &Organization,
        plan: Option<&Plan>,
        path: &str,
    ) -> Result<(), Problem> {
        let own = organization.spec.security.as_ref().and_then(|s| s.session_timeout_minutes);
        let limit = effective_timeout_minutes(own, plan.and_then(|p| p.spec.session_timeout_minutes));
        let limits = self.limits.for_organization(limit);
        if let Some(problem) = ended(web_session_verdict(times(&live.session), limits, live.requester.now), path) {
            return Err(problem);
        }
        let name = organization.metadata.name.as_deref().unwrap_or_default();
        if mfa_required(organization)
            && !live.session.second_factor
            && !live.requester.platform_admin
            && role_without_mfa(organization, &live.requester, sso_enabled(plan)).is_some()
        {
            return Err(sign_in_again(
                StatusCode::FORBIDDEN,
                "mfa-required",
                format!("organization {name} requires MFA: sign in again with a second factor"),
                path,
                true,
            ));
        }
        Ok(())
    }
}

/// The times the pure session rules read.
fn times(session: &WebSession) -> SessionState {
    SessionState { created_at: session.created_at.as_second(), last_seen_at: session.last_seen_at.as_second() }
}

fn ended(verdict: WebSessionVerdict, path: &str) -> Option<Problem> {
    match verdict {
        WebSessionVerdict::Active => None,
        WebSessionVerdict::Idle { limit_seconds } => Some(sign_in_again(
            StatusCode::UNAUTHORIZED,
            "session-idle",
            format!("no request for more than {} minutes ended this session: sign in again", limit_seconds / 60),
            path,
            false,
        )),
        WebSessionVerdict::Expired { limit_seconds } => Some(sign_in_again(
            StatusCode::UNAUTHORIZED,
            "session-expired",
            format!("sessions last at most {} minutes after sign-in: sign in again", limit_seconds / 60),
            path,
            false,
        )),
    }
}

/// Changes made with a session carry its CSRF token: a page of another site can make the browser
/// send the cookie, never read the token.
pub fn check_csrf(live: &LiveSession, method: &Method, sent: Option<&str>) -> Result<(), Problem> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    // Compared as digests: a timing difference then says nothing about the token's characters.
    let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().to_vec();
    match sent {
        Some(token) if digest(token) == digest(&live.session.csrf_token) => Ok(()),
        _ => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Missing or wrong CSRF token",
            "X-CSRF-Token",
            "changes made with a signed-in session must send the session's CSRF token (GET /v1/session gives it) \
             in the X-CSRF-Token header or the csrf form field: reload the page and retry",
        )),
    }
}
