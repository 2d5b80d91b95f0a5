//! `usage-bench`: usage ingestion through the real `POST /v1/usage` — a release operator on a local control
//! plane, HTTPS with its own certificate, a ServiceAccount token (TokenReview and SubjectAccessReview by the
//! API server, then cached 30 s as in production) — on a SQLite ledger, then on a PostgreSQL server it
//! starts (crates/pgserver). Per backend: single-event requests and batches of 1,000 (events/s, p50/p99
//! acknowledgement = time to the 202, which follows the ledger's commit), and the lag from sending an event
//! to seeing it in `Organization.status.usage`. In process: parse + judge of a batch and the ledger insert
//! alone, to show where a request's time goes. Prints a table and writes JSON (bench-results/usage.json).

#[path = "../machine.rs"]
mod machine;
#[path = "../measure.rs"]
#[allow(dead_code)]
mod measure;
#[path = "../usage_inproc.rs"]
mod usage_inproc;
#[path = "../usage_load.rs"]
mod usage_load;
#[path = "../usage_push.rs"]
mod usage_push;

use anyhow::Context as _;
use atlantiplex_operator::api::Organization;
use clap::Parser;
use devcluster::{ControlPlane, Options};
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/atlantiplex-operator")]
    operator: PathBuf,
    /// Single-event requests per backend.
    #[arg(long, default_value_t = 10_000)]
    single: usize,
    /// Concurrent senders of single-event requests.
    #[arg(long, default_value_t = 32)]
    single_concurrency: usize,
    /// Batches per backend (and per concurrency level).
    #[arg(long, default_value_t = 100)]
    batches: usize,
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Concurrent senders of batches: one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    batch_concurrency: Vec<usize>,
    /// Event → status samples per backend.
    #[arg(long, default_value_t = 20)]
    lag_samples: usize,
    /// Organizations of the hourly push (each with usage on all 4 meters).
    #[arg(long, default_value_t = 1000)]
    push_organizations: usize,
    #[arg(long, default_value = "bench-results/usage.json")]
    out: PathBuf,
    /// Only the hourly push (no control plane), written to `--out`.
    #[arg(long)]
    push_only: bool,
}

async fn push_only(args: &Args) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("atlantiplex-push-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let sqlite = format!("sqlite://{}?mode=rwc", scratch.join("push.db").display());
    let mut results = vec![usage_push::hourly_push("sqlite", &sqlite, args.push_organizations).await?];
    let server = pgserver::PgServer::start().context("starting PostgreSQL")?;
    results.push(
        usage_push::hourly_push("postgres", &server.create_database("usage_push")?, args.push_organizations).await?,
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    let report =
        json!({ "date": jiff::Timestamp::now().to_string(), "machine": machine::machine(), "hourly_push": results });
    print_push(&report["hourly_push"]);
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", args.out.display());
    Ok(())
}

/// Organizations the load goes to (a batch is one organization's, as a reporter's is).
const ORGS: usize = 4;
const LAG_ORG: &str = "bench-lag";
const REPORTERS: &str = "bench-reporters";

fn org_yaml(name: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\n\
         spec: {{slug: {name}, displayName: {name}, owners: [{{kind: User, name: owner@{name}.example}}]}}\n"
    )
}

fn binding_yaml(namespace: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: edge-usage, namespace: {namespace}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atlantiplex-usage-reporter}}\n\
         subjects: [{{kind: ServiceAccount, name: edge, namespace: {REPORTERS}}}]\n"
    )
}

const REPORTER_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: atlantiplex-usage-reporter}\nrules:\n  - {apiGroups: [atlantiplex.io], resources: [usageevents], verbs: [create]}\n";

struct Plane {
    plane: ControlPlane,
}

impl Plane {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        use std::io::Write as _;
        let mut child = self
            .plane
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(input) = stdin {
            child.stdin.take().context("stdin")?.write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        self.kubectl(&["apply", "--server-side", "-f", "-"], Some(yaml)).map(|_| ())
    }
}

fn org_names() -> Vec<String> {
    (0..ORGS).map(|i| format!("bench-{i}")).chain([LAG_ORG.to_string()]).collect()
}

/// The operator on `database_url`, its usage port.
struct Operator {
    child: Child,
    usage_port: u16,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_operator(
    p: &Plane,
    args: &Args,
    database_url: &str,
    scratch: &Path,
    tag: &str,
) -> anyhow::Result<Operator> {
    let (webhook, metrics, usage) = (devcluster::free_port()?, devcluster::free_port()?, devcluster::free_port()?);
    let kubeconfig = p.plane.mint_kubeconfig("atlantiplex-operator", &["system:masters"])?;
    let log = std::fs::File::create(p.plane.dir.join("logs").join(format!("operator-usage-bench-{tag}.log")))?;
    let child = Command::new(&args.operator)
        .args(["run", "--log", "warn", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--webhook-bind",
            &format!("127.0.0.1:{webhook}"),
            "--webhook-url",
            &format!("https://127.0.0.1:{webhook}"),
        ])
        .arg("--webhook-client-ca")
        .arg(p.plane.admission_client_ca())
        .args(["--metrics-bind", &format!("127.0.0.1:{metrics}"), "--usage-bind", &format!("127.0.0.1:{usage}")])
        .args(["--database-url", database_url])
        .arg("--audit-journal")
        .arg(scratch.join(format!("{tag}.journal")))
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()?;
    let operator = Operator { child, usage_port: usage };
    wait_ready(metrics).await?;
    Ok(operator)
}

async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await?;
            if reply.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "operator not ready after 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_orgs_ready(orgs: &Api<Organization>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    for name in org_names() {
        loop {
            let org = orgs.get(&name).await?;
            let conditions = org.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
            if atlantiplex_operator::api::condition(conditions, "Ready").is_some_and(|c| c.status == "True") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "organization {name} not Ready after 300 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Single events, then batches at each concurrency, then the status lag, against one operator.
async fn measure_backend(
    name: &str,
    operator: &Operator,
    client: &usage_load::Client,
    token: &str,
    orgs: &Api<Organization>,
    args: &Args,
) -> anyhow::Result<Value> {
    let url = format!("https://127.0.0.1:{}/v1/usage", operator.usage_port);
    let pid = operator.child.id();
    let body = |v: Value| Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
    // Warm up: TLS, the token and access review caches, the ledger pool.
    for i in 0..ORGS * 4 {
        let warm = body(usage_load::batch(&format!("{name}-warm-{i}"), &format!("org-bench-{}", i % ORGS), 10));
        usage_load::post(client, &url, token, warm, 10).await?;
    }
    eprintln!("{name}: {} single-event requests, {} senders...", args.single, args.single_concurrency);
    let singles: Vec<Bytes> = (0..args.single)
        .map(|i| body(usage_load::batch(&format!("{name}-single-{i}"), &format!("org-bench-{}", i % ORGS), 1)))
        .collect();
    let (cpu, _) = measure::process_usage(pid);
    let run = usage_load::closed_loop(client, &url, token, singles, 1, args.single_concurrency).await?;
    let single = run.json(args.single_concurrency, 1, measure::process_usage(pid).0 - cpu);
    let mut batched = Vec::new();
    for &concurrency in &args.batch_concurrency {
        eprintln!("{name}: {} batches of {}, {concurrency} senders...", args.batches, args.batch_size);
        let bodies: Vec<Bytes> = (0..args.batches)
            .map(|b| {
                let prefix = format!("{name}-c{concurrency}-b{b}");
                body(usage_load::batch(&prefix, &format!("org-bench-{}", b % ORGS), args.batch_size))
            })
            .collect();
        let (cpu, _) = measure::process_usage(pid);
        let run = usage_load::closed_loop(client, &url, token, bodies, args.batch_size, concurrency).await?;
        batched.push(run.json(concurrency, args.batch_size, measure::process_usage(pid).0 - cpu));
    }
    eprintln!("{name}: event → status lag, {} samples...", args.lag_samples);
    let lag = status_lag(name, client, &url, token, orgs, args.lag_samples).await?;
    let (_, rss) = measure::process_usage(pid);
    Ok(
        json!({ "backend": name, "single": single, "batched": batched, "status_lag": lag, "operator_peak_rss_mib": rss }),
    )
}

/// One GiB of bandwidth at a time for the lag organization (free plan, 50 GiB included), until its
/// `status.usage.bandwidth` shows the new whole GiB: the time from sending to seeing it in the API.
async fn status_lag(
    name: &str,
    client: &usage_load::Client,
    url: &str,
    token: &str,
    orgs: &Api<Organization>,
    samples: usize,
) -> anyhow::Result<Value> {
    let mut lags = Vec::new();
    let mut acks = Vec::new();
    for k in 1..=samples {
        let event = json!({"specversion": "1.0", "id": format!("{name}-lag-{k}"), "source": "bench/lag",
            "type": "io.atlantiplex.usage.bandwidth", "time": jiff::Timestamp::now().to_string(),
            "subject": format!("org-{LAG_ORG}"), "data": {"value": "1073741824"}});
        let expected = format!("{k}Gi/50Gi");
        let started = Instant::now();
        acks.push(usage_load::post(client, url, token, Bytes::from(serde_json::to_vec(&event)?), 1).await?);
        loop {
            let org = orgs.get(LAG_ORG).await?;
            let shown = org.status.and_then(|s| s.usage).and_then(|u| u.bandwidth).unwrap_or_default();
            if shown == expected {
                lags.push(started.elapsed());
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "status shows {shown:?}, not {expected:?}, after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lags.sort();
    acks.sort();
    let ms = |v: &[Duration], p: f64| measure::percentile(v, p).as_secs_f64() * 1e3;
    Ok(json!({
        "samples": lags.len(),
        "poll_interval_ms": 5,
        "lag_ms_p50": ms(&lags, 50.0),
        "lag_ms_p90": ms(&lags, 90.0),
        "lag_ms_max": lags.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
        "ack_ms_p50": ms(&acks, 50.0),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.push_only {
        return push_only(&args).await;
    }
    anyhow::ensure!(args.operator.exists(), "{} not found: run `make bench-usage`", args.operator.display());
    let scratch = std::env::temp_dir().join(format!("atlantiplex-usage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut options = Options::for_tests()?;
    // No API audit log: it would cost the API server CPU the operator's status writes compete for.
    options.audit = false;
    let p = Plane { plane: ControlPlane::start(options).await? };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    p.kubectl(&["apply", "--server-side", "-f", &format!("{root}/crds/")], None)?;
    p.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"], None)?;
    p.kubectl(&["apply", "--server-side", "-f", &format!("{root}/examples/plans.yaml")], None)?;
    p.apply(REPORTER_ROLE)?;
    p.kubectl(&["create", "namespace", REPORTERS], None)?;
    p.kubectl(&["create", "serviceaccount", "edge", "-n", REPORTERS], None)?;
    for name in org_names() {
        p.apply(&org_yaml(&name))?;
    }
    // The load goes to unlimited plans, so it never reaches a Block limit (which would reroute the tenant).
    for i in 0..ORGS {
        p.apply(&format!(
            "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: bench-{i}}}\n\
             spec: {{organization: bench-{i}, plan: enterprise, billingEmail: billing@bench-{i}.example}}\n"
        ))?;
    }
    let client = p.plane.client().await?;
    let orgs: Api<Organization> = Api::all(client.clone());
    let mut results = Vec::new();

    let sqlite_url = format!("sqlite://{}?mode=rwc", scratch.join("ledger.db").display());
    let operator = start_operator(&p, &args, &sqlite_url, &scratch, "sqlite").await?;
    wait_orgs_ready(&orgs).await?;
    for name in org_names() {
        p.apply(&binding_yaml(&format!("org-{name}")))?;
    }
    let token = p.kubectl(&["create", "token", "edge", "-n", REPORTERS, "--duration=2h"], None)?.trim().to_string();
    let secret =
        Api::<Secret>::namespaced(client.clone(), "atlantiplex-system").get("atlantiplex-operator-webhook-tls").await?;
    let ca = secret.data.and_then(|d| d.get("ca.crt").cloned()).context("ca.crt")?;
    let https = usage_load::client(&ca.0)?;
    results.push(measure_backend("sqlite", &operator, &https, &token, &orgs, &args).await?);
    drop(operator);

    eprintln!("postgres: starting a server...");
    let server = pgserver::PgServer::start().context("starting PostgreSQL")?;
    let version = Command::new(pgserver::bin_dir()?.join("postgres")).arg("--version").output()?;
    let pg_url = server.create_database("usage_bench")?;
    let operator = start_operator(&p, &args, &pg_url, &scratch, "postgres").await?;
    results.push(measure_backend("postgres", &operator, &https, &token, &orgs, &args).await?);
    drop(operator);

    eprintln!("in process: parse + judge, and the ledger insert alone...");
    let parse = usage_inproc::parse_and_judge(args.batch_size)?;
    let sqlite = atlantiplex_operator::ledger::Ledger::connect(&format!(
        "sqlite://{}?mode=rwc",
        scratch.join("inproc.db").display()
    ))
    .await?;
    let pg = atlantiplex_operator::ledger::Ledger::connect(&server.create_database("usage_inproc")?).await?;
    let mut ledger_only = Vec::new();
    for (backend, ledger) in [("sqlite", &sqlite), ("postgres", &pg)] {
        for &concurrency in &args.batch_concurrency {
            let mut r = usage_inproc::ledger_inserts(
                ledger,
                &format!("c{concurrency}"),
                args.batches,
                args.batch_size,
                concurrency,
            )
            .await?;
            r["backend"] = json!(backend);
            ledger_only.push(r);
        }
    }
    let mut hourly_push = Vec::new();
    let push_sqlite = format!("sqlite://{}?mode=rwc", scratch.join("push.db").display());
    hourly_push.push(usage_push::hourly_push("sqlite", &push_sqlite, args.push_organizations).await?);
    let push_pg = server.create_database("usage_push")?;
    hourly_push.push(usage_push::hourly_push("postgres", &push_pg, args.push_organizations).await?);
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);

    let report = json!({
        "date": jiff::Timestamp::now().to_string(),
        "machine": machine::machine(),
        "postgres": String::from_utf8_lossy(&version.stdout).trim(),
        "measured": "POST /v1/usage over HTTPS (HTTP/2, one connection, TCP_NODELAY) to a release operator on loopback, \
                     a ServiceAccount token (TokenReview + SubjectAccessReview cached 30 s), ack = time to the 202 \
                     (after the ledger commit); client, operator, API server, etcd and PostgreSQL on the same machine",
        "results": results,
        "in_process": { "parse_and_judge": parse, "ledger_insert_only": ledger_only },
        "hourly_push": hourly_push,
    });
    print_table(&report);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", args.out.display());
    Ok(())
}

fn print_table(report: &Value) {
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let line = |label: String, r: &Value| {
        println!(
            "{label:<40} {:>9.0} events/s   ack p50 {:>7.1} ms   p99 {:>7.1} ms   operator CPU {:>5.1} s",
            num(&r["events_per_second"]),
            num(&r["ack_ms_p50"]),
            num(&r["ack_ms_p99"]),
            num(&r["operator_cpu_seconds"])
        )
    };
    for r in report["results"].as_array().into_iter().flatten() {
        let backend = r["backend"].as_str().unwrap_or("?");
        line(format!("{backend}: single events, {} senders", r["single"]["concurrency"]), &r["single"]);
        for b in r["batched"].as_array().into_iter().flatten() {
            line(format!("{backend}: batches of {}, {} senders", b["events_per_request"], b["concurrency"]), b);
        }
        let lag = &r["status_lag"];
        println!(
            "{:<40} p50 {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms",
            format!("{backend}: event → status.usage"),
            num(&lag["lag_ms_p50"]),
            num(&lag["lag_ms_p90"]),
            num(&lag["lag_ms_max"])
        );
    }
    let parse = &report["in_process"]["parse_and_judge"];
    println!("in process: parse + judge {} events: {:.2} ms", parse["events"], num(&parse["ms_p50"]));
    for r in report["in_process"]["ledger_insert_only"].as_array().into_iter().flatten() {
        println!(
            "in process: {} insert_usage_events ×{}, {} at a time: {:.0} events/s, commit p50 {:.1} ms, p99 {:.1} ms",
            r["backend"].as_str().unwrap_or("?"),
            r["events_per_batch"],
            r["concurrency"],
            num(&r["events_per_second"]),
            num(&r["commit_ms_p50"]),
            num(&r["commit_ms_p99"])
        );
    }
    print_push(&report["hourly_push"]);
}

fn print_push(results: &Value) {
    for r in results.as_array().into_iter().flatten() {
        println!(
            "hourly push, {}: {} organizations × 4 meters: {} meter events in {:.2} s ({:.0}/s), idle round {:.2} s, {} failed",
            r["backend"].as_str().unwrap_or("?"),
            r["organizations"],
            r["meter_events_sent"],
            r["round_seconds"].as_f64().unwrap_or(0.0),
            r["meter_events_per_second"].as_f64().unwrap_or(0.0),
            r["idle_round_seconds"].as_f64().unwrap_or(0.0),
            r["failed_periods"]
        );
    }
}
