//! The storage sampler, leader-only: every `--storage-sample-minutes`, one sample of each organization's
//! provisioned storage — read from the caches (claims, and the namespaces' owner labels), never from the API
//! server — into the ledger with the hourly windows it completes (`metering::sampling` decides), then the
//! Organization reconciles, so `status.usage.storage` follows the samples.
//!
//! It samples at once when it starts, that is when this replica becomes the leader: after a restart or a
//! leader change the gap is only as long as the election took, and the first sample fills it with the last
//! one before it (the ledger holds the samples, so any replica computes the same windows).

use super::context::Context;
use super::{OrgRef, send, volume_claims};
use crate::ledger::Ledger;
use crate::metering::StorageSample;
use crate::metering::intake::namespace_organization;
use crate::metering::sampling::{self, Claim};
use crate::metrics::ResultLabels;
use futures::channel::mpsc::UnboundedSender;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::Arc;

/// Samples until `shutdown`; returns at once without a ledger (nothing to keep samples in).
pub(super) async fn run(
    ctx: Arc<Context>,
    claims: Store<PersistentVolumeClaim>,
    org_tx: UnboundedSender<OrgRef>,
    shutdown: impl Future<Output = ()>,
) {
    let Some(ledger) = ctx.ledger.clone() else { return };
    let mut shutdown = std::pin::pin!(shutdown);
    // A sample from a partial list would record storage that is there as gone.
    tokio::select! {
        ready = claims.wait_until_ready() => if ready.is_err() { return },
        _ = &mut shutdown => return,
    }
    let interval = ctx.settings.storage_sample_interval();
    tracing::info!(interval_seconds = interval.as_secs(), "storage sampling started");
    // The first tick is immediate: a new leader samples at once.
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut shutdown => return,
        }
        let sampled = sample_all(&ctx, &ledger, &claims, Timestamp::now()).await;
        send(&org_tx, sampled.iter().map(|name| ObjectRef::new(name)));
    }
}

/// One round: a sample per organization that has (or had, at its last sample) storage. The organizations
/// sampled, whose status is now behind.
async fn sample_all(
    ctx: &Context,
    ledger: &Ledger,
    claims: &Store<PersistentVolumeClaim>,
    now: Timestamp,
) -> Vec<String> {
    let owners: HashMap<String, String> = ctx
        .namespaces
        .state()
        .iter()
        .filter_map(|ns| Some((ns.name_any(), namespace_organization(ns.labels())?.to_string())))
        .collect();
    let cached = claims.state();
    let provisioned = sampling::provisioned(cached.iter().map(|claim| Claim {
        organization: claim.namespace().and_then(|ns| owners.get(&ns)).map(String::as_str),
        requested: volume_claims::requested(claim),
    }));
    let count = |result: &str, n: u64| {
        ctx.metrics.storage_samples.get_or_create(&ResultLabels { result: result.into() }).inc_by(n);
    };
    let latest = match ledger.latest_storage_samples().await {
        Ok(latest) => latest,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the last storage samples; sampling again next round");
            count("failed", provisioned.values().filter(|b| **b > 0).count() as u64);
            return Vec::new();
        }
    };
    let mut sampled = Vec::new();
    for (organization, bytes) in sampling::to_sample(&provisioned, &latest) {
        match sample_one(ledger, &organization, bytes, latest.get(&organization), now).await {
            Ok(true) => {
                count("taken", 1);
                sampled.push(organization);
            }
            Ok(false) => {
                tracing::debug!(%organization, "storage sample skipped: not after the last one (a clock behind)")
            }
            Err(err) => {
                count("failed", 1);
                tracing::warn!(%organization, error = %err, "storage sample not written; sampling again next round");
            }
        }
    }
    sampled
}

/// Writes one organization's sample and the windows it completes; false when the round was skipped.
async fn sample_one(
    ledger: &Ledger,
    organization: &str,
    bytes: i64,
    latest: Option<&StorageSample>,
    now: Timestamp,
) -> crate::ledger::Result<bool> {
    let history = match latest {
        Some(latest) => ledger.storage_samples(organization, sampling::history_from(Some(latest), now)).await?,
        None => Vec::new(),
    };
    let Some(round) = sampling::plan_round(&history, bytes, now) else { return Ok(false) };
    ledger.record_storage_sample(organization, &round).await?;
    Ok(true)
}
