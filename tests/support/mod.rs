//! End-to-end test support: the real control plane (one per test binary) with the committed
//! CRDs and shipped Plans installed, and the operator binary running against it.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

use devcluster::ControlPlaneInfo;
use kube::{Api, Client};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const OPERATOR_USER: &str = "atlantiplex-operator";
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The read-only role the chart gives the API's ServiceAccount.
pub const API_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: atlantiplex-test-tenant-api}\n\
rules:\n- {apiGroups: [atlantiplex.io], resources: [organizations, teams, subscriptions, plans], verbs: [get, list, watch]}\n\
- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}\n\
- {apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create]}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: atlantiplex-test-tenant-api}\n\
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atlantiplex-test-tenant-api}\n\
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: atlantiplex-tenant-api}]\n";

pub struct Harness {
    pub plane: &'static ControlPlaneInfo,
}

/// The shared control plane with CRDs and Plans installed (once per test binary).
pub fn cluster() -> Harness {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let plane = devcluster::shared().expect("control plane");
    let harness = Harness { plane };
    INSTALLED.get_or_init(|| harness.install());
    harness
}

/// The shared control plane with one operator running for the rest of the test binary.
pub fn cluster_with_operator() -> Harness {
    static OPERATOR: OnceLock<u32> = OnceLock::new();
    let harness = cluster();
    OPERATOR.get_or_init(|| {
        devcluster::spawn_for_process_lifetime("atlantiplex-operator", harness.operator_command(), &harness.logs())
            .expect("operator starts")
    });
    harness.wait_operator_ready();
    harness
}

impl Harness {
    fn install(&self) {
        self.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/crds/")]);
        self.kubectl_ok(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
        self.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/examples/plans.yaml")]);
    }

    pub fn logs(&self) -> std::path::PathBuf {
        self.plane.dir.join("logs")
    }

    /// The operator binary as `make run` starts it, against this control plane, under its own
    /// identity so the audit log tells its requests apart.
    pub fn operator_command(&self) -> Command {
        self.operator_command_as(OPERATOR_USER, self.metrics_port())
    }

    /// The operator under its own user name (so the audit log tells replicas apart) with its
    /// own metrics port; every replica shares the webhook port (SO_REUSEPORT). It answers only
    /// the API server (its admission client certificate), as a deployment should.
    pub fn operator_command_as(&self, user: &str, metrics_port: u16) -> Command {
        let mut cmd = self.operator_command_without_client_ca(user, metrics_port);
        cmd.arg("--webhook-client-ca").arg(self.plane.admission_client_ca());
        cmd
    }

    /// Like [`Harness::operator_command_as`], without `--webhook-client-ca`: the webhook
    /// answers anyone who reaches its port.
    pub fn operator_command_without_client_ca(&self, user: &str, metrics_port: u16) -> Command {
        let ledger = self.plane.dir.join("ledger.db").display().to_string();
        self.operator_command_on(user, metrics_port, &ledger)
    }

    /// The operator as [`Harness::operator_command_as`] describes it, on the ledger `database_url`
    /// (e.g. a PostgreSQL database that API replicas share).
    pub fn operator_command_on(&self, user: &str, metrics_port: u16, database_url: &str) -> Command {
        let kubeconfig = self.plane.mint_kubeconfig(user, &["system:masters"]).expect("operator kubeconfig");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
        cmd.arg("run").arg("--kubeconfig").arg(kubeconfig).args(["--log", "info,atlantiplex_operator=debug"]);
        // The API server calls the webhook on loopback (the documented development override);
        // every operator of this test binary uses the same port, so a restart re-registers nothing.
        let port = self.webhook_port();
        cmd.args(["--webhook-bind", &format!("127.0.0.1:{port}")])
            .args(["--webhook-url", &format!("https://127.0.0.1:{port}")])
            .args(["--metrics-bind", &format!("127.0.0.1:{metrics_port}")])
            .args(["--usage-bind", &format!("127.0.0.1:{}", self.usage_port())]);
        cmd.arg("--database-url").arg(database_url);
        cmd
    }

    pub fn metrics_port(&self) -> u16 {
        static PORT: OnceLock<u16> = OnceLock::new();
        *PORT.get_or_init(|| devcluster::free_port().expect("free port"))
    }

    /// Waits until the operator's /readyz answers 200: caches filled, webhook deciding.
    pub fn wait_operator_ready(&self) {
        wait_ready_on(self.metrics_port());
    }

    /// The usage ingestion port (HTTPS, `POST /v1/usage`), shared by the binary's operators like the webhook's.
    pub fn usage_port(&self) -> u16 {
        static PORT: OnceLock<u16> = OnceLock::new();
        *PORT.get_or_init(|| devcluster::free_port().expect("free port"))
    }

    pub fn webhook_port(&self) -> u16 {
        static PORT: OnceLock<u16> = OnceLock::new();
        *PORT.get_or_init(|| devcluster::free_port().expect("free port"))
    }

    pub async fn client(&self) -> Client {
        self.plane.client().await.expect("admin client")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.plane.kubectl().args(args).output().expect("kubectl runs")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl (admin) with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .plane
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("kubectl finishes")
    }

    /// `kubectl apply --server-side -f -` with `yaml` on stdin, as a platform engineer would.
    pub fn apply(&self, yaml: &str) -> Output {
        self.kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], yaml)
    }

    /// The Secret `stripe` in the operator's namespace, as `--stripe-secret stripe` reads it.
    pub fn create_stripe_secret(&self, webhook_secret: &str) {
        let _ = self.kubectl(&["create", "namespace", "atlantiplex-system"]);
        self.kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "stripe",
            "-n",
            "atlantiplex-system",
            "--from-literal=api-key=sk_test_fake",
            &format!("--from-literal=webhook-secret={webhook_secret}"),
        ]);
    }

    pub fn apply_ok(&self, yaml: &str) {
        let out = self.apply(yaml);
        assert!(out.status.success(), "apply failed: {}\n{yaml}", String::from_utf8_lossy(&out.stderr));
    }

    /// Apply that must be refused; returns the error text.
    pub fn apply_err(&self, yaml: &str) -> String {
        let out = self.apply(yaml);
        assert!(!out.status.success(), "apply should have been refused:\n{yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn wait_ready(&self, kind: &str, name: &str) {
        self.kubectl_ok(&["wait", "--for=condition=Ready", &format!("{kind}/{name}"), "--timeout=60s"]);
    }

    /// `kubectl auth can-i <verb> <resource> -n <ns> --as <user>`.
    pub fn can_i(&self, user: &str, verb: &str, resource: &str, namespace: &str) -> bool {
        let out = self.kubectl(&["auth", "can-i", verb, resource, "-n", namespace, "--as", user]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    }

    /// The messages of the Events with `reason` about the cluster-scoped object `name` (their
    /// Events live in `default`), space-separated.
    pub fn event_messages(&self, name: &str, reason: &str) -> String {
        let selector = format!("involvedObject.name={name},reason={reason}");
        self.kubectl_ok(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={.items[*].message}",
        ])
    }

    pub fn jsonpath(&self, target: &[&str], path: &str) -> String {
        let mut args: Vec<&str> = vec!["get"];
        args.extend_from_slice(target);
        let expr = format!("jsonpath={path}");
        args.extend_from_slice(&["-o", &expr]);
        self.kubectl_ok(&args)
    }
}

pub use devcluster::eventually;

pub async fn exists<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.expect("get").is_some()
}

/// An Organization manifest with one owner and the given members lines.
pub fn org_yaml(name: &str, slug: &str, extra: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata:\n  name: {name}\nspec:\n  slug: {slug}\n  displayName: {name}\n  owners:\n    - {{ kind: User, name: {slug}-owner }}\n{extra}"
    )
}

/// An operator process owned by one test: killed (SIGKILL) when dropped, also on panic.
pub struct OperatorProcess {
    child: std::process::Child,
    pub log: std::path::PathBuf,
}

impl OperatorProcess {
    pub fn start(h: &Harness, log_name: &str) -> Self {
        Self::start_with(h, log_name, &[])
    }

    /// The operator with extra flags (e.g. `--signup`).
    pub fn start_with(h: &Harness, log_name: &str, extra: &[&str]) -> Self {
        Self::spawn(h, h.operator_command(), log_name, extra)
    }

    pub fn spawn(h: &Harness, mut command: Command, log_name: &str, extra: &[&str]) -> Self {
        let log = h.logs().join(log_name);
        let file = std::fs::File::create(&log).expect("operator log");
        let child = command
            .args(extra)
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("operator starts");
        Self { child, log }
    }

    /// Starts the operator and waits until it decides admission requests.
    pub fn start_ready(h: &Harness, log_name: &str) -> Self {
        let operator = Self::start(h, log_name);
        h.wait_operator_ready();
        operator
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (and reaps it).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// SIGKILL: no graceful shutdown, as a crash or an OOM kill would do.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// kubectl as another user (a client certificate minted for `user` in `groups`).
pub struct User {
    pub name: String,
    kubeconfig: std::path::PathBuf,
    kubectl: std::path::PathBuf,
}

impl Harness {
    pub fn user(&self, name: &str, groups: &[&str]) -> User {
        let kubeconfig = self.plane.mint_kubeconfig(name, groups).expect("user kubeconfig");
        User { name: name.into(), kubeconfig, kubectl: self.plane.tools_bin.join("kubectl") }
    }
}

impl User {
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            let mut input = input;
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl and asserts it succeeded.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None);
        assert!(
            out.status.success(),
            "{}: kubectl {args:?} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts it was refused, and returns the error.
    pub fn denied(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None);
        assert!(!out.status.success(), "{}: kubectl {args:?} should have been refused", self.name);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn apply(&self, yaml: &str) -> Output {
        self.kubectl(&["apply", "--server-side", "-f", "-"], Some(yaml))
    }

    pub fn create(&self, yaml: &str) -> Output {
        self.kubectl(&["create", "-f", "-"], Some(yaml))
    }
}

/// Asserts a refusal came from the webhook, by rule, and names the fix's words.
pub fn assert_denied_by(stderr: &str, rule: &str, words: &str) {
    assert!(stderr.contains("denied the request"), "not an admission denial: {stderr}");
    assert!(stderr.contains(&format!("[{rule}]")), "expected rule {rule}: {stderr}");
    assert!(stderr.contains(words), "expected {words:?} in: {stderr}");
}

/// GET `path` on a local operator's metrics port; None while it does not answer.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, "GET", path, None, "")
}

/// GET `path` with `Authorization: Bearer <token>` (/metrics, /api/v1/audit, /log-level need one).
pub fn http_get_with_token(port: u16, path: &str, token: &str) -> Option<String> {
    http_request(port, "GET", path, Some(token), "")
}

/// One HTTP/1.1 request to a local operator's metrics port: the whole reply (status line,
/// headers, body), or None while it does not answer.
pub fn http_request(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// The status code of a raw HTTP reply (0 when there is none).
pub fn status_of(reply: &str) -> u16 {
    reply.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// The body of a raw HTTP reply (after the blank line; axum's replies here are not chunked).
pub fn body_of(reply: &str) -> &str {
    reply.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default()
}

impl Harness {
    /// A token (TokenRequest, `kubectl create token`) of the ServiceAccount `default/<name>`,
    /// bound by a ClusterRole of the same name to `rules` (YAML flow mappings, e.g.
    /// `{nonResourceURLs: [/metrics], verbs: [get]}`); no rules: a valid token RBAC allows
    /// nothing. Idempotent (apply), so tests may share a name.
    pub fn service_account_token(&self, name: &str, rules: &[&str]) -> String {
        let mut yaml =
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: default}}\n");
        if !rules.is_empty() {
            let rules: String = rules.iter().map(|rule| format!("  - {rule}\n")).collect();
            yaml.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {name}}}\nrules:\n{rules}\
                 ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
                 subjects: [{{kind: ServiceAccount, name: {name}, namespace: default}}]\n"
            ));
        }
        self.apply_ok(&yaml);
        self.kubectl_ok(&["create", "token", name, "-n", "default", "--duration=1h"]).trim().to_string()
    }

    /// A token allowed to GET /metrics, as Prometheus' would be (the chart's metrics-reader role).
    pub fn metrics_token(&self) -> String {
        static TOKEN: OnceLock<String> = OnceLock::new();
        let rule = "{nonResourceURLs: [/metrics], verbs: [get]}";
        TOKEN.get_or_init(|| self.service_account_token("atlantiplex-test-metrics-reader", &[rule])).clone()
    }
}

/// Runs `future` on a runtime of its own thread (the caller may be inside a test's runtime).
pub fn on_runtime<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
            })
            .join()
            .expect("runtime thread")
    })
}

/// Waits until /readyz on `port` answers 200.
pub fn wait_ready_on(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !http_get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator on metrics port {port} did not become ready within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
