//! Storage sampling: what one sampling round records, decided from facts — the claims the operator's caches
//! show, the samples already stored, and the time of the round. Pure; the sampler task (`controller`) reads
//! the facts and writes the result.
//!
//! - **Provisioned** storage of an organization is the sum of `requests.storage` of the PersistentVolumeClaims
//!   in its home and team namespaces (the ResourceQuota's own measure). A claim being deleted still counts
//!   until it is gone: its volume is still there, and the quota still counts it.
//! - **Who is sampled**: every organization with storage now, and every organization whose last sample was
//!   not 0 (so the end of its storage is recorded, once). An organization that never had storage writes
//!   nothing.
//! - **A sample equal to the last one** is still written: it says the value was seen again, and the windows
//!   up to it are recomputed the same way as for any other.
//! - **A gap** (the operator down, no leader for an hour): the last sample holds until the next one, as in
//!   [`super::storage`]; the round after the gap fills the gap's windows with it. Claims outlive the operator,
//!   so "still there" is the likelier truth than "gone", and a claim that did go is billed until the next
//!   sample — at most the length of the outage.
//! - **Windows**: a new sample changes only the windows from the one holding the previous sample up to the
//!   new one (before that, nothing new is known), so a round recomputes exactly those from the stored samples
//!   ([`super::storage::hourly_byte_seconds`]) and replaces them whole. The window holding the new sample is
//!   written up to the sample and completed by the next round. After a sample of 0 the windows are 0 and need
//!   no rows, so storage that comes back days later writes only its current window.
//! - A round whose time is not after the last sample (another replica's clock was ahead) is skipped: a sample
//!   never rewrites what is already stored.

use super::storage::{StorageSample, hourly_byte_seconds};
use super::window::window_start;
use crate::tenancy::quantity::to_milli;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// How long samples are kept (beyond it, only the one in force at its start): two days, the late-usage grace,
/// so the windows of the closing billing period can be recomputed from samples until its usage is final.
pub const KEEP_SAMPLES: SignedDuration = SignedDuration::from_hours(48);

/// One PersistentVolumeClaim as the cache shows it.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The organization its namespace belongs to (a home or team namespace), or None for any other namespace.
    pub organization: Option<&'a str>,
    /// `spec.resources.requests.storage`.
    pub requested: Option<&'a Quantity>,
}

/// A storage request in whole bytes, rounded up (as the quota counts it); None when malformed or negative.
pub fn claim_bytes(quantity: &Quantity) -> Option<i64> {
    let milli = to_milli(quantity).filter(|m| *m >= 0)?;
    i64::try_from((milli + 999) / 1000).ok()
}

/// Provisioned bytes per organization. Claims outside tenant namespaces, and requests that are absent or
/// malformed (the API server refuses those), count for nothing.
pub fn provisioned<'a>(claims: impl IntoIterator<Item = Claim<'a>>) -> BTreeMap<String, i64> {
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for claim in claims {
        let (Some(organization), Some(bytes)) = (claim.organization, claim.requested.and_then(claim_bytes)) else {
            continue;
        };
        let sum = sums.entry(organization.to_string()).or_default();
        *sum = sum.saturating_add(bytes);
    }
    sums
}

/// The organizations to sample and their bytes now: those with storage, and those whose last sample was not 0
/// (at 0 now). `latest`: each organization's newest stored sample.
pub fn to_sample(provisioned: &BTreeMap<String, i64>, latest: &BTreeMap<String, StorageSample>) -> Vec<(String, i64)> {
    let mut out: BTreeMap<String, i64> =
        provisioned.iter().filter(|(_, b)| **b > 0).map(|(o, b)| (o.clone(), *b)).collect();
    for (organization, sample) in latest {
        if sample.bytes > 0 {
            out.entry(organization.clone()).or_insert(0);
        }
    }
    out.into_iter().collect()
}

/// What one round writes for one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub sample: StorageSample,
    /// Storage windows to replace: (window start, byte-seconds), oldest first.
    pub windows: Vec<(Timestamp, i64)>,
    /// Samples before this are deleted, except the newest of them (still in force at this time).
    pub keep_from: Timestamp,
}

/// Where the stored history a round needs starts: the window of the organization's newest sample. The caller
/// loads the samples from there on and the newest one before it (in force at the window's start).
pub fn history_from(latest: Option<&StorageSample>, now: Timestamp) -> Timestamp {
    window_start(latest.map_or(now, |s| s.at))
}

/// The round for one organization at `now`, with `bytes` provisioned; `history` is the stored samples from
/// [`history_from`] on (and the one in force there). None when `now`, counted to the second, is not after the
/// newest stored sample.
pub fn plan_round(history: &[StorageSample], bytes: i64, now: Timestamp) -> Option<Round> {
    // Samples count to the second, as the step function does.
    let now = Timestamp::from_second(now.as_second()).ok()?;
    let latest = history.iter().map(|s| s.at).max();
    if latest.is_some_and(|at| at >= now) {
        return None;
    }
    let sample = StorageSample { at: now, bytes: bytes.max(0) };
    let newest = history.iter().max_by_key(|s| s.at);
    // After a sample of 0 every window is 0 (and has no row): only the current one is written, not one per
    // hour since an organization's storage last ended.
    let from = match newest {
        Some(last) if last.bytes == 0 => window_start(now),
        last => history_from(last, now),
    };
    // The new sample starts at `now`, so the windows up to it depend only on the samples before it.
    let windows = hourly_byte_seconds(history, from, now)
        .into_iter()
        .map(|(start, byte_seconds)| (start, i64::try_from(byte_seconds).unwrap_or(i64::MAX)))
        .collect();
    let keep_from = window_start(now).checked_sub(KEEP_SAMPLES).unwrap_or(Timestamp::MIN);
    Some(Round { sample, windows, keep_from })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::storage::byte_seconds;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn s(at: &str, gib: i64) -> StorageSample {
        StorageSample { at: t(at), bytes: gib << 30 }
    }

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    const GIB: i64 = 1 << 30;

    #[test]
    fn requests_are_whole_bytes_rounded_up() {
        assert_eq!(claim_bytes(&q("5Gi")), Some(5 * GIB));
        assert_eq!(claim_bytes(&q("1G")), Some(1_000_000_000));
        assert_eq!(claim_bytes(&q("1500m")), Some(2), "1.5 bytes count as 2, as the quota counts them");
        assert_eq!(claim_bytes(&q("0")), Some(0));
        assert_eq!(claim_bytes(&q("-1Gi")), None);
        assert_eq!(claim_bytes(&q("lots")), None);
    }

    #[test]
    fn provisioned_storage_sums_the_tenant_namespaces_of_each_organization() {
        let (one, two, bad) = (q("1Gi"), q("2Gi"), q("x"));
        let claims = [
            Claim { organization: Some("acme"), requested: Some(&one) }, // home
            Claim { organization: Some("acme"), requested: Some(&two) }, // a team namespace
            Claim { organization: Some("beta"), requested: Some(&one) },
            Claim { organization: None, requested: Some(&two) }, // kube-system, a plain namespace
            Claim { organization: Some("beta"), requested: None },
            Claim { organization: Some("beta"), requested: Some(&bad) },
        ];
        assert_eq!(provisioned(claims), BTreeMap::from([("acme".into(), 3 * GIB), ("beta".into(), GIB)]));
    }

    #[test]
    fn organizations_are_sampled_while_they_have_storage_and_once_more_at_zero() {
        let now = BTreeMap::from([("acme".to_string(), 3 * GIB), ("empty".to_string(), 0)]);
        let latest = BTreeMap::from([
            ("acme".to_string(), s("2026-03-10T12:00:00Z", 1)),
            ("gone".to_string(), s("2026-03-10T12:00:00Z", 2)),
            ("zero".to_string(), s("2026-03-10T12:00:00Z", 0)),
        ]);
        assert_eq!(to_sample(&now, &latest), [("acme".to_string(), 3 * GIB), ("gone".to_string(), 0)]);
    }

    #[test]
    fn a_round_recomputes_the_windows_since_the_last_sample() {
        // The last sample at 12:40 (2 GiB); 4 GiB seen at 14:10 (the round) after a gap.
        let history = [s("2026-03-10T11:50:00Z", 1), s("2026-03-10T12:40:00Z", 2)];
        let round = plan_round(&history, 4 * GIB, t("2026-03-10T14:10:00.750Z")).unwrap();
        assert_eq!(round.sample, StorageSample { at: t("2026-03-10T14:10:00Z"), bytes: 4 * GIB }, "to the second");
        let hour = 3_600;
        assert_eq!(
            round.windows,
            [
                (t("2026-03-10T12:00:00Z"), GIB * 2_400 + 2 * GIB * 1_200),
                // The gap: the last sample holds until the next.
                (t("2026-03-10T13:00:00Z"), 2 * GIB * hour),
                (t("2026-03-10T14:00:00Z"), 2 * GIB * 600),
            ]
        );
        assert_eq!(round.keep_from, t("2026-03-08T14:00:00Z"));
        // The windows are the step function of the stored samples: the same whoever computes them.
        let total: i64 = round.windows.iter().map(|w| w.1).sum();
        let from = t("2026-03-10T12:00:00Z");
        assert_eq!(i128::from(total), byte_seconds(&history, from, round.sample.at));
    }

    #[test]
    fn an_equal_sample_extends_the_step_and_the_first_sample_starts_it() {
        let history = [s("2026-03-10T12:00:00Z", 2)];
        let round = plan_round(&history, 2 * GIB, t("2026-03-10T12:05:00Z")).unwrap();
        assert_eq!(round.sample.bytes, 2 * GIB);
        assert_eq!(round.windows, [(t("2026-03-10T12:00:00Z"), 2 * GIB * 300)]);
        let first = plan_round(&[], GIB, t("2026-03-10T12:05:00Z")).unwrap();
        assert_eq!(first.windows, [(t("2026-03-10T12:00:00Z"), 0)], "nothing was provisioned before it");
        assert_eq!(history_from(None, t("2026-03-10T12:05:00Z")), t("2026-03-10T12:00:00Z"));
        assert_eq!(history_from(Some(&history[0]), t("2026-03-10T14:05:00Z")), t("2026-03-10T12:00:00Z"));
    }

    #[test]
    fn storage_that_comes_back_after_a_zero_sample_writes_no_hours_of_zeros() {
        let history = [s("2026-03-01T08:00:00Z", 3), s("2026-03-01T08:30:00Z", 0)];
        let round = plan_round(&history, GIB, t("2026-03-10T12:05:00Z")).unwrap();
        assert_eq!(round.windows, [(t("2026-03-10T12:00:00Z"), 0)]);
    }

    #[test]
    fn a_round_not_after_the_last_sample_is_skipped() {
        let history = [s("2026-03-10T12:00:00Z", 2)];
        assert_eq!(plan_round(&history, GIB, t("2026-03-10T11:59:00Z")), None, "a clock behind");
        assert_eq!(plan_round(&history, GIB, t("2026-03-10T12:00:00.900Z")), None, "the same second");
        assert!(plan_round(&history, GIB, t("2026-03-10T12:00:01Z")).is_some());
    }
}
