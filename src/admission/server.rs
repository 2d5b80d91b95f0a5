//! The webhook's HTTPS server: rustls with a certificate that can be swapped at runtime (on
//! rotation) without dropping connections, hyper serving axum routes. With a client CA, only
//! callers holding a certificate it signed (the API server) complete the TLS handshake.

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
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::Path;
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
    Json(webhook.validate(review).await)
}

async fn mutate(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    webhook.ready_context().await;
    Json(webhook.mutate(review))
}

/// Requires callers to present a client certificate chaining to the CA certificates in `path`
/// (PEM): the CA of the API server's admission client certificate. A separate CA from the
/// cluster's, which signs every user's client certificate.
pub fn client_verifier(path: &Path) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let pem = std::fs::read(path).with_context(|| format!("reading --webhook-client-ca {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("--webhook-client-ca {} is not valid PEM", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("--webhook-client-ca {}: not a usable CA certificate", path.display()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "--webhook-client-ca {} holds no certificate", path.display());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(rustls::crypto::ring::default_provider()))
        .build()
        .with_context(|| format!("--webhook-client-ca {}", path.display()))
}

/// TLS 1.2 and 1.3 with ring, HTTP/2 and HTTP/1.1 by ALPN, the certificate from `resolver`; with
/// `client_verifier`, only clients it accepts get past the handshake. The webhook's and the tenant API's.
pub fn tls_acceptor(
    resolver: Arc<CertResolver>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<TlsAcceptor, rustls::Error> {
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?;
    let mut config = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier).with_cert_resolver(resolver),
        None => builder.with_no_client_auth().with_cert_resolver(resolver),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS on `listener` until the process ends. With `client_verifier`, a
/// connection without an accepted client certificate ends in the handshake: its request is
/// never read, answered or recorded.
pub async fn serve_tls(
    listener: TcpListener,
    resolver: Arc<CertResolver>,
    app: Router,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) {
    let verified = client_verifier.is_some();
    let acceptor = match tls_acceptor(resolver, client_verifier) {
        Ok(acceptor) => acceptor,
        Err(err) => {
            tracing::error!(%err, "cannot configure TLS for the webhook");
            return;
        }
    };
    loop {
        let (tcp, peer) = match listener.accept().await {
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
                Err(err) if verified && is_client_certificate_error(&err) => {
                    // Someone other than the API server: worth seeing, and nothing was read.
                    tracing::warn!(%peer, %err, "webhook caller refused: no client certificate signed by --webhook-client-ca");
                    return;
                }
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

fn is_client_certificate_error(err: &std::io::Error) -> bool {
    matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("atlantiplex-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn the_client_ca_must_be_a_readable_pem_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        assert!(client_verifier(&file("ca.crt", &ca.pem())).is_ok());
        let err = |path: &Path| format!("{:#}", client_verifier(path).err().unwrap());
        assert!(err(&file("empty.crt", "")).contains("holds no certificate"));
        assert!(err(&file("key.pem", &key.serialize_pem())).contains("holds no certificate"), "a key is no CA");
        assert!(err(Path::new("/nonexistent/ca.crt")).starts_with("reading --webhook-client-ca /nonexistent/ca.crt"));
        if let Some(dir) = file("done", "").parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
