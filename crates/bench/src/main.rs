//! `atlantiplex-bench`: how fast the operator provisions N organizations (with teams and
//! members) on a real local control plane, against the same objects created directly by a
//! minimal server-side-apply client; plus memory, CPU, API requests by verb, idle writes, a plan
//! change across every tenant, and a restart. Prints a table and writes JSON.

mod apply;
mod machine;
mod measure;
mod workload;

use anyhow::{Context as _, bail};
use atlantiplex_operator::api::{self, CONDITION_READY, Organization, Team, condition};
use clap::Parser;
use devcluster::{ControlPlane, ControlPlaneInfo, Options};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OPERATOR_USER: &str = "atlantiplex-operator";
const BENCH_USER: &str = "atlantiplex-admin";
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Parser)]
struct Args {
    /// Organizations to provision.
    #[arg(long, default_value_t = 1000)]
    orgs: usize,
    /// Teams per organization.
    #[arg(long, default_value_t = 2)]
    teams: usize,
    /// Concurrent applies of the baseline client, the benchmark's tenant applies, and the
    /// operator's reconciles.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of the idle window in which writes are counted.
    #[arg(long, default_value_t = 60)]
    steady_seconds: u64,
    /// The operator binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/atlantiplex-operator")]
    operator: PathBuf,
    /// JSON output (default target/bench/provision-<orgs>.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.operator.exists(), "{} not found: run `cargo build --release`", args.operator.display());
    let plans = workload::plans()?;
    let free = plans.iter().find(|p| p.name_any() == workload::PLAN).context("free plan")?.clone();
    anyhow::ensure!(
        free.spec.limits.teams.is_none_or(|t| t as usize >= args.teams),
        "the free plan allows fewer than {} teams",
        args.teams
    );

    eprintln!("baseline: {} organizations x {} teams applied directly...", args.orgs, args.teams);
    let baseline = baseline(&args, &free).await?;
    eprintln!("operator: the same tenants through the operator...");
    let operator = with_operator(&args, &plans).await?;

    let ratio = operator["provision"]["wall_seconds"].as_f64().unwrap_or(0.0)
        / baseline["wall_seconds"].as_f64().unwrap_or(f64::NAN);
    let report = json!({
        "orgs": args.orgs,
        "teams_per_org": args.teams,
        "concurrency": args.concurrency,
        "machine": machine(),
        "baseline": baseline,
        "operator": operator,
        "operator_over_baseline": ratio,
    });
    print_table(&report);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("target/bench/provision-{}.json", args.orgs)));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", out.display());
    Ok(())
}

/// The same objects, applied by a minimal client with the same concurrency: the API server's limit.
async fn baseline(args: &Args, plan: &api::Plan) -> anyhow::Result<serde_json::Value> {
    let plane = ControlPlane::start(Options::for_tests()?).await?;
    let client = plane.client().await?;
    let tenants: Vec<Vec<Vec<serde_json::Value>>> =
        (0..args.orgs).map(|i| workload::baseline_objects(i, args.teams, plan)).collect::<anyhow::Result<_>>()?;
    let objects: usize = tenants.iter().flatten().map(Vec::len).sum();
    let started = Instant::now();
    stream::iter(tenants.iter())
        .map(|waves| {
            let client = client.clone();
            async move {
                for wave in waves {
                    futures::future::try_join_all(wave.iter().map(|m| apply::apply(&client, m))).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let wall = started.elapsed();
    let (by_verb, _) = measure::requests_by_verb(&plane.audit_log(), BENCH_USER, 0);
    let by_resource = measure::writes_by_resource(&plane.audit_log(), BENCH_USER);
    Ok(json!({
        "objects": objects,
        "wall_seconds": wall.as_secs_f64(),
        "requests_by_verb": by_verb,
        "writes_by_resource": by_resource,
    }))
}

struct Operator {
    child: Child,
    log: PathBuf,
}

/// One webhook port for every operator of the run: a restart re-registers nothing.
fn webhook_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| devcluster::free_port().unwrap_or(18443))
}

impl Operator {
    fn start(plane: &ControlPlaneInfo, args: &Args, log_name: &str) -> anyhow::Result<Self> {
        let kubeconfig = plane.mint_kubeconfig(OPERATOR_USER, &["system:masters"])?;
        let log = plane.dir.join("logs").join(log_name);
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&args.operator)
            .args([
                "run",
                "--log",
                "info,atlantiplex_operator::controller=debug,atlantiplex_operator::controller::apply=info",
            ])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--database-url")
            .arg(plane.dir.join("ledger.db"))
            .arg("--concurrency")
            .arg(args.concurrency.to_string())
            .args(["--webhook-bind", &format!("127.0.0.1:{}", webhook_port())])
            .args(["--webhook-url", &format!("https://127.0.0.1:{}", webhook_port())])
            .arg("--webhook-client-ca")
            .arg(plane.admission_client_ca())
            .args(["--metrics-bind", "127.0.0.1:0"])
            .args(["--usage-bind", "127.0.0.1:0"])
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()?;
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Distinct objects of `kind` the operator has reconciled, from its debug log.
    fn reconciled(&self, kind: &str) -> usize {
        let marker = format!("reconciled kind=\"{kind}\"");
        let log = self.log();
        let names: std::collections::HashSet<&str> =
            log.lines().filter(|l| l.contains(&marker)).filter_map(|l| l.rsplit("name=").next()).collect();
        names.len()
    }

    fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn poll_until(what: &str, mut done: impl AsyncFnMut() -> bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !done().await {
        if started.elapsed() > TIMEOUT {
            bail!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(started.elapsed())
}

async fn with_operator(args: &Args, plans: &[api::Plan]) -> anyhow::Result<serde_json::Value> {
    let mut options = Options::for_tests()?;
    // Keep the control plane's directory (logs, audit log) for a closer look.
    options.keep = std::env::var_os("ATLANTIPLEX_BENCH_KEEP").is_some();
    let plane = ControlPlane::start(options).await?;
    eprintln!("  control plane state in {}", plane.dir.display());
    let client = plane.client().await?;
    for crd in api::crds() {
        apply::apply(&client, &serde_json::to_value(crd)?).await?;
    }
    let organizations: Api<Organization> = Api::all(client.clone());
    let teams: Api<Team> = Api::all(client.clone());
    poll_until("CRDs", async || organizations.list(&ListParams::default().limit(1)).await.is_ok()).await?;
    for plan in plans {
        apply::apply(&client, &serde_json::to_value(plan)?).await?;
    }

    let operator = Operator::start(&plane, args, "operator.log")?;
    poll_until("operator caches", async || operator.log().contains("caches filled")).await?;

    let ready: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let applied: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    tokio::spawn(record_ready(organizations.clone(), ready.clone()));
    tokio::spawn(record_ready(teams.clone(), ready.clone()));

    let started = Instant::now();
    stream::iter(0..args.orgs)
        .map(|i| {
            let (client, applied) = (client.clone(), applied.clone());
            async move {
                let mut manifests = vec![serde_json::to_value(workload::organization(i)?)?];
                for t in 0..args.teams {
                    manifests.push(serde_json::to_value(workload::team(i, t)?)?);
                }
                for manifest in manifests {
                    apply::apply(&client, &manifest).await?;
                    let name = manifest["metadata"]["name"].as_str().unwrap_or_default().to_string();
                    applied.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(name, Instant::now());
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let expected = args.orgs * (1 + args.teams);
    poll_until("every organization and team Ready", async || ready.lock().map(|r| r.len()).unwrap_or(0) >= expected)
        .await?;
    let ready = ready.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let applied = applied.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let wall = ready.values().max().map(|last| *last - started).unwrap_or_default();
    let mut latencies: Vec<Duration> =
        applied.iter().filter_map(|(name, at)| ready.get(name).map(|r| r.saturating_duration_since(*at))).collect();
    latencies.sort();
    let (cpu, rss) = measure::process_usage(operator.child.id());
    let (by_verb, audit_lines) = measure::requests_by_verb(&plane.audit_log(), OPERATOR_USER, 0);
    let provision = json!({
        "objects_applied": expected,
        "wall_seconds": wall.as_secs_f64(),
        "latency_seconds": {
            "p50": measure::percentile(&latencies, 50.0).as_secs_f64(),
            "p90": measure::percentile(&latencies, 90.0).as_secs_f64(),
            "p99": measure::percentile(&latencies, 99.0).as_secs_f64(),
        },
        "operator_cpu_seconds": cpu,
        "operator_peak_rss_mib": rss,
        "operator_requests_by_verb": by_verb,
        "operator_writes_by_resource": measure::writes_by_resource(&plane.audit_log(), OPERATOR_USER),
    });
    eprintln!("  provisioned in {:.1}s; idle window {}s...", wall.as_secs_f64(), args.steady_seconds);

    tokio::time::sleep(Duration::from_secs(args.steady_seconds)).await;
    let (idle, audit_lines) = measure::requests_by_verb(&plane.audit_log(), OPERATOR_USER, audit_lines);
    let idle_writes_per_minute = measure::writes(&idle) as f64 * 60.0 / args.steady_seconds as f64;

    // Every tenant's quota follows a Plan edit: free's pods 20 -> 23.
    let plan_api: Api<api::Plan> = Api::all(client.clone());
    let quotas: Api<ResourceQuota> = Api::all(client.clone());
    let share = 1_000_000 / (1 + args.teams as i64);
    let expected_pods = (23 * share / 1_000_000).to_string();
    plan_api
        .patch(workload::PLAN, &PatchParams::default(), &Patch::Merge(json!({"spec": {"quota": {"pods": "23"}}})))
        .await?;
    let plan_change = poll_until("every quota re-mapped", async || {
        let Ok(list) = quotas.list(&ListParams::default().labels("atlantiplex.io/managed=true")).await else {
            return false;
        };
        list.items.len() == expected
            && list.items.iter().all(|q| {
                q.spec
                    .as_ref()
                    .and_then(|s| s.hard.as_ref())
                    .and_then(|h| h.get("pods"))
                    .is_some_and(|p| p.0 == expected_pods)
            })
    })
    .await?;
    let (_, audit_lines_before_restart) = measure::requests_by_verb(&plane.audit_log(), OPERATOR_USER, audit_lines);
    eprintln!("  plan change applied to every tenant in {:.1}s; restarting...", plan_change.as_secs_f64());

    operator.stop()?;
    let restarted = Operator::start(&plane, args, "operator-restart.log")?;
    let resync = poll_until("the restarted operator to reconcile everything", async || {
        restarted.reconciled("Organization") >= args.orgs && restarted.reconciled("Team") >= args.orgs * args.teams
    })
    .await?;
    let (after_restart, _) = measure::requests_by_verb(&plane.audit_log(), OPERATOR_USER, audit_lines_before_restart);
    let (restart_cpu, restart_rss) = measure::process_usage(restarted.child.id());
    restarted.stop()?;

    Ok(json!({
        "provision": provision,
        "idle_writes_per_minute": idle_writes_per_minute,
        "idle_requests_by_verb": idle,
        "plan_change_seconds": plan_change.as_secs_f64(),
        "restart": {
            "resync_seconds": resync.as_secs_f64(),
            "writes": measure::writes(&after_restart),
            "requests_by_verb": after_restart,
            "cpu_seconds": restart_cpu,
            "peak_rss_mib": restart_rss,
        },
    }))
}

/// Records when each object first reports Ready=True, as a user watching would see it.
async fn record_ready<K>(api: Api<K>, ready: Arc<Mutex<HashMap<String, Instant>>>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K: HasConditions,
{
    let mut events = watcher(api, watcher::Config::default()).default_backoff().applied_objects().boxed();
    while let Some(Ok(obj)) = events.next().await {
        if obj.is_ready()
            && let Ok(mut ready) = ready.lock()
        {
            ready.entry(obj.name_any()).or_insert_with(Instant::now);
        }
    }
}

trait HasConditions {
    fn is_ready(&self) -> bool;
}

impl HasConditions for Organization {
    fn is_ready(&self) -> bool {
        self.status.as_ref().and_then(|s| condition(&s.conditions, CONDITION_READY)).is_some_and(|c| c.status == "True")
    }
}

impl HasConditions for Team {
    fn is_ready(&self) -> bool {
        self.status.as_ref().and_then(|s| condition(&s.conditions, CONDITION_READY)).is_some_and(|c| c.status == "True")
    }
}

fn machine() -> serde_json::Value {
    let mut m = machine::machine();
    m["kubernetes"] = json!("v1.36.3 (local, etcd 3.6.16)");
    m
}

fn print_table(r: &serde_json::Value) {
    let op = &r["operator"];
    let p = &op["provision"];
    let rows: BTreeMap<&str, String> = BTreeMap::from([
        ("01 organizations x teams", format!("{} x {}", r["orgs"], r["teams_per_org"])),
        ("02 baseline wall (s)", format!("{:.1}", r["baseline"]["wall_seconds"].as_f64().unwrap_or(0.0))),
        ("03 operator wall (s)", format!("{:.1}", p["wall_seconds"].as_f64().unwrap_or(0.0))),
        ("04 operator / baseline", format!("{:.2}", r["operator_over_baseline"].as_f64().unwrap_or(0.0))),
        (
            "05 apply->Ready p50/p90/p99 (s)",
            format!(
                "{:.2} / {:.2} / {:.2}",
                p["latency_seconds"]["p50"].as_f64().unwrap_or(0.0),
                p["latency_seconds"]["p90"].as_f64().unwrap_or(0.0),
                p["latency_seconds"]["p99"].as_f64().unwrap_or(0.0)
            ),
        ),
        ("06 operator peak RSS (MiB)", format!("{:.1}", p["operator_peak_rss_mib"].as_f64().unwrap_or(0.0))),
        ("07 operator CPU (s)", format!("{:.1}", p["operator_cpu_seconds"].as_f64().unwrap_or(0.0))),
        ("08 operator requests by verb", p["operator_requests_by_verb"].to_string()),
        ("09 idle writes / minute", format!("{:.1}", op["idle_writes_per_minute"].as_f64().unwrap_or(0.0))),
        ("10 plan change, all quotas (s)", format!("{:.1}", op["plan_change_seconds"].as_f64().unwrap_or(0.0))),
        ("11 restart re-sync (s)", format!("{:.1}", op["restart"]["resync_seconds"].as_f64().unwrap_or(0.0))),
        ("12 restart writes", op["restart"]["writes"].to_string()),
    ]);
    println!();
    for (k, v) in rows {
        println!("{:<34} {v}", &k[3..]);
    }
}
