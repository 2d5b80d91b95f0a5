//! A real Kubernetes control plane — etcd, kube-apiserver and kube-controller-manager built from
//! Go modules by `hack/build-tools.sh` — run as plain processes on free loopback ports with a PKI
//! generated per run. Used by `devcluster up` (the Makefile's `cluster-up`) and by the
//! integration tests, through [`shared`] (one control plane per test binary) or
//! [`ControlPlane::start`] (one per caller).

mod hydra;
pub mod idp;
mod kubeconfig;
pub mod login_app;
pub mod pki;
mod process;
mod shared;
mod stripe_mock;

pub use hydra::{IdentityInfo, IdentityOptions};
pub use process::{Lifetime, free_port, kill_pid, pid_alive};
pub use shared::{shared, shared_with, spawn_for_process_lifetime};
pub use stripe_mock::StripeMock;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use pki::{Ca, write_private};
use process::Proc;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The service CIDR the apiserver allocates ClusterIPs from; its first address is in the cert.
const SERVICE_CIDR: &str = "10.96.0.0/24";
const START_TIMEOUT: Duration = Duration::from_secs(90);
const START_ATTEMPTS: usize = 3;
/// In `<dir>/pki`: the CA of the apiserver's admission client certificate, and that certificate.
const ADMISSION_CLIENT_CA: &str = "admission-client-ca.crt";
const ADMISSION_CLIENT_CERT: &str = "admission-client.crt";
const ADMISSION_CLIENT_KEY: &str = "admission-client.key";

#[derive(Clone, Debug)]
pub struct Options {
    /// Where PKI, data, logs and kubeconfigs go. Removed on drop unless `keep` is set.
    pub dir: PathBuf,
    /// Where etcd, kube-apiserver, kube-controller-manager (and kubectl) are.
    pub tools_bin: PathBuf,
    pub lifetime: Lifetime,
    pub keep: bool,
    /// Record every request (metadata only: who, verb, resource) in `<dir>/audit.log`, so tests
    /// and benchmarks can count what a client sent, e.g. "no writes on restart".
    pub audit: bool,
    /// Start Ory Hydra as the cluster's OpenID Connect provider and have kube-apiserver trust it.
    pub identity: Option<IdentityOptions>,
}

impl Options {
    /// A fresh directory under the system temp dir, attached processes, removed on drop.
    pub fn for_tests() -> Result<Self> {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("atlantiplex-devcluster-{}-{n}", std::process::id()));
        Ok(Self {
            dir,
            tools_bin: tools_bin()?,
            lifetime: Lifetime::Attached,
            keep: false,
            audit: true,
            identity: None,
        })
    }
}

/// The binaries directory: `$ATLANTIPLEX_TOOLS_BIN`, else the build script's default cache.
pub fn tools_bin() -> Result<PathBuf> {
    let bin = match std::env::var_os("ATLANTIPLEX_TOOLS_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = match std::env::var_os("ATLANTIPLEX_TOOLS_CACHE") {
                Some(dir) => PathBuf::from(dir),
                None => {
                    PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/atlantiplex-tools")
                }
            };
            cache.join("bin")
        }
    };
    for tool in ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"] {
        if !bin.join(tool).exists() {
            bail!(
                "{} not found in {}: build the control plane first with `hack/build-tools.sh` (or `make tools`)",
                tool,
                bin.display()
            );
        }
    }
    Ok(bin)
}

/// What a running control plane offers its users; shared between owned and per-binary planes.
#[derive(Clone, Debug)]
pub struct ControlPlaneInfo {
    pub dir: PathBuf,
    pub server: String,
    /// Admin (system:masters) kubeconfig.
    pub kubeconfig: PathBuf,
    pub tools_bin: PathBuf,
    /// The OpenID Connect provider, when started ([`Options::identity`]).
    pub identity: Option<IdentityInfo>,
}

impl ControlPlaneInfo {
    /// The audit log (see [`Options::audit`]).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Requests in the audit log made by `user` with one of `verbs`.
    pub fn audited_requests(&self, user: &str, verbs: &[&str]) -> Result<usize> {
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["user"]["username"] == user && verbs.iter().any(|v| e["verb"] == *v))
            .count())
    }

    /// Requests by `user` that change state: write verbs, except the review APIs (a
    /// SelfSubjectReview is a "create" that stores nothing).
    pub fn audited_state_changes(&self, user: &str) -> Result<usize> {
        self.audited_state_changes_except(user, &[])
    }

    /// Like `audited_state_changes`, leaving out writes to the given resources.
    pub fn audited_state_changes_except(&self, user: &str, resources: &[&str]) -> Result<usize> {
        const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
        const REVIEWS: [&str; 4] =
            ["selfsubjectreviews", "tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews"];
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["user"]["username"] == user && WRITES.iter().any(|v| e["verb"] == *v))
            .filter(|e| !REVIEWS.iter().chain(resources).any(|r| e["objectRef"]["resource"] == *r))
            .count())
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The CA (PEM) that signed the client certificate the apiserver presents to admission
    /// webhooks: what a webhook trusts to know a review came from the apiserver
    /// (`--webhook-client-ca`). Not the cluster CA, which signs every user's certificate.
    pub fn admission_client_ca(&self) -> PathBuf {
        self.pki_dir().join(ADMISSION_CLIENT_CA)
    }

    /// The apiserver's admission client certificate and key (PEM files), for a client that
    /// must call a webhook as the apiserver does (the admission benchmark).
    pub fn admission_client_cert(&self) -> (PathBuf, PathBuf) {
        (self.pki_dir().join(ADMISSION_CLIENT_CERT), self.pki_dir().join(ADMISSION_CLIENT_KEY))
    }

    /// A new admin client. Create one per test: a client is bound to the tokio runtime it
    /// first runs on, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from(&self.kubeconfig).await
    }

    /// A client authenticated as `user` in `groups` by a client certificate.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        client_from(&self.mint_kubeconfig(user, groups)?).await
    }

    /// Writes `<dir>/users/<user>.kubeconfig` for a non-admin identity and returns its path.
    pub fn mint_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<PathBuf> {
        let ca = Ca::load(&self.pki_dir())?;
        let cert = ca.client(user, groups)?;
        let dir = self.dir.join("users");
        std::fs::create_dir_all(&dir)?;
        let safe_name: String =
            user.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{safe_name}.kubeconfig"));
        kubeconfig::write(&path, &self.server, &ca.pair.cert_pem, user, &cert)?;
        Ok(path)
    }

    /// `kubectl` against this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.tools_bin.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }
}

pub async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// A running control plane owned by the caller; stopped and removed on drop.
pub struct ControlPlane {
    info: ControlPlaneInfo,
    procs: Vec<Proc>,
    keep: bool,
    /// How kube-apiserver was started, to start it again (`restart_apiserver`).
    apiserver_args: Vec<std::ffi::OsString>,
    lifetime: Lifetime,
}

impl std::ops::Deref for ControlPlane {
    type Target = ControlPlaneInfo;
    fn deref(&self) -> &ControlPlaneInfo {
        &self.info
    }
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until the apiserver is
    /// ready, the `default` namespace exists and the controller manager is working. Retries on
    /// a port lost to another process between choosing it and binding it.
    pub async fn start(opts: Options) -> Result<Self> {
        let mut last_err = None;
        for attempt in 1..=START_ATTEMPTS {
            match Self::start_once(&opts).await {
                Ok(plane) => return Ok(plane),
                Err(err) => {
                    tracing::warn!(attempt, error = %format!("{err:#}"), "control plane start failed");
                    last_err = Some(err);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("control plane did not start")))
    }

    /// The processes' pids, for `devcluster down` after a detached start.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Leaves the processes running and the directory in place (detached mode).
    pub fn into_detached(mut self) -> ControlPlaneInfo {
        self.procs.clear();
        self.keep = true;
        self.info.clone()
    }

    async fn start_once(opts: &Options) -> Result<Self> {
        if opts.dir.exists() {
            std::fs::remove_dir_all(&opts.dir).with_context(|| format!("clearing {}", opts.dir.display()))?;
        }
        let pki_dir = opts.dir.join("pki");
        let log_dir = opts.dir.join("logs");
        std::fs::create_dir_all(&pki_dir)?;
        std::fs::create_dir_all(&log_dir)?;

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let bin = &opts.tools_bin;

        let ca = Ca::generate()?;
        ca.write(&pki_dir)?;
        let serving = ca.serving(
            "kube-apiserver",
            &["localhost", "127.0.0.1", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )?;
        write_private(&pki_dir.join("apiserver.crt"), &serving.cert_pem)?;
        write_private(&pki_dir.join("apiserver.key"), &serving.key_pem)?;
        let sa = pki::service_account_keys()?;
        write_private(&pki_dir.join("sa.pub"), &sa.cert_pem)?;
        write_private(&pki_dir.join("sa.key"), &sa.key_pem)?;
        // The apiserver's identity towards admission webhooks, from a CA of its own: a webhook
        // trusting the cluster CA would take any user's client certificate for the apiserver.
        let admission_ca = Ca::generate_named("atlantiplex-devcluster-admission-client-ca")?;
        write_private(&pki_dir.join(ADMISSION_CLIENT_CA), &admission_ca.pair.cert_pem)?;
        let admission_client = admission_ca.client("kube-apiserver-admission", &[])?;
        write_private(&pki_dir.join(ADMISSION_CLIENT_CERT), &admission_client.cert_pem)?;
        write_private(&pki_dir.join(ADMISSION_CLIENT_KEY), &admission_client.key_pem)?;
        let admission_config = write_admission_config(&opts.dir, &admission_client)?;
        let admin = ca.client("atlantiplex-admin", &["system:masters"])?;
        let kubeconfig_path = opts.dir.join("kubeconfig");
        kubeconfig::write(&kubeconfig_path, &server, &ca.pair.cert_pem, "atlantiplex-admin", &admin)?;

        let mut plane = Self {
            info: ControlPlaneInfo {
                dir: opts.dir.clone(),
                server: server.clone(),
                kubeconfig: kubeconfig_path.clone(),
                tools_bin: bin.clone(),
                identity: None,
            },
            procs: Vec::new(),
            keep: opts.keep,
            apiserver_args: Vec::new(),
            lifetime: opts.lifetime,
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let mut etcd = Command::new(bin.join("etcd"));
        etcd.args([
            "--name=atlantiplex-dev",
            &format!("--data-dir={}", opts.dir.join("etcd").display()),
            &format!("--listen-client-urls={etcd_url}"),
            &format!("--advertise-client-urls={etcd_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=atlantiplex-dev={peer_url}"),
            // A throwaway test store: durability is not worth the fsync latency.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        plane.procs.push(Proc::spawn("etcd", etcd, &log_dir, opts.lifetime)?);
        plane
            .wait_for("etcd accepting connections", |_| async move {
                Ok(tokio::net::TcpStream::connect(("127.0.0.1", etcd_port)).await.is_ok())
            })
            .await?;

        let authentication_config = match &opts.identity {
            None => None,
            Some(identity) => {
                let started = hydra::prepare(&opts.dir, &ca, identity, bin)?;
                plane.procs.push(Proc::spawn("hydra", started.command, &log_dir, opts.lifetime)?);
                let port = started.public_port;
                plane
                    .wait_for("hydra accepting connections", |_| async move {
                        Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok())
                    })
                    .await?;
                let path = hydra::write_authentication_config(&opts.dir, &started.info, identity)?;
                plane.info.identity = Some(started.info);
                Some(path)
            }
        };

        let pki = |f: &str| pki_dir.join(f).display().to_string();
        let mut apiserver = Command::new(bin.join("kube-apiserver"));
        apiserver.args([
            &format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            &format!("--secure-port={api_port}"),
            &format!("--tls-cert-file={}", pki("apiserver.crt")),
            &format!("--tls-private-key-file={}", pki("apiserver.key")),
            &format!("--client-ca-file={}", pki("ca.crt")),
            &format!("--service-account-key-file={}", pki("sa.pub")),
            &format!("--service-account-signing-key-file={}", pki("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=Node,RBAC",
            // No default route on these machines, and no kubelet to register endpoints for.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            &format!("--cert-dir={}", pki_dir.join("generated").display()),
            &format!("--admission-control-config-file={}", admission_config.display()),
        ]);
        if let Some(path) = &authentication_config {
            apiserver.arg(format!("--authentication-config={}", path.display()));
        }
        if opts.audit {
            let policy = opts.dir.join("audit-policy.yaml");
            std::fs::write(
                &policy,
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n",
            )?;
            apiserver.args([
                format!("--audit-policy-file={}", policy.display()),
                format!("--audit-log-path={}", opts.dir.join("audit.log").display()),
                "--audit-log-mode=blocking".to_string(),
            ]);
        }
        plane.apiserver_args = apiserver.get_args().map(|a| a.to_owned()).collect();
        plane.procs.push(Proc::spawn("kube-apiserver", apiserver, &log_dir, opts.lifetime)?);
        plane
            .wait_for("kube-apiserver /readyz", |kubeconfig| async move {
                let Ok(client) = client_from(&kubeconfig).await else {
                    return Ok(false);
                };
                let request = http::Request::get("/readyz").body(Vec::new())?;
                Ok(client.request_text(request).await.is_ok_and(|body| body.trim() == "ok"))
            })
            .await?;
        plane
            .wait_for("namespace default", |kubeconfig| async move {
                let client = client_from(&kubeconfig).await?;
                Ok(Api::<Namespace>::all(client).get_opt("default").await.ok().flatten().is_some())
            })
            .await?;

        let mut kcm = Command::new(bin.join("kube-controller-manager"));
        kcm.args([
            &format!("--kubeconfig={}", kubeconfig_path.display()),
            "--leader-elect=false",
            // The controllers a kubelet-less cluster needs: namespace deletion, garbage
            // collection, default service accounts, quota usage (quota admission needs it) and
            // the aggregation that fills the built-in admin/edit/view ClusterRoles.
            "--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,resourcequota-controller,clusterrole-aggregation-controller",
            // Serving is not needed, and a fixed default port would stop two planes at once.
            "--secure-port=0",
            &format!("--root-ca-file={}", pki("ca.crt")),
            &format!("--service-account-private-key-file={}", pki("sa.key")),
        ]);
        plane.procs.push(Proc::spawn("kube-controller-manager", kcm, &log_dir, opts.lifetime)?);
        plane
            .wait_for("kube-controller-manager (default service account)", |kubeconfig| async move {
                let client = client_from(&kubeconfig).await?;
                let accounts = Api::<ServiceAccount>::namespaced(client, "default");
                Ok(accounts.get_opt("default").await.ok().flatten().is_some())
            })
            .await?;
        Ok(plane)
    }

    /// Stops kube-apiserver, keeps it down for `down`, and starts it again on the same port and
    /// etcd. Clients' watches break, and resuming them asks the new server for a resourceVersion
    /// its fresh watch cache does not hold (410 Gone, "too old resource version"): the expiry a
    /// long-running cluster produces now and then, on demand.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<()> {
        let index = self
            .procs
            .iter()
            .position(|p| p.name.starts_with("kube-apiserver"))
            .context("kube-apiserver is not running")?;
        self.procs[index].kill();
        tokio::time::sleep(down).await;
        let mut apiserver = Command::new(self.info.tools_bin.join("kube-apiserver"));
        apiserver.args(&self.apiserver_args);
        let log_dir = self.info.dir.join("logs");
        self.procs[index] = Proc::spawn("kube-apiserver-restarted", apiserver, &log_dir, self.lifetime)?;
        self.wait_for("kube-apiserver /readyz after its restart", |kubeconfig| async move {
            let Ok(client) = client_from(&kubeconfig).await else {
                return Ok(false);
            };
            let request = http::Request::get("/readyz").body(Vec::new())?;
            Ok(client.request_text(request).await.is_ok_and(|body| body.trim() == "ok"))
        })
        .await
    }

    /// Polls `ready` until it is true, failing early when any process has exited.
    async fn wait_for<F, Fut>(&mut self, what: &str, ready: F) -> Result<()>
    where
        F: Fn(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + START_TIMEOUT;
        let log_dir = self.info.dir.join("logs");
        loop {
            for proc in &mut self.procs {
                proc.ensure_running(&log_dir)?;
            }
            if ready(self.info.kubeconfig.clone()).await.unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {START_TIMEOUT:?} waiting for {what}; logs in {}", log_dir.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Reverse start order: controllers, then the apiserver, then its store.
        for proc in self.procs.iter_mut().rev() {
            proc.kill();
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.info.dir);
        }
    }
}

/// Writes the AdmissionConfiguration that makes the apiserver present `client` to every
/// validating and mutating webhook, and returns its path (`--admission-control-config-file`).
fn write_admission_config(dir: &Path, client: &pki::CertPair) -> Result<PathBuf> {
    let kubeconfig = dir.join("admission-kubeconfig");
    kubeconfig::write_webhook_client(&kubeconfig, client)?;
    let webhook = |plugin: &str| {
        serde_json::json!({
            "name": plugin,
            "configuration": {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "WebhookAdmissionConfiguration",
                "kubeConfigFile": kubeconfig,
            },
        })
    };
    let config = serde_json::json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [webhook("ValidatingAdmissionWebhook"), webhook("MutatingAdmissionWebhook")],
    });
    let path = dir.join("admission-config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(path)
}

/// Starts `cmd` in its own session, outliving the caller (`devcluster up`), logging to
/// `<log_dir>/<name>.log`; returns its pid.
pub fn spawn_detached(name: &'static str, cmd: Command, log_dir: &Path) -> Result<u32> {
    let proc = Proc::spawn(name, cmd, log_dir, Lifetime::Detached)?;
    Ok(proc.child.id())
}

/// Polls `check` until it returns true; panics (failing the test) after 60 s. For tests that
/// wait for a controller to converge: they assert the outcome, never a duration.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
