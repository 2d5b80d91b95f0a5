//! Storage samples on both backends: each round's sample and the windows it completes commit together, the
//! windows are the step function of the stored samples (so a restarted or new leader recomputes the same), and
//! old samples are pruned except the one still in force.

use super::TestDb;
use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::sampling::{KEEP_SAMPLES, history_from, plan_round};
use atlantiplex_operator::metering::storage::byte_seconds;
use atlantiplex_operator::metering::{Meter, Period, StorageSample};
use jiff::{SignedDuration, Timestamp};

const GIB: i64 = 1 << 30;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// One sampler round for `organization` at `now` with `bytes` provisioned, as the sampler runs it.
async fn sample(ledger: &Ledger, organization: &str, bytes: i64, now: Timestamp) -> bool {
    let latest = ledger.latest_storage_samples().await.unwrap();
    let latest = latest.get(organization);
    let history = match latest {
        Some(l) => ledger.storage_samples(organization, history_from(Some(l), now)).await.unwrap(),
        None => Vec::new(),
    };
    let Some(round) = plan_round(&history, bytes, now) else { return false };
    ledger.record_storage_sample(organization, &round).await.unwrap();
    true
}

pub async fn samples_make_the_storage_windows(db: TestDb) {
    let ledger = db.ledger().await;
    // 1 GiB at 12:10, resized to 3 GiB at 12:40, seen again at 12:45, then the operator is down until 14:20.
    assert!(sample(&ledger, "acme", GIB, t("2026-03-10T12:10:00Z")).await);
    assert!(sample(&ledger, "acme", 3 * GIB, t("2026-03-10T12:40:00Z")).await);
    assert!(sample(&ledger, "acme", 3 * GIB, t("2026-03-10T12:45:00Z")).await);
    assert!(sample(&ledger, "beta", 2 * GIB, t("2026-03-10T12:45:00Z")).await);
    assert!(sample(&ledger, "acme", 0, t("2026-03-10T14:20:00Z")).await);
    // A round not after the last sample (a replica whose clock is behind) writes nothing.
    assert!(!sample(&ledger, "acme", 9 * GIB, t("2026-03-10T14:19:00Z")).await);

    let latest = ledger.latest_storage_samples().await.unwrap();
    assert_eq!(latest["acme"], StorageSample { at: t("2026-03-10T14:20:00Z"), bytes: 0 });
    assert_eq!(latest["beta"].bytes, 2 * GIB);
    // From a window on: its samples and the one in force at its start.
    let from_13 = ledger.storage_samples("acme", t("2026-03-10T13:00:00Z")).await.unwrap();
    assert_eq!(
        from_13.iter().map(|s| s.at).collect::<Vec<_>>(),
        [t("2026-03-10T12:45:00Z"), t("2026-03-10T14:20:00Z")]
    );

    let windows = ledger
        .usage_windows("acme", Meter::Storage, t("2026-03-10T00:00:00Z"), t("2026-03-11T00:00:00Z"))
        .await
        .unwrap();
    let quantities: Vec<(Timestamp, i64)> = windows.iter().map(|w| (w.start, w.quantity)).collect();
    assert_eq!(
        quantities,
        [
            (t("2026-03-10T12:00:00Z"), GIB * 1_800 + 3 * GIB * 1_200),
            // The gap: the last sample (3 GiB) holds until the next.
            (t("2026-03-10T13:00:00Z"), 3 * GIB * 3_600),
            (t("2026-03-10T14:00:00Z"), 3 * GIB * 1_200),
        ]
    );
    // The windows are the step function of the samples, whoever computed them.
    let all = ledger.storage_samples("acme", t("2026-03-10T00:00:00Z")).await.unwrap();
    let total: i64 = quantities.iter().map(|w| w.1).sum();
    assert_eq!(i128::from(total), byte_seconds(&all, t("2026-03-10T12:00:00Z"), t("2026-03-10T14:20:00Z")));
    let march = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
    assert_eq!(ledger.usage_totals("acme", &march).await.unwrap()[&Meter::Storage], total);
    // Another organization's windows are its own; the hour it was first seen starts at 0.
    let beta = ledger.usage_windows("beta", Meter::Storage, march.start, march.end).await.unwrap();
    assert_eq!(beta.iter().map(|w| w.quantity).collect::<Vec<_>>(), [0]);
}

pub async fn old_samples_are_pruned_but_the_one_in_force_stays(db: TestDb) {
    let ledger = db.ledger().await;
    let start = t("2026-03-10T00:00:00Z");
    // Every 6 hours for four days: 2 GiB, then 5 GiB from the second day.
    for i in 0..16 {
        let at = start + SignedDuration::from_hours(6 * i);
        assert!(sample(&ledger, "acme", if i < 4 { 2 * GIB } else { 5 * GIB }, at).await);
    }
    let last = start + SignedDuration::from_hours(90);
    let keep_from = last - KEEP_SAMPLES;
    let kept = ledger.storage_samples("acme", start - SignedDuration::from_hours(1)).await.unwrap();
    assert_eq!(kept.first().map(|s| s.at), Some(keep_from), "the newest sample at or before the cut-off stays");
    assert!(kept.iter().all(|s| s.at >= keep_from));
    assert_eq!(kept.len(), 9, "48 hours of 6-hourly samples, both ends included");
    // The windows already written stay as they were: only samples are pruned.
    let march = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
    let expected = 2 * GIB * 24 * 3_600 + 5 * GIB * 66 * 3_600;
    assert_eq!(ledger.usage_totals("acme", &march).await.unwrap()[&Meter::Storage], expected);
}
