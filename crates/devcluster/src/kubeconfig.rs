//! Kubeconfig files with embedded credentials (JSON, which every kubeconfig reader accepts).

use crate::pki::{CertPair, write_private};
use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

pub fn write(path: &Path, server: &str, ca_pem: &str, user: &str, client: &CertPair) -> Result<()> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "atlantiplex-dev",
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": STANDARD.encode(&client.cert_pem),
                "client-key-data": STANDARD.encode(&client.key_pem),
            },
        }],
        "contexts": [{
            "name": "atlantiplex-dev",
            "context": { "cluster": "atlantiplex-dev", "user": user, "namespace": "default" },
        }],
        "current-context": "atlantiplex-dev",
    });
    write_private(path, &serde_json::to_string_pretty(&config)?)
}

/// The kubeconfig an AdmissionConfiguration names: which client certificate the apiserver
/// presents to webhooks. The user `*` is the resolver's default for any webhook host
/// (k8s.io/apiserver pkg/util/webhook/authentication.go); no cluster or context is read.
pub fn write_webhook_client(path: &Path, client: &CertPair) -> Result<()> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{
            "name": "*",
            "user": {
                "client-certificate-data": STANDARD.encode(&client.cert_pem),
                "client-key-data": STANDARD.encode(&client.key_pem),
            },
        }],
    });
    write_private(path, &serde_json::to_string_pretty(&config)?)
}
