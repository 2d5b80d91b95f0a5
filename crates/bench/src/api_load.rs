//! The tenant API benchmark's client: HTTPS trusting the bench CA (a few HTTP/2 connections per replica, or
//! a pool of keep-alive HTTP/1.1 connections), `GET /v1/organizations/{org}` with the organization's key,
//! and an open loop: requests sent on a fixed schedule whatever the answers, each timed from when it was
//! due (so a stall shows in the latency instead of slowing the sender down: no coordinated omission).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// A request not answered within this time counts as an error (status 0).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS client that trusts `ca_pem`: HTTP/2 only (one connection per client), or HTTP/1.1 keep-alive
/// (the client's pool opens connections as concurrency needs them and keeps them).
pub fn client(ca_pem: &[u8], http1: bool) -> anyhow::Result<Client> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only();
    let mut client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    if http1 {
        Ok(client.pool_idle_timeout(Duration::from_secs(300)).build(builder.enable_http1().wrap_connector(tcp)))
    } else {
        Ok(client.http2_only(true).build(builder.enable_http2().wrap_connector(tcp)))
    }
}

/// One replica: its base URL and the clients (connections) requests to it rotate over.
#[derive(Clone)]
pub struct Replica {
    pub base: String,
    pub clients: Vec<Client>,
}

/// One organization's name and API key.
#[derive(Clone)]
pub struct OrgKey {
    pub org: String,
    pub key: String,
}

/// One answer: its status (0: no answer) and whether it carried the RateLimit-* headers.
pub struct Answer {
    pub status: u16,
    pub rate_headers: bool,
}

/// `GET /v1/organizations/{org}` with `key`, the body read to the end.
pub async fn get_organization(client: &Client, base: &str, org: &str, key: &str) -> Answer {
    let url = format!("{base}/v1/organizations/{org}");
    let call = async {
        let request = hyper::Request::get(url)
            .header("authorization", format!("Bearer {key}"))
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))?;
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let rate_headers =
            ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"].iter().all(|h| headers.contains_key(*h));
        response.into_body().collect().await?;
        anyhow::Ok(Answer { status, rate_headers })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(answer)) => answer,
        _ => Answer { status: 0, rate_headers: false },
    }
}

/// A small, fixed-seed generator (splitmix64): the same spread of organizations on every run.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n.max(1) as u64) as usize
    }
}

/// One request of an open-loop run.
struct Sample {
    /// When it was due, from the start of the schedule.
    due: Duration,
    /// From due to the answer's last byte.
    latency: Duration,
    /// How late the scheduler sent it (the client's own lag; part of `latency`).
    send_lag: Duration,
    status: u16,
    rate_headers: bool,
    /// When the answer came, from the start of the schedule.
    done: Duration,
}

/// What an open-loop run measured (the warm-up already left out).
pub struct OpenLoop {
    pub rate: u64,
    pub warmup: Duration,
    pub seconds: Duration,
    samples: Vec<Sample>,
}

/// Sends `rate` requests per second for `warmup + seconds` to organizations drawn at random from `orgs`,
/// alternating over `replicas` (request i goes to replica i mod n, over that replica's clients in turn).
/// The schedule runs on a thread of its own that sleeps to each due time (the kernel's timers, finer than
/// tokio's millisecond wheel) and hands each request to the runtime.
pub async fn open_loop(
    replicas: &[Replica],
    orgs: &[OrgKey],
    rate: u64,
    warmup: Duration,
    seconds: Duration,
    seed: u64,
) -> anyhow::Result<OpenLoop> {
    anyhow::ensure!(!replicas.is_empty() && !orgs.is_empty() && rate > 0, "nothing to send");
    let total = (rate as f64 * (warmup + seconds).as_secs_f64()) as usize;
    let (replicas, orgs) = (Arc::new(replicas.to_vec()), Arc::new(orgs.to_vec()));
    let runtime = tokio::runtime::Handle::current();
    let scheduler = tokio::task::spawn_blocking(move || {
        let mut random = SplitMix(seed);
        let mut tasks = Vec::with_capacity(total);
        let start = Instant::now() + Duration::from_millis(20);
        for i in 0..total {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            let at = start + due;
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let replica = &replicas[i % replicas.len()];
            let client = replica.clients[(i / replicas.len()) % replica.clients.len()].clone();
            let base = replica.base.clone();
            let target = orgs[random.next_below(orgs.len())].clone();
            tasks.push(runtime.spawn(async move {
                let send_lag = at.elapsed();
                let answer = get_organization(&client, &base, &target.org, &target.key).await;
                let latency = at.elapsed();
                Sample {
                    due,
                    latency,
                    send_lag,
                    status: answer.status,
                    rate_headers: answer.rate_headers,
                    done: start.elapsed(),
                }
            }));
        }
        tasks
    });
    let mut samples = Vec::with_capacity(total);
    for task in scheduler.await? {
        let sample = task.await?;
        if sample.due >= warmup {
            samples.push(sample);
        }
    }
    Ok(OpenLoop { rate, warmup, seconds, samples })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl OpenLoop {
    pub fn json(&self) -> Value {
        let mut latencies: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        latencies.sort();
        let mut lags: Vec<Duration> = self.samples.iter().map(|s| s.send_lag).collect();
        lags.sort();
        // From when the request actually left (the scheduler's lag taken out): not what a caller sees, but
        // it separates the client's delays from the server's.
        let mut from_send: Vec<Duration> = self.samples.iter().map(|s| s.latency.saturating_sub(s.send_lag)).collect();
        from_send.sort();
        let mut statuses = BTreeMap::new();
        for s in &self.samples {
            let name = if s.status == 0 { "error".to_string() } else { s.status.to_string() };
            *statuses.entry(name).or_insert(0u64) += 1;
        }
        let answered = self.samples.iter().filter(|s| s.status != 0).count();
        // Answers per second from the start of the measured window until the last of its answers came.
        let last = self.samples.iter().map(|s| s.done).max().unwrap_or(self.warmup);
        let span = last.saturating_sub(self.warmup).max(Duration::from_millis(1));
        let p = |v: &[Duration], q: f64| ms(crate::measure::percentile(v, q));
        json!({
            "offered_per_second": self.rate,
            "warmup_seconds": self.warmup.as_secs_f64(),
            "measured_seconds": self.seconds.as_secs_f64(),
            "requests": self.samples.len(),
            "answered": answered,
            "achieved_per_second": answered as f64 / span.as_secs_f64(),
            "latency_ms_p50": p(&latencies, 50.0),
            "latency_ms_p90": p(&latencies, 90.0),
            "latency_ms_p99": p(&latencies, 99.0),
            "latency_ms_p999": p(&latencies, 99.9),
            "latency_ms_max": latencies.last().map(|d| ms(*d)).unwrap_or(0.0),
            "status_counts": statuses,
            "with_ratelimit_headers": self.samples.iter().filter(|s| s.rate_headers).count(),
            "from_send_ms_p50": p(&from_send, 50.0),
            "from_send_ms_p99": p(&from_send, 99.0),
            "send_lag_ms_p50": p(&lags, 50.0),
            "send_lag_ms_p99": p(&lags, 99.0),
            "send_lag_ms_max": lags.last().map(|d| ms(*d)).unwrap_or(0.0),
        })
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// The whole machine's CPU time so far, from /proc/stat: (busy, total) CPU seconds summed over all CPUs
/// (idle and iowait are not busy).
pub fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    let tick = ticks_per_second();
    (total.saturating_sub(idle) as f64 / tick, total as f64 / tick)
}

/// The busy share of the machine's CPUs between two [`machine_cpu`] readings, in percent.
pub fn busy_percent(before: (f64, f64), after: (f64, f64)) -> f64 {
    let (busy, total) = (after.0 - before.0, after.1 - before.1);
    if total <= 0.0 { 0.0 } else { busy * 100.0 / total }
}

/// The fields after the command name of /proc/PID/stat.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// CPU seconds of `pid` and all its children, live or ended (a PostgreSQL postmaster and its backends and
/// workers): its own time, the time of children it has reaped, and the time of its live children so far.
/// A difference of two readings counts a child that ended in between, and one started in between.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let field = |f: &[String], i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let own = stat_fields(pid);
    // utime, stime, cutime, cstime.
    let mut ticks = field(&own, 11) + field(&own, 12) + field(&own, 13) + field(&own, 14);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let fields = stat_fields(child);
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            ticks += field(&fields, 11) + field(&fields, 12);
        }
    }
    ticks / ticks_per_second()
}
