//! Reporting usage as a workload does: a ServiceAccount bound to the chart's reporter role, and
//! `POST /v1/usage` over TLS trusting the operator's CA.
#![allow(dead_code)] // each test binary uses a different part

use super::support::{Harness, body_of};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;
use std::sync::Arc;

/// The chart's ClusterRole (charts/atlantiplex-operator/templates/clusterrole.yaml), as a platform engineer
/// installs it with the chart.
pub const REPORTER_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: atlantiplex-usage-reporter}\nrules:\n  - {apiGroups: [atlantiplex.io], resources: [usageevents], verbs: [create]}\n";

/// A ServiceAccount in `namespace`, bound to the reporter role there when `bound`; its token.
pub fn reporter(h: &Harness, namespace: &str, name: &str, bound: bool) -> String {
    let mut yaml =
        format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {namespace}}}\n");
    if bound {
        yaml.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}-usage, namespace: {namespace}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atlantiplex-usage-reporter}}\n\
             subjects: [{{kind: ServiceAccount, name: {name}, namespace: {namespace}}}]\n"
        ));
    }
    h.apply_ok(&yaml);
    h.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=1h"]).trim().to_string()
}

/// POSTs `body` to /v1/usage over TLS, trusting the operator's CA; the raw HTTP reply.
pub async fn post_usage(h: &Harness, token: Option<&str>, body: &str) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let secrets: Api<Secret> = Api::namespaced(h.client().await, "atlantiplex-system");
    let secret = secrets.get("atlantiplex-operator-webhook-tls").await.expect("serving certificate Secret");
    let ca = secret.data.and_then(|d| d.get("ca.crt").cloned()).expect("ca.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca.0) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", h.usage_port())).await.expect("usage port answers");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /v1/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/cloudevents-batch+json\r\n\
         Connection: close\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("write headers");
    // A server may answer (413) before reading all of an oversized body.
    let _ = tls.write_all(body.as_bytes()).await;
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}

pub fn json_body(reply: &str) -> Value {
    // axum may send the 202 chunked; take the JSON object between the first { and the last }.
    let body = body_of(reply);
    let (start, end) = (body.find('{').unwrap_or(0), body.rfind('}').map_or(0, |i| i + 1));
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"))
}
