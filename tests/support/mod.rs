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
    /// own metrics port; every replica shares the webhook port (SO_REUSEPORT).
    pub fn operator_command_as(&self, user: &str, metrics_port: u16) -> Command {
        let kubeconfig = self.plane.mint_kubeconfig(user, &["system:masters"]).expect("operator kubeconfig");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
        cmd.arg("run").arg("--kubeconfig").arg(kubeconfig).args(["--log", "info,atlantiplex_operator=debug"]);
        // The API server calls the webhook on loopback (the documented development override);
        // every operator of this test binary uses the same port, so a restart re-registers nothing.
        let port = self.webhook_port();
        cmd.args(["--webhook-bind", &format!("127.0.0.1:{port}")])
            .args(["--webhook-url", &format!("https://127.0.0.1:{port}")])
            .args(["--metrics-bind", &format!("127.0.0.1:{metrics_port}")]);
        // The ledger next to the control plane's files, not in the working directory.
        cmd.arg("--database-url").arg(self.plane.dir.join("ledger.db"));
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
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
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
