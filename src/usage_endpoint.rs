//! `POST /v1/usage`: usage events in, over HTTPS on `--usage-bind` with the operator's serving certificate
//! (the webhook's; no client certificate asked). The decisions are `metering::event` and `metering::intake`;
//! this is the I/O around them, in this order:
//!
//! 1. the bearer token is a ServiceAccount's (or any user's) the API server accepts (TokenReview) — else 401;
//! 2. the body is one CloudEvent or a batch of at most 1,000, within the size limit — else 400 or 413;
//! 3. each event is judged on its own (its namespace's organization, from the namespace cache, and its open
//!    billing period); a rejected event costs only itself;
//! 4. the caller may `create` `usageevents.atlantiplex.io` in **every** namespace the accepted events name
//!    (SubjectAccessReview, cached like the metrics port's) — else the whole request is refused (403) and
//!    nothing is recorded: a reporter's batch is authorized as a whole, so a misconfigured reporter fails
//!    loudly instead of losing part of its usage silently;
//! 5. the accepted events are committed to the ledger (per organization, one transaction each), and the
//!    answer (202) gives each event's outcome: accepted, duplicate or rejected with its rule and fix.
//!
//! Acknowledged = committed: a 202 is sent only after the ledger's transactions committed. When the ledger
//! fails, the answer is 503 and the sender retries the same batch; what was committed before the failure
//! comes back as `duplicate`, so nothing is counted twice.

use crate::admission::{CertResolver, listen_shared, serve_tls};
use crate::controller::Context;
use crate::http_auth::{Authorizer, Outcome as AuthOutcome, Permission};
use crate::ledger::{Inserted, Ledger};
use crate::metering::event::{BatchError, DEFAULT_GRACE, DEFAULT_MAX_BODY_BYTES, parse_body};
use crate::metering::intake::{self, Owner};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Args;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

pub const PATH: &str = "/v1/usage";
/// The RBAC resource a reporter needs `create` on, in the namespace it reports for.
pub const GROUP: &str = "atlantiplex.io";
pub const RESOURCE: &str = "usageevents";
pub const VERB: &str = "create";
/// The chart's ClusterRole granting it (bound per namespace with a RoleBinding).
pub const REPORTER_ROLE: &str = "atlantiplex-usage-reporter";

#[derive(Args, Clone, Debug)]
pub struct UsageSettings {
    /// Address of the HTTPS server for usage events (`POST /v1/usage`).
    #[arg(long, env = "ATLANTIPLEX_USAGE_BIND", default_value = "0.0.0.0:8444")]
    pub usage_bind: SocketAddr,
    /// Service in-cluster reporters call (`namespace/name`): its DNS names join the serving certificate's.
    #[arg(long, env = "ATLANTIPLEX_USAGE_SERVICE", default_value = "atlantiplex-system/atlantiplex-operator-usage")]
    pub usage_service: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ATLANTIPLEX_USAGE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub usage_max_body_bytes: usize,
    /// How many hours after a billing period closed its late usage is still taken.
    #[arg(long, env = "ATLANTIPLEX_USAGE_GRACE_HOURS", default_value_t = DEFAULT_GRACE.as_hours() as u32)]
    pub usage_grace_hours: u32,
}

impl UsageSettings {
    /// The usage Service's DNS names, for the serving certificate.
    pub fn certificate_names(&self) -> Vec<String> {
        match self.usage_service.split_once('/') {
            Some((namespace, name)) => {
                vec![format!("{name}.{namespace}.svc"), format!("{name}.{namespace}.svc.cluster.local")]
            }
            None => Vec::new(),
        }
    }
}

pub struct UsageEndpoint {
    pub context: Arc<OnceLock<Arc<Context>>>,
    pub ledger: Ledger,
    pub authorizer: Arc<Authorizer>,
    pub max_body_bytes: usize,
    pub grace: jiff::SignedDuration,
    /// Told the organizations whose totals changed (their status is re-computed).
    pub changed: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Requests, their answer time and their events' outcomes.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Serves `POST /v1/usage` over TLS on `settings.usage_bind` with `resolver`'s certificate.
pub fn start(settings: &UsageSettings, resolver: Arc<CertResolver>, endpoint: UsageEndpoint) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listener = listen_shared(settings.usage_bind)
        .with_context(|| format!("cannot listen on --usage-bind {}", settings.usage_bind))?;
    tokio::spawn(serve_tls(listener, resolver, router(Arc::new(endpoint)), None));
    tracing::info!(address = %settings.usage_bind, path = PATH, "usage ingestion serving");
    Ok(())
}

pub fn router(endpoint: Arc<UsageEndpoint>) -> axum::Router {
    axum::Router::new().route(PATH, post(ingest)).with_state(endpoint)
}

/// An RFC 9457 problem: `type` names the rule, `detail` the field and the fix (the tenant API's shape).
fn problem(status: StatusCode, rule: &str, title: &str, field: &str, detail: String) -> Response {
    crate::http::Problem::new(status, rule, title, field, detail).into_response()
}

fn batch_problem(err: &BatchError) -> Response {
    let status = match err {
        BatchError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    problem(status, err.rule(), "The request body is not a usage report", err.field(), err.to_string())
}

/// 401, 403 or 503 for an authorization that did not allow.
fn auth_problem(outcome: &AuthOutcome, namespace: Option<&str>) -> Option<Response> {
    match outcome {
        AuthOutcome::Allowed { .. } => None,
        AuthOutcome::Unauthenticated(why) => Some(problem(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "No valid bearer token",
            "Authorization",
            why.clone(),
        )),
        AuthOutcome::Forbidden { user, .. } => {
            let namespace = namespace.unwrap_or_default();
            Some(problem(
                StatusCode::FORBIDDEN,
                "forbidden-namespace",
                "Not allowed to report usage for this namespace",
                "subject",
                format!(
                    "user {user:?} may not report usage for namespace {namespace:?} (RBAC: {VERB} {RESOURCE}.{GROUP} \
                     in {namespace}), so nothing of this request was recorded: bind the ClusterRole {REPORTER_ROLE} to \
                     the reporter's ServiceAccount with a RoleBinding in namespace {namespace}, or leave that \
                     namespace's events out"
                ),
            ))
        }
        AuthOutcome::Unavailable(why) => Some(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Cannot check the caller now",
            "Authorization",
            format!("{why}; nothing was recorded: retry the same request"),
        )),
    }
}

async fn ingest(State(endpoint): State<Arc<UsageEndpoint>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let (response, outcomes) = match answer(&endpoint, request).await {
        Ok(report) => {
            let outcomes: Vec<(&'static str, &'static str)> =
                report.results.iter().map(|r| (r.outcome.as_str(), r.rule.unwrap_or_default())).collect();
            ((StatusCode::ACCEPTED, axum::Json(report)).into_response(), outcomes)
        }
        Err(refusal) => (refusal, Vec::new()),
    };
    if let Some(metrics) = &endpoint.metrics {
        metrics.usage.observe_request(response.status().as_u16(), started.elapsed().as_secs_f64(), &outcomes);
    }
    response
}

/// The 202 report, or the refusal of the request as a whole (nothing recorded).
async fn answer(endpoint: &UsageEndpoint, request: Request) -> Result<intake::Report, Response> {
    let Some(context) = endpoint.context.get().cloned() else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "The operator is starting",
            "body",
            "the operator's caches are still filling; nothing was recorded: retry in a few seconds".into(),
        ));
    };
    let (parts, body) = request.into_parts();
    let authenticated = endpoint.authorizer.authenticate(&parts.headers).await;
    if let Some(refusal) = auth_problem(&authenticated, None) {
        return Err(refusal);
    }
    let max = endpoint.max_body_bytes;
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > max) {
        return Err(batch_problem(&BatchError::BodyTooLarge { size, max }));
    }
    let bytes = match axum::body::to_bytes(Body::new(body), max.saturating_add(1)).await {
        Ok(bytes) => bytes,
        Err(_) => return Err(batch_problem(&BatchError::BodyTooLarge { size: max.saturating_add(1), max })),
    };
    let events = match parse_body(&bytes, max) {
        Ok(events) => events,
        Err(err) => return Err(batch_problem(&err)),
    };
    let owners = owners(&context, &intake::named_namespaces(&events));
    let now = jiff::Timestamp::now();
    let judged = match intake::judge(&events, &owners, now, endpoint.grace) {
        Ok(judged) => judged,
        Err(err) => {
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "period",
                "Cannot tell the billing period",
                "time",
                format!("{err}; nothing was recorded"),
            ));
        }
    };
    for namespace in intake::namespaces_to_authorize(&judged) {
        let permission = Permission::Resource {
            group: GROUP,
            resource: RESOURCE,
            verb: VERB.into(),
            namespace: Some(namespace.to_string()),
        };
        let target = format!("{RESOURCE} in {namespace}");
        let outcome = endpoint.authorizer.check_permission(&parts.headers, &permission, &target).await;
        if let Some(refusal) = auth_problem(&outcome, Some(namespace)) {
            tracing::info!(%namespace, outcome = ?outcome, "usage report refused");
            return Err(refusal);
        }
    }
    let mut new = BTreeMap::new();
    for (organization, events) in intake::by_organization(&judged) {
        let batch: Vec<_> = events.iter().map(|(_, e)| (*e).clone()).collect();
        match endpoint.ledger.insert_usage_events(organization, &batch).await {
            Ok(inserted) => {
                let mut changed = false;
                for ((index, _), outcome) in events.iter().zip(inserted) {
                    new.insert(*index, outcome == Inserted::New);
                    changed |= outcome == Inserted::New;
                }
                if changed && let Some(tx) = &endpoint.changed {
                    let _ = tx.send(organization.to_string());
                }
            }
            Err(err) => {
                tracing::warn!(%organization, error = %err, "cannot record usage events");
                return Err(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ledger-unavailable",
                    "Usage not recorded",
                    "body",
                    format!(
                        "the ledger did not commit organization {organization}'s events ({err}): retry the same \
                         request; events already committed come back as duplicate"
                    ),
                ));
            }
        }
    }
    let report = intake::report(&judged, &new);
    tracing::debug!(
        accepted = report.accepted,
        duplicate = report.duplicate,
        rejected = report.rejected,
        "usage report"
    );
    Ok(report)
}

/// The named namespaces that belong to an organization, from the namespace cache (labels), with the
/// organization's Stripe period end from its Subscription.
fn owners(context: &Context, namespaces: &std::collections::BTreeSet<String>) -> BTreeMap<String, Owner> {
    let mut owners = BTreeMap::new();
    for name in namespaces {
        let Some(namespace) = context.namespaces.get(&ObjectRef::new(name)) else { continue };
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        let Some(organization) = intake::namespace_organization(&labels) else { continue };
        let stripe_period = intake::StripePeriod::of(&context.subscriptions_of(organization));
        owners.insert(name.clone(), Owner { organization: organization.to_string(), stripe_period });
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_service_names_join_the_certificate() {
        let settings = UsageSettings {
            usage_bind: ([127, 0, 0, 1], 0).into(),
            usage_service: "ops/usage".into(),
            usage_max_body_bytes: 10,
            usage_grace_hours: 48,
        };
        assert_eq!(settings.certificate_names(), ["usage.ops.svc", "usage.ops.svc.cluster.local"]);
    }

    #[tokio::test]
    async fn problems_are_rfc_9457_and_name_the_rule_and_field() {
        let response = batch_problem(&BatchError::TooManyEvents { count: 1001, max: 1000 });
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "urn:atlantiplex:problem:batch-too-large");
        assert_eq!(json["status"], 400);
        assert_eq!(json["field"], "body");
        assert!(json["detail"].as_str().unwrap().contains("split it into requests of at most 1000 events"));
        let response = batch_problem(&BatchError::BodyTooLarge { size: 11, max: 10 });
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let unauthenticated = auth_problem(&AuthOutcome::Unauthenticated("no Authorization header".into()), None);
        let response = unauthenticated.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
