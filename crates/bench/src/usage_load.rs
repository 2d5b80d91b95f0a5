//! The usage benchmark's client: CloudEvents batches, an HTTPS client trusting the operator's CA (HTTP/2,
//! `TCP_NODELAY`), and a closed loop of concurrent senders measuring each request's acknowledgement (the
//! time until the 202, which the operator sends after the ledger committed).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An HTTP/2 client over TLS that trusts `ca_pem`.
pub fn client(ca_pem: &[u8]) -> anyhow::Result<Client> {
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
    let https =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http2().wrap_connector(tcp);
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build(https))
}

/// A batch of `n` events for `namespace`, ids unique by `prefix`: mostly bandwidth, some API calls and
/// stream time, all now (so they land in the open hour and period).
pub fn batch(prefix: &str, namespace: &str, n: usize) -> Value {
    let time = jiff::Timestamp::now().to_string();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let (meter, value) = match i % 10 {
                0 => ("api_calls", "3"),
                1 => ("stream_time", "12.5"),
                _ => ("bandwidth", "1048576"),
            };
            json!({"specversion": "1.0", "id": format!("{prefix}-{i}"), "source": "bench/edge",
                   "type": format!("io.atlantiplex.usage.{meter}"), "time": time,
                   "subject": format!("{namespace}/stream-{}", i % 16), "data": {"value": value}})
        })
        .collect();
    if n == 1 { events.into_iter().next().unwrap_or_default() } else { Value::Array(events) }
}

/// POSTs one body; the acknowledgement time. Anything but a 202 with every event accepted is an error.
pub async fn post(client: &Client, url: &str, token: &str, body: Bytes, events: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let request = hyper::Request::post(url)
        .header("content-type", "application/cloudevents-batch+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(body))?;
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let elapsed = started.elapsed();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    anyhow::ensure!(
        status.as_u16() == 202 && answer["accepted"] == events,
        "unexpected answer {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(elapsed)
}

/// What one closed-loop run measured.
pub struct Run {
    pub requests: usize,
    pub events: usize,
    pub wall: Duration,
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn json(&self, concurrency: usize, batch: usize, cpu_seconds: f64) -> Value {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let ms = |p: f64| crate::measure::percentile(&sorted, p).as_secs_f64() * 1e3;
        json!({
            "events_per_request": batch,
            "concurrency": concurrency,
            "requests": self.requests,
            "events": self.events,
            "wall_seconds": self.wall.as_secs_f64(),
            "events_per_second": self.events as f64 / self.wall.as_secs_f64(),
            "requests_per_second": self.requests as f64 / self.wall.as_secs_f64(),
            "ack_ms_p50": ms(50.0),
            "ack_ms_p90": ms(90.0),
            "ack_ms_p99": ms(99.0),
            "ack_ms_max": sorted.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
            "operator_cpu_seconds": cpu_seconds,
        })
    }
}

/// `concurrency` senders POST the `bodies` (each of `per_body` events) as fast as the answers come.
pub async fn closed_loop(
    client: &Client,
    url: &str,
    token: &str,
    bodies: Vec<Bytes>,
    per_body: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, token, bodies, next) =
            (client.clone(), url.to_string(), token.to_string(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                latencies.push(post(&client, &url, &token, body.clone(), per_body).await?);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = started.elapsed();
    Ok(Run { requests: latencies.len(), events: latencies.len() * per_body, wall, latencies })
}
