//! The gate in front of every organization's endpoints: who calls, for which organization, from where, and
//! whether the plan and the rate limit let the call through. What passes is a [`Call`] the handlers read.

use super::access::{self, Grant};
use super::client_address::{allowed, client_address, parse_networks};
use super::gcra::{Rate, Verdict};
use super::key_table::unusable;
use super::signin::LiveSession;
use super::signin::sessions::check_csrf;
use super::{App, Problem};
use crate::admission::policy::{Requester, organization_role};
use crate::api::{Organization, Plan};
use crate::http_auth::{Outcome, Permission};
use crate::keys;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// An admitted call.
pub struct Call {
    pub organization: Organization,
    pub org_name: String,
    pub plan_name: String,
    pub plan: Option<Plan>,
    pub grant: Grant,
    /// Who, for records: `apikey:<id>` or the Kubernetes user name.
    pub actor: String,
}

impl Call {
    pub fn authorize(&self, action: access::Action) -> Result<(), Problem> {
        access::authorize(&self.grant, action)
    }
}

/// Who presented what.
enum Credential {
    Key {
        id: String,
        organization: String,
        scopes: Vec<keys::Scope>,
    },
    Person {
        requester: Requester,
    },
    /// A browser signed in on this site (`super::signin`).
    Session(Box<LiveSession>),
}

/// The parts of the request the gate reads besides its headers.
struct Asked<'a> {
    method: &'a Method,
    path: &'a str,
    peer: Option<std::net::IpAddr>,
}

const ORGANIZATIONS: &str = "/v1/organizations/";

fn unauthenticated(rule: &str, detail: impl std::fmt::Display) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, rule, "Not authenticated", "Authorization", detail)
}

pub(crate) fn unknown_organization(name: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-organization",
        "No such organization",
        "org",
        format!(
            "there is no organization {name:?} that this caller may see: check the name (kubectl get orgs shows it)"
        ),
    )
}

/// The gate (an axum middleware on the organization routes).
pub async fn admit(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let org_name = request
        .uri()
        .path()
        .strip_prefix(ORGANIZATIONS)
        .map(|rest| rest.split('/').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
    let asked = Asked { method: request.method(), path: &path, peer };
    let call = match admit_call(&app, &org_name, request.headers(), &asked).await {
        Ok(call) => call,
        Err(problem) => return refusal(problem, request.headers()),
    };
    let (call, verdict) = call;
    let namespace = call.organization.status.as_ref().and_then(|s| s.namespace.clone()).unwrap_or_default();
    let counted = call.org_name.clone();
    let key = match call.grant {
        Grant::Key(_) => call.actor.strip_prefix("apikey:").map(String::from),
        _ => None,
    };
    request.extensions_mut().insert(Arc::new(call));
    let mut response = match tokio::time::timeout(app.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "The request took too long",
            "request",
            format!("no answer within {:?}: retry; reads are safe to repeat", app.request_timeout),
        )
        .into_response(),
    };
    // A refusal by a handler (role, scope, no such key) is no served call, as no refusal of the gate is.
    if !matches!(response.status().as_u16(), 401 | 403 | 404 | 429) {
        app.calls.count(&counted, &namespace, key.as_deref());
    }
    if let Some(verdict) = verdict {
        rate_headers(response.headers_mut(), &verdict);
    }
    response
}

/// A refusal; a browser that must sign in again is sent there instead of shown the problem.
fn refusal(problem: Problem, headers: &HeaderMap) -> Response {
    let wants_page = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match &problem.sign_in {
        Some(location) if wants_page => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(axum::http::header::LOCATION, value);
            }
            response
        }
        _ => problem.into_response(),
    }
}

fn rate_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    headers.insert("ratelimit-limit", HeaderValue::from(verdict.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(verdict.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(verdict.reset_seconds));
}

async fn admit_call(
    app: &App,
    org_name: &str,
    headers: &HeaderMap,
    asked: &Asked<'_>,
) -> Result<(Call, Option<Verdict>), Problem> {
    let credential = credential(app, headers, asked.path).await?;
    if let Credential::Key { organization, id, .. } = &credential
        && organization != org_name
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "key-organization",
            "The key belongs to another organization",
            "org",
            format!(
                "API key {id} is organization {organization}'s and acts only for it: call /v1/organizations/{organization}/…"
            ),
        ));
    }
    let (organization, plan_name, plan) = resolve(app, org_name)?;
    let (grant, actor) = match credential {
        Credential::Key { id, scopes, .. } => (Grant::Key(scopes), format!("apikey:{id}")),
        Credential::Person { requester } => {
            // The webhook's identity gate, as through kubectl: MFA always, the login's age for changes.
            let mut denial = crate::admission::policy::mfa_gate(&organization, plan.as_ref(), &requester);
            if !matches!(*asked.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                denial = denial.or_else(|| {
                    crate::admission::policy::session_gate(&organization, &plan_name, plan.as_ref(), &requester)
                });
            }
            if let Some(denial) = denial {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    denial.rule,
                    "Sign in again",
                    "Authorization",
                    denial.message,
                ));
            }
            let grant = person_grant(app, &organization, plan.as_ref(), &requester, Some(headers)).await?;
            (grant.ok_or_else(|| unknown_organization(org_name))?, requester.username)
        }
        Credential::Session(live) => {
            let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            let grant = session_grant(app, &organization, plan.as_ref(), &live, asked.method, sent, asked.path).await?;
            (grant, live.requester.username.clone())
        }
    };
    access::api_access(org_name, &plan_name, plan.as_ref(), || app.caches.plans())?;
    if let Some(peer) = asked.peer {
        check_allow_list(app, &organization, plan.as_ref(), peer, headers)?;
    }
    let verdict = match plan.as_ref().and_then(|p| p.spec.rate_limit.as_ref()) {
        None => None,
        Some(limit) => {
            let rate = Rate::of(limit);
            let verdict = app.limiter.take(org_name, rate).await.map_err(|err| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rate-limit-unavailable",
                    "Cannot check the rate limit",
                    "request",
                    format!("the rate-limit store did not answer ({err}): retry in a moment"),
                )
            })?;
            if !verdict.allowed {
                let mut problem = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limit",
                    "Too many requests",
                    "request",
                    format!(
                        "organization {org_name} may make {} requests per minute ({} at once) on plan {plan_name}: \
                         retry after {} s, or upgrade for a higher limit",
                        rate.requests_per_minute, rate.burst, verdict.retry_after_seconds
                    ),
                );
                problem.retry_after = Some(verdict.retry_after_seconds);
                return Err(problem);
            }
            Some(verdict)
        }
    };
    Ok((Call { organization, org_name: org_name.to_string(), plan_name, plan, grant, actor }, verdict))
}

/// The organization of this name, the plan the operator applies to it (its status) and that Plan.
pub(crate) fn resolve(app: &App, org_name: &str) -> Result<(Organization, String, Option<Plan>), Problem> {
    let organization = app.caches.organization(org_name).ok_or_else(|| unknown_organization(org_name))?;
    // Before its first reconcile, the choice the operator would make.
    let plan_name = organization.status.as_ref().and_then(|s| s.effective_plan.clone()).unwrap_or_else(|| {
        let subscriptions = app.caches.subscriptions_of(org_name);
        crate::tenancy::plan::effective_plan(&organization, subscriptions.iter(), &app.default_plan).plan
    });
    let plan = app.caches.plan(&plan_name);
    Ok((organization, plan_name, plan))
}

/// A signed-in browser's grant in an organization: the organization's session rules (its idle limit,
/// MFA), the CSRF token of a change, the person's role; the request then counts as the session's
/// activity. The tenant API and the console both admit sessions through this.
pub(crate) async fn session_grant(
    app: &App,
    organization: &Organization,
    plan: Option<&Plan>,
    live: &LiveSession,
    method: &Method,
    csrf_sent: Option<&str>,
    path: &str,
) -> Result<Grant, Problem> {
    if let Some(signin) = &app.signin {
        signin.check_organization(live, organization, plan, path)?;
    }
    check_csrf(live, method, csrf_sent)?;
    let name = organization.metadata.name.as_deref().unwrap_or_default();
    let grant = person_grant(app, organization, plan, &live.requester, None).await?;
    let grant = grant.ok_or_else(|| unknown_organization(name))?;
    if let Some(signin) = &app.signin {
        signin.touch(app, live).await;
    }
    Ok(grant)
}

/// The credential: an API key (by its prefix) or a Kubernetes token as the bearer; without one, the
/// web session of the cookie.
async fn credential(app: &App, headers: &HeaderMap, path: &str) -> Result<Credential, Problem> {
    if headers.get(axum::http::header::AUTHORIZATION).is_none()
        && let Some(signin) = &app.signin
        && let Some(live) = signin.current(app, headers, path).await?
    {
        return Ok(Credential::Session(Box::new(live)));
    }
    let token = crate::http_auth::bearer_token(headers).map_err(|why| match app.signin {
        // A browser without a session is told where to sign in, as well as what a program sends.
        Some(_) => {
            let mut problem =
                unauthenticated("unauthenticated", format!("{why}, or sign in on the web at /auth/login"));
            problem.sign_in = Some(super::signin::sessions::sign_in_url(path, false));
            problem
        }
        None => unauthenticated("unauthenticated", why),
    })?;
    if token.starts_with("atp_") {
        let key = keys::parse(token).map_err(|err| {
            let rule = if err == keys::KeyError::Checksum { "key-checksum" } else { "malformed-key" };
            unauthenticated(rule, err)
        })?;
        let stored = app.keys.find(&app.hasher.hash(key)).await.map_err(|err| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger-unavailable",
                "Cannot check the key",
                "Authorization",
                format!("the ledger did not answer ({err}): retry in a moment"),
            )
        })?;
        let stored = stored.ok_or_else(|| {
            unauthenticated(
                "unknown-key",
                "no such API key (revoked keys are kept, so it was never issued here): check the key",
            )
        })?;
        let now = jiff::Timestamp::now();
        if let Some((rule, why)) = unusable(&stored, now) {
            return Err(unauthenticated(rule, why));
        }
        app.keys.touch(&stored.id, now);
        let scopes = keys::parse_scopes(&stored.scopes).unwrap_or_default();
        return Ok(Credential::Key { id: stored.id.clone(), organization: stored.organization.clone(), scopes });
    }
    match app.authorizer.authenticate_user(headers).await {
        Ok(requester) => Ok(Credential::Person { requester }),
        Err(Outcome::Unavailable(why)) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Cannot check the caller now",
            "Authorization",
            format!("{why}; retry in a moment"),
        )),
        Err(other) => {
            let why = match other {
                Outcome::Unauthenticated(why) => why,
                _ => "token not accepted".to_string(),
            };
            Err(unauthenticated(
                "unauthenticated",
                format!("{why}: send an organization API key (atp_live_…) or a Kubernetes token"),
            ))
        }
    }
}

/// A person's grant: their role by the role table (team roles count), else platform read access — by
/// RBAC for a Kubernetes token (`headers`), by `--platform-admin-group` for a web session.
pub(crate) async fn person_grant(
    app: &App,
    organization: &Organization,
    plan: Option<&Plan>,
    requester: &Requester,
    headers: Option<&HeaderMap>,
) -> Result<Option<Grant>, Problem> {
    let sso = crate::admission::policy::sso_enabled(plan);
    if let Some(role) = organization_role(organization, requester, sso) {
        return Ok(Some(Grant::Role(role)));
    }
    let name = organization.metadata.name.as_deref().unwrap_or_default();
    let mfa = crate::admission::policy::mfa_required(organization);
    let team_role = access::team_role(&app.caches.teams_of(name), requester, mfa);
    if let Some(role) = team_role {
        return Ok(Some(Grant::Role(role)));
    }
    let Some(headers) = headers else {
        return Ok(requester.platform_admin.then_some(Grant::PlatformReader));
    };
    let permission = Permission::Resource {
        group: "atlantiplex.io",
        resource: "organizations",
        verb: "list".into(),
        namespace: None,
    };
    match app.authorizer.check_permission(headers, &permission, "organizations").await {
        Outcome::Allowed { .. } => Ok(Some(Grant::PlatformReader)),
        Outcome::Unavailable(why) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Cannot check the caller now",
            "Authorization",
            format!("{why}; retry in a moment"),
        )),
        _ => Ok(None),
    }
}

pub(crate) fn check_allow_list(
    app: &App,
    organization: &Organization,
    plan: Option<&Plan>,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    // As for the tenant's NetworkPolicy: the list applies on plans with the feature.
    if !plan.is_some_and(|p| p.spec.features.ip_allow_list) {
        return Ok(());
    }
    let entries = organization.spec.security.as_ref().map(|s| s.ip_allow_list.clone()).unwrap_or_default();
    if entries.is_empty() {
        return Ok(());
    }
    let networks = parse_networks(&entries).unwrap_or_default();
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = client_address(peer, forwarded, &app.trusted_proxies);
    if allowed(client, &networks) {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "ip-allow-list",
        "Address not allowed",
        "client address",
        format!(
            "{client} is not in the organization's spec.security.ipAllowList ({}): call from an allowed network, \
             or have an Owner add this one",
            entries.join(", ")
        ),
    ))
}
