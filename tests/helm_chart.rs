//! The Helm chart against the real control plane: lint, render, server-side dry-run, schema
//! errors; then `helm install`, the operator running with the chart's ServiceAccount token (so
//! the chart's RBAC is what is exercised), tenants provisioned, the webhook deciding, `helm
//! upgrade` and `helm uninstall` keeping every tenant.

#[path = "helm_chart/chart.rs"]
mod chart;
mod support;

use chart::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use support::{Harness, ROOT, assert_denied_by};

fn harness() -> Harness {
    Harness { plane: devcluster::shared().expect("control plane") }
}

const CI_VALUES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/atlantiplex-operator/ci/cert-manager-values.yaml");

/// Stand-ins for the cert-manager and Prometheus Operator CRDs (any fields accepted), so the
/// dry-run can check everything else the cert-manager values render.
const STUB_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: certificates.cert-manager.io }
spec:
  group: cert-manager.io
  scope: Namespaced
  names: { plural: certificates, singular: certificate, kind: Certificate }
  versions: [{ name: v1, served: true, storage: true, schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } } }]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: issuers.cert-manager.io }
spec:
  group: cert-manager.io
  scope: Namespaced
  names: { plural: issuers, singular: issuer, kind: Issuer }
  versions: [{ name: v1, served: true, storage: true, schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } } }]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: servicemonitors.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor }
  versions: [{ name: v1, served: true, storage: true, schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } } }]
"#;

#[test]
fn chart_lints_renders_and_passes_the_api_servers_dry_run() {
    let h = harness();
    helm_ok(&h, &["lint", CHART]);
    helm_ok(&h, &["lint", CHART, "-f", CI_VALUES]);

    h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{CHART}/crds/")]);
    let out = h.kubectl_stdin(&["apply", "--server-side", "-f", "-"], STUB_CRDS);
    assert!(out.status.success(), "stub CRDs: {}", String::from_utf8_lossy(&out.stderr));
    h.kubectl_ok(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    let namespace = "atlantiplex-dryrun";
    let out = h.kubectl(&["create", "namespace", namespace]);
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"));
    for values in [&[][..], &["-f", CI_VALUES][..]] {
        let rendered = render(&h, namespace, values);
        // Server-side apply: one atomic request per object, so a Plan that the parallel install
        // test creates meanwhile is no "already exists" race (client-side apply gets, then creates).
        let args = ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"];
        let out = h.kubectl_stdin(&args, &rendered);
        assert!(
            out.status.success(),
            "server-side dry-run of the chart with {values:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Bad values fail at install time, naming the value.
    let bad = |name: &str, yaml: &str| {
        let path = h.plane.dir.join(name);
        std::fs::write(&path, yaml).expect("write values");
        path.display().to_string()
    };
    let replicas = bad("bad-replicas.yaml", "replicaCount: two\n");
    for command in ["lint", "template"] {
        let out = helm(&h, &[command, CHART, "-f", &replicas]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "helm {command} accepted replicaCount: two");
        assert!(text.contains("at '/replicaCount': got string, want integer"), "helm {command}: {text}");
    }
    let mode = bad("bad-database.yaml", "database: { mode: mysql }\n");
    let out = helm(&h, &["template", RELEASE, CHART, "--kube-version", KUBE_VERSION, "-f", &mode]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("at '/database/mode': value must be one of 'sqlite', 'postgres'"),
        "{text}"
    );
    let postgres = bad("bad-postgres.yaml", "database: { mode: postgres }\n");
    let out = helm(&h, &["template", RELEASE, CHART, "--kube-version", KUBE_VERSION, "-f", &postgres]);
    assert!(!out.status.success(), "postgres without a Secret was accepted");
}

#[test]
fn the_tenant_api_runs_apart_read_only_and_shares_the_hashing_key_with_the_operator() {
    let h = harness();
    // PostgreSQL (the CI values): two replicas and a PodDisruptionBudget.
    let docs = documents(&render(&h, NAMESPACE, &["-f", CI_VALUES]));
    let api = find(&docs, "Deployment", API);
    let operator = find(&docs, "Deployment", "atlantiplex-operator");
    assert_eq!(api["spec"]["replicas"], 2, "{api}");
    let pdb = find(&docs, "PodDisruptionBudget", API);
    assert_eq!(pdb["spec"]["selector"], api["spec"]["selector"]);
    assert!(pdb["spec"]["maxUnavailable"] == 1 || pdb["spec"]["minAvailable"] == 1, "{pdb}");

    // Pods of their own: the operator's selector (its webhook Service, PDB and NetworkPolicy select
    // the same labels) matches none of them, and the API's Service selects exactly them.
    let pod = &api["spec"]["template"];
    let labels = pod["metadata"]["labels"].as_object().expect("pod labels");
    let operators = operator["spec"]["selector"]["matchLabels"].as_object().expect("operator selector");
    assert!(!operators.iter().all(|(k, v)| labels.get(k) == Some(v)), "the operator's selector matches the API's pods");
    let service = find(&docs, "Service", API);
    assert_eq!(service["spec"]["selector"], api["spec"]["selector"]["matchLabels"]);
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    let container = &pod["spec"]["containers"][0];
    let target = &service["spec"]["ports"][0]["targetPort"];
    let port = container["ports"].as_array().into_iter().flatten().find(|p| p["name"] == *target).expect("target port");
    assert_eq!(port["containerPort"], 8443);
    assert_eq!(container["args"][0], "api");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }

    // The operator's security context: non-root, read-only root file system, no capabilities.
    let operator_pod = &operator["spec"]["template"]["spec"];
    assert_eq!(pod["spec"]["securityContext"], operator_pod["securityContext"]);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"], operator_pod["containers"][0]["securityContext"]);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));

    // Its own ServiceAccount, bound to one read-only ClusterRole: no write verb on anything but the
    // two questions (TokenReview, SubjectAccessReview) that authenticate callers with a token.
    assert_eq!(pod["spec"]["serviceAccountName"], API);
    find(&docs, "ServiceAccount", API);
    let subject = serde_json::json!({"kind": "ServiceAccount", "name": API, "namespace": NAMESPACE});
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
        .filter(|d| d["subjects"].as_array().is_some_and(|s| s.contains(&subject)))
        .collect();
    assert_eq!(bindings.len(), 1, "the API's ServiceAccount is bound more than once: {bindings:?}");
    assert_eq!(bindings[0]["kind"], "ClusterRoleBinding");
    assert_eq!(bindings[0]["roleRef"]["name"], API);
    let role = find(&docs, "ClusterRole", API);
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(!rule[field].as_array().expect(field).contains(&"*".into()), "a wildcard in {rule}");
        }
    }
    let permissions = rules_of(&[role]);
    let writes: Vec<&Permission> = permissions
        .iter()
        .filter(|(_, _, verb)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .filter(|(group, resource, verb)| {
            !matches!(
                (group.as_str(), resource.as_str(), verb.as_str()),
                ("authentication.k8s.io", "tokenreviews", "create")
                    | ("authorization.k8s.io", "subjectaccessreviews", "create")
            )
        })
        .collect();
    assert!(writes.is_empty(), "the tenant API's ClusterRole allows writes: {writes:?}");
    let reads: BTreeSet<&str> = permissions.iter().filter(|p| p.2 == "watch").map(|p| p.1.as_str()).collect();
    assert_eq!(reads, BTreeSet::from(["organizations", "plans", "subscriptions", "teams"]));

    // The hashing key: one Secret (48 random characters), mounted read-only into both Deployments
    // and passed to both; and both on the same ledger.
    let secret = find(&docs, "Secret", KEY_HASH_SECRET);
    assert_eq!(secret["data"]["key"].as_str().map(str::len), Some(64), "48 characters, base64: {secret}");
    assert_eq!(secret["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    for deployment in [api, operator] {
        assert_mounts_the_hashing_key(deployment, KEY_HASH_SECRET, "key");
    }
    assert_eq!(database_env(api), database_env(operator));

    // SQLite (the default values): one replica on the operator's volume, hence no PDB.
    let docs = documents(&render(&h, NAMESPACE, &[]));
    let api = find(&docs, "Deployment", API);
    assert_eq!(api["spec"]["replicas"], 1, "{api}");
    assert!(!docs.iter().any(|d| d["kind"] == "PodDisruptionBudget" && d["metadata"]["name"] == API));
    let volumes = &api["spec"]["template"]["spec"]["volumes"];
    let claim = serde_json::json!({"claimName": "atlantiplex-operator-data"});
    assert!(volumes.as_array().expect("volumes").iter().any(|v| v["persistentVolumeClaim"] == claim), "{volumes}");
    assert_eq!(database_env(api), database_env(find(&docs, "Deployment", "atlantiplex-operator")));
    for deployment in [api, find(&docs, "Deployment", "atlantiplex-operator")] {
        assert_mounts_the_hashing_key(deployment, KEY_HASH_SECRET, "key");
    }

    // More than one API replica on SQLite is refused, naming both fixes.
    let out = helm(&h, &["template", RELEASE, CHART, "--kube-version", KUBE_VERSION, "--set", "api.replicas=2"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "api.replicas=2 on SQLite was accepted");
    assert!(text.contains("api.replicas=2 needs the PostgreSQL ledger") && text.contains("api.replicas=1"), "{text}");

    // The user's own Secret: none rendered, both mount that one under its key.
    let own = ["-f", CI_VALUES, "--set", "api.keyHashSecret.existingSecret=my-hash-key,api.keyHashSecret.key=hmac"];
    let docs = documents(&render(&h, NAMESPACE, &own));
    assert!(!docs.iter().any(|d| d["kind"] == "Secret" && d["metadata"]["name"] == KEY_HASH_SECRET));
    for name in [API, "atlantiplex-operator"] {
        assert_mounts_the_hashing_key(find(&docs, "Deployment", name), "my-hash-key", "hmac");
    }

    // Without the API the operator still has the key (its ApiKey controller issues keys).
    let docs = documents(&render(&h, NAMESPACE, &["--set", "api.enabled=false"]));
    assert!(!docs.iter().any(|d| d["metadata"]["name"] == API), "an API object with api.enabled=false");
    assert_mounts_the_hashing_key(find(&docs, "Deployment", "atlantiplex-operator"), KEY_HASH_SECRET, "key");
}

/// The Deployment's pod mounts data key `key` of Secret `secret` read-only as the file
/// `--api-key-hash-key-file` names.
fn assert_mounts_the_hashing_key(deployment: &Value, secret: &str, key: &str) {
    let name = &deployment["metadata"]["name"];
    let spec = &deployment["spec"]["template"]["spec"];
    let volume = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["secret"]["secretName"] == secret)
        .unwrap_or_else(|| panic!("{name} has no volume of Secret {secret}"));
    assert_eq!(volume["secret"]["items"], serde_json::json!([{"key": key, "path": "key"}]), "{name}");
    let container = &spec["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == volume["name"])
        .unwrap_or_else(|| panic!("{name} does not mount {secret}"));
    let (dir, file) = KEY_HASH_FILE.rsplit_once('/').expect("a path");
    assert_eq!(
        (mount["mountPath"].as_str(), mount["readOnly"].as_bool(), file),
        (Some(dir), Some(true), "key"),
        "{name}"
    );
    let flag = Value::from(format!("--api-key-hash-key-file={KEY_HASH_FILE}"));
    assert!(container["args"].as_array().expect("args").contains(&flag), "{name} lacks {flag}");
}

/// The DATABASE_URL variable of the Deployment's container.
fn database_env(deployment: &Value) -> Value {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
    env.into_iter().find(|e| e["name"] == "DATABASE_URL").expect("DATABASE_URL")
}

/// `helm template` of the chart alone, without a control plane (rendering needs none): the
/// tools' helm with config and cache directories of its own.
fn helm_template(extra: &[&str]) -> std::process::Output {
    let bin = devcluster::tools_bin().expect("tools (make tools)");
    let home = std::env::temp_dir().join(format!("atlantiplex-helm-template-{}", std::process::id()));
    std::process::Command::new(bin.join("helm"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(["template", RELEASE, CHART, "-n", NAMESPACE, "--kube-version", KUBE_VERSION])
        .args(extra)
        .output()
        .expect("helm runs")
}

#[test]
fn web_sign_in_values_render_the_oidc_flags_and_mounts_only_with_an_issuer() {
    let api_container = |extra: &[&str]| -> Value {
        let out = helm_template(extra);
        assert!(out.status.success(), "helm template {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let docs = documents(&String::from_utf8_lossy(&out.stdout));
        find(&docs, "Deployment", API)["spec"]["template"]["spec"].clone()
    };
    let args = |spec: &Value| -> Vec<String> {
        let args = spec["containers"][0]["args"].as_array().expect("args");
        args.iter().map(|a| a.as_str().expect("string arg").to_string()).collect()
    };
    let flag = |args: &[String], name: &str| -> Option<String> {
        args.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from))
    };
    // The volume mounted read-only at the flag's file's directory, holding `key` as that file.
    let mounted = |spec: &Value, file: &str, key: &str| -> Value {
        let (dir, name) = file.rsplit_once('/').expect("a path");
        let mounts = spec["containers"][0]["volumeMounts"].as_array().expect("volumeMounts");
        let mount = mounts.iter().find(|m| m["mountPath"] == dir).unwrap_or_else(|| panic!("nothing mounted at {dir}"));
        assert_eq!(mount["readOnly"], true, "{mount}");
        let volumes = spec["volumes"].as_array().expect("volumes");
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume").clone();
        let source = if volume["secret"].is_object() { &volume["secret"] } else { &volume["configMap"] };
        assert_eq!(source["items"], serde_json::json!([{"key": key, "path": name}]), "{volume}");
        volume
    };

    let sign_in = [
        "--set",
        "api.signIn.issuer=https://idp.example/",
        "--set",
        "api.signIn.publicUrl=https://api.example",
        "--set",
        "api.signIn.clientSecret.existingSecret=console-oidc",
        "--set",
        "api.signIn.caConfigMap.name=idp-ca",
    ];
    let spec = api_container(&sign_in);
    let on = args(&spec);
    assert_eq!(flag(&on, "--oidc-issuer").as_deref(), Some("https://idp.example/"), "{on:?}");
    assert_eq!(flag(&on, "--public-url").as_deref(), Some("https://api.example"), "{on:?}");
    assert_eq!(flag(&on, "--oidc-client-id").as_deref(), Some("atlantiplex-console"), "{on:?}");
    // The binary's defaults stay the binary's: no --second-factor unless secondFactors is set.
    assert_eq!(flag(&on, "--second-factor"), None, "{on:?}");
    let secret_file = flag(&on, "--oidc-client-secret-file").expect("--oidc-client-secret-file");
    let secret = mounted(&spec, &secret_file, "client-secret");
    assert_eq!(secret["secret"]["secretName"], "console-oidc", "{secret}");
    let ca_file = flag(&on, "--oidc-ca-file").expect("--oidc-ca-file");
    let ca = mounted(&spec, &ca_file, "ca.crt");
    assert_eq!(ca["configMap"]["name"], "idp-ca", "{ca}");
    let factors = args(&api_container(&[&sign_in[..], &["--set", "api.signIn.secondFactors={otp,hwk}"]].concat()));
    assert_eq!(flag(&factors, "--second-factor").as_deref(), Some("otp,hwk"), "{factors:?}");

    // Without an issuer the whole block is off, even with the Secret and ConfigMap named.
    let spec = api_container(&sign_in[2..]);
    let off = args(&spec);
    let leaked: Vec<&String> = off
        .iter()
        .filter(|a| a.starts_with("--oidc") || a.starts_with("--public-url") || a.starts_with("--session-"))
        .collect();
    assert!(leaked.is_empty(), "sign-in flags without an issuer: {leaked:?}");
    let volumes = spec["volumes"].as_array().expect("volumes");
    assert!(
        !volumes.iter().any(|v| v["secret"]["secretName"] == "console-oidc" || v["configMap"]["name"] == "idp-ca"),
        "sign-in volumes without an issuer: {volumes:?}"
    );

    // An issuer without a public URL is refused, saying which value to set.
    let out = helm_template(&["--set", "api.signIn.issuer=https://idp.example/"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an issuer without api.signIn.publicUrl was accepted");
    assert!(text.contains("api.signIn.publicUrl is empty") && text.contains("/auth/callback"), "{text}");
}

#[test]
fn default_values_ship_the_plans_of_examples() {
    let h = harness();
    let specs = |yaml: &str| -> BTreeMap<String, Value> {
        documents(yaml)
            .into_iter()
            .filter(|d| d["kind"] == "Plan")
            .map(|d| (d["metadata"]["name"].as_str().expect("name").to_string(), d["spec"].clone()))
            .collect()
    };
    let examples = std::fs::read_to_string(format!("{ROOT}/examples/plans.yaml")).expect("examples/plans.yaml");
    let chart = specs(&render(&h, NAMESPACE, &[]));
    assert_eq!(chart, specs(&examples), "the chart's default Plans differ from examples/plans.yaml");
    assert_eq!(chart.len(), 5);
    let without_admin = specs(&render(&h, NAMESPACE, &["--set", "plans.admin.enabled=false"]));
    assert!(!without_admin.contains_key("admin") && without_admin.len() == 4);
}

#[test]
fn helm_install_provisions_tenants_under_the_charts_rbac_and_upgrade_and_uninstall_keep_them() {
    let h = harness();
    // The API server's admission client CA, as a platform engineer hands it to the chart; and
    // Prometheus' ServiceAccount, which the chart binds to its metrics-reader ClusterRole.
    let out = h.kubectl(&["create", "namespace", NAMESPACE]);
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"));
    let ca = format!("--from-file=ca.crt={}", h.plane.admission_client_ca().display());
    h.kubectl_ok(&["create", "secret", "generic", "webhook-client-ca", "-n", NAMESPACE, &ca]);
    let (api_tls_dir, api_ca) = api_tls_secret(&h);
    h.apply_ok("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: prometheus, namespace: monitoring}\n");
    let values = h.plane.dir.join("chart-test-values.yaml");
    std::fs::write(
        &values,
        "baseDomain: studio.test\nwebhook: {clientCA: {secretName: webhook-client-ca}}\n\
         metrics: {readers: [{kind: ServiceAccount, name: prometheus, namespace: monitoring}]}\n\
         api: {tls: {secretName: api-tls}}\n",
    )
    .expect("write values");
    let values = values.display().to_string();
    helm_ok(&h, &["install", RELEASE, CHART, "-n", NAMESPACE, "--create-namespace", "-f", &values]);
    let manifest = helm_ok(&h, &["get", "manifest", RELEASE, "-n", NAMESPACE]);
    let operator = ChartOperator::start(&h, &manifest, "chart-operator.log");

    // /metrics answers Prometheus' token (the operator reviews it with the chart's RBAC) and
    // nobody without one.
    let prometheus = h.kubectl_ok(&["create", "token", "prometheus", "-n", "monitoring", "--duration=1h"]);
    let scrape = support::http_get_with_token(h.metrics_port(), "/metrics", prometheus.trim()).unwrap_or_default();
    assert_eq!(support::status_of(&scrape), 200, "Prometheus scrapes /metrics:\n{scrape}");
    assert!(scrape.contains("atlantiplex_leader"), "{scrape}");
    let anonymous = support::http_get(h.metrics_port(), "/metrics").unwrap_or_default();
    assert_eq!(support::status_of(&anonymous), 401, "{anonymous}");

    // Tenants from examples/: each needs the chart's permissions to become Ready.
    for file in ["organization-acme.yaml", "organization-globex.yaml", "teams-globex.yaml"] {
        h.kubectl_ok(&["apply", "--server-side", "-f", &format!("{ROOT}/examples/{file}")]);
    }
    for (kind, name) in [("org", "acme"), ("org", "globex"), ("sub", "globex")] {
        h.wait_ready(kind, name);
    }
    h.kubectl_ok(&["wait", "--for=condition=Ready", "team", "--all", "--timeout=60s"]);
    assert_eq!(
        h.jsonpath(&["ingress", "atlantiplex-tenant", "-n", "org-acme"], "{.spec.rules[0].host}"),
        "acme.studio.test"
    );

    // Deletion paths: a member removed (its RoleBinding deleted), a team of a Retain
    // organization deleted (bindings deleted, quota zeroed), a team of a Delete organization
    // deleted (namespace deleted), a Retain organization deleted (access roles deleted).
    h.kubectl_ok(&["patch", "org", "acme", "--type=json", "-p", r#"[{"op":"remove","path":"/spec/members/2"}]"#]);
    wait_for("carol's viewer binding to go", || {
        !h.kubectl(&["get", "rolebinding", "atlantiplex-viewer", "-n", "org-acme"]).status.success()
    });
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: { name: acme.editing }\nspec: { organization: acme }\n");
    h.wait_ready("team", "acme.editing");
    h.kubectl_ok(&["delete", "team", "acme.editing", "--timeout=60s"]);
    h.kubectl_ok(&["delete", "team", "globex.sales", "--timeout=60s"]);
    h.apply_ok(&support::org_yaml("scratch", "scratch", ""));
    h.wait_ready("org", "scratch");
    h.kubectl_ok(&["delete", "org", "scratch", "--timeout=60s"]);
    wait_for("globex--sales to be deleted", || !h.kubectl(&["get", "ns", "globex--sales"]).status.success());
    assert!(h.kubectl(&["get", "ns", "acme--editing"]).status.success(), "a Retain team's namespace is kept");

    // The webhook answers, through the chart's Service name overridden by --webhook-url.
    let mallory = h.user("mallory", &[]);
    let own = support::org_yaml("mallory", "mallory", "").replace("mallory-owner", "mallory");
    let denied = String::from_utf8_lossy(&mallory.create(&own).stderr).into_owned();
    assert_denied_by(&denied, "signup-disabled", "self-service sign-up is off");
    let bob = h.user("bob@acme.example", &[]);
    let denied = bob.denied(&[
        "patch",
        "org",
        "acme",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/members/-","value":{"kind":"User","name":"zed","role":"Viewer"}}]"#,
    ]);
    assert_denied_by(&denied, "members-admins-only", "Owner or Admin");

    // The tenant API under its own ServiceAccount, beside the operator on one ledger. A key the
    // operator issues for an ApiKey (hashed with the chart's Secret) is known to the API (hashing
    // with the same Secret): acme's free plan has no API access, a check that follows the key's.
    let api = ChartApi::start(&h, &manifest, "chart-api.log", &api_tls_dir, &api_ca);
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: ApiKey\nmetadata: { name: acme-ci }\nspec: { organization: acme }\n");
    wait_for("the ApiKey's Secret", || {
        h.jsonpath(&["apikey", "acme-ci"], "{.status.secretName}") == "org-acme/apikey-acme-ci"
    });
    let key = secret_value(&h, "org-acme", "apikey-acme-ci", "key");
    let (status, reply) = api.get("/v1/organizations/acme", Some(&key));
    assert!(status == 403 && reply.contains("plan-api-access"), "acme's key:\n{reply}");
    // A Kubernetes token (the API reviews it: TokenReview, then SubjectAccessReview): Prometheus is
    // no member of acme.
    let (status, reply) = api.get("/v1/organizations/acme", Some(prometheus.trim()));
    assert!(status == 404 && reply.contains("unknown-organization"), "Prometheus' token:\n{reply}");
    // Deleting the ApiKey revokes the key (the operator's finalizer).
    h.kubectl_ok(&["delete", "apikey", "acme-ci", "--timeout=60s"]);
    drop(api);
    let api_user = format!("system:serviceaccount:{NAMESPACE}:{API}");
    let (used, forbidden) = audited(&h, &api_user);
    assert!(forbidden.is_empty(), "the chart's RBAC refused the tenant API:\n{}", forbidden.join("\n"));
    let questions = [("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")];
    for (group, resource) in questions {
        assert!(used.contains(&(group.into(), resource.into(), "create".into())), "the API never asked {resource}");
    }
    let writes: Vec<&Permission> = used
        .iter()
        .filter(|(g, r, v)| {
            !matches!(v.as_str(), "get" | "list" | "watch") && !questions.contains(&(g.as_str(), r.as_str()))
        })
        .collect();
    assert!(writes.is_empty(), "the tenant API wrote to the cluster: {writes:?}");
    let hashing_key = secret_value(&h, NAMESPACE, KEY_HASH_SECRET, "key");

    // helm upgrade: a Plan's quota and sign-up change; the operator restarts from the new
    // Deployment (a rollout); tenants are kept and re-mapped.
    drop(operator);
    helm_ok(
        &h,
        &[
            "upgrade",
            RELEASE,
            CHART,
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set-string",
            "plans.free.spec.quota.pods=25",
            "--set",
            "signup.enabled=true",
        ],
    );
    assert_eq!(h.jsonpath(&["plan", "free"], "{.spec.quota.pods}"), "25");
    // The hashing key survives the upgrade (lookup): every issued key stays valid.
    assert_eq!(
        secret_value(&h, NAMESPACE, KEY_HASH_SECRET, "key"),
        hashing_key,
        "helm upgrade replaced the hashing key"
    );
    let manifest = helm_ok(&h, &["get", "manifest", RELEASE, "-n", NAMESPACE]);
    let operator = ChartOperator::start(&h, &manifest, "chart-operator-upgraded.log");
    wait_for("acme's quota to follow the free Plan", || {
        h.jsonpath(&["resourcequota", "atlantiplex-quota", "-n", "org-acme"], "{.spec.hard.pods}") == "25"
    });
    let zoe = h.user("zoe", &[]);
    let created = zoe.create(&signup_yaml("zoe-studio"));
    assert!(created.status.success(), "sign-up after the upgrade: {}", String::from_utf8_lossy(&created.stderr));
    h.wait_ready("org", "zoe-studio");
    for org in ["acme", "globex"] {
        h.wait_ready("org", org);
    }

    // Every permission the chart grants was used (or is listed with the reason it is held),
    // and none the operator needed was missing.
    let user = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let (used, forbidden) = audited(&h, &user);
    assert!(forbidden.is_empty(), "the chart's RBAC refused the operator:\n{}", forbidden.join("\n"));
    for log in [&operator.log_text(), &std::fs::read_to_string(h.logs().join("chart-operator.log")).unwrap_or_default()]
    {
        assert!(!log.to_lowercase().contains("forbidden"), "forbidden in the operator log:\n{log}");
    }
    let unused: Vec<String> = granted(&documents(&manifest))
        .into_iter()
        .filter(|p| !used.contains(p) && !held_for_a_reason(p))
        .map(|(g, r, v)| format!("{v} {g}/{r}"))
        .collect();
    assert!(unused.is_empty(), "the chart grants permissions the operator never used:\n{}", unused.join("\n"));
    drop(operator);

    // helm uninstall: the operator goes, every tenant stays.
    helm_ok(&h, &["uninstall", RELEASE, "-n", NAMESPACE]);
    assert!(!h.kubectl(&["get", "deployment", "atlantiplex-operator", "-n", NAMESPACE]).status.success());
    for ns in ["org-acme", "org-globex", "globex--engineering", "globex--video", "acme--editing", "org-zoe-studio"] {
        h.kubectl_ok(&["get", "namespace", ns]);
    }
    h.kubectl_ok(&["get", "org", "acme", "globex", "zoe-studio"]);
    h.kubectl_ok(&["get", "plan", "free", "starter", "professional", "enterprise", "admin"]);
    h.kubectl_ok(&["get", "pvc", "atlantiplex-operator-data", "-n", NAMESPACE]);
    // So is the hashing key of the API keys the ledger holds (a re-install adopts it again).
    assert_eq!(secret_value(&h, NAMESPACE, KEY_HASH_SECRET, "key"), hashing_key);
    // The operator's webhook configurations are not the release's: the documented clean-up.
    h.kubectl_ok(&["delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "atlantiplex-operator"]);
}

/// An Organization as a user signing up writes it: no owners (the webhook fills them in).
fn signup_yaml(name: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{ name: {name} }}\nspec: {{ slug: {name}, displayName: {name} }}\n"
    )
}

/// Permissions the chart grants that this test does not make the operator use, and why.
fn held_for_a_reason((group, resource, verb): &Permission) -> bool {
    match (group.as_str(), resource.as_str(), verb.as_str()) {
        // Held so the operator may grant them in atlantiplex:tenant (create) and
        // atlantiplex:organization:<name> (get, update, delete): RBAC's escalation check.
        ("atlantiplex.io", "organizations" | "teams" | "subscriptions", "create" | "update" | "get" | "delete") => true,
        ("atlantiplex.io", "subscriptions", "patch") => true,
        ("atlantiplex.io", "plans", "get") => true,
        // Checked by the API server when a RoleBinding to admin/edit/view is created: proven by
        // every tenant's bindings, never a request of its own.
        ("rbac.authorization.k8s.io", "clusterroles", "bind") => true,
        // kube's event recorder patches an event's series only when the same event repeats,
        // which some runs do and some do not.
        ("events.k8s.io", "events", "patch") => true,
        // Namespaces are created create-only (that is how a slug is claimed); they are patched
        // only when they change afterwards: new owners, drift, a release by a platform admin.
        ("", "namespaces", "patch") => true,
        // Webhook certificate renewal, weeks before expiry.
        ("", "secrets", "update") => true,
        // Leader election: the Lease is created once and then updated; patch is not always used.
        ("coordination.k8s.io", "leases", _) => true,
        // Checked by the API server when the operator creates a key's Secret owned by its ApiKey with
        // blockOwnerDeletion (OwnerReferencesPermissionEnforcement, off in the test's control plane):
        // never a request of its own.
        ("atlantiplex.io", "apikeys/finalizers", "update") => true,
        _ => false,
    }
}
