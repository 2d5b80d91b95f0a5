//! `console`: the console's pages as `atlantiplex-operator api` (release build) serves them on a local
//! control plane with 1,000 organizations (the first 100 with two teams each), each with a Subscription and
//! the status the operator would have written, and a ledger (SQLite) seeded with a year of subscription
//! history, twelve invoices per organization and 90 days of hourly usage for 101 of them. A signed-in
//! session is put straight into the ledger (the cookie of a platform admin who owns every organization), so
//! no browser and no identity provider take part. Per page: the first request after the API started (cold:
//! for the platform pages that includes computing the platform figures), then sequential requests over one
//! keep-alive HTTP/1.1 connection, timed from send to the last byte. Prints a table and writes JSON
//! (bench-results/console.json). No operator runs.

#[path = "../api_load.rs"]
#[allow(dead_code)]
mod api_load;
#[path = "../console_seed.rs"]
mod console_seed;
#[path = "../machine.rs"]
mod machine;
#[path = "../measure.rs"]
#[allow(dead_code)]
mod measure;

use anyhow::Context as _;
use atlantiplex_operator::api::{Organization, Subscription, Team};
use atlantiplex_operator::ledger::Ledger;
use clap::Parser;
use console_seed::{OrgSeed, TEAMS};
use devcluster::{ControlPlane, Options};
use futures::{StreamExt as _, TryStreamExt as _};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/atlantiplex-operator")]
    operator: PathBuf,
    #[arg(long, default_value_t = 1000)]
    orgs: usize,
    /// The first this many organizations have two teams each.
    #[arg(long, default_value_t = 100)]
    team_orgs: usize,
    /// Organizations with hourly usage events (bench-0000 to this one).
    #[arg(long, default_value_t = 100)]
    usage_orgs: usize,
    #[arg(long, default_value_t = 90)]
    usage_days: i64,
    /// Timed requests per page.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Untimed requests per page before them.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Leave out waiting for the platform figures' cache to expire (twice 31 s) to time a recomputation.
    #[arg(long)]
    skip_recompute: bool,
    /// Runs of each in-process read (their median is reported).
    #[arg(long, default_value_t = 20)]
    in_process_runs: usize,
    /// Keep the scratch directory (the seeded ledger file, TLS files) for a look afterwards.
    #[arg(long)]
    keep_scratch: bool,
    #[arg(long, default_value = "bench-results/console.json")]
    out: PathBuf,
}

/// The page of interest's organization.
const ORG: &str = "bench-0001";
/// Kubernetes writes at once while seeding.
const CONCURRENCY: usize = 16;
const TARGET_P99_MS: f64 = 50.0;

/// Each page, and a text its answer must contain (so an empty page is not what gets timed).
fn pages(orgs: usize) -> Vec<(String, String)> {
    let org = |rest: &str| format!("/console/orgs/{ORG}{rest}");
    vec![
        ("/console".into(), console_seed::org_name(orgs.saturating_sub(1))),
        (org(""), ORG.into()),
        (org("/billing"), "BENCH-0001-0011".into()),
        (org("/usage"), "Bandwidth".into()),
        (org("/usage?days=90"), "Bandwidth".into()),
        (org("/team"), format!("{ORG}.video")),
        ("/console/admin".into(), "bench-0001".into()),
        ("/console/admin?plan=professional".into(), "bench-".into()),
        ("/console/admin/revenue".into(), "revenue-USD".into()),
    ]
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

    /// Server-side apply of many objects, 100 to a kubectl call.
    fn apply_all(&self, objects: &[String]) -> anyhow::Result<()> {
        for chunk in objects.chunks(100) {
            self.kubectl(&["apply", "--server-side", "-f", "-"], Some(&chunk.join("---\n")))?;
        }
        Ok(())
    }
}

/// The API process; killed on drop.
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

fn write_tls(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let ca = devcluster::pki::Ca::generate_named("console-bench-ca")?;
    let serving = ca.serving("127.0.0.1", &["127.0.0.1", "localhost"])?;
    std::fs::write(dir.join("tls.crt"), &serving.cert_pem)?;
    devcluster::pki::write_private(&dir.join("tls.key"), &serving.key_pem)?;
    Ok(ca.pair.cert_pem.clone())
}

fn start_api(
    operator: &Path,
    kubeconfig: &Path,
    scratch: &Path,
    database_url: &str,
    log: PathBuf,
) -> anyhow::Result<ApiProcess> {
    let port = devcluster::free_port()?;
    let base = format!("https://127.0.0.1:{port}");
    let hash_key = scratch.join("api-key-hash");
    std::fs::write(
        &hash_key,
        format!("{}-console-bench-hash-key", atlantiplex_operator::http::signin::random_token()),
    )?;
    let file = std::fs::File::create(&log)?;
    let child = Command::new(operator)
        .arg("api")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--tls-dir")
        .arg(scratch.join("tls"))
        .args(["--database-url", database_url])
        .arg("--api-key-hash-key-file")
        .arg(&hash_key)
        .args(["--rate-limit-store", "memory", "--log", "warn"])
        // Never contacted: the provider is discovered only when someone starts a sign-in.
        .args(["--oidc-issuer", "https://127.0.0.1:9", "--oidc-client-id", "atlantiplex-console"])
        .args(["--public-url", &base, "--platform-admin-group", "oidc:platform-admins"])
        .args(["--session-idle-minutes", "600"])
        .env("POD_NAME", "console-bench")
        .env_remove("ATLANTIPLEX_STRIPE_SECRET")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {}", operator.display()))?;
    Ok(ApiProcess { child, log, base })
}

/// One answer, read to its last byte.
struct Answer {
    status: u16,
    body: Bytes,
    elapsed: Duration,
}

async fn get(client: &api_load::Client, url: &str, cookie: &str) -> anyhow::Result<Answer> {
    let started = Instant::now();
    let call = async {
        let request = hyper::Request::get(url)
            .header("cookie", cookie)
            .header("accept", "text/html")
            .body(Full::new(Bytes::new()))?;
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(Answer { status, body, elapsed: started.elapsed() })
    };
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .with_context(|| format!("GET {url}: no answer in 60 s"))?
}

/// `get`, which must answer 200 with `marker` in the page.
async fn get_page(
    client: &api_load::Client,
    base: &str,
    path: &str,
    marker: &str,
    cookie: &str,
) -> anyhow::Result<Answer> {
    let answer = get(client, &format!("{base}{path}"), cookie).await?;
    let text = String::from_utf8_lossy(&answer.body);
    let excerpt: String = text.chars().take(800).collect();
    anyhow::ensure!(answer.status == 200, "GET {path} answered {}: {excerpt}", answer.status);
    anyhow::ensure!(text.contains(marker), "GET {path}: the page lacks {marker:?}: {excerpt}");
    Ok(answer)
}

/// Until `/readyz` answers 200 (the API listens once its caches are loaded).
async fn wait_ready(api: &mut ApiProcess, client: &api_load::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(answer) = get(client, &format!("{}/readyz", api.base), "").await
            && answer.status == 200
        {
            return Ok(());
        }
        if let Some(status) = api.child.try_wait()? {
            let log = std::fs::read_to_string(&api.log).unwrap_or_default();
            anyhow::bail!("the API exited ({status}) before it was ready:\n{log}");
        }
        anyhow::ensure!(Instant::now() < deadline, "API not ready after 120 s (see {})", api.log.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The machine's 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Server-side apply of each status, `CONCURRENCY` at a time.
async fn patch_statuses<K>(api: &Api<K>, statuses: Vec<(String, Value)>) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(statuses)
        .map(|(name, status)| async move {
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .with_context(|| format!("status of {name}"))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn kubernetes_objects(p: &Plane, args: &Args, seeds: &[OrgSeed]) -> anyhow::Result<Value> {
    let client = p.plane.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in atlantiplex_operator::api::crds() {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        crds.patch(&name, &PatchParams::apply("console-bench").force(), &Patch::Apply(&crd)).await?;
    }
    p.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"], None)?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    p.kubectl(&["apply", "--server-side", "-f", &format!("{root}/examples/plans.yaml")], None)?;
    let started = Instant::now();
    let team_orgs = args.team_orgs.min(seeds.len());
    let mut objects: Vec<String> = seeds.iter().map(|s| console_seed::organization_yaml(&s.name)).collect();
    objects.extend(seeds.iter().map(console_seed::subscription_yaml));
    for seed in &seeds[..team_orgs] {
        objects.extend(TEAMS.iter().map(|t| console_seed::team_yaml(&seed.name, t)));
    }
    p.apply_all(&objects)?;
    let teams_of = |i: usize| if i < team_orgs { TEAMS.len() } else { 0 };
    let organizations: Api<Organization> = Api::all(client.clone());
    let statuses =
        seeds.iter().enumerate().map(|(i, s)| (s.name.clone(), console_seed::organization_status(s, teams_of(i))));
    patch_statuses(&organizations, statuses.collect()).await?;
    let subscriptions: Api<Subscription> = Api::all(client.clone());
    let statuses = seeds.iter().enumerate().map(|(i, s)| (s.name.clone(), console_seed::subscription_status(s, i)));
    patch_statuses(&subscriptions, statuses.collect()).await?;
    let teams: Api<Team> = Api::all(client);
    let statuses = seeds[..team_orgs]
        .iter()
        .flat_map(|s| TEAMS.iter().map(|t| (format!("{}.{t}", s.name), console_seed::team_status(&s.name, t))));
    patch_statuses(&teams, statuses.collect()).await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} organizations, subscriptions and {} teams applied with status in {seconds:.1} s",
        seeds.len(),
        team_orgs * TEAMS.len()
    );
    Ok(
        json!({"organizations": seeds.len(), "subscriptions": seeds.len(), "teams": team_orgs * TEAMS.len(), "seconds": seconds}),
    )
}

/// The ledger file the API will open: history, invoices, keys, usage and the session. The session's
/// cookie id, and what was stored.
async fn seed_ledger(
    url: &str,
    args: &Args,
    seeds: &[OrgSeed],
    now: jiff::Timestamp,
) -> anyhow::Result<(String, Value)> {
    let ledger = Ledger::connect(url).await?;
    let started = Instant::now();
    let mut counts = console_seed::history(&ledger, seeds).await?;
    let history_seconds = started.elapsed().as_secs_f64();
    counts.api_keys = console_seed::api_keys(&ledger, seeds.len()).await?;
    let started = Instant::now();
    for (index, seed) in seeds.iter().enumerate().take(args.usage_orgs + 1) {
        let events = console_seed::usage_events(index, now, args.usage_days);
        for batch in events.chunks(2_000) {
            let inserted = ledger.insert_usage_events(&seed.name, batch).await?;
            counts.usage_events += inserted.len();
        }
    }
    let usage_seconds = started.elapsed().as_secs_f64();
    let cookie_id = console_seed::session(&ledger, now).await?;
    ledger.close().await;
    eprintln!(
        "ledger: {} subscription changes and {} invoices in {history_seconds:.1} s, {} usage events in {usage_seconds:.1} s",
        counts.subscription_changes, counts.invoices, counts.usage_events
    );
    let per_org = |n: usize| n as f64 / seeds.len().max(1) as f64;
    Ok((
        cookie_id,
        json!({
            "subscription_changes": counts.subscription_changes,
            "subscription_changes_per_org": per_org(counts.subscription_changes),
            "invoices": counts.invoices,
            "api_keys": counts.api_keys,
            "usage_events": counts.usage_events,
            "usage_organizations": (args.usage_orgs + 1).min(seeds.len()),
            "usage_days": args.usage_days,
            "history_seconds": history_seconds,
            "usage_seconds": usage_seconds,
        }),
    ))
}

/// The figures of one page's timed requests.
fn page_figures(path: &str, cold: &Answer, mut times: Vec<Duration>, bytes: usize, api_cpu_seconds: f64) -> Value {
    times.sort();
    let p = |q: f64| ms(measure::percentile(&times, q));
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len().max(1) as f64;
    json!({
        "path": path,
        "cold_ms": ms(cold.elapsed),
        "requests": times.len(),
        "ms_p50": p(50.0),
        "ms_p90": p(90.0),
        "ms_p99": p(99.0),
        "ms_max": times.last().map_or(0.0, |d| ms(*d)),
        "ms_mean": mean,
        "bytes": bytes,
        "api_cpu_ms_per_request": api_cpu_seconds * 1e3 / times.len().max(1) as f64,
    })
}

/// The median of `runs` timings of `f`, in ms, and what its last run returned (a row count).
async fn median_ms<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<(f64, usize)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        rows = f().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((ms(measure::percentile(&times, 50.0)), rows))
}

/// In process, on the seeded ledger (the API stopped): the reads behind the pages, and the revenue
/// report alone, to see where a page's time goes.
async fn in_process(url: &str, now: jiff::Timestamp, runs: usize) -> anyhow::Result<Vec<Value>> {
    let ledger = Ledger::connect(url).await?;
    let days = |d: i64| now - jiff::SignedDuration::from_hours(24 * d);
    let hour = |t: jiff::Timestamp| jiff::Timestamp::from_second(t.as_second() / 3600 * 3600).unwrap_or(t);
    let mut out = Vec::new();
    let mut push = |what: String, (ms, rows): (f64, usize)| {
        eprintln!("in process: {what}: {ms:.2} ms ({rows} rows)");
        out.push(json!({"what": what, "ms_median": ms, "rows": rows}));
    };
    for d in [30, 90] {
        let from = hour(days(d));
        let timed = median_ms(runs, || async { Ok(ledger.usage_windows_all(ORG, from, now).await?.len()) }).await?;
        push(format!("usage_windows_all({ORG}, {d} days)"), timed);
        let timed = median_ms(runs, || async { Ok(ledger.usage_by_subject(ORG, from).await?.len()) }).await?;
        push(format!("usage_by_subject({ORG}, {d} days)"), timed);
    }
    let epoch = jiff::Timestamp::UNIX_EPOCH;
    let timed = median_ms(runs, || async { Ok(ledger.subscription_history(None, epoch, now).await?.len()) }).await?;
    push("subscription_history(all)".into(), timed);
    let history = ledger.subscription_history(None, epoch, now).await?;
    let internal = std::collections::BTreeSet::from(["admin".to_string()]);
    let timed = median_ms(runs, || async {
        let inputs = atlantiplex_operator::revenue::Inputs {
            history: &history,
            internal_plans: &internal,
            months: atlantiplex_operator::revenue::months_ending(now, 12),
            now,
        };
        Ok(atlantiplex_operator::revenue::report(&inputs).organizations.len())
    })
    .await?;
    push("revenue::report (pure, 12 months)".into(), timed);
    let from = hour(days(30));
    let timed = median_ms(runs, || async { Ok(ledger.platform_usage(from, now).await?.len()) }).await?;
    push("platform_usage(30 days)".into(), timed);
    let timed = median_ms(runs, || async { Ok(ledger.organizations_with_usable_keys(now).await?.len()) }).await?;
    push("organizations_with_usable_keys".into(), timed);
    ledger.close().await;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.operator.exists(), "{} not found: run `make bench-console`", args.operator.display());
    let scratch = std::env::temp_dir().join(format!("atlantiplex-console-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = run(&args, &scratch).await;
    if args.keep_scratch {
        eprintln!("kept {}", scratch.display());
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
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
    eprintln!("starting a control plane...");
    let p = Plane { plane: ControlPlane::start(options).await? };
    let now = jiff::Timestamp::now();
    let seeds: Vec<OrgSeed> = (0..args.orgs).map(|i| console_seed::org_history(i, now)).collect();
    let objects = kubernetes_objects(&p, args, &seeds).await?;
    let database_url = format!("sqlite://{}?mode=rwc", scratch.join("ledger.db").display());
    let (cookie_id, ledger) = seed_ledger(&database_url, args, &seeds, now).await?;
    let cookie = format!("{}={cookie_id}", atlantiplex_operator::http::signin::SESSION_COOKIE);

    let ca_pem = write_tls(&scratch.join("tls"))?;
    let kubeconfig = p.plane.mint_kubeconfig("atlantiplex-tenant-api", &["system:masters"])?;
    let log = p.plane.dir.join("logs").join("console-bench-api.log");
    let mut api = start_api(&args.operator, &kubeconfig, scratch, &database_url, log)?;
    // One keep-alive HTTP/1.1 connection: requests are sequential, so the pool never opens a second.
    let client = api_load::client(ca_pem.as_bytes(), true)?;
    let started = Instant::now();
    wait_ready(&mut api, &client).await?;
    eprintln!("API ready in {:.1} s", started.elapsed().as_secs_f64());
    let pid = api.child.id();

    // Cold: each page's first request after the start, in order (the platform figures are computed by
    // the first platform page that needs them, /console/admin).
    let pages = pages(args.orgs);
    let load_before = load_average();
    let mut colds = Vec::new();
    for (path, marker) in &pages {
        let answer = get_page(&client, &api.base, path, marker, &cookie).await?;
        eprintln!("cold {path}: {:.1} ms", ms(answer.elapsed));
        colds.push(answer);
    }
    let mut results = Vec::new();
    for ((path, marker), cold) in pages.iter().zip(&colds) {
        for _ in 0..args.warmup {
            get_page(&client, &api.base, path, marker, &cookie).await?;
        }
        let cpu_before = measure::process_usage(pid).0;
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = cold.body.len();
        for _ in 0..args.requests {
            let answer = get_page(&client, &api.base, path, marker, &cookie).await?;
            times.push(answer.elapsed);
            bytes = answer.body.len();
        }
        let cpu = measure::process_usage(pid).0 - cpu_before;
        let figures = page_figures(path, cold, times, bytes, cpu);
        eprintln!(
            "{path}: p50 {:.2} p99 {:.2} ms",
            figures["ms_p50"].as_f64().unwrap_or(0.0),
            figures["ms_p99"].as_f64().unwrap_or(0.0)
        );
        results.push(figures);
    }

    // The platform figures once more from scratch, as a page finds them every 30 s.
    let mut recompute = Vec::new();
    if !args.skip_recompute {
        let refresh = atlantiplex_operator::console::platform::REFRESH + Duration::from_secs(1);
        for (path, marker) in [("/console/admin/revenue", "revenue-USD"), ("/console/admin", "bench-0001")] {
            eprintln!("waiting {} s for the platform figures to expire...", refresh.as_secs());
            tokio::time::sleep(refresh).await;
            let answer = get_page(&client, &api.base, path, marker, &cookie).await?;
            let warm = get_page(&client, &api.base, path, marker, &cookie).await?;
            eprintln!("recomputed {path}: {:.1} ms (then {:.1} ms)", ms(answer.elapsed), ms(warm.elapsed));
            recompute.push(json!({"path": path, "ms": ms(answer.elapsed), "next_ms": ms(warm.elapsed)}));
        }
    }
    let load_after = load_average();
    let (api_cpu_seconds, api_peak_rss_mib) = measure::process_usage(pid);
    drop(api);
    let in_process = in_process(&database_url, jiff::Timestamp::now(), args.in_process_runs).await?;
    drop(p);

    Ok(json!({
        "date": jiff::Timestamp::now().to_string(),
        "machine": machine::machine(),
        // Other work on the machine (builds) shows in the tail: the 1-minute load before and after the pages.
        "load_average_1m": [load_before, load_after],
        "measured": format!(
            "GET of each console page with a platform admin's session cookie (who owns every organization), \
             over HTTPS on one keep-alive HTTP/1.1 connection (TCP_NODELAY), sequential, timed from send to \
             the last byte; {} timed after {} untimed per page; release `atlantiplex-operator api` on SQLite, \
             client, API server and etcd on the same machine; no operator",
            args.requests, args.warmup
        ),
        "targets": {"page_p99_ms": TARGET_P99_MS},
        "kubernetes": objects,
        "ledger": ledger,
        "pages": results,
        "platform_recompute": recompute,
        "in_process": in_process,
        "api_cpu_seconds": api_cpu_seconds,
        "api_peak_rss_mib": api_peak_rss_mib,
    }))
}

fn print_table(report: &Value) {
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!("console benchmark — {}", report["measured"].as_str().unwrap_or_default());
    let l = &report["ledger"];
    println!(
        "data: {} organizations, {} teams; {} subscription changes ({:.1} per organization), {} invoices, {} usage \
         events ({} organizations × {} days)",
        report["kubernetes"]["organizations"],
        report["kubernetes"]["teams"],
        l["subscription_changes"],
        num(&l["subscription_changes_per_org"]),
        l["invoices"],
        l["usage_events"],
        l["usage_organizations"],
        l["usage_days"],
    );
    println!(
        "{:<40} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "page", "cold ms", "p50", "p90", "p99", "max", "KiB", "CPU ms/req"
    );
    for page in report["pages"].as_array().into_iter().flatten() {
        let p99 = num(&page["ms_p99"]);
        println!(
            "{:<40} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>10.2}   [p99 < {TARGET_P99_MS} ms: {}]",
            page["path"].as_str().unwrap_or("?"),
            num(&page["cold_ms"]),
            num(&page["ms_p50"]),
            num(&page["ms_p90"]),
            p99,
            num(&page["ms_max"]),
            num(&page["bytes"]) / 1024.0,
            num(&page["api_cpu_ms_per_request"]),
            if p99 < TARGET_P99_MS { "met" } else { "MISSED" }
        );
    }
    for r in report["platform_recompute"].as_array().into_iter().flatten() {
        println!(
            "{:<40} {:>9.1} ms after the 30 s cache expired (the next request {:.1} ms)",
            format!("recompute {}", r["path"].as_str().unwrap_or("?")),
            num(&r["ms"]),
            num(&r["next_ms"])
        );
    }
    for r in report["in_process"].as_array().into_iter().flatten() {
        println!(
            "{:<40} {:>9.2} ms median ({} rows)",
            format!("in process: {}", r["what"].as_str().unwrap_or("?")),
            num(&r["ms_median"]),
            r["rows"]
        );
    }
    println!(
        "API: {:.1} s CPU in all, peak RSS {:.0} MiB; machine load (1 min) {} before the pages, {} after",
        num(&report["api_cpu_seconds"]),
        num(&report["api_peak_rss_mib"]),
        report["load_average_1m"][0],
        report["load_average_1m"][1]
    );
}
