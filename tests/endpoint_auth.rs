//! Who may use the operator's endpoints, end to end against the real API server.
//! - The metrics port: /metrics, /api/v1/audit and /log-level need a bearer token the API
//!   server accepts (TokenReview) whose user RBAC allows the path and verb (SubjectAccessReview);
//!   /healthz and /readyz stay open; `--metrics-insecure` opens /metrics alone.
//! - The webhook port: with `--webhook-client-ca`, only the API server's admission client
//!   certificate completes the TLS handshake, so a forged review (no certificate, or a user's
//!   certificate from the cluster CA) is never answered nor recorded, while requests through
//!   the API server are decided and recorded as before. Without it, records say so.
//!
//! Each test runs its own operator on the binary's shared webhook port, one at a time: two at
//! once would share the port (SO_REUSEPORT) and answer each other's connections.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Harness, OPERATOR_USER, OperatorProcess, body_of, cluster, http_request, status_of, wait_ready_on};

static ONE_OPERATOR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OPERATOR_LOG_FILTER: &str = "info,atlantiplex_operator=debug";

/// The operator as the tests run it (`--webhook-client-ca` given), ready, and its metrics port.
fn start_operator(h: &Harness, log: &str, extra: &[&str]) -> (OperatorProcess, u16) {
    let port = devcluster::free_port().expect("free port");
    let operator = OperatorProcess::spawn(h, h.operator_command_as(OPERATOR_USER, port), log, extra);
    wait_ready_on(port);
    (operator, port)
}

/// A log filter's directives, in any order (the filter prints them in its own).
fn directives(filter: &str) -> std::collections::BTreeSet<&str> {
    filter.trim().split(',').collect()
}

fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> String {
    http_request(port, method, path, token, body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

#[tokio::test]
async fn the_metrics_port_serves_metrics_audit_and_log_level_only_to_tokens_rbac_allows() {
    let h = cluster();
    let _alone = ONE_OPERATOR_AT_A_TIME.lock().await;
    let (operator, port) = start_operator(&h, "endpoint-auth.log", &[]);
    let guarded = [("GET", "/metrics"), ("GET", "/api/v1/audit"), ("GET", "/log-level"), ("PUT", "/log-level")];

    // The kubelet's probes carry no token.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(status_of(&request(port, "GET", path, None, "")), 200, "{path} stays open");
    }
    // No token, or one the API server does not know: 401, saying what to send; the PUT changes nothing.
    for (method, path) in guarded {
        let reply = request(port, method, path, None, "trace");
        assert_eq!(status_of(&reply), 401, "{method} {path} without a token:\n{reply}");
        assert!(reply.to_lowercase().contains("www-authenticate: bearer"), "{reply}");
        assert!(body_of(&reply).contains("no Authorization header: send `Authorization: Bearer <token>`"), "{reply}");
        let reply = request(port, method, path, Some("made-up-token"), "off");
        assert_eq!(status_of(&reply), 401, "{method} {path} with a made-up token:\n{reply}");
        assert!(body_of(&reply).contains("the Kubernetes API server does not accept the token"), "{reply}");
    }
    // A valid token that RBAC allows nothing: 403, naming the path, the verb and the rule to
    // grant. For the audit API that is a resource: every authenticated user may get the
    // non-resource URLs /api/* (system:discovery), so a URL rule would open it to every tenant.
    let nobody = h.service_account_token("endpoint-auth-nobody", &[]);
    for (method, path) in guarded {
        let reply = request(port, method, path, Some(&nobody), "trace");
        let verb = method.to_lowercase();
        assert_eq!(status_of(&reply), 403, "{method} {path} without RBAC:\n{reply}");
        let body = body_of(&reply);
        assert!(body.contains("system:serviceaccount:default:endpoint-auth-nobody"), "{body}");
        assert!(body.contains(&format!("may not {verb} {path}")), "{body}");
        let rule = match path {
            "/api/v1/audit" => "apiGroups [atlantiplex.io] resources [auditrecords] verbs [get]".to_string(),
            _ => format!("nonResourceURLs [{path}] verbs [{verb}]"),
        };
        assert!(body.contains(&format!("grant it the ClusterRole rule {rule} through a ClusterRoleBinding")), "{body}");
    }
    // Each grant opens exactly its path and verb.
    let reader = h.metrics_token();
    let metrics = request(port, "GET", "/metrics", Some(&reader), "");
    assert_eq!(status_of(&metrics), 200, "{metrics}");
    assert!(metrics.contains("atlantiplex_leader"), "{metrics}");
    assert_eq!(
        status_of(&request(port, "GET", "/api/v1/audit", Some(&reader), "")),
        403,
        "a metrics reader reads no audit"
    );
    let auditor = h.service_account_token(
        "endpoint-auth-auditor",
        &["{apiGroups: [atlantiplex.io], resources: [auditrecords], verbs: [get]}"],
    );
    let audit = request(port, "GET", "/api/v1/audit?limit=1", Some(&auditor), "");
    assert_eq!(status_of(&audit), 200, "{audit}");
    assert!(body_of(&audit).contains("\"records\""), "{audit}");
    let viewer =
        h.service_account_token("endpoint-auth-log-viewer", &["{nonResourceURLs: [/log-level], verbs: [get]}"]);
    let level = request(port, "GET", "/log-level", Some(&viewer), "");
    assert_eq!(status_of(&level), 200, "{level}");
    assert_eq!(directives(body_of(&level)), directives(OPERATOR_LOG_FILTER), "the refused PUTs left the filter alone");
    assert_eq!(status_of(&request(port, "PUT", "/log-level", Some(&viewer), "trace")), 403, "get does not allow put");
    let admin =
        h.service_account_token("endpoint-auth-log-admin", &["{nonResourceURLs: [/log-level], verbs: [get, put]}"]);
    let changed = request(port, "PUT", "/log-level", Some(&admin), "info,atlantiplex_operator=trace");
    assert_eq!(status_of(&changed), 200, "{changed}");
    let level = request(port, "GET", "/log-level", Some(&admin), "");
    assert_eq!(directives(body_of(&level)), directives("info,atlantiplex_operator=trace"));
    drop(operator);

    // --metrics-insecure, the documented opt-out, opens /metrics and nothing else.
    let (_insecure, port) = start_operator(&h, "endpoint-auth-insecure.log", &["--metrics-insecure"]);
    let metrics = request(port, "GET", "/metrics", None, "");
    assert_eq!(status_of(&metrics), 200, "{metrics}");
    assert!(metrics.contains("atlantiplex_leader"), "{metrics}");
    assert_eq!(status_of(&request(port, "GET", "/api/v1/audit", None, "")), 401);
    assert_eq!(status_of(&request(port, "PUT", "/log-level", None, "off")), 401);
}

/// A review as only the API server should be able to send it: a platform admin deleting an
/// organization, which the policy allows.
fn forged_review(actor: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("forged-{actor}"),
            "kind": {"group": "atlantiplex.io", "version": "v1alpha1", "kind": "Organization"},
            "resource": {"group": "atlantiplex.io", "version": "v1alpha1", "resource": "organizations"},
            "name": format!("{actor}-target"),
            "operation": "DELETE",
            "userInfo": {"username": actor, "groups": ["system:masters", "system:authenticated"]},
            "oldObject": {
                "apiVersion": "atlantiplex.io/v1alpha1",
                "kind": "Organization",
                "metadata": {"name": format!("{actor}-target")},
                "spec": {"slug": format!("{actor}-target"), "displayName": "target", "owners": [{"kind": "User", "name": "x"}]},
            },
            "dryRun": false,
        }
    })
}

/// POSTs `review` to /validate over TLS (trusting the webhook's CA), presenting `client` (a
/// certificate chain and key, PEM) if given. The HTTP reply, or the TLS or I/O error.
async fn post_review(h: &Harness, client: Option<(&str, &str)>, review: &Value) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let secrets: Api<Secret> = Api::namespaced(h.client().await, "atlantiplex-system");
    let secret = secrets.get("atlantiplex-operator-webhook-tls").await.expect("webhook certificate Secret");
    let ca = secret.data.and_then(|d| d.get("ca.crt").cloned()).expect("ca.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca.0) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().expect("cert");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            builder.with_client_auth_cert(chain, key).expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", h.webhook_port())).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let body = review.to_string();
    let request = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // TLS 1.3 clients finish their side of the handshake before the server has checked their
    // certificate; the server's refusal then arrives as an alert on the first read.
    tls.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    match tls.read_to_end(&mut reply).await {
        Ok(_) => Ok(String::from_utf8_lossy(&reply).into_owned()),
        Err(e) if reply.is_empty() => Err(format!("read: {e}")),
        Err(e) => Err(format!("read after {:?}: {e}", String::from_utf8_lossy(&reply))),
    }
}

/// The audit records of `actor` in the operator's ledger (the `audit` command).
fn audit_records(h: &Harness, actor: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"))
        .args(["audit", "--actor", actor, "--output", "json", "--database-url"])
        .arg(h.plane.dir.join("ledger.db"))
        .output()
        .expect("audit command runs");
    assert!(out.status.success(), "audit query failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON records")
}

/// Waits for `actor`'s first record (records are written off the request path, in order).
async fn recorded(h: &Harness, actor: &str) -> Value {
    let mut found = None;
    support::eventually(&format!("an audit record of {actor}"), || {
        found = audit_records(h, actor).into_iter().next();
        std::future::ready(found.is_some())
    })
    .await;
    found.expect("record")
}

/// A Forbidden sign-up through the API server by `user`: decided by the webhook, and recorded.
fn real_request(h: &Harness, user: &str) {
    let yaml = support::org_yaml(user, user, "").replace(&format!("{user}-owner"), user);
    let out = h.user(user, &[]).create(&yaml);
    support::assert_denied_by(&String::from_utf8_lossy(&out.stderr), "signup-disabled", "self-service sign-up is off");
}

#[tokio::test]
async fn the_webhook_answers_and_records_only_reviews_from_the_api_server() {
    let h = cluster();
    let _alone = ONE_OPERATOR_AT_A_TIME.lock().await;
    let (operator, _) = start_operator(&h, "webhook-auth.log", &[]);

    // No client certificate: refused in the handshake, nothing answered.
    let refused = post_review(&h, None, &forged_review("forger-without-certificate")).await;
    let err = refused.expect_err("a review without a client certificate is answered");
    assert!(err.contains("CertificateRequired"), "{err}");
    // A user's certificate from the cluster CA, even one in system:masters: it proves who the
    // user is to the API server, not that the API server is calling.
    let cluster_ca = devcluster::pki::Ca::load(&h.plane.pki_dir()).expect("cluster CA");
    let user_cert = cluster_ca.client("forger-with-user-certificate", &["system:masters"]).expect("user certificate");
    let refused = post_review(
        &h,
        Some((&user_cert.cert_pem, &user_cert.key_pem)),
        &forged_review("forger-with-user-certificate"),
    )
    .await;
    let err = refused.expect_err("a review with a cluster-CA user certificate is answered");
    assert!(err.contains("UnknownCA") || err.contains("BadCertificate"), "{err}");
    // The same client with the API server's certificate is answered: the certificate, nothing
    // else about the requests above, is why they were refused.
    let (cert, key) = h.plane.admission_client_cert();
    let (cert, key) = (std::fs::read_to_string(cert).unwrap(), std::fs::read_to_string(key).unwrap());
    let answered = post_review(&h, Some((&cert, &key)), &forged_review("holder-of-the-apiserver-certificate"))
        .await
        .expect("the API server's certificate is accepted");
    assert!(answered.starts_with("HTTP/1.1 200") && answered.contains("\"allowed\":true"), "{answered}");

    // A real request through the API server is decided and recorded, with no "not verified"
    // mark; once it is in the ledger, anything sent before it would be too.
    real_request(&h, "webhook-auth-mallory");
    let record = recorded(&h, "webhook-auth-mallory").await;
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("signup-disabled:") && !reason.contains("not verified"), "{record}");
    recorded(&h, "holder-of-the-apiserver-certificate").await;
    for forger in ["forger-without-certificate", "forger-with-user-certificate"] {
        assert_eq!(audit_records(&h, forger), Vec::<Value>::new(), "{forger}'s review was recorded");
    }
    let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
    assert!(log.contains("webhook caller refused"), "the refusals are logged:\n{log}");
    drop(operator);

    // Without --webhook-client-ca the webhook cannot tell: it answers anyone, says so at
    // start-up, and every record carries the mark.
    let port = devcluster::free_port().expect("free port");
    let command = h.operator_command_without_client_ca(OPERATOR_USER, port);
    let unverified = OperatorProcess::spawn(&h, command, "webhook-unverified.log", &[]);
    wait_ready_on(port);
    let answered = post_review(&h, None, &forged_review("forger-unverified")).await.expect("answered");
    assert!(answered.contains("\"allowed\":true"), "{answered}");
    let mark = "(caller not verified: --webhook-client-ca is not set)";
    let record = recorded(&h, "forger-unverified").await;
    assert!(record["reason"].as_str().unwrap_or_default().ends_with(mark), "{record}");
    real_request(&h, "unverified-mallory");
    let record = recorded(&h, "unverified-mallory").await;
    assert!(record["reason"].as_str().unwrap_or_default().ends_with(mark), "{record}");
    let log = std::fs::read_to_string(&unverified.log).unwrap_or_default();
    assert!(log.contains("--webhook-client-ca is not set"), "the start-up warning:\n{log}");
}
