//! The webhook's HTTPS server: rustls with a certificate that can be swapped at runtime (on
//! rotation) without dropping connections, hyper serving axum routes.

use super::certs::ServingCert;
use super::review::Webhook;
use anyhow::Context as _;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The certificate currently served; replaced in place on rotation.
#[derive(Debug)]
pub struct CertResolver(RwLock<Arc<CertifiedKey>>);

impl CertResolver {
    pub fn new(cert: &ServingCert) -> anyhow::Result<Self> {
        Ok(Self(RwLock::new(Arc::new(certified_key(cert)?))))
    }

    pub fn set(&self, cert: &ServingCert) -> anyhow::Result<()> {
        let key = Arc::new(certified_key(cert)?);
        match self.0.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().map(|k| k.clone()).ok()
    }
}

fn certified_key(cert: &ServingCert) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("serving certificate is not valid PEM")?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).context("serving key is not valid PEM")?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).context("unsupported serving key type")?;
    Ok(CertifiedKey::new(chain, signer))
}

pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new().route("/validate", post(validate)).route("/mutate", post(mutate)).with_state(webhook)
}

async fn validate(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    webhook.ready_context().await;
    Json(webhook.validate(review))
}

async fn mutate(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    webhook.ready_context().await;
    Json(webhook.mutate(review))
}

/// Serves `app` over TLS on `listener` until the process ends.
pub async fn serve_tls(listener: TcpListener, resolver: Arc<CertResolver>, app: Router) {
    let mut config =
        match rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder.with_no_client_auth().with_cert_resolver(resolver),
            Err(err) => {
                tracing::error!(%err, "cannot configure TLS for the webhook");
                return;
            }
        };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "webhook accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(err) => {
                    tracing::debug!(%err, "webhook TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(err) =
                auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await
            {
                tracing::debug!(%err, "webhook connection ended with an error");
            }
        });
    }
}
