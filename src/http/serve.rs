//! Starting the tenant API: logging, the ledger, the caches, the key table, then HTTPS until SIGTERM.
//!
//! The TLS server is the webhook's (rustls with ring, HTTP/1.1 and HTTP/2), with what a public server needs
//! besides: the peer address on every request (for IP allow-lists), a deadline on reading request headers
//! (a client that trickles bytes holds no connection for long), and a certificate re-read from its files
//! when they change (cert-manager renews in place).

use super::{ApiArgs, App, caches, call_meter, key_table, rate_limit, routes};
use crate::admission::{CertResolver, ServingCert, certificate_from_dir};
use anyhow::Context as _;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are checked for a renewal.
const CERT_CHECK: Duration = Duration::from_secs(30);

pub async fn run(args: ApiArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("invalid --log filter {:?}", args.log))?;
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let hasher = crate::keys::Hasher::from_file(&args.api_key_hash_key_file).map_err(anyhow::Error::msg)?;
    let trusted_proxies = super::client_address::parse_networks(&args.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?;
    let ledger = crate::ledger::Ledger::connect(&args.database_url).await?;
    let config = crate::settings::kube_config(args.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(config.clone())?;
    let limiter = rate_limit::Limiter::new(args.rate_limit_store, &ledger)?;
    let caches = caches::Caches::start(&client);
    caches.ready().await?;
    let keys = key_table::KeyTable::start(ledger.clone()).await.context("loading the API keys")?;
    let replica = std::env::var("POD_NAME").unwrap_or_else(|_| format!("pid-{}", std::process::id()));
    let calls = call_meter::CallMeter::start(ledger.clone(), &replica);
    let signin = super::signin::SignIn::from_args(&args.signin, args.bind)?;
    let resolver = Arc::new(CertResolver::new(&certificate(&args)?)?);
    if let Some(dir) = args.tls_dir.clone() {
        tokio::spawn(reload_certificate(dir, resolver.clone()));
    }
    let app = Arc::new(App {
        caches,
        ledger: ledger.clone(),
        hasher,
        keys: keys.clone(),
        limiter,
        calls: calls.clone(),
        authorizer: Arc::new(crate::http_auth::Authorizer::new(client)),
        trusted_proxies,
        default_plan: args.default_plan.clone(),
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
        usage_grace: jiff::SignedDuration::from_hours(i64::from(args.usage_grace_hours)),
        signin,
        kube_config: config,
        console: crate::console::Console::new(&args.console)?,
    });
    if let Some(signin) = &app.signin {
        tokio::spawn(super::signin::remove_old_sessions(app.ledger.clone(), signin.limits));
    }
    let listener =
        crate::admission::listen_shared(args.bind).with_context(|| format!("cannot listen on --bind {}", args.bind))?;
    tracing::info!(
        address = %args.bind,
        ledger = %ledger.target(),
        rate_limits = app.limiter.describe(),
        keys = keys.len(),
        "tenant API serving"
    );
    tokio::select! {
        _ = serve(listener, resolver, routes::router(app)) => {}
        _ = shutdown => tracing::info!("tenant API stopping"),
    }
    // Calls counted and keys used in the last second reach the ledger.
    calls.flush().await;
    keys.flush_touches().await;
    ledger.close().await;
    Ok(())
}

fn certificate(args: &ApiArgs) -> anyhow::Result<ServingCert> {
    match &args.tls_dir {
        Some(dir) => certificate_from_dir(dir),
        None => {
            tracing::warn!("no --tls-dir: serving a self-signed certificate for localhost (development only)");
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let cert = rcgen::generate_simple_self_signed(names).context("making a self-signed certificate")?;
            Ok(ServingCert {
                cert_pem: cert.cert.pem(),
                key_pem: cert.signing_key.serialize_pem(),
                ca_bundle_pem: String::new(),
            })
        }
    }
}

async fn reload_certificate(dir: std::path::PathBuf, resolver: Arc<CertResolver>) {
    let mut current = certificate_from_dir(&dir).ok();
    loop {
        tokio::time::sleep(CERT_CHECK).await;
        match certificate_from_dir(&dir) {
            Ok(cert) if Some(&cert) != current.as_ref() => match resolver.set(&cert) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "serving certificate reloaded");
                    current = Some(cert);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the new serving certificate is unusable; keeping the old one")
                }
            },
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read the serving certificate; keeping the old one"),
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, resolver: Arc<CertResolver>, app: axum::Router) {
    let acceptor = match crate::admission::tls_acceptor(resolver, None) {
        Ok(acceptor) => acceptor,
        Err(err) => {
            tracing::error!(%err, "cannot configure TLS");
            return;
        }
    };
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp)).await else { return };
            let app = tower::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let served = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app)).await;
            if let Err(err) = served {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        });
    }
}
