//! Who may see a console page: a signed-in session (else the browser is sent to sign in), and on an
//! organization's pages the same admission as the tenant API's for sessions (`caller::session_grant`:
//! the organization's idle limit and MFA, the person's role by the one role table, the IP allow-list),
//! without the plan's API access or rate limit — the console is part of every plan.
//!
//! Changes are form posts. Their CSRF token is a form field, so it is checked where the body is read:
//! [`CsrfForm`] is the only way a console handler reads a body.

use super::error::ConsoleError;
use crate::http::App;
use crate::http::caller::{Call, check_allow_list, resolve, session_grant};
use crate::http::signin::LiveSession;
use crate::http::signin::sessions::check_csrf;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

/// The person behind a console request.
pub type Viewer = Arc<LiveSession>;

const ORGS: &str = "/console/orgs/";

fn path_of(request: &Request) -> String {
    request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |p| p.to_string())
}

/// The live session, or the way to sign in.
async fn live_session(app: &App, headers: &HeaderMap, path: &str) -> Result<LiveSession, ConsoleError> {
    let Some(signin) = &app.signin else { return Err(ConsoleError::SignInOff) };
    match signin.current(app, headers, path).await {
        Ok(Some(live)) => Ok(live),
        Ok(None) => Err(ConsoleError::SignIn(crate::http::signin::sessions::sign_in_url(path, false))),
        Err(problem) => Err(ConsoleError::from(problem)),
    }
}

/// Every console page: a session is required.
pub async fn signed_in(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let live = match live_session(&app, &headers, &path_of(&request)).await {
        Ok(live) => live,
        Err(err) => return err.into_response(),
    };
    if let Some(signin) = &app.signin {
        signin.touch(&app, &live).await;
    }
    request.extensions_mut().insert(Arc::new(live));
    next.run(request).await
}

/// An organization's pages: the session admitted to it as [`Call`].
pub async fn organization(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let org_name = request
        .uri()
        .path()
        .strip_prefix(ORGS)
        .map(|rest| rest.split('/').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let headers = request.headers().clone();
    let path = path_of(&request);
    let live = match live_session(&app, &headers, &path).await {
        Ok(live) => live,
        Err(err) => return err.into_response(),
    };
    let admitted = async {
        let (organization, plan_name, plan) = resolve(&app, &org_name)?;
        // Reads only here: a change's CSRF token is checked by `CsrfForm` with its body.
        let grant = session_grant(&app, &organization, plan.as_ref(), &live, &Method::GET, None, &path).await?;
        if let Some(peer) = peer {
            check_allow_list(&app, &organization, plan.as_ref(), peer, &headers)?;
        }
        let actor = live.requester.username.clone();
        Ok::<_, crate::http::Problem>(Call { organization, org_name: org_name.clone(), plan_name, plan, grant, actor })
    };
    let call = match admitted.await {
        Ok(call) => call,
        Err(problem) => return ConsoleError::from(problem).into_response(),
    };
    request.extensions_mut().insert(Arc::new(call));
    request.extensions_mut().insert(Arc::new(live));
    next.run(request).await
}

/// A form post whose `csrf` field matches the session's token; then its fields as `T`.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for CsrfForm<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let live = request.extensions().get::<Viewer>().cloned().ok_or(ConsoleError::SignInOff)?;
        let method = request.method().clone();
        let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
            .await
            .map_err(|_| ConsoleError::BadForm("the form is larger than 64 KiB".into()))?;
        let field: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField { csrf: None });
        check_csrf(&live, &method, field.csrf.as_deref()).map_err(ConsoleError::from)?;
        let form = serde_urlencoded::from_bytes(&body).map_err(|e| ConsoleError::BadForm(e.to_string()))?;
        Ok(CsrfForm(form))
    }
}
