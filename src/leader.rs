//! Leader election through a coordination.k8s.io Lease, as client-go does it: the leader renews
//! every `retry`, and gives up the moment it has not renewed for `renew_deadline` — shorter
//! than the lease, so it has stopped before anyone else may take over. Written here rather than
//! taken from kube-lease-manager because that crate keeps reporting leadership while renewals
//! fail (it logs and retries), and a replica that loses the lease must stop writing at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const LEASE_NAME: &str = "atlantiplex-operator-leader";

#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a lease is valid after its last renewal.
    pub lease: Duration,
    /// The leader gives up when it could not renew for this long (must be below `lease`).
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self { lease: Duration::from_secs(15), renew_deadline: Duration::from_secs(10), retry: Duration::from_secs(2) }
    }
}

/// Whether this replica leads; `always()` when leader election is off (a single replica).
#[derive(Clone)]
pub struct Leadership {
    state: watch::Receiver<bool>,
    /// When the lease was last renewed, and for how long that counts: read at the moment of
    /// each write, so even a process that was paused (and whose election task has not run yet)
    /// cannot write on an old renewal.
    fence: Option<(Arc<Mutex<Option<Instant>>>, Duration)>,
}

impl Leadership {
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // Keep the sender alive for the life of the process: leadership never changes.
        std::mem::forget(tx);
        Self { state: rx, fence: None }
    }

    /// Starts competing for the lease in the background.
    pub fn elect(client: Client, namespace: &str, identity: String, timing: Timing) -> Self {
        let (tx, rx) = watch::channel(false);
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let renewed = Arc::new(Mutex::new(None));
        let fence = Some((renewed.clone(), timing.renew_deadline));
        tokio::spawn(run(api, identity, timing, tx, renewed));
        Self { state: rx, fence }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Whether a write may go out now: the lease was renewed within the renew deadline.
    pub fn holds(&self) -> bool {
        match &self.fence {
            None => true,
            Some((renewed, deadline)) => {
                let last = match renewed.lock() {
                    Ok(guard) => *guard,
                    Err(poisoned) => *poisoned.into_inner(),
                };
                last.is_some_and(|t| t.elapsed() < *deadline)
            }
        }
    }

    /// A client that refuses every write while this replica does not hold the lease: the
    /// controllers use it, so no reconcile can write after leadership is gone, even one that
    /// was already running.
    ///
    /// `rate` limits requests (watches count once, when they start): `(burst, window)` lets
    /// `burst` requests through per `window`, the API server's client-side QPS/burst.
    pub fn fenced_client(&self, config: kube::Config, rate: Option<(u64, Duration)>) -> Result<Client, kube::Error> {
        let leadership = self.clone();
        let fence = tower::filter::FilterLayer::new(move |request: http::Request<kube::client::Body>| {
            let read = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
            if read || leadership.holds() { Ok(request) } else { Err(NotLeader) }
        });
        let limit =
            tower::util::option_layer(rate.map(|(burst, window)| tower::limit::RateLimitLayer::new(burst, window)));
        let layers = tower::ServiceBuilder::new().layer(fence).layer(limit);
        Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&layers).build())
    }

    /// Resolves once this replica leads.
    pub async fn acquired(&mut self) {
        let _ = self.state.wait_for(|leading| *leading).await;
    }

    /// Resolves once this replica no longer leads.
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leading| !*leading).await;
    }
}

/// What we last saw of the lease, and when (our clock, not the holder's: clocks may be skewed).
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

/// The error a fenced client returns for a write without the lease.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: this replica does not hold the lease {LEASE_NAME}, so it does not write")]
pub struct NotLeader;

async fn run(
    api: Api<Lease>,
    identity: String,
    timing: Timing,
    leading: watch::Sender<bool>,
    renewed: Arc<Mutex<Option<Instant>>>,
) {
    let mut observed: Option<Observed> = None;
    let mut last_renewal: Option<Instant> = None;
    loop {
        // Taken before the request: the renewal counts from when it was sent, not answered.
        let attempt = Instant::now();
        match try_acquire_or_renew(&api, &identity, &timing, &mut observed).await {
            Ok(true) => last_renewal = Some(attempt),
            Ok(false) => last_renewal = None,
            Err(err) => tracing::warn!(error = %err, "leader election: lease request failed"),
        }
        match renewed.lock() {
            Ok(mut guard) => *guard = last_renewal,
            Err(poisoned) => *poisoned.into_inner() = last_renewal,
        }
        let is_leader = last_renewal.is_some_and(|t| t.elapsed() < timing.renew_deadline);
        if is_leader != *leading.borrow() {
            if is_leader {
                tracing::info!(identity, "became the leader");
            } else {
                tracing::warn!(identity, "lost the leadership: stopping all writes");
            }
            if leading.send(is_leader).is_err() {
                return;
            }
        }
        if !is_leader {
            last_renewal = None;
        }
        tokio::time::sleep(timing.retry).await;
    }
}

/// One round of the client-go algorithm. Returns whether we hold the lease now.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    identity: &str,
    timing: &Timing,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let seconds = timing.lease.as_secs() as i32;
    let Some(mut lease) = api.get_opt(LEASE_NAME).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.into()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let changed = observed.as_ref().is_none_or(|o| o.holder != holder || o.renew_time != spec.renew_time);
    if changed {
        *observed = Some(Observed { holder: holder.clone(), renew_time: spec.renew_time.clone(), at: Instant::now() });
    }
    let held_by_other = holder.as_deref().is_some_and(|h| h != identity);
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds).max(1) as u64);
    let expired = observed.as_ref().is_some_and(|o| o.at.elapsed() > duration);
    if held_by_other && !expired {
        return Ok(false);
    }
    let mut new_spec = spec.clone();
    if holder.as_deref() != Some(identity) {
        new_spec.acquire_time = Some(now.clone());
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    new_spec.holder_identity = Some(identity.into());
    new_spec.lease_duration_seconds = Some(seconds);
    new_spec.renew_time = Some(now);
    lease.spec = Some(new_spec);
    // The resourceVersion we read makes this a compare-and-swap: two candidates cannot both win.
    match api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up on a graceful shutdown, so another replica takes over at once.
pub async fn release(client: Client, namespace: &str, identity: &str) {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let Ok(Some(mut lease)) = api.get_opt(LEASE_NAME).await else { return };
    let Some(spec) = lease.spec.as_mut() else { return };
    if spec.holder_identity.as_deref() != Some(identity) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    if let Err(err) = api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
        tracing::warn!(error = %err, "could not release the leader lease");
    }
}
