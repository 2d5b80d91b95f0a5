//! The admission webhook: the policy of DESIGN.md §4 evaluated at the API server, from the
//! operator's in-memory caches, over TLS with a self-managed (or given) certificate.

mod certs;
mod facts;
pub mod policy;
mod registration;
mod review;
mod server;
pub mod settings;

pub use certs::{Renewal, ServingCert, from_dir as certificate_from_dir, renewal};
pub use facts::PlatformAdmins;
pub use review::Webhook;
pub use server::{CertResolver, router, serve_tls, tls_acceptor};

use crate::controller::{Context, apply};
use crate::metrics::Metrics;
use crate::tenancy::access;
use anyhow::Context as _;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::PostParams;
use kube::{Api, Client};
use policy::PolicyConfig;
use settings::AdmissionSettings;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often certificates and registration are checked (renewal happens weeks ahead).
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(300);

/// Starts serving the webhook and registers it with the API server. Requests are answered
/// from `context` once the controllers have filled their caches.
pub async fn start(
    client: Client,
    settings: AdmissionSettings,
    policy: PolicyConfig,
    context: Arc<OnceLock<Arc<Context>>>,
    metrics: Arc<Metrics>,
    audit: Option<crate::ledger::AuditLog>,
    extra_names: Vec<String>,
) -> anyhow::Result<Arc<server::CertResolver>> {
    let operator_user = whoami(&client).await;
    let client_verifier = match &settings.webhook_client_ca {
        Some(path) => Some(server::client_verifier(path)?),
        None => {
            tracing::warn!(
                "--webhook-client-ca is not set: the webhook answers any caller that reaches its port, as if the API \
                 server had sent the review, and marks its audit records \"caller not verified\"; set it to the CA of \
                 the API server's admission client certificate (docs/security.md)"
            );
            None
        }
    };
    let webhook = Arc::new(Webhook {
        context,
        policy,
        admins: facts::PlatformAdmins::new(&settings, operator_user.clone()),
        metrics,
        audit,
        caller_verified: client_verifier.is_some(),
    });
    let mut names = certificate_names(&settings)?;
    // Other HTTPS servers of the operator (usage ingestion) share the certificate; with --webhook-url (a
    // development override) they are reached at its host too.
    if settings.webhook_url.is_none() {
        names.extend(extra_names);
    }
    let cert = load_certificate(&client, &settings, &names).await?;
    let resolver = Arc::new(server::CertResolver::new(&cert)?);
    let listener = listen_shared(settings.webhook_bind)
        .with_context(|| format!("cannot listen on --webhook-bind {}", settings.webhook_bind))?;
    tokio::spawn(server::serve_tls(listener, resolver.clone(), router(webhook), client_verifier));
    register(&client, &settings, &cert.ca_bundle_pem, operator_user.clone()).await?;
    tracing::info!(
        address = %settings.webhook_bind,
        url = settings.webhook_url.as_deref().unwrap_or(&settings.webhook_service),
        operator = operator_user.as_deref().unwrap_or("unknown"),
        "admission webhook serving and registered"
    );
    tokio::spawn(maintain(client, settings, names, resolver.clone(), cert, operator_user));
    Ok(resolver)
}

/// A listener other replicas on the same host may share (SO_REUSEPORT): the kernel spreads
/// connections over them as a Service would, and the survivors take all when one stops. This
/// is what lets replicas run as local processes behind one development webhook URL.
pub fn listen_shared(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Renews the certificate when due and restores the registration if someone changed it.
async fn maintain(
    client: Client,
    settings: AdmissionSettings,
    names: Vec<String>,
    resolver: Arc<server::CertResolver>,
    mut current: certs::ServingCert,
    operator_user: Option<String>,
) {
    loop {
        tokio::time::sleep(MAINTENANCE_PERIOD).await;
        let result = async {
            let cert = load_certificate(&client, &settings, &names).await?;
            if cert != current {
                resolver.set(&cert)?;
                tracing::info!("webhook certificate renewed");
                current = cert;
            }
            register(&client, &settings, &current.ca_bundle_pem, operator_user.clone()).await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = format!("{err:#}"), "webhook maintenance failed; retrying later");
        }
    }
}

async fn load_certificate(
    client: &Client,
    settings: &AdmissionSettings,
    names: &[String],
) -> anyhow::Result<certs::ServingCert> {
    match &settings.webhook_cert_dir {
        Some(dir) => certs::from_dir(dir),
        None => certs::ensure(client, &settings.operator_namespace, names).await,
    }
}

/// The names the serving certificate must carry: the URL's host, or the Service's DNS names.
fn certificate_names(settings: &AdmissionSettings) -> anyhow::Result<Vec<String>> {
    if let Some(url) = &settings.webhook_url {
        let rest = url.strip_prefix("https://").context("--webhook-url must start with https://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        };
        anyhow::ensure!(!host.is_empty(), "--webhook-url {url} has no host");
        return Ok(vec![host.trim_start_matches('[').trim_end_matches(']').to_string()]);
    }
    let (namespace, name) = service(settings)?;
    Ok(vec![format!("{name}.{namespace}.svc"), format!("{name}.{namespace}.svc.cluster.local")])
}

fn service(settings: &AdmissionSettings) -> anyhow::Result<(&str, &str)> {
    settings
        .webhook_service
        .split_once('/')
        .with_context(|| format!("--webhook-service must be <namespace>/<name>, not {:?}", settings.webhook_service))
}

async fn register(
    client: &Client,
    settings: &AdmissionSettings,
    ca_bundle: &str,
    operator_user: Option<String>,
) -> anyhow::Result<()> {
    let service = service(settings)?;
    let url = settings.webhook_url.as_deref();
    let operator = operator_user.as_deref();
    let validating =
        registration::validating(&registration::client_config(url, service, "/validate", ca_bundle), operator);
    let mutating = registration::mutating(&registration::client_config(url, service, "/mutate", ca_bundle), operator);
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let current = api.get_metadata_opt(registration::CONFIGURATION_NAME).await?.map(|m| m.metadata);
    apply::apply_if_changed(&api, &validating, current).await.context("registering the validating webhook")?;
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let current = api.get_metadata_opt(registration::CONFIGURATION_NAME).await?.map(|m| m.metadata);
    apply::apply_if_changed(&api, &mutating, current).await.context("registering the mutating webhook")?;
    // Tenants must reach their objects through RBAC before the webhook can judge them.
    let (role, binding) = crate::tenancy::access::tenant_access();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let current = roles.get_metadata_opt(access::TENANT_ROLE).await?.map(|m| m.metadata);
    apply::apply_if_changed(&roles, &role, current).await.context("applying the tenant ClusterRole")?;
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let current = bindings.get_metadata_opt(access::TENANT_ROLE).await?.map(|m| m.metadata);
    apply::apply_if_changed(&bindings, &binding, current).await.context("applying the tenant ClusterRoleBinding")?;
    Ok(())
}

/// The operator's own user name: it is a platform admin for its own writes.
async fn whoami(client: &Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    match api.create(&PostParams::default(), &SelfSubjectReview::default()).await {
        Ok(review) => review.status?.user_info?.username,
        Err(err) => {
            tracing::warn!(%err, "cannot tell the operator's own identity (SelfSubjectReview); configure it with --platform-admin-user");
            None
        }
    }
}

/// The plain-HTTP server on `--metrics-bind`.
pub struct MetricsServer {
    pub bind: std::net::SocketAddr,
    pub metrics: Arc<Metrics>,
    pub context: Arc<OnceLock<Arc<Context>>>,
    /// Routes anyone may call: the Stripe webhook (it checks Stripe's signature itself).
    pub public: axum::Router,
    /// Routes that need an authorized bearer token: the audit API and the log level.
    pub protected: axum::Router,
    pub authorizer: Arc<crate::http_auth::Authorizer>,
    /// `--metrics-insecure`: /metrics without the check.
    pub metrics_insecure: bool,
}

/// Serves /healthz and /readyz (the kubelet's probes, which carry no token) and `public` to
/// anyone, and /metrics and `protected` to bearer tokens RBAC allows (see [`crate::http_auth`]).
pub async fn serve_metrics(server: MetricsServer) {
    let bind = server.bind;
    let app = metrics_router(server);
    match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "metrics server stopped");
            }
        }
        Err(err) => tracing::error!(%err, %bind, "cannot listen on --metrics-bind"),
    }
}

fn metrics_router(server: MetricsServer) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let MetricsServer { bind: _, metrics, context, public, protected, authorizer, metrics_insecure } = server;
    let scrape = axum::Router::new().route("/metrics", get(move || async move { metrics.encode() }));
    let (open, guarded) = if metrics_insecure {
        tracing::warn!("--metrics-insecure: /metrics is served to anyone who reaches the metrics port");
        (scrape, protected)
    } else {
        (axum::Router::new(), protected.merge(scrape))
    };
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if context.get().is_some() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caches filling")
                }
            }),
        )
        .merge(public)
        .merge(open)
        .merge(crate::http_auth::protect(guarded, authorizer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    /// The routes as the binary mounts them; the client points nowhere, since a request
    /// without a token is refused before any review is sent.
    fn app(metrics_insecure: bool) -> axum::Router {
        let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let route = |path: &'static str| axum::Router::new().route(path, axum::routing::any(|| async { "reached" }));
        metrics_router(MetricsServer {
            bind: ([127, 0, 0, 1], 0).into(),
            metrics: Arc::new(Metrics::new()),
            context: Arc::new(OnceLock::new()),
            public: route("/stripe/webhook"),
            protected: route("/api/v1/audit").merge(route("/log-level")),
            authorizer: Arc::new(crate::http_auth::Authorizer::new(client)),
            metrics_insecure,
        })
    }

    async fn status(app: &axum::Router, method: &str, path: &str) -> StatusCode {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        app.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn probes_and_the_stripe_webhook_are_open_and_the_rest_needs_a_token() {
        let app = app(false);
        assert_eq!(status(&app, "GET", "/healthz").await, StatusCode::OK);
        assert_eq!(status(&app, "GET", "/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "open, caches filling");
        assert_eq!(status(&app, "POST", "/stripe/webhook").await, StatusCode::OK);
        for (method, path) in
            [("GET", "/metrics"), ("GET", "/api/v1/audit"), ("GET", "/log-level"), ("PUT", "/log-level")]
        {
            assert_eq!(status(&app, method, path).await, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
        assert_eq!(status(&app, "GET", "/nothing").await, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_insecure_opens_metrics_alone() {
        let app = app(true);
        assert_eq!(status(&app, "GET", "/metrics").await, StatusCode::OK);
        assert_eq!(status(&app, "GET", "/api/v1/audit").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&app, "PUT", "/log-level").await, StatusCode::UNAUTHORIZED);
    }
}
