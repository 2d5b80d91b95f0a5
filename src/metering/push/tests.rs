use super::*;
use crate::metering::testing::t;
use crate::metering::units::GIB;

const GIB64: i64 = 1 << 30;

fn month() -> Period {
    Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap()
}

fn due(windows: &[(Timestamp, i64)], pushed: &[PushedWindow], now: &str) -> Vec<Push> {
    pushes_due(IDENTIFIER_PREFIX, "acme", Meter::Bandwidth, &month(), t(now), windows, pushed).unwrap()
}

/// What the pusher would record after sending `pushes`.
fn recorded(pushes: &[Push]) -> Vec<PushedWindow> {
    pushes
        .iter()
        .map(|p| PushedWindow {
            window_start: p.window_start,
            sequence: p.sequence,
            covered: p.covered,
            micros: p.micros,
        })
        .collect()
}

#[test]
fn identifiers_are_deterministic_and_short() {
    let w = t("2026-03-10T12:00:00Z");
    assert_eq!(meter_event_identifier("atp", "acme", Meter::Bandwidth, w, 0), "atp-acme-bandwidth-492540");
    assert_eq!(meter_event_identifier("atp", "acme", Meter::StreamTime, w, 2), "atp-acme-stream_time-492540-c2");
    assert_eq!(meter_event_identifier("atp", "acme", Meter::Bandwidth, w, 0), "atp-acme-bandwidth-492540", "stable");
    // A long organization name: shortened with a hash, still telling organizations apart.
    let long = "a".repeat(253);
    let id = meter_event_identifier("atp", &long, Meter::ApiCalls, w, 0);
    assert_eq!(id.len(), "atp-".len() + 40 + "-api_calls-492540".len(), "{id}");
    assert!(id.starts_with(&format!("atp-{}-", "a".repeat(23))), "{id}");
    let other = meter_event_identifier("atp", &format!("{}b", "a".repeat(252)), Meter::ApiCalls, w, 0);
    assert_ne!(id, other);
    // 40 characters exactly stay whole.
    let forty = "o".repeat(40);
    assert!(meter_event_identifier("atp", &forty, Meter::ApiCalls, w, 0).contains(&forty));
    // The longest case fits Stripe's 100 characters: a 20-character prefix, a long name, the longest meter name,
    // an hour in the year 9999 and the largest sequence.
    let worst = meter_event_identifier(&"p".repeat(20), &long, Meter::StreamTime, t("9999-12-30T00:00:00Z"), u32::MAX);
    assert!(worst.len() <= MAX_IDENTIFIER_CHARS, "{} characters: {worst}", worst.len());
}

#[test]
fn closed_windows_are_pushed_once_in_order() {
    let windows =
        [(t("2026-03-10T13:00:00Z"), 3 * GIB64), (t("2026-03-10T12:00:00Z"), GIB64), (t("2026-03-10T14:00:00Z"), 5)];
    // At 14:30 the 14:00 window is still open.
    let first = due(&windows, &[], "2026-03-10T14:30:00Z");
    assert_eq!(first.len(), 2);
    assert_eq!(
        (first[0].identifier.as_str(), first[0].value.as_str(), first[0].timestamp),
        ("atp-acme-bandwidth-492540", "1", t("2026-03-10T12:59:59Z"))
    );
    assert_eq!((first[1].sequence, first[1].value.as_str(), first[1].covered), (0, "3", 3 * GIB64));
    // Once recorded, nothing is due again for them: a window is never sent twice.
    let pushed = recorded(&first);
    let again = due(&windows, &pushed, "2026-03-10T15:00:00Z");
    assert_eq!(again.len(), 1, "only the window that closed since");
    assert_eq!(again[0].window_start, t("2026-03-10T14:00:00Z"));
    assert_eq!(again[0].micros, 1, "5 bytes round up to a micro-GiB");
}

#[test]
fn a_late_event_becomes_a_correction_for_its_window() {
    let w = t("2026-03-10T12:00:00Z");
    let first = due(&[(w, GIB64)], &[], "2026-03-10T13:00:00Z");
    let pushed = recorded(&first);
    // Half a GiB more arrives for 12:00 after it was pushed.
    let late = due(&[(w, GIB64 + GIB64 / 2)], &pushed, "2026-03-10T16:00:00Z");
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].identifier.as_str(), late[0].sequence, late[0].covered, late[0].value.as_str()),
        ("atp-acme-bandwidth-492540-c1", 1, GIB64 / 2, "0.5")
    );
    assert_eq!(late[0].timestamp, t("2026-03-10T12:59:59Z"), "stamped in its own window");
    let mut pushed = pushed;
    pushed.extend(recorded(&late));
    let later = due(&[(w, 2 * GIB64)], &pushed, "2026-03-10T17:00:00Z");
    assert_eq!((later[0].sequence, later[0].identifier.ends_with("-c2")), (2, true));
    // Nothing changed: nothing due.
    pushed.extend(recorded(&later));
    assert!(due(&[(w, 2 * GIB64)], &pushed, "2026-03-10T18:00:00Z").is_empty());
}

#[test]
fn stripe_holds_the_period_total_rounded_up_once() {
    // 720 windows of 1,000 bytes each: rounding each window up would send 720 micro-GiB, the running total
    // sends ⌈720,000 bytes⌉ = 671 micro-GiB.
    let windows: Vec<(Timestamp, i64)> =
        (0..720).map(|h| (t("2026-03-01T00:00:00Z") + jiff::SignedDuration::from_hours(h), 1_000)).collect();
    let pushes = due(&windows, &[], "2026-04-01T00:00:00Z");
    let sent: i64 = pushes.iter().map(|p| p.micros).sum();
    assert_eq!(i128::from(sent), billing_micros(Meter::Bandwidth, 720_000, 0));
    assert_eq!(sent, 671);
    assert!(pushes.iter().any(|p| !p.needs_sending()), "windows that add no micro-unit are recorded, not sent");
    // Pushed in two rounds with a late event in between, the total is the same.
    let (early, late) = windows.split_at(300);
    let round1 = due(early, &[], "2026-03-13T12:00:00Z");
    let mut grown = windows.clone();
    grown[10].1 += GIB64;
    let round2 = due(&grown, &recorded(&round1), "2026-04-01T00:00:00Z");
    let total: i64 = round1.iter().chain(&round2).map(|p| p.micros).sum();
    assert_eq!(i128::from(total), billing_micros(Meter::Bandwidth, 720_000 + GIB, 0));
    assert!(round2.iter().any(|p| p.window_start == grown[10].0 && p.sequence == 1));
    assert_eq!(round2.iter().filter(|p| p.sequence == 0).count(), late.len());
}

#[test]
fn other_periods_and_open_windows_are_left_alone() {
    let windows = [(t("2026-02-28T23:00:00Z"), GIB64), (t("2026-04-01T00:00:00Z"), GIB64)];
    assert!(due(&windows, &[], "2026-04-02T00:00:00Z").is_empty());
    // Zero-valued windows push nothing.
    assert!(due(&[(t("2026-03-10T12:00:00Z"), 0)], &[], "2026-03-11T00:00:00Z").is_empty());
}

#[test]
fn storage_pushes_gib_months_of_the_period() {
    let period = month();
    let w = t("2026-03-10T12:00:00Z");
    // 744 GiB held for one hour of a 744-hour month is exactly one GiB-month.
    let byte_seconds = i64::try_from(744 * GIB * 3_600).unwrap();
    let pushes =
        pushes_due("atp", "acme", Meter::Storage, &period, t("2026-03-11T00:00:00Z"), &[(w, byte_seconds)], &[])
            .unwrap();
    assert_eq!((pushes[0].value.as_str(), pushes[0].identifier.as_str()), ("1", "atp-acme-storage-492540"));
}

#[test]
fn inconsistent_ledgers_are_refused_not_pushed() {
    let w = t("2026-03-10T12:00:00Z");
    let pushed = [PushedWindow { window_start: w, sequence: 0, covered: 2 * GIB64, micros: 2_000_000 }];
    let err = pushes_due("atp", "acme", Meter::Bandwidth, &month(), t("2026-03-11T00:00:00Z"), &[(w, GIB64)], &pushed)
        .unwrap_err();
    assert!(matches!(err, PushError::UsageShrank { .. }), "{err}");
    assert!(err.to_string().contains("restore the ledger's usage tables"), "{err}");
    // Stripe already holds more than the rounded total (an overlap of two pushers): nothing more is sent until
    // usage catches up, and pushing never wedges.
    let overstated = [PushedWindow { window_start: w, sequence: 0, covered: GIB64, micros: 5_000_000 }];
    let next = t("2026-03-10T13:00:00Z");
    let pushes = pushes_due(
        "atp",
        "acme",
        Meter::Bandwidth,
        &month(),
        t("2026-03-11T00:00:00Z"),
        &[(w, GIB64), (next, GIB64)],
        &overstated,
    )
    .unwrap();
    assert_eq!((pushes.len(), pushes[0].micros, pushes[0].needs_sending()), (1, 0, false));
}
