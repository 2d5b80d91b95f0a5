//! Reading usage back (the `usage` command's and the console's queries) on both backends.

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

    // Per UTC day (the console's daily series), and by subject (its top teams and API keys).
    let days = ledger.usage_days_all("acme", t("2026-03-10T00:00:00Z"), t("2026-03-12T00:00:00Z")).await.unwrap();
    let rows: Vec<(Meter, Timestamp, i64, i64)> =
        days.iter().map(|w| (w.meter, w.start, w.quantity, w.events)).collect();
    assert_eq!(
        rows,
        [
            (Meter::Bandwidth, t("2026-03-10T00:00:00Z"), 30, 2),
            (Meter::Bandwidth, t("2026-03-11T00:00:00Z"), 5, 1),
            (Meter::StreamTime, t("2026-03-10T00:00:00Z"), 1_000, 1),
        ],
        "hours summed per day"
    );
    let subjects = ledger.usage_by_subject("acme", t("2026-03-10T00:00:00Z")).await.unwrap();
    assert_eq!(subjects.iter().map(|s| s.quantity).sum::<i64>(), 1_035);
    let platform = ledger.platform_usage(t("2026-03-10T00:00:00Z"), t("2026-03-12T00:00:00Z")).await.unwrap();
    let bandwidth: i64 = platform.iter().filter(|(m, _, _)| *m == Meter::Bandwidth).map(|(_, _, q)| q).sum();
    assert_eq!(bandwidth, 35, "every organization's usage, per window");
}
