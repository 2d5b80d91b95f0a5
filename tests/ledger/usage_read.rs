//! Reading usage back (the `usage` command's queries) on both backends.

use super::TestDb;
use atlantiplex_operator::metering::{Meter, UsageEvent};
use jiff::Timestamp;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub async fn every_meter_and_organization_is_read_back(db: TestDb) {
    let ledger = db.ledger().await;
    assert!(ledger.usage_organizations().await.unwrap().is_empty());
    let event = |id: &str, meter, time: &str, quantity| UsageEvent {
        source: "edge".into(),
        id: id.into(),
        meter,
        subject: "org-acme".into(),
        time: t(time),
        quantity,
    };
    let batch = [
        event("a", Meter::StreamTime, "2026-03-10T12:05:00Z", 1_000),
        event("b", Meter::Bandwidth, "2026-03-10T13:05:00Z", 20),
        event("c", Meter::Bandwidth, "2026-03-10T12:55:00Z", 10),
        event("d", Meter::Bandwidth, "2026-03-11T00:00:00Z", 5),
    ];
    ledger.insert_usage_events("zeta", &batch[..1]).await.unwrap();
    ledger.insert_usage_events("acme", &batch).await.unwrap();
    let windows = ledger.usage_windows_all("acme", t("2026-03-10T12:00:00Z"), t("2026-03-11T00:00:00Z")).await.unwrap();
    let rows: Vec<(Meter, Timestamp, i64)> = windows.iter().map(|w| (w.meter, w.start, w.quantity)).collect();
    assert_eq!(
        rows,
        [
            (Meter::Bandwidth, t("2026-03-10T12:00:00Z"), 10),
            (Meter::Bandwidth, t("2026-03-10T13:00:00Z"), 20),
            (Meter::StreamTime, t("2026-03-10T12:00:00Z"), 1_000),
        ],
        "by meter then time, the end excluded"
    );
    assert_eq!(ledger.usage_organizations().await.unwrap(), ["acme", "zeta"]);
}
