//! `admission-bench`: how long an admission decision takes, in process (the policy alone, and
//! the whole review path with JSON) and as a webhook round trip over HTTPS to a running
//! operator at a fixed request rate. Prints a table and writes JSON.

#[path = "../measure.rs"]
#[allow(dead_code)]
mod measure;
#[path = "../workload.rs"]
#[allow(dead_code)]
mod workload;

use anyhow::Context as _;
use atlantiplex_operator::admission::policy::PolicyConfig;
use atlantiplex_operator::admission::settings::AdmissionSettings;
use atlantiplex_operator::admission::{PlatformAdmins, Webhook};
use atlantiplex_operator::api::{Organization, Plan, Subscription, Team};
use atlantiplex_operator::controller::Context;
use atlantiplex_operator::metrics::Metrics;
use atlantiplex_operator::settings::Settings;
use clap::Parser;
use devcluster::{ControlPlane, Options};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Secret;
use kube::core::admission::AdmissionReview;
use kube::core::{DeserializeGuard, DynamicObject};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Resource};
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Organizations in the caches (each with two teams).
    #[arg(long, default_value_t = 1000)]
    orgs: usize,
    /// Webhook requests per second in the round-trip run.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Length of the round-trip run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value = "target/release/atlantiplex-operator")]
    operator: PathBuf,
    #[arg(long, default_value = "target/bench/admission.json")]
    out: PathBuf,
}

fn store<K>(objects: impl IntoIterator<Item = K>) -> Store<DeserializeGuard<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    DeserializeGuard<K>: Resource<DynamicType = ()> + Clone,
{
    let (reader, mut writer) = reflector::store::<DeserializeGuard<K>>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for obj in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(DeserializeGuard(Ok(obj))));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

fn empty<K>() -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store::<K>();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// A context whose caches hold `n` organizations and their teams, as the operator's would.
fn context(n: usize) -> anyhow::Result<Context> {
    let orgs: Vec<Organization> = (0..n).map(workload::organization).collect::<anyhow::Result<_>>()?;
    let teams: Vec<Team> =
        (0..n).flat_map(|i| (0..2).map(move |t| workload::team(i, t))).collect::<anyhow::Result<_>>()?;
    let plans: Vec<Plan> = workload::plans()?;
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    Ok(Context {
        recorder: Recorder::new(client.clone(), Context::reporter()),
        own_writes: Default::default(),
        client,
        metrics: Arc::new(Metrics::new()),
        audit: None,
        settings: Settings::default(),
        billing: Arc::new(atlantiplex_operator::billing::Billing::disabled(Default::default(), "benchmark")),
        ledger: None,
        organizations: store(orgs),
        plans: store(plans),
        subscriptions: store(Vec::<Subscription>::new()),
        teams: store(teams),
        namespaces: empty(),
        role_bindings: empty(),
        quotas: empty(),
        limit_ranges: empty(),
        network_policies: empty(),
        ingresses: empty(),
        services: empty(),
        access_roles: empty(),
        access_bindings: empty(),
        cluster_role_bindings: empty(),
    })
}

/// The common request: an Admin of organization `i` adds a member (allowed after the full
/// role check, the self-escalation check and the plan's user limit).
fn member_update_review(i: usize) -> anyhow::Result<Value> {
    let old = workload::organization(i)?;
    let mut new = serde_json::to_value(&old)?;
    new["spec"]["members"].as_array_mut().context("members")?.pop();
    new["spec"]["members"]
        .as_array_mut()
        .context("members")?
        .push(json!({"kind": "User", "name": "new@example.com", "role": "Viewer"}));
    let name = workload::org_name(i);
    Ok(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{i}"),
            "kind": {"group": "atlantiplex.io", "version": "v1alpha1", "kind": "Organization"},
            "resource": {"group": "atlantiplex.io", "version": "v1alpha1", "resource": "organizations"},
            "name": name,
            "operation": "UPDATE",
            "userInfo": {"username": "someone", "groups": [format!("{name}-admins"), "system:authenticated"]},
            "object": new,
            "oldObject": old,
            "dryRun": false,
        }
    }))
}

fn percentiles(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    let us = |p: f64| measure::percentile(&samples, p).as_secs_f64() * 1e6;
    json!({
        "samples": samples.len(),
        "p50_us": us(50.0),
        "p90_us": us(90.0),
        "p99_us": us(99.0),
        "max_us": samples.last().map(|d| d.as_secs_f64() * 1e6).unwrap_or(0.0),
    })
}

fn in_process(n: usize) -> anyhow::Result<Value> {
    let ctx = Arc::new(context(n)?);
    let slot = Arc::new(OnceLock::new());
    let _ = slot.set(ctx.clone());
    let webhook = Webhook {
        context: slot,
        policy: PolicyConfig {
            base_domain: "atlantiplex.local".into(),
            default_plan: "free".into(),
            signup: false,
            signup_max_free_organizations: 1,
            allowed_external_names: Vec::new(),
        },
        admins: PlatformAdmins::new(&AdmissionSettings::default(), None),
        metrics: Arc::new(Metrics::new()),
        audit: None,
        caller_verified: true,
    };
    let reviews: Vec<Value> = (0..n.min(200)).map(member_update_review).collect::<anyhow::Result<_>>()?;
    let parsed: Vec<AdmissionReview<DynamicObject>> =
        reviews.iter().map(|r| serde_json::from_value(r.clone())).collect::<Result<_, _>>()?;
    let requests: Vec<_> =
        parsed.iter().map(|r| r.request.clone().context("request")).collect::<anyhow::Result<Vec<_>>>()?;
    // Warm up, then time each decision.
    for r in &requests {
        anyhow::ensure!(webhook.decide(&ctx, r).allowed, "the benchmark request must be allowed");
    }
    let mut decide = Vec::new();
    let mut review = Vec::new();
    for round in 0..50 {
        for (r, body) in requests.iter().zip(&reviews) {
            let started = Instant::now();
            std::hint::black_box(webhook.decide(&ctx, r));
            decide.push(started.elapsed());
            if round % 5 == 0 {
                let started = Instant::now();
                let text = serde_json::to_vec(body)?;
                let parsed: AdmissionReview<DynamicObject> = serde_json::from_slice(&text)?;
                std::hint::black_box(serde_json::to_vec(&futures::executor::block_on(webhook.validate(parsed)))?);
                review.push(started.elapsed());
            }
        }
    }
    Ok(json!({ "decision": percentiles(decide), "review_with_json": percentiles(review) }))
}

async fn round_trip(args: &Args) -> anyhow::Result<Value> {
    let plane = ControlPlane::start(Options::for_tests()?).await?;
    let kubectl = |a: &[&str]| -> anyhow::Result<()> {
        let out = plane.kubectl().args(a).output()?;
        anyhow::ensure!(out.status.success(), "kubectl {a:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    kubectl(&["apply", "--server-side", "-f", &format!("{root}/crds/")])?;
    kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"])?;
    kubectl(&["apply", "--server-side", "-f", &format!("{root}/examples/plans.yaml")])?;
    let client = plane.client().await?;
    let orgs: Api<Organization> = Api::all(client.clone());
    let params = kube::api::PatchParams::apply("atlantiplex-bench").force();
    let n = args.orgs.min(200);
    for i in 0..n {
        let org = workload::organization(i)?;
        orgs.patch(&workload::org_name(i), &params, &kube::api::Patch::Apply(&org)).await?;
    }
    let port = devcluster::free_port()?;
    let metrics_port = devcluster::free_port()?;
    let kubeconfig = plane.mint_kubeconfig("atlantiplex-operator", &["system:masters"])?;
    let log = std::fs::File::create(plane.dir.join("logs").join("operator-admission-bench.log"))?;
    let mut operator = Command::new(&args.operator)
        .args(["run", "--log", "warn", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--webhook-bind", &format!("127.0.0.1:{port}"), "--webhook-url", &format!("https://127.0.0.1:{port}")])
        .arg("--webhook-client-ca")
        .arg(plane.admission_client_ca())
        .args(["--metrics-bind", &format!("127.0.0.1:{metrics_port}")])
        .args(["--usage-bind", "127.0.0.1:0"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()?;
    let result = async {
        wait_ready(metrics_port).await?;
        // Measure a quiet operator: provisioning the tenants first would share the CPU.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let ready = orgs
                .list(&Default::default())
                .await?
                .items
                .iter()
                .filter(|o| {
                    let conditions = o.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
                    atlantiplex_operator::api::condition(conditions, "Ready").is_some_and(|c| c.status == "True")
                })
                .count();
            if ready >= n {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "only {ready} of {n} organizations Ready after 600 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Ready is written before the last follow-up reconciles end: wait until they have.
        wait_quiet(operator.id(), Duration::from_secs(120)).await?;
        let (cpu_before, _) = measure::process_usage(operator.id());
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "atlantiplex-system");
        let secret = secrets.get("atlantiplex-operator-webhook-tls").await?;
        let ca = secret.data.and_then(|d| d.get("ca.crt").cloned()).context("ca.crt")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca.0) {
            roots.add(cert?)?;
        }
        // The API server's admission client certificate: the operator answers nobody else.
        let (cert, key) = plane.admission_client_cert();
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key)?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        // HTTP/2 over one connection, as kube-apiserver calls webhooks (Go negotiates h2 by ALPN).
        // TCP_NODELAY as Go sets it on every connection: small frames must not wait for Nagle.
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http2()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(https);
        let bodies: Vec<Bytes> = (0..n)
            .map(|i| Ok(Bytes::from(serde_json::to_vec(&member_update_review(i)?)?)))
            .collect::<anyhow::Result<_>>()?;
        let url = format!("https://127.0.0.1:{port}/validate");
        let send = |i: usize| {
            let (http, body, url) = (http.clone(), bodies[i % bodies.len()].clone(), url.clone());
            async move {
                let request =
                    hyper::Request::post(url).header("content-type", "application/json").body(Full::new(body))?;
                let response = http.request(request).await?;
                let status = response.status();
                let bytes = response.into_body().collect().await?.to_bytes();
                let review: Value = serde_json::from_slice(&bytes)?;
                anyhow::ensure!(
                    status.is_success() && review["response"]["allowed"] == true,
                    "unexpected answer: {review}"
                );
                anyhow::Ok(())
            }
        };
        for i in 0..200 {
            send(i).await?; // warm the connection pool and the operator
        }
        let total = (args.rate * args.seconds) as usize;
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            // Open loop: latency counts from when the request was due, so a stall is not hidden.
            let due = started + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let send = send(i);
            tasks.push(tokio::spawn(async move {
                send.await?;
                anyhow::Ok(due.elapsed())
            }));
        }
        let mut samples = Vec::with_capacity(total);
        let mut errors = 0;
        for task in tasks {
            match task.await? {
                Ok(d) => samples.push(d),
                Err(_) => errors += 1,
            }
        }
        let achieved = total as f64 / started.elapsed().as_secs_f64();
        let (cpu, rss) = measure::process_usage(operator.id());
        let cpu = cpu - cpu_before;
        anyhow::Ok(json!({
            "rate_per_second": args.rate,
            "achieved_per_second": achieved,
            "errors": errors,
            "latency": percentiles(samples),
            "operator_cpu_seconds_during_run": cpu,
            "operator_peak_rss_mib": rss,
        }))
    }
    .await;
    let _ = operator.kill();
    let _ = operator.wait();
    result
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.operator.exists(), "{} not found: run `cargo build --release`", args.operator.display());
    eprintln!("in-process decisions with {} organizations cached...", args.orgs);
    let local = in_process(args.orgs)?;
    eprintln!("webhook round trips at {} requests/s for {} s...", args.rate, args.seconds);
    let remote = round_trip(&args).await?;
    let report = json!({
        "orgs_cached": args.orgs,
        "machine": format!("{} CPUs, {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), std::env::consts::ARCH),
        "in_process": local,
        "round_trip": remote,
    });
    let row = |name: &str, v: &Value| {
        println!(
            "{name:<34} p50 {:>8.1} µs   p90 {:>8.1} µs   p99 {:>8.1} µs   max {:>9.1} µs   ({} samples)",
            v["p50_us"].as_f64().unwrap_or(0.0),
            v["p90_us"].as_f64().unwrap_or(0.0),
            v["p99_us"].as_f64().unwrap_or(0.0),
            v["max_us"].as_f64().unwrap_or(0.0),
            v["samples"]
        )
    };
    row("decision (policy, in process)", &report["in_process"]["decision"]);
    row("review incl. JSON (in process)", &report["in_process"]["review_with_json"]);
    row(&format!("HTTPS round trip @ {}/s", args.rate), &report["round_trip"]["latency"]);
    println!(
        "achieved {:.0} req/s, {} errors; operator CPU during the run {:.1} s, peak RSS {:.0} MiB",
        report["round_trip"]["achieved_per_second"].as_f64().unwrap_or(0.0),
        report["round_trip"]["errors"],
        report["round_trip"]["operator_cpu_seconds_during_run"].as_f64().unwrap_or(0.0),
        report["round_trip"]["operator_peak_rss_mib"].as_f64().unwrap_or(0.0),
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", args.out.display());
    Ok(())
}

/// Waits until the process used under 2% of a core over a second (it has settled), for at most `limit`.
async fn wait_quiet(pid: u32, limit: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    let (mut before, _) = measure::process_usage(pid);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (now, _) = measure::process_usage(pid);
        if now - before < 0.02 {
            return Ok(());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "pid {pid} still busy after {limit:?}");
        before = now;
    }
}
