//! Helpers of the Helm chart test: helm itself, rendered manifests, the operator started from
//! the chart's Deployment under the chart's ServiceAccount, and what the audit log says it did.

use crate::support::Harness;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/atlantiplex-operator");
pub const NAMESPACE: &str = "atlantiplex-system";
pub const RELEASE: &str = "atlantiplex";
pub const SERVICE_ACCOUNT: &str = "atlantiplex-operator";
/// helm built from Go modules reports Kubernetes v1.20 to `helm template` unless told.
pub const KUBE_VERSION: &str = "1.36.3";
/// Flags the chart renders for features other branches add; dropped when this binary lacks them.
const UPCOMING_FLAGS: [&str; 4] = ["--leader-election", "--stripe-secret", "--audit-retention-days", "--database-url"];

/// helm against the test control plane, with its own config and cache directories.
pub fn helm(h: &Harness, args: &[&str]) -> Output {
    let home = h.plane.dir.join("helm");
    Command::new(h.plane.tools_bin.join("helm"))
        .env("KUBECONFIG", &h.plane.kubeconfig)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(args)
        .output()
        .expect("helm runs")
}

pub fn helm_ok(h: &Harness, args: &[&str]) -> String {
    let out = helm(h, args);
    assert!(out.status.success(), "helm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` of the chart with extra arguments (values files, --set).
pub fn render(h: &Harness, namespace: &str, extra: &[&str]) -> String {
    let mut args = vec!["template", RELEASE, CHART, "-n", namespace, "--kube-version", KUBE_VERSION];
    args.extend_from_slice(extra);
    helm_ok(h, &args)
}

/// Every document of a multi-document YAML stream, as JSON values (empty documents skipped).
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifest"))
}

/// Polls `check` until it holds (at most 60 s).
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A kubeconfig holding a token of the chart's ServiceAccount (TokenRequest API), so the
/// operator runs with exactly the chart's RBAC, as it would in a pod.
pub fn service_account_kubeconfig(h: &Harness) -> PathBuf {
    let token = h.kubectl_ok(&["create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=2h"]);
    let admin: Value = serde_yaml::from_str(&std::fs::read_to_string(&h.plane.kubeconfig).expect("admin kubeconfig"))
        .expect("kubeconfig YAML");
    let ca = admin["clusters"][0]["cluster"]["certificate-authority-data"].as_str().expect("CA data");
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "plane", "cluster": { "server": h.plane.server, "certificate-authority-data": ca } }],
        "users": [{ "name": SERVICE_ACCOUNT, "user": { "token": token.trim() } }],
        "contexts": [{ "name": "operator", "context": { "cluster": "plane", "user": SERVICE_ACCOUNT } }],
        "current-context": "operator",
    });
    let path = h.plane.dir.join("users").join("chart-operator.kubeconfig");
    std::fs::create_dir_all(path.parent().expect("users dir")).expect("users dir");
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).expect("kubeconfig")).expect("write kubeconfig");
    path
}

/// The operator binary run as the chart's Deployment would run it: its container's args and
/// env, with only the API server credentials, the listen addresses (loopback, the webhook's
/// documented development override) and the SQLite path (a volume in the pod) replaced.
/// Killed when dropped.
pub struct ChartOperator {
    child: std::process::Child,
    pub log: PathBuf,
}

impl ChartOperator {
    pub fn start(h: &Harness, manifest: &str, log_name: &str) -> Self {
        let docs = documents(manifest);
        let container = &find(&docs, "Deployment", "atlantiplex-operator")["spec"]["template"]["spec"]["containers"][0];
        let binary = env!("CARGO_BIN_EXE_atlantiplex-operator");
        let help = Command::new(binary).args(["run", "--help"]).output().expect("operator --help");
        let known: BTreeSet<String> =
            String::from_utf8_lossy(&help.stdout).split_whitespace().map(|w| w.trim_end_matches(',').into()).collect();
        let overridden = ["--kubeconfig", "--webhook-bind", "--webhook-url", "--metrics-bind", "--usage-bind"];
        let mut args = Vec::new();
        for arg in container["args"].as_array().expect("container args") {
            let arg = arg.as_str().expect("string arg").to_string();
            let flag = arg.split('=').next().unwrap_or_default();
            if overridden.contains(&flag) {
                continue;
            }
            if flag == "--webhook-client-ca" {
                // The CA file is the mounted Secret in a pod; here, the plane's file it was made from.
                assert!(arg.starts_with("--webhook-client-ca=/etc/atlantiplex/webhook-client-ca/"), "{arg}");
                args.push(format!("--webhook-client-ca={}", h.plane.admission_client_ca().display()));
                continue;
            }
            if UPCOMING_FLAGS.contains(&flag) && !known.contains(flag) {
                eprintln!("not passing {arg}: this operator binary has no {flag} yet");
                continue;
            }
            args.push(arg);
        }
        let (webhook, metrics) = (h.webhook_port(), h.metrics_port());
        args.push(format!("--kubeconfig={}", service_account_kubeconfig(h).display()));
        args.push(format!("--webhook-bind=127.0.0.1:{webhook}"));
        args.push(format!("--webhook-url=https://127.0.0.1:{webhook}"));
        args.push(format!("--metrics-bind=127.0.0.1:{metrics}"));
        // The pod's 0.0.0.0:8444 may be taken on a shared machine: a free loopback port, as for the others.
        args.push(format!("--usage-bind=127.0.0.1:{}", h.usage_port()));

        let mut cmd = Command::new(binary);
        // Only the pod's environment: nothing of the test's (KUBECONFIG, ATLANTIPLEX_*) leaks in.
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).args(&args);
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().expect("env name");
            let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
                (Value::String(v), _) if name == "DATABASE_URL" && v.starts_with("sqlite://") => {
                    format!("sqlite://{}?mode=rwc", h.plane.dir.join("chart-ledger.db").display())
                }
                (Value::String(v), _) => v.clone(),
                (_, Value::String(path)) if path == "metadata.namespace" => NAMESPACE.into(),
                (_, Value::String(path)) if path == "metadata.name" => "atlantiplex-operator-local-0".into(),
                _ => panic!("env {name}: source not reproduced by the test: {var}"),
            };
            cmd.env(name, value);
        }
        let log = h.logs().join(log_name);
        std::fs::create_dir_all(h.logs()).expect("log dir");
        let file = std::fs::File::create(&log).expect("operator log");
        let child = cmd.stdout(file.try_clone().expect("log handle")).stderr(file).spawn().expect("operator starts");
        let mut operator = Self { child, log };
        operator.wait_ready(h);
        operator
    }

    /// Until /readyz answers 200; the log tells why when the process exits or times out.
    fn wait_ready(&mut self, h: &Harness) {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", h.metrics_port())).is_ok_and(|mut s| {
                let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                reply.starts_with("HTTP/1.1 200")
            });
            if ready {
                return;
            }
            let exited = self.child.try_wait().expect("operator status");
            if exited.is_some() || std::time::Instant::now() > deadline {
                panic!("the operator did not become ready ({exited:?}):\n{}", self.log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChartOperator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("operator log (last 40 lines, newest first):\n{}", tail.join("\n"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (API group, resource[/subresource], verb).
pub type Permission = (String, String, String);

/// Roles the chart ships for others to bind, never bound to the operator: usage reporters' (workloads in
/// tenant namespaces, docs/metering.md).
const NOT_THE_OPERATORS: [&str; 1] = ["atlantiplex-usage-reporter"];

/// Every permission the chart's ClusterRole and Role grant the operator, one triple per verb and resource.
pub fn granted(docs: &[Value]) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    let operators = |d: &&Value| !NOT_THE_OPERATORS.iter().any(|name| d["metadata"]["name"] == *name);
    for role in docs.iter().filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role").filter(operators) {
        for rule in role["rules"].as_array().into_iter().flatten() {
            for group in rule["apiGroups"].as_array().into_iter().flatten() {
                for resource in rule["resources"].as_array().into_iter().flatten() {
                    for verb in rule["verbs"].as_array().into_iter().flatten() {
                        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        out.insert((s(group), s(resource), s(verb)));
                    }
                }
            }
        }
    }
    out
}

/// What `user` did according to the API server's audit log: the permissions its allowed
/// requests used, and a line for each request RBAC refused.
pub fn audited(h: &Harness, user: &str) -> (BTreeSet<Permission>, Vec<String>) {
    let text = std::fs::read_to_string(h.plane.audit_log()).unwrap_or_default();
    let mut used = BTreeSet::new();
    let mut forbidden = Vec::new();
    for event in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if event["user"]["username"] != user || event["stage"] != "ResponseComplete" {
            continue;
        }
        let object = &event["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or_default().to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let group = object["apiGroup"].as_str().unwrap_or_default().to_string();
        let verb = event["verb"].as_str().unwrap_or_default().to_string();
        if event["annotations"]["authorization.k8s.io/decision"] == "forbid" {
            forbidden.push(format!("{verb} {group}/{resource} {}", event["requestURI"]));
        } else {
            // A server-side apply that creates is audited as a patch answered 201, and was
            // authorized as a create too.
            if verb == "patch" && event["responseStatus"]["code"] == 201 {
                used.insert((group.clone(), resource.clone(), "create".to_string()));
            }
            used.insert((group, resource, verb));
        }
    }
    (used, forbidden)
}
