//! The tenant API end to end: the operator and two `atlantiplex-operator api` replicas on one PostgreSQL
//! ledger, against the shared control plane, each replica on its own port so a test can address either.
//! A `#[path]` module of the test binaries that use it.

use super::support::{API_ROLE, Harness, OPERATOR_USER, cluster, on_runtime};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub struct Api {
    /// Replica A trusts 127.0.0.1 as a proxy (X-Forwarded-For believed), replica B trusts nobody.
    pub ports: [u16; 2],
    pub database_url: String,
    ca_pem: String,
}

/// Plans of the tests (priced above the shipped ones, so upgrade hints name `professional`).
pub const PLANS: &str = "apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata: {name: api-test-fast}\nspec:\n  price: {amountCents: 990000, currency: usd, interval: Month}\n  rateLimit: {requestsPerMinute: 60000, burst: 5000}\n  features: {apiAccess: true}\n---\n\
apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata: {name: api-test-slow}\nspec:\n  price: {amountCents: 990000, currency: usd, interval: Month}\n  rateLimit: {requestsPerMinute: 120, burst: 10}\n  features: {apiAccess: true}\n---\n\
apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata: {name: api-test-enterprise}\nspec:\n  price: {amountCents: 990000, currency: usd, interval: Month}\n  features: {apiAccess: true, ipAllowList: true}\n";

impl Api {
    /// Started once per test binary; the processes live as long as it.
    pub fn get() -> &'static Api {
        static API: OnceLock<Api> = OnceLock::new();
        API.get_or_init(start)
    }
}

fn start() -> Api {
    let h = cluster();
    let pg = pgserver::shared().expect("PostgreSQL");
    let database_url = pg.create_database("tenant_api").expect("database");
    let dir = h.plane.dir.join("tenant-api");
    std::fs::create_dir_all(&dir).expect("dir");
    let hash_key = dir.join("api-key-hash");
    std::fs::write(&hash_key, "0123456789abcdef0123456789abcdef-test-key").expect("hash key");
    let ca = devcluster::pki::Ca::generate_named("tenant-api-test-ca").expect("CA");
    let serving = ca.serving("127.0.0.1", &["127.0.0.1", "localhost"]).expect("serving certificate");
    std::fs::write(dir.join("tls.crt"), &serving.cert_pem).expect("tls.crt");
    std::fs::write(dir.join("tls.key"), &serving.key_pem).expect("tls.key");
    h.apply_ok(API_ROLE);
    h.apply_ok(PLANS);
    let mut operator = h.operator_command_on(OPERATOR_USER, h.metrics_port(), &database_url);
    operator.arg("--webhook-client-ca").arg(h.plane.admission_client_ca());
    operator.arg("--api-key-hash-key-file").arg(&hash_key);
    devcluster::spawn_for_process_lifetime("atlantiplex-operator", operator, &h.logs()).expect("operator starts");
    h.wait_operator_ready();
    let kubeconfig = h.plane.mint_kubeconfig("atlantiplex-tenant-api", &[]).expect("API kubeconfig");
    let ports = [devcluster::free_port().expect("port"), devcluster::free_port().expect("port")];
    for (i, port) in ports.iter().enumerate() {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
        cmd.arg("api")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("--tls-dir")
            .arg(&dir)
            .args(["--database-url", &database_url])
            .arg("--api-key-hash-key-file")
            .arg(&hash_key)
            .args(["--log", "info,atlantiplex_operator=debug", "--max-body-bytes", "65536"])
            .env("POD_NAME", format!("api-{i}"));
        if i == 0 {
            cmd.args(["--trusted-proxy", "127.0.0.1/32"]);
        }
        let name: &'static str = if i == 0 { "tenant-api-a" } else { "tenant-api-b" };
        devcluster::spawn_for_process_lifetime(name, cmd, &h.logs()).expect("API starts");
    }
    let api = Api { ports, database_url, ca_pem: ca.pair.cert_pem.clone() };
    on_runtime(async {
        for replica in 0..2 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while api.call(replica, "GET", "/readyz", None, "").await.status != 200 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "API replica {replica} not ready within 120 s (see {}/)",
                    h.logs().display()
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    });
    api
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts an RFC 9457 problem with this status and rule whose detail names `words`.
    pub fn assert_problem(&self, status: u16, rule: &str, words: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.headers.get("content-type").map(String::as_str), Some("application/problem+json"), "{self:?}");
        let problem = self.json();
        assert_eq!(problem["type"], format!("urn:atlantiplex:problem:{rule}"), "{self:?}");
        assert_eq!(problem["status"], status, "{self:?}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(&format!("[{rule}] ")) && detail.contains(words), "expected {words:?}: {detail}");
        assert!(problem["field"].as_str().is_some_and(|f| !f.is_empty()), "{self:?}");
    }
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap_or("0").trim(), 16).unwrap_or(0);
        rest = &rest[line_end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
    out
}

impl Api {
    /// One HTTPS request to replica `replica` (0 or 1), trusting the test CA; `token` as the bearer.
    pub async fn call(&self, replica: usize, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        self.call_with(replica, method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        replica: usize,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
        extra_headers: &[(&str, &str)],
    ) -> Reply {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, ServerName};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", self.ports[replica])).await else {
            return Reply { status: 0, headers: BTreeMap::new(), body: String::new() };
        };
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await else {
            return Reply { status: 0, headers: BTreeMap::new(), body: String::new() };
        };
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let extra: String = extra_headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n{auth}{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = tls.write_all(request.as_bytes()).await;
        let _ = tls.write_all(body.as_bytes()).await;
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body_bytes = raw.get(split + 4..).unwrap_or_default();
        let body = if headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            dechunk(body_bytes)
        } else {
            body_bytes.to_vec()
        };
        Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }
}

/// An organization on `plan` (a Subscription without Stripe puts it on the plan) with ServiceAccount
/// members `default/<org>-<role>` for each role given, plus `extra` spec lines; waits until Ready.
pub fn organization(
    h: &Harness,
    org: &str,
    plan: Option<&str>,
    roles: &[&str],
    extra: &str,
) -> BTreeMap<String, String> {
    let mut members = String::new();
    let mut tokens = BTreeMap::new();
    let owner = format!("{org}-owner");
    for role in roles {
        let name = format!("{org}-{}", role.to_lowercase());
        tokens.insert(role.to_string(), h.service_account_token(&name, &[]));
        if *role != "Owner" {
            members.push_str(&format!(
                "    - {{ kind: ServiceAccount, name: {name}, namespace: default, role: {role} }}\n"
            ));
        }
    }
    let mut yaml = format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata:\n  name: {org}\nspec:\n  slug: {org}\n  displayName: {org}\n  owners:\n    - {{ kind: ServiceAccount, name: {owner}, namespace: default }}\n"
    );
    if !members.is_empty() {
        yaml.push_str(&format!("  members:\n{members}"));
    }
    yaml.push_str(extra);
    if let Some(plan) = plan {
        yaml.push_str(&format!(
            "---\napiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {org}}}\nspec: {{organization: {org}, plan: {plan}, billingEmail: billing@{org}.test}}\n"
        ));
    }
    h.apply_ok(&yaml);
    h.wait_ready("organization", org);
    if let Some(plan) = plan {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while h.jsonpath(&["organization", org], "{.status.effectivePlan}") != plan {
            assert!(std::time::Instant::now() < deadline, "{org} not on plan {plan} within 120 s");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    tokens
}

pub fn path(org: &str, rest: &str) -> String {
    format!("/v1/organizations/{org}{rest}")
}
