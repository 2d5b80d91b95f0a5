//! Hourly windows (UTC): usage is summed per (organization, meter, hour), and each hour is pushed to Stripe as
//! one meter event. An hour is the smallest window Stripe's hourly meter summaries show, and 720 pushes a
//! month per meter keep well inside Stripe's rate limits.

use super::event::UsageEvent;
use super::meter::Meter;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const WINDOW_SECONDS: i64 = 3_600;
const WINDOW_MICROS: i64 = WINDOW_SECONDS * 1_000_000;

/// The start of the hour holding `at` (floored, also before 1970).
pub fn window_start(at: Timestamp) -> Timestamp {
    let start = at.as_microsecond().div_euclid(WINDOW_MICROS) * WINDOW_MICROS;
    Timestamp::from_microsecond(start).unwrap_or(Timestamp::MIN)
}

pub fn window_end(start: Timestamp) -> Timestamp {
    start.saturating_add(SignedDuration::from_secs(WINDOW_SECONDS)).unwrap_or(Timestamp::MAX)
}

/// The window's last second: its timestamp in Stripe, and what decides its billing period.
pub fn window_stamp(start: Timestamp) -> Timestamp {
    start.saturating_add(SignedDuration::from_secs(WINDOW_SECONDS - 1)).unwrap_or(Timestamp::MAX)
}

/// One roll-up row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowKey {
    pub organization: String,
    pub meter: Meter,
    pub start: Timestamp,
}

/// A window's sum in the meter's base unit, and how many events made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSum {
    pub quantity: i64,
    pub events: i64,
}

impl WindowSum {
    pub fn add(&mut self, quantity: i64) {
        // Saturating: 9.2 × 10^18 bytes (8 EiB) in one organization's hour is not a real tenant.
        self.quantity = self.quantity.saturating_add(quantity);
        self.events = self.events.saturating_add(1);
    }
}

/// Sums accepted events of organizations into their windows. Duplicates must be removed first (the
/// ledger's unique key does that); here every event counts.
pub fn roll_up<'a>(events: impl IntoIterator<Item = (&'a str, &'a UsageEvent)>) -> BTreeMap<WindowKey, WindowSum> {
    let mut windows: BTreeMap<WindowKey, WindowSum> = BTreeMap::new();
    for (organization, event) in events {
        let key = WindowKey { organization: organization.to_string(), meter: event.meter, start: event.window() };
        windows.entry(key).or_default().add(event.quantity);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_utc_hours() {
        assert_eq!(window_start(t("2026-03-10T12:34:56.789Z")), t("2026-03-10T12:00:00Z"));
        assert_eq!(window_start(t("2026-03-10T12:00:00Z")), t("2026-03-10T12:00:00Z"));
        assert_eq!(window_start(t("2026-03-10T12:59:59.999999Z")), t("2026-03-10T12:00:00Z"));
        // A +05:30 offset still lands on UTC hours.
        assert_eq!(window_start(t("2026-03-10T18:04:56+05:30")), t("2026-03-10T12:00:00Z"));
        assert_eq!(window_start(t("1969-12-31T23:30:00Z")), t("1969-12-31T23:00:00Z"), "floored before 1970");
        assert_eq!(window_end(t("2026-03-10T12:00:00Z")), t("2026-03-10T13:00:00Z"));
        assert_eq!(window_stamp(t("2026-03-10T12:00:00Z")), t("2026-03-10T12:59:59Z"));
    }

    #[test]
    fn roll_up_sums_per_organization_meter_and_hour() {
        let event = |meter, time: &str, quantity| UsageEvent {
            source: "edge".into(),
            id: format!("{time}-{quantity}"),
            meter,
            subject: "org-acme".into(),
            time: t(time),
            quantity,
        };
        let a = [
            event(Meter::Bandwidth, "2026-03-10T12:05:00Z", 100),
            event(Meter::Bandwidth, "2026-03-10T12:55:00Z", 50),
            event(Meter::Bandwidth, "2026-03-10T13:00:00Z", 7),
            event(Meter::ApiCalls, "2026-03-10T12:10:00Z", 3),
        ];
        let b = event(Meter::Bandwidth, "2026-03-10T12:30:00Z", 1);
        let sums = roll_up(a.iter().map(|e| ("acme", e)).chain([("globex", &b)]));
        let key = |org: &str, meter, start: &str| WindowKey { organization: org.into(), meter, start: t(start) };
        assert_eq!(
            sums,
            BTreeMap::from([
                (key("acme", Meter::Bandwidth, "2026-03-10T12:00:00Z"), WindowSum { quantity: 150, events: 2 }),
                (key("acme", Meter::Bandwidth, "2026-03-10T13:00:00Z"), WindowSum { quantity: 7, events: 1 }),
                (key("acme", Meter::ApiCalls, "2026-03-10T12:00:00Z"), WindowSum { quantity: 3, events: 1 }),
                (key("globex", Meter::Bandwidth, "2026-03-10T12:00:00Z"), WindowSum { quantity: 1, events: 1 }),
            ])
        );
        let mut full = WindowSum { quantity: i64::MAX - 1, events: 0 };
        full.add(5);
        assert_eq!(full.quantity, i64::MAX, "saturates instead of wrapping");
    }
}
