//! Metering's store on both backends: events once per (organization, source, id), hourly sums kept by the
//! insert, period totals, and pushes recorded once.

use super::TestDb;
use atlantiplex_operator::ledger::{Inserted, PushState};
use atlantiplex_operator::metering::{Meter, Period, UsageEvent, pushes_due};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(source: &str, id: &str, meter: Meter, time: &str, quantity: i64) -> UsageEvent {
    UsageEvent { source: source.into(), id: id.into(), meter, subject: "org-acme".into(), time: t(time), quantity }
}

fn march() -> Period {
    Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap()
}

pub async fn events_are_stored_once_and_rolled_up(db: TestDb) {
    let ledger = db.ledger().await;
    let batch = [
        event("edge", "e1", Meter::Bandwidth, "2026-03-10T12:05:00Z", 100),
        event("edge", "e2", Meter::Bandwidth, "2026-03-10T12:55:00Z", 50),
        // The same id from another source is another event.
        event("origin", "e1", Meter::Bandwidth, "2026-03-10T13:10:00Z", 7),
        event("api", "c1", Meter::ApiCalls, "2026-03-10T12:00:00Z", 3),
        // A copy within the batch: stored once (the first).
        event("edge", "e2", Meter::Bandwidth, "2026-03-10T12:55:00Z", 999),
        event("edge", "feb", Meter::StreamTime, "2026-02-28T23:30:00Z", 60_000),
    ];
    let outcome = ledger.insert_usage_events("acme", &batch).await.unwrap();
    use Inserted::{Duplicate, New};
    assert_eq!(outcome, [New, New, New, New, Duplicate, New]);
    // A redelivery of the whole batch: nothing new, sums unchanged.
    assert_eq!(ledger.insert_usage_events("acme", &batch).await.unwrap(), [Duplicate; 6]);
    // Another organization's event with the same source and id is its own.
    assert_eq!(ledger.insert_usage_events("globex", &batch[..1]).await.unwrap(), [New]);
    let windows = ledger
        .usage_windows("acme", Meter::Bandwidth, t("2026-03-10T00:00:00Z"), t("2026-03-11T00:00:00Z"))
        .await
        .unwrap();
    let sums: Vec<(Timestamp, i64, i64)> = windows.iter().map(|w| (w.start, w.quantity, w.events)).collect();
    assert_eq!(sums, [(t("2026-03-10T12:00:00Z"), 150, 2), (t("2026-03-10T13:00:00Z"), 7, 1)]);
    // A late event adds to its hour.
    let late = [event("edge", "e3", Meter::Bandwidth, "2026-03-10T12:30:00Z", 1)];
    assert_eq!(ledger.insert_usage_events("acme", &late).await.unwrap(), [New]);
    let totals = ledger.usage_totals("acme", &march()).await.unwrap();
    assert_eq!(
        totals,
        BTreeMap::from([(Meter::Bandwidth, 158), (Meter::ApiCalls, 3)]),
        "February's event is not March's"
    );
    let february = Period::new(t("2026-02-01T00:00:00Z"), t("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(ledger.usage_totals("acme", &february).await.unwrap(), BTreeMap::from([(Meter::StreamTime, 60_000)]));
    assert_eq!(ledger.usage_totals("globex", &march()).await.unwrap(), BTreeMap::from([(Meter::Bandwidth, 100)]));
    // The hourly sums are exactly the stored events.
    let stored: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(quantity) AS BIGINT) FROM usage_events WHERE organization = 'acme' AND meter = 'bandwidth'",
    )
    .fetch_one(ledger.pool())
    .await
    .unwrap();
    assert_eq!(stored, 158);
    // Storage is not an event.
    let storage = [event("op", "s", Meter::Storage, "2026-03-10T12:00:00Z", 1)];
    assert!(ledger.insert_usage_events("acme", &storage).await.is_err());
    // 0001's placeholder roll-up table is gone.
    assert!(sqlx::query("SELECT COUNT(*) FROM usage_rollups").fetch_one(ledger.pool()).await.is_err());
}

pub async fn concurrent_batches_count_each_event_once(db: TestDb) {
    let ledger = db.ledger().await;
    // 8 senders retrying the same 1,000 events in different orders and overlapping slices, at once.
    let events: Vec<UsageEvent> = (0..1_000)
        .map(|i| {
            let time = t("2026-03-10T00:00:00Z") + SignedDuration::from_secs(i * 60);
            UsageEvent {
                source: format!("edge-{}", i % 3),
                id: format!("e{i}"),
                meter: Meter::Bandwidth,
                subject: "org-acme".into(),
                time,
                quantity: i + 1,
            }
        })
        .collect();
    let mut tasks = Vec::new();
    for sender in 0..8usize {
        let ledger = ledger.clone();
        let mut mine: Vec<UsageEvent> = events[sender * 50..].to_vec();
        if sender % 2 == 1 {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut new = 0;
            for chunk in mine.chunks(250) {
                new += ledger
                    .insert_usage_events("acme", chunk)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|o| **o == Inserted::New)
                    .count();
            }
            new
        }));
    }
    let mut new = 0;
    for task in tasks {
        new += task.await.unwrap();
    }
    assert_eq!(new, 1_000, "each event is new exactly once across all senders");
    let day = Period::new(t("2026-03-10T00:00:00Z"), t("2026-03-11T00:00:00Z")).unwrap();
    let totals = ledger.usage_totals("acme", &day).await.unwrap();
    assert_eq!(totals[&Meter::Bandwidth], (1..=1_000).sum::<i64>());
}

pub async fn storage_windows_are_replaced(db: TestDb) {
    let ledger = db.ledger().await;
    let hour = t("2026-03-10T12:00:00Z");
    ledger.replace_usage_windows("acme", Meter::Storage, &[(hour, 5 << 30)]).await.unwrap();
    // Recomputed from the samples: the same window again, not added.
    ledger
        .replace_usage_windows("acme", Meter::Storage, &[(hour, 6 << 30), (hour + SignedDuration::from_hours(1), 1)])
        .await
        .unwrap();
    let windows =
        ledger.usage_windows("acme", Meter::Storage, hour, hour + SignedDuration::from_hours(24)).await.unwrap();
    assert_eq!(windows.iter().map(|w| w.quantity).collect::<Vec<_>>(), [6 << 30, 1]);
    assert_eq!(ledger.usage_totals("acme", &march()).await.unwrap()[&Meter::Storage], (6 << 30) + 1);
}

pub async fn pushes_are_recorded_once(db: TestDb) {
    let ledger = db.ledger().await;
    let period = march();
    let batch = [
        event("edge", "a", Meter::Bandwidth, "2026-03-10T12:05:00Z", 1 << 30),
        event("edge", "b", Meter::Bandwidth, "2026-03-10T13:05:00Z", 1 << 29),
    ];
    ledger.insert_usage_events("acme", &batch).await.unwrap();
    let now = t("2026-03-10T15:00:00Z");
    // One round, as the pusher runs it: windows and pushes from the ledger, decisions from metering.
    let round = |now: Timestamp| {
        let ledger = ledger.clone();
        async move {
            let windows: Vec<(Timestamp, i64)> = ledger
                .usage_windows("acme", Meter::Bandwidth, period.start, period.end)
                .await
                .unwrap()
                .iter()
                .map(|w| (w.start, w.quantity))
                .collect();
            let pushed: Vec<_> = ledger
                .meter_pushes("acme", Meter::Bandwidth, &period)
                .await
                .unwrap()
                .iter()
                .map(|p| p.pushed())
                .collect();
            pushes_due("atp", "acme", Meter::Bandwidth, &period, now, &windows, &pushed).unwrap()
        }
    };
    let first = round(now).await;
    assert_eq!(first.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), ["1", "0.5"]);
    assert!(ledger.record_meter_pushes("acme", Meter::Bandwidth, &first).await.unwrap());
    // A second pusher with the same stale view: refused as a whole, nothing recorded twice.
    assert!(!ledger.record_meter_pushes("acme", Meter::Bandwidth, &first).await.unwrap());
    assert!(round(now).await.is_empty(), "a window is never pushed twice");
    let recorded = ledger.meter_pushes("acme", Meter::Bandwidth, &period).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].identifier, "atp-acme-bandwidth-492540");
    assert_eq!((recorded[0].state, recorded[0].sent_at), (PushState::Pending, None));
    // Sent to Stripe, then acknowledged; pending until then.
    assert_eq!(ledger.pending_meter_pushes(10).await.unwrap().len(), 2);
    assert!(ledger.mark_meter_push_sent(&recorded[0].identifier, now).await.unwrap());
    assert!(!ledger.mark_meter_push_sent(&recorded[0].identifier, now).await.unwrap(), "already sent");
    let pending = ledger.pending_meter_pushes(10).await.unwrap();
    assert_eq!(pending.iter().map(|p| p.identifier.as_str()).collect::<Vec<_>>(), ["atp-acme-bandwidth-492541"]);
    // A late event for the 12:00 window: a correction with the next sequence.
    ledger
        .insert_usage_events("acme", &[event("edge", "late", Meter::Bandwidth, "2026-03-10T12:59:00Z", 1 << 29)])
        .await
        .unwrap();
    let correction = round(t("2026-03-10T16:00:00Z")).await;
    assert_eq!(correction.len(), 1);
    assert_eq!(
        (correction[0].identifier.as_str(), correction[0].value.as_str()),
        ("atp-acme-bandwidth-492540-c1", "0.5")
    );
    assert!(ledger.record_meter_pushes("acme", Meter::Bandwidth, &correction).await.unwrap());
    let all = ledger.meter_pushes("acme", Meter::Bandwidth, &period).await.unwrap();
    assert_eq!(
        all.iter().map(|p| (p.sequence, p.micros)).collect::<Vec<_>>(),
        [(0, 1_000_000), (1, 500_000), (0, 500_000)]
    );
    assert_eq!(all.iter().map(|p| p.micros).sum::<i64>(), 2_000_000, "Stripe holds the period's 2 GiB");
}

pub async fn billing_periods_are_kept_until_reconciled(db: TestDb) {
    use atlantiplex_operator::metering::reconcile::MeterReconciliation;
    let ledger = db.ledger().await;
    ledger.upsert_billing_period("acme", &march(), "cus_1", "starter").await.unwrap();
    // Seen again with another plan: one row, updated.
    ledger.upsert_billing_period("acme", &march(), "cus_1", "professional").await.unwrap();
    let open = ledger.unreconciled_billing_periods().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].plan.as_str(), open[0].end), ("professional", t("2026-04-01T00:00:00Z")));
    // A new period starting before the old one was to end: the old one ended early, where the new starts.
    let april = Period::new(t("2026-03-20T00:00:00Z"), t("2026-04-20T00:00:00Z")).unwrap();
    ledger.upsert_billing_period("acme", &april, "cus_1", "professional").await.unwrap();
    let open = ledger.unreconciled_billing_periods().await.unwrap();
    assert_eq!(
        open.iter().map(|p| (p.start, p.end)).collect::<Vec<_>>(),
        [
            (t("2026-03-01T00:00:00Z"), t("2026-03-20T00:00:00Z")),
            (t("2026-03-20T00:00:00Z"), t("2026-04-20T00:00:00Z")),
        ]
    );
    assert!(ledger.latest_reconciliation("acme").await.unwrap().is_none());
    let compared = [MeterReconciliation::new(Meter::Bandwidth, 2_500_000, 2_500_000, 2.5)];
    ledger.record_reconciliation("acme", open[0].start, true, &compared, t("2026-03-22T00:00:00Z")).await.unwrap();
    let latest = ledger.latest_reconciliation("acme").await.unwrap().expect("reconciled");
    assert_eq!((latest.matched, latest.meters.as_slice()), (Some(true), compared.as_slice()));
    assert_eq!(ledger.unreconciled_billing_periods().await.unwrap().len(), 1, "a compared period is final");
    // A later upsert of the compared period changes nothing about its comparison.
    ledger.upsert_billing_period("acme", &april, "cus_1", "professional").await.unwrap();
    assert_eq!(ledger.latest_reconciliation("acme").await.unwrap().expect("kept").matched, Some(true));
}
