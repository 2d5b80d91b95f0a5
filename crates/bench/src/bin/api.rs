//! `api-bench`: the tenant API (`atlantiplex-operator api`, release build) on a local control plane with 1,000
//! organizations on an API plan, each with one API key in the ledger. Open-loop load (`GET
//! /v1/organizations/{org}` at a fixed rate, latency from the scheduled send time) against two replicas on
//! PostgreSQL (rate limits in PostgreSQL) and one replica on SQLite (rate limits in process); the time
//! until a revoked key is refused by both PostgreSQL replicas; in process, a key check against the real key
//! table and the PostgreSQL rate-limit statement alone. Prints a table and writes JSON
//! (bench-results/api.json). No operator runs: a Subscription without Stripe puts its organization on its
//! plan, which the API reads from its own caches.

#[path = "../api_inproc.rs"]
mod api_inproc;
#[path = "../api_load.rs"]
mod api_load;
#[path = "../machine.rs"]
mod machine;
#[path = "../measure.rs"]
#[allow(dead_code)]
mod measure;

use anyhow::Context as _;
use api_load::{OrgKey, Replica};
use atlantiplex_operator::keys;
use atlantiplex_operator::ledger::{Ledger, LedgerOptions, NewApiKey};
use clap::Parser;
use devcluster::{ControlPlane, Options};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/atlantiplex-operator")]
    operator: PathBuf,
    /// Organizations, each with one API key.
    #[arg(long, default_value_t = 1000)]
    orgs: usize,
    /// Requests per second of the open-loop runs.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// More open-loop runs against the two PostgreSQL replicas, at these rates (0: none).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pg_extra_rates: Vec<u64>,
    /// Leave out the run of the two PostgreSQL replicas with rate limits in process.
    #[arg(long)]
    skip_pg_memory_run: bool,
    /// Measured seconds of each open-loop run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of load before the measured window (not counted).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// HTTP/2 connections per replica (requests rotate over them).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// HTTP/1.1 keep-alive connections (a pool that grows with concurrency) instead of HTTP/2.
    #[arg(long)]
    http1: bool,
    /// In-process key checks.
    #[arg(long, default_value_t = 1_000_000)]
    key_checks: usize,
    /// Revocation samples.
    #[arg(long, default_value_t = 20)]
    revocations: usize,
    /// Rate-limit statements per run of `take_rate_limit`.
    #[arg(long, default_value_t = 10_000)]
    rate_limit_calls: usize,
    #[arg(long, default_value = "bench-results/api.json")]
    out: PathBuf,
}

const PLAN: &str = "apiVersion: atlantiplex.io/v1alpha1\nkind: Plan\nmetadata: {name: bench-api}\nspec:\n  \
    displayName: Bench API\n  price: {amountCents: 1000, currency: usd, interval: Month}\n  \
    rateLimit: {requestsPerMinute: 600000, burst: 100000}\n  features: {apiAccess: true}\n";

fn org_name(i: usize) -> String {
    format!("bench-{i:04}")
}

fn org_yaml(name: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\n\
         spec: {{slug: {name}, displayName: Bench {name}, owners: [{{kind: User, name: bench-owner}}]}}\n---\n\
         apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\n\
         spec: {{organization: {name}, plan: bench-api, billingEmail: b@bench.test}}\n"
    )
}

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

/// One `atlantiplex-operator api` replica; killed on drop.
struct ApiProcess {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every replica is started with.
struct Setup {
    operator: PathBuf,
    kubeconfig: PathBuf,
    tls_dir: PathBuf,
    hash_key: PathBuf,
    log_dir: PathBuf,
    ca_pem: String,
}

fn start_api(setup: &Setup, database_url: &str, store: &str, name: &str) -> anyhow::Result<ApiProcess> {
    let port = devcluster::free_port()?;
    let log = setup.log_dir.join(format!("api-bench-{name}.log"));
    let file = std::fs::File::create(&log)?;
    let child = Command::new(&setup.operator)
        .arg("api")
        .arg("--kubeconfig")
        .arg(&setup.kubeconfig)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--tls-dir")
        .arg(&setup.tls_dir)
        .args(["--database-url", database_url])
        .arg("--api-key-hash-key-file")
        .arg(&setup.hash_key)
        .args(["--rate-limit-store", store, "--log", "warn"])
        .env("POD_NAME", name)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {}", setup.operator.display()))?;
    Ok(ApiProcess { child, log, base: format!("https://127.0.0.1:{port}") })
}

/// Until `/readyz` answers 200 over HTTPS (the replica listens once its caches and key table are loaded).
async fn wait_ready(api: &mut ApiProcess, client: &api_load::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let request = hyper::Request::get(format!("{}/readyz", api.base)).body(Full::new(Bytes::new()))?;
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
            let ok = response.status() == 200;
            let _ = response.into_body().collect().await;
            if ok {
                return Ok(());
            }
        }
        if let Some(status) = api.child.try_wait()? {
            let log = std::fs::read_to_string(&api.log).unwrap_or_default();
            anyhow::bail!("the API exited ({status}) before it was ready:\n{log}");
        }
        anyhow::ensure!(Instant::now() < deadline, "API not ready after 120 s (see {})", api.log.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Started replicas and the client connections to each.
async fn start_replicas(
    setup: &Setup,
    args: &Args,
    database_url: &str,
    store: &str,
    names: &[&str],
) -> anyhow::Result<(Vec<ApiProcess>, Vec<Replica>)> {
    let mut processes = Vec::new();
    for name in names {
        processes.push(start_api(setup, database_url, store, name)?);
    }
    let mut replicas = Vec::new();
    for api in &mut processes {
        let count = if args.http1 { 1 } else { args.connections.max(1) };
        let clients = (0..count)
            .map(|_| api_load::client(setup.ca_pem.as_bytes(), args.http1))
            .collect::<anyhow::Result<Vec<_>>>()?;
        wait_ready(api, &clients[0]).await?;
        replicas.push(Replica { base: api.base.clone(), clients });
    }
    Ok((processes, replicas))
}

/// One open-loop run, and the PostgreSQL server behind its replicas, if any.
struct Load<'a> {
    label: &'a str,
    rate: u64,
    pg: Option<&'a Pg>,
}

/// The bench's PostgreSQL server, to count its CPU and the rows the replicas write.
struct Pg {
    postmaster: Option<u32>,
    port: u16,
    database: String,
}

impl Pg {
    /// One number from `sql`, through psql (the bench has no SQL client of its own).
    fn scalar(&self, sql: &str) -> Option<f64> {
        let out = Command::new(pgserver::bin_dir().ok()?.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", &self.database])
            .args(["-At", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Rows the API-calls meter has written (one per organization with calls, per replica, per second).
    fn meter_rows(&self) -> f64 {
        self.scalar("SELECT count(*) FROM usage_events WHERE source LIKE 'tenant-api/%'").unwrap_or(0.0)
    }
}

/// A warm-up (connections, TLS, every organization once per replica), the open-loop run, and the CPU the
/// replicas, the bench client, PostgreSQL and the whole machine used during it.
async fn load(
    run: &Load<'_>,
    processes: &[ApiProcess],
    replicas: &[Replica],
    orgs: &[OrgKey],
    args: &Args,
) -> anyhow::Result<Value> {
    let label = run.label;
    for replica in replicas {
        for (i, org) in orgs.iter().enumerate() {
            let client = &replica.clients[i % replica.clients.len()];
            let answer = api_load::get_organization(client, &replica.base, &org.org, &org.key).await;
            anyhow::ensure!(answer.status == 200, "{label}: warm-up GET of {} answered {}", org.org, answer.status);
        }
    }
    eprintln!(
        "{label}: {} req/s for {} s (+{} s warm-up) over {} replica(s)...",
        run.rate,
        args.seconds,
        args.warmup,
        replicas.len()
    );
    // The warm-up's calls reach the API-calls meter's next flush before counting starts.
    tokio::time::sleep(atlantiplex_operator::http::call_meter::FLUSH_EVERY + Duration::from_millis(500)).await;
    let pids: Vec<u32> = processes.iter().map(|p| p.child.id()).collect();
    let pg_cpu = || run.pg.and_then(|pg| pg.postmaster).map(api_load::tree_cpu_seconds).unwrap_or(0.0);
    let meter_rows = run.pg.map(Pg::meter_rows);
    let cpu = |pids: &[u32]| pids.iter().map(|&p| measure::process_usage(p).0).sum::<f64>();
    let bench_cpu = || measure::process_usage(std::process::id()).0;
    let before = (cpu(&pids), bench_cpu(), pg_cpu(), api_load::machine_cpu());
    let (warmup, seconds) = (Duration::from_secs(args.warmup), Duration::from_secs(args.seconds));
    let result = api_load::open_loop(replicas, orgs, run.rate, warmup, seconds, 0x5eed).await?;
    let after = (cpu(&pids), bench_cpu(), pg_cpu(), api_load::machine_cpu());
    let mut result = result.json();
    let sent = run.rate as f64 * (warmup + seconds).as_secs_f64();
    let (api_cpu, client_cpu, postgres_cpu) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    result["setup"] = json!(label);
    result["replicas"] = json!(replicas.len());
    result["api_cpu_seconds"] = json!(api_cpu);
    result["api_cpu_us_per_request"] = json!(api_cpu * 1e6 / sent);
    result["bench_client_cpu_seconds"] = json!(client_cpu);
    result["machine_cpu_busy_percent"] = json!(api_load::busy_percent(before.3, after.3));
    result["machine_cpu_busy_seconds"] = json!(after.3.0 - before.3.0);
    if let (Some(pg), Some(before)) = (run.pg, meter_rows) {
        result["postgres_cpu_seconds"] = json!(postgres_cpu);
        // Read after the replicas' next flush, so the run's last calls are in.
        tokio::time::sleep(atlantiplex_operator::http::call_meter::FLUSH_EVERY + Duration::from_millis(500)).await;
        let rows = pg.meter_rows() - before;
        result["api_call_meter_inserts"] = json!(rows);
        result["api_call_meter_inserts_per_second"] = json!(rows / (warmup + seconds).as_secs_f64());
    }
    result["api_peak_rss_mib"] = json!(pids.iter().map(|&p| measure::process_usage(p).1).collect::<Vec<_>>());
    Ok(result)
}

/// `samples` times: revoke a key in the ledger and poll both replicas every 5 ms until each answers 401.
async fn revocation(ledger: &Ledger, replicas: &[Replica], orgs: &[OrgKey], samples: usize) -> anyhow::Result<Value> {
    let mut both = Vec::new();
    let mut per_replica: Vec<Vec<Duration>> = vec![Vec::new(); replicas.len()];
    let mut unexpected = 0usize;
    for s in 0..samples.min(orgs.len()) {
        let org = &orgs[orgs.len() - 1 - s];
        for replica in replicas {
            let answer = api_load::get_organization(&replica.clients[0], &replica.base, &org.org, &org.key).await;
            anyhow::ensure!(answer.status == 200, "{} answered {} before the revocation", org.org, answer.status);
        }
        let started = Instant::now();
        anyhow::ensure!(ledger.revoke_api_key(&org.org, &key_id(&org.org)).await?, "{}'s key not revoked", org.org);
        let mut refused: Vec<Option<Duration>> = vec![None; replicas.len()];
        while refused.iter().any(Option::is_none) {
            let pending: Vec<usize> = (0..replicas.len()).filter(|&r| refused[r].is_none()).collect();
            let answers = futures::future::join_all(pending.iter().map(|&r| {
                let replica = &replicas[r];
                api_load::get_organization(&replica.clients[0], &replica.base, &org.org, &org.key)
            }))
            .await;
            for (&r, answer) in pending.iter().zip(answers) {
                match answer.status {
                    401 => refused[r] = Some(started.elapsed()),
                    200 => {}
                    _ => unexpected += 1,
                }
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "{}'s key still accepted after 30 s", org.org);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for (r, t) in refused.iter().enumerate() {
            per_replica[r].push(t.unwrap_or_default());
        }
        both.push(refused.iter().flatten().max().copied().unwrap_or_default());
        // Out of step with the replicas' 250 ms refresh, so the samples fall at different points of it.
        tokio::time::sleep(Duration::from_millis(37 + 23 * (s as u64 % 5))).await;
    }
    both.sort();
    let ms = |v: &[Duration], p: f64| measure::percentile(v, p).as_secs_f64() * 1e3;
    let max = |v: &[Duration]| v.iter().max().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
    Ok(json!({
        "samples": both.len(),
        "poll_interval_ms": 5,
        "both_refuse_ms_p50": ms(&both, 50.0),
        "both_refuse_ms_p90": ms(&both, 90.0),
        "both_refuse_ms_max": max(&both),
        "per_replica_ms_max": per_replica.iter().map(|v| max(v)).collect::<Vec<_>>(),
        "unexpected_answers": unexpected,
    }))
}

fn key_id(org: &str) -> String {
    format!("key_{}", org.replace('-', "_"))
}

/// One read key per organization, stored (hash only) in every ledger given.
async fn insert_keys(ledgers: &[&Ledger], hasher: &keys::Hasher, orgs: &[String]) -> anyhow::Result<Vec<OrgKey>> {
    let mut out = Vec::with_capacity(orgs.len());
    for org in orgs {
        let key = keys::generate().map_err(|_| anyhow::anyhow!("no random source"))?;
        let (id, prefix, hash) = (key_id(org), keys::display_prefix(&key), hasher.hash(&key));
        let new = NewApiKey {
            id: &id,
            organization: org,
            name: "bench",
            prefix: &prefix,
            hash: &hash,
            scopes: "read",
            origin: "api",
            created_by: "bench",
            expires_at: None,
        };
        for ledger in ledgers {
            ledger.insert_api_key(&new).await?;
        }
        out.push(OrgKey { org: org.clone(), key });
    }
    Ok(out)
}

fn write_tls(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let ca = devcluster::pki::Ca::generate_named("api-bench-ca")?;
    let serving = ca.serving("127.0.0.1", &["127.0.0.1", "localhost"])?;
    std::fs::write(dir.join("tls.crt"), &serving.cert_pem)?;
    devcluster::pki::write_private(&dir.join("tls.key"), &serving.key_pem)?;
    Ok(ca.pair.cert_pem.clone())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.operator.exists(), "{} not found: run `make bench-api`", args.operator.display());
    let scratch = std::env::temp_dir().join(format!("atlantiplex-api-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = run(&args, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = result?;
    print_table(&report);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("saved {}", args.out.display());
    Ok(())
}

async fn run(args: &Args, scratch: &Path) -> anyhow::Result<Value> {
    let mut options = Options::for_tests()?;
    options.audit = false;
    eprintln!("starting a control plane and PostgreSQL...");
    let p = Plane { plane: ControlPlane::start(options).await? };
    let mut server = pgserver::PgServer::start().context("starting PostgreSQL")?;
    let version = Command::new(pgserver::bin_dir()?.join("postgres")).arg("--version").output()?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    p.kubectl(&["apply", "--server-side", "-f", &format!("{root}/crds/")], None)?;
    p.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"], None)?;
    p.kubectl(&["apply", "--server-side", "-f", &format!("{root}/examples/plans.yaml")], None)?;
    p.apply(PLAN)?;
    let names: Vec<String> = (1..=args.orgs).map(org_name).collect();
    let started = Instant::now();
    for chunk in names.chunks(100) {
        let yaml: Vec<String> = chunk.iter().map(|n| org_yaml(n)).collect();
        p.apply(&yaml.join("---\n"))?;
    }
    eprintln!("{} organizations and subscriptions applied in {:.1} s", names.len(), started.elapsed().as_secs_f64());

    let hash_key = scratch.join("api-key-hash");
    let hash_key_bytes = format!("{}-api-bench-hash-key", keys::generate().map_err(|_| anyhow::anyhow!("no random"))?);
    std::fs::write(&hash_key, &hash_key_bytes)?;
    let hasher = keys::Hasher::new(hash_key_bytes.as_bytes()).map_err(anyhow::Error::msg)?;
    let pg_url = server.create_database("api_bench")?;
    let sqlite_url = format!("sqlite://{}?mode=rwc", scratch.join("ledger.db").display());
    let pg = Ledger::connect(&pg_url).await?;
    let sqlite = Ledger::connect(&sqlite_url).await?;
    let started = Instant::now();
    let orgs = insert_keys(&[&pg, &sqlite], &hasher, &names).await?;
    eprintln!("{} keys stored in both ledgers in {:.1} s", orgs.len(), started.elapsed().as_secs_f64());
    sqlite.close().await;

    eprintln!("in process: {} key checks...", args.key_checks);
    let presented: Vec<String> = orgs.iter().map(|o| o.key.clone()).collect();
    // A ledger of its own: the key table polls it every 250 ms for as long as it is open.
    let table_ledger = Ledger::connect(&pg_url).await?;
    let key_check = api_inproc::key_check(&table_ledger, &hasher, &presented, args.key_checks).await?;
    table_ledger.close().await;
    eprintln!("in process: take_rate_limit, 1 and 16 callers...");
    let wide = Ledger::connect_with(&pg_url, &LedgerOptions { max_connections: 16, ..Default::default() }).await?;
    let mut rate_limit = Vec::new();
    rate_limit.push(api_inproc::take_rate_limit(&wide, "seq", 1, args.rate_limit_calls / 2, 1000).await?);
    rate_limit.push(api_inproc::take_rate_limit(&wide, "par", 16, args.rate_limit_calls, 1000).await?);
    rate_limit.push(api_inproc::take_rate_limit(&wide, "hot", 16, args.rate_limit_calls, 1).await?);
    wide.close().await;

    let setup = Setup {
        operator: args.operator.clone(),
        kubeconfig: p.plane.mint_kubeconfig("atlantiplex-tenant-api", &["system:masters"])?,
        tls_dir: scratch.join("tls"),
        hash_key,
        log_dir: p.plane.dir.join("logs"),
        ca_pem: write_tls(&scratch.join("tls"))?,
    };
    let postmaster = std::fs::read_to_string(server.dir().join("data/postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
    let pg_server = Pg { postmaster, port: server.port(), database: "api_bench".to_string() };
    let pg_names = ["api-pg-0", "api-pg-1"];
    let mut loads = Vec::new();
    if !args.skip_pg_memory_run {
        // The same two replicas with rate limits in process (not exact across replicas): what the
        // PostgreSQL statement per request costs under load.
        eprintln!("postgres, rate limits in process: starting 2 API replicas...");
        let (processes, replicas) = start_replicas(&setup, args, &pg_url, "memory", &pg_names).await?;
        let run = Load { label: "2 replicas, PostgreSQL, limits in process", rate: args.rate, pg: Some(&pg_server) };
        loads.push(load(&run, &processes, &replicas, &orgs, args).await?);
    }
    eprintln!("postgres: starting 2 API replicas...");
    let (processes, replicas) = start_replicas(&setup, args, &pg_url, "postgres", &pg_names).await?;
    for rate in std::iter::once(args.rate).chain(args.pg_extra_rates.iter().copied().filter(|&r| r > 0)) {
        let run = Load { label: "2 replicas, PostgreSQL", rate, pg: Some(&pg_server) };
        loads.push(load(&run, &processes, &replicas, &orgs, args).await?);
    }
    eprintln!("postgres: revocation, {} samples...", args.revocations);
    let revoked = revocation(&pg, &replicas, &orgs, args.revocations).await?;
    drop(processes);
    pg.close().await;

    eprintln!("sqlite: starting 1 API replica...");
    let (processes, replicas) = start_replicas(&setup, args, &sqlite_url, "memory", &["api-sqlite-0"]).await?;
    let run = Load { label: "1 replica, SQLite", rate: args.rate, pg: None };
    loads.push(load(&run, &processes, &replicas, &orgs, args).await?);
    drop(processes);
    server.stop()?;
    drop(p);

    let connections = if args.http1 {
        "HTTP/1.1 keep-alive pool".to_string()
    } else {
        format!("HTTP/2, {} connections per replica", args.connections)
    };
    Ok(json!({
        "date": jiff::Timestamp::now().to_string(),
        "machine": machine::machine(),
        "postgres": String::from_utf8_lossy(&version.stdout).trim(),
        "measured": format!(
            "GET /v1/organizations/{{org}} over HTTPS ({}, TCP_NODELAY) with each organization's API key \
             (scope read), {} organizations at random, open loop (latency from the scheduled send time); release \
             `atlantiplex-operator api` replicas, client, API server, etcd and PostgreSQL on the same machine; \
             no operator",
            connections,
            args.orgs
        ),
        "targets": {
            "load_p99_ms": 5.0, "load_rate_per_second": 2000,
            "key_check_ns": 5000.0, "revocation_ms": 1000.0,
        },
        "load": loads,
        "revocation": revoked,
        "key_check": key_check,
        "take_rate_limit": rate_limit,
    }))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_table(report: &Value) {
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!("tenant API benchmark — {}", report["measured"].as_str().unwrap_or_default());
    for r in report["load"].as_array().into_iter().flatten() {
        let (p99, offered) = (num(&r["latency_ms_p99"]), num(&r["offered_per_second"]));
        let target = if offered >= 2000.0 {
            format!("[target p99 < 5 ms at 2,000/s: {}]", verdict(p99 < 5.0))
        } else {
            format!("[below the target rate; p99 < 5 ms: {}]", if p99 < 5.0 { "yes" } else { "no" })
        };
        println!(
            "{:<42} offered {:>5}/s achieved {:>5.0}/s   p50 {:>7.2} p90 {:>7.2} p99 {:>7.2} max {:>7.2} ms   \
             {}   {target}",
            r["setup"].as_str().unwrap_or("?"),
            r["offered_per_second"],
            num(&r["achieved_per_second"]),
            num(&r["latency_ms_p50"]),
            num(&r["latency_ms_p90"]),
            p99,
            num(&r["latency_ms_max"]),
            r["status_counts"],
        );
        let pg = r.get("postgres_cpu_seconds").map(|v| format!(", PostgreSQL {:.1} s", num(v))).unwrap_or_default();
        let meter = r
            .get("api_call_meter_inserts_per_second")
            .map(|v| format!("; API-calls meter {:.0} inserts/s", num(v)))
            .unwrap_or_default();
        println!(
            "{:<42} CPU: API {:.1} s ({:.0} µs/request), bench client {:.1} s{pg}; machine {:.0} % busy; \
             API peak RSS {} MiB; send lag p99 {:.2} ms, p99 from send {:.2} ms{meter}",
            "",
            num(&r["api_cpu_seconds"]),
            num(&r["api_cpu_us_per_request"]),
            num(&r["bench_client_cpu_seconds"]),
            num(&r["machine_cpu_busy_percent"]),
            r["api_peak_rss_mib"],
            num(&r["send_lag_ms_p99"]),
            num(&r["from_send_ms_p99"])
        );
    }
    let rev = &report["revocation"];
    println!(
        "{:<42} p50 {:>6.0} ms   p90 {:>6.0} ms   max {:>6.0} ms ({} samples)   [promise ≤ 1 s: {}]",
        "revocation → 401 on both",
        num(&rev["both_refuse_ms_p50"]),
        num(&rev["both_refuse_ms_p90"]),
        num(&rev["both_refuse_ms_max"]),
        rev["samples"],
        verdict(num(&rev["both_refuse_ms_max"]) <= 1000.0)
    );
    let k = &report["key_check"];
    println!(
        "{:<42} {:>6.0} ns per check (p50 {:.0}, p99 {:.0} ns; parse {:.0} + hash {:.0} + lookup {:.0} ns)   \
         [target < 5 µs: {}]",
        "key check, in process",
        num(&k["ns_per_check"]),
        num(&k["ns_p50"]),
        num(&k["ns_p99"]),
        num(&k["parse_ns"]),
        num(&k["hash_ns"]),
        num(&k["lookup_ns"]),
        verdict(num(&k["ns_per_check"]) < 5000.0)
    );
    for r in report["take_rate_limit"].as_array().into_iter().flatten() {
        println!(
            "{:<42} {:>2} caller(s), {:>4} key(s): {:>6.0}/s   p50 {:.2} ms   p99 {:.2} ms",
            "take_rate_limit (PG)",
            r["callers"],
            r["distinct_keys"],
            num(&r["per_second"]),
            num(&r["latency_ms_p50"]),
            num(&r["latency_ms_p99"])
        );
    }
}
