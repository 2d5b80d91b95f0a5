//! Single sign-on end to end: the control plane with Ory Hydra as its OpenID Connect provider
//! (kube-apiserver trusting it through the operator's `authentication-config`), the operator, and
//! one tenant API with web sign-in and the console (stripe-mock for its billing portal), sharing the
//! operator's SQLite ledger, which the tests can read. Tokens come from real logins: played through
//! Hydra's admin API (`devcluster::idp`), or in a browser on the development login page that Hydra
//! sends people to; never impersonation. A `#[path]` module of tests/sso.rs and tests/console.rs.

use super::support::{API_ROLE, Harness, cluster, on_runtime};
use devcluster::idp::{Idp, Person};
use openidconnect::reqwest;
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const CONSOLE_CLIENT: &str = "atlantiplex-console";
pub const CONSOLE_SECRET: &str = "console-test-secret-0123456789";
/// kubectl's redirect URI: nobody listens there; the tests take the code from the redirect.
pub const KUBECTL_REDIRECT: &str = "http://127.0.0.1:8000/callback";
pub const PLATFORM_ADMINS: &str = "platform-admins";
/// The password and one-time code of every person of the development login page ([`dev_users`]).
pub const DEV_PASSWORD: &str = "console-test-password";
pub const DEV_CODE: &str = "424242";

/// The people who sign in on the real development login page (`devcluster::login_app`), which Hydra
/// sends browsers to; email and IdP groups, all with [`DEV_PASSWORD`] and [`DEV_CODE`].
pub fn dev_users() -> Vec<devcluster::login_app::DevUser> {
    [
        ("olivia@console.example", &[][..]),
        ("adam@console.example", &[]),
        ("vera@console.example", &[]),
        ("terry@console.example", &[]),
        ("pat@console.example", &[PLATFORM_ADMINS]),
    ]
    .into_iter()
    .map(|(email, groups)| devcluster::login_app::DevUser {
        email: email.into(),
        password: DEV_PASSWORD.into(),
        one_time_code: DEV_CODE.into(),
        groups: groups.iter().map(|group| group.to_string()).collect(),
    })
    .collect()
}

pub struct Sso {
    pub h: Harness,
    pub api_port: u16,
    /// `atlantiplex-operator login`'s loopback port, registered at Hydra.
    pub login_port: u16,
    /// The ledger of the operator and the tenant API (SQLite file).
    pub api_ledger: std::path::PathBuf,
    pub ca_file: std::path::PathBuf,
}

pub fn sso() -> &'static Sso {
    static SSO: OnceLock<Sso> = OnceLock::new();
    SSO.get_or_init(start)
}

fn start() -> Sso {
    let operator_binary = env!("CARGO_BIN_EXE_atlantiplex-operator").to_string();
    // Hydra sends browsers to the real development login page (started below, once Hydra is up);
    // the tests that play logins through the admin API never load it.
    let dev_login = std::net::SocketAddr::from(([127, 0, 0, 1], devcluster::free_port().expect("port")));
    devcluster::shared_with(move |options| devcluster::Options {
        identity: Some(devcluster::IdentityOptions {
            authentication_config_command: vec![operator_binary, "authentication-config".into()],
            login_url: format!("http://{dev_login}/login"),
            consent_url: format!("http://{dev_login}/consent"),
        }),
        ..options
    })
    .expect("control plane with Hydra");
    let h = cluster();
    let identity = h.plane.identity.clone().expect("identity provider");
    start_login_app(&identity, dev_login);
    let (api_port, login_port) = (devcluster::free_port().expect("port"), devcluster::free_port().expect("port"));
    let dir = h.plane.dir.join("sso");
    std::fs::create_dir_all(&dir).expect("dir");
    on_runtime(async {
        let idp = Idp::new(&identity).expect("Hydra client");
        let kubectl_redirects = [KUBECTL_REDIRECT.to_string(), format!("http://127.0.0.1:{login_port}/callback")];
        for (id, redirects) in
            [("kubectl", kubectl_redirects.to_vec()), ("other-app", vec![KUBECTL_REDIRECT.to_string()])]
        {
            idp.ensure_client(serde_json::json!({
                "client_id": id, "redirect_uris": redirects, "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "openid email groups",
            }))
            .await
            .expect("public client");
        }
        idp.ensure_client(serde_json::json!({
            "client_id": CONSOLE_CLIENT, "client_secret": CONSOLE_SECRET,
            "redirect_uris": [format!("https://127.0.0.1:{api_port}/auth/callback")],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": "openid email groups offline_access",
        }))
        .await
        .expect("console client");
    });
    // Platform admins by IdP group: RBAC (the platform team's binding) and the operator's flag.
    h.apply_ok(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: sso-test-platform-admins}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'oidc:{PLATFORM_ADMINS}'}}]\n"
    ));
    let admins = format!("system:masters,oidc:{PLATFORM_ADMINS}");
    let mut operator = h.operator_command();
    operator.args(["--platform-admin-group", &admins]);
    devcluster::spawn_for_process_lifetime("atlantiplex-operator", operator, &h.logs()).expect("operator starts");
    h.wait_operator_ready();

    h.apply_ok(API_ROLE);
    let ca = devcluster::pki::Ca::load(&h.plane.pki_dir()).expect("cluster CA");
    let serving = ca.serving("127.0.0.1", &["127.0.0.1", "localhost"]).expect("serving certificate");
    std::fs::write(dir.join("tls.crt"), &serving.cert_pem).expect("tls.crt");
    std::fs::write(dir.join("tls.key"), &serving.key_pem).expect("tls.key");
    std::fs::write(dir.join("hash-key"), "0123456789abcdef0123456789abcdef-sso-test").expect("hash key");
    std::fs::write(dir.join("client-secret"), CONSOLE_SECRET).expect("client secret");
    // The operator's ledger, as on a single node: the console reads its audit log and subscription history.
    let api_ledger = h.plane.dir.join("ledger.db");
    let stripe_mock = start_stripe_mock(&h);
    let kubeconfig = h.plane.mint_kubeconfig("atlantiplex-tenant-api", &[]).expect("API kubeconfig");
    let mut api = Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
    api.arg("api")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--bind", &format!("127.0.0.1:{api_port}")])
        .arg("--tls-dir")
        .arg(&dir)
        .arg("--database-url")
        .arg(&api_ledger)
        .arg("--api-key-hash-key-file")
        .arg(dir.join("hash-key"))
        .args(["--oidc-issuer", &identity.issuer, "--oidc-client-id", CONSOLE_CLIENT])
        .arg("--oidc-client-secret-file")
        .arg(dir.join("client-secret"))
        .arg("--oidc-ca-file")
        .arg(&identity.ca_file)
        .args(["--public-url", &format!("https://127.0.0.1:{api_port}")])
        .args(["--platform-admin-group", &format!("oidc:{PLATFORM_ADMINS}")])
        .arg("--oidc-offline-access")
        // The console's "Manage billing": Billing Portal sessions at stripe-mock.
        .args(["--stripe-secret", "sk_test_console", "--stripe-api-base", &stripe_mock])
        .args(["--log", "info,atlantiplex_operator=debug"]);
    devcluster::spawn_for_process_lifetime("tenant-api", api, &h.logs()).expect("API starts");
    let sso = Sso { h, api_port, login_port, api_ledger, ca_file: identity.ca_file.clone() };
    on_runtime(async {
        let browser = sso.browser();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while browser.get("/readyz").await.status != 200 {
            assert!(std::time::Instant::now() < deadline, "tenant API not ready (see {})", sso.h.logs().display());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    sso
}

/// stripe-mock for the rest of the process; its base URL.
fn start_stripe_mock(h: &Harness) -> String {
    let (http, https) = (devcluster::free_port().expect("port"), devcluster::free_port().expect("port"));
    let mut mock = Command::new(devcluster::tools_bin().expect("tools").join("stripe-mock"));
    mock.args(["-http-addr", &format!("127.0.0.1:{http}"), "-https-addr", &format!("127.0.0.1:{https}")]);
    devcluster::spawn_for_process_lifetime("stripe-mock", mock, &h.logs()).expect("stripe-mock starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(std::time::Instant::now() < deadline, "stripe-mock did not listen within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{http}/")
}

/// Serves the development login page on `address` for the rest of the process, on a thread and
/// runtime of its own, and waits until it answers.
fn start_login_app(identity: &devcluster::IdentityInfo, address: std::net::SocketAddr) {
    let identity = identity.clone();
    let app = std::thread::Builder::new()
        .name("dev-login-app".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("login app runtime");
            let idp = Idp::new(&identity).expect("Hydra client");
            runtime.block_on(devcluster::login_app::serve(idp, dev_users(), address))
        })
        .expect("login app thread");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(address).is_err() {
        if app.is_finished() {
            match app.join() {
                Ok(Err(err)) => panic!("the development login page on {address} stopped: {err:#}"),
                _ => panic!("the development login page on {address} stopped"),
            }
        }
        assert!(std::time::Instant::now() < deadline, "the development login page on {address} did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Sso {
    pub fn idp(&self) -> Idp {
        Idp::new(self.h.plane.identity.as_ref().expect("identity")).expect("Hydra client")
    }

    /// A real ID token for kubectl's client.
    pub async fn id_token(&self, person: &Person<'_>) -> String {
        self.idp().id_token("kubectl", KUBECTL_REDIRECT, person).await.expect("ID token")
    }

    /// kubectl authenticated by `token` alone (no kubeconfig user).
    pub fn kubectl_with_token(&self, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let mut cmd = Command::new(self.h.plane.tools_bin.join("kubectl"));
        cmd.env("KUBECONFIG", "/dev/null")
            .args(["--server", &self.h.plane.server, "--token", token])
            .arg(format!("--certificate-authority={}", self.h.plane.pki_dir().join("ca.crt").display()))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("stdin written");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("kubectl finishes")
    }

    pub fn browser(&self) -> Browser {
        let ca = std::fs::read(&self.ca_file).expect("CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Browser { http, base: format!("https://127.0.0.1:{}", self.api_port), cookie: None }
    }

    /// Signs `person` in on the web as a browser would: /auth/login, the provider, /auth/callback.
    pub async fn web_sign_in(&self, person: &Person<'_>, return_to: &str) -> Browser {
        let mut browser = self.browser();
        let start = browser.get(&format!("/auth/login?return_to={return_to}")).await;
        assert_eq!(start.status, 303, "{start:?}");
        let back = self.idp().sign_in(start.location(), person).await.expect("signed in at Hydra");
        let done = browser.get_url(&back).await;
        assert_eq!(done.status, 303, "{done:?}");
        browser.cookie = done.session_cookie();
        assert!(browser.cookie.is_some(), "a session cookie: {done:?}");
        browser
    }

    /// Runs SQL on the tenant API's ledger (to age a session as time would).
    pub async fn ledger_exec(&self, sql: &str) {
        use sqlx::ConnectOptions as _;
        let mut conn =
            sqlx::sqlite::SqliteConnectOptions::new().filename(&self.api_ledger).connect().await.expect("ledger");
        sqlx::query(sql).execute(&mut conn).await.expect("SQL");
    }
}

/// A browser's view of one answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn set_cookie(&self) -> String {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("\n")
    }

    /// The session cookie's `name=value` when this answer sets one.
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookie()
            .lines()
            .filter_map(|line| line.split(';').next())
            .find(|pair| {
                pair.starts_with("__Host-atlantiplex-session=") && pair.len() > "__Host-atlantiplex-session=".len()
            })
            .map(String::from)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    pub fn assert_problem(&self, status: u16, rule: &str, words: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let problem = self.json();
        assert_eq!(problem["rule"], rule, "{self:?}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "expected {words:?} in {detail}");
    }
}

/// An HTTPS client of the tenant API that holds one session cookie.
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, &format!("{}{path}", self.base), &[], None).await
    }

    pub async fn get_url(&self, url: &str) -> Reply {
        self.send(reqwest::Method::GET, url, &[], None).await
    }

    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.send(method, &format!("{}{path}", self.base), headers, body).await
    }

    async fn send(&self, method: reqwest::Method, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        let mut request = self.http.request(method, url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie.as_str());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                Reply { status, headers, body: response.text().await.unwrap_or_default() }
            }
            Err(err) => Reply { status: 0, headers: Default::default(), body: err.to_string() },
        }
    }

    /// The session's CSRF token (GET /v1/session).
    pub async fn csrf(&self) -> String {
        let session = self.get("/v1/session").await;
        assert_eq!(session.status, 200, "{session:?}");
        session.json()["csrfToken"].as_str().expect("csrfToken").to_string()
    }
}
