//! Storage is billed on what is provisioned (PersistentVolumeClaim `requests.storage`, the ResourceQuota's own
//! measure), sampled by the operator every few minutes, and time-weighted into GiB-months:
//!
//! ```text
//! byte-seconds = Σ bytes(sample i) × (t(i+1) − t(i))       over the period, as a step function
//! GiB-months   = byte-seconds / (2^30 × seconds in the period)
//! ```
//!
//! Each sample holds until the next one; the last one until `until` (the period's end, or now for an open
//! period); before the first sample in range, the last sample before it holds (or nothing, without one).
//! Sample times count to the second. So 10 GiB for half of the period and nothing after is 5 GiB-months, in
//! a 28-day February as in a 31-day March. Byte-seconds are exact integers; only the GiB-months are rounded
//! (up, to a millionth: [`super::units`]). A claim created and deleted between two samples is not seen:
//! sample at least as often as claims live (every 5 minutes by default).

use super::limits::{MeterLimit, meter_limit};
use super::meter::Meter;
use super::period::Period;
use super::terms::MeterTerms;
use super::units::billing_micros;
use super::window::{window_end, window_start};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Provisioned bytes at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSample {
    pub at: Timestamp,
    pub bytes: i64,
}

/// ∫ bytes dt over `[from, until)`, in byte-seconds. Samples may come in any order; negative byte counts
/// (never valid) count as zero.
pub fn byte_seconds(samples: &[StorageSample], from: Timestamp, until: Timestamp) -> i128 {
    let (from, until) = (from.as_second(), until.as_second());
    if until <= from {
        return 0;
    }
    let mut sorted: Vec<(i64, i128)> = samples.iter().map(|s| (s.at.as_second(), i128::from(s.bytes.max(0)))).collect();
    sorted.sort_by_key(|&(at, _)| at);
    // The value in force at `from`: the last sample at or before it.
    let mut current = sorted.iter().rev().find(|&&(at, _)| at <= from).map_or(0, |&(_, b)| b);
    let mut since = from;
    let mut total: i128 = 0;
    for &(at, bytes) in sorted.iter().filter(|&&(at, _)| at > from && at < until) {
        total += current * i128::from(at - since);
        current = bytes;
        since = at;
    }
    total + current * i128::from(until - since)
}

/// Byte-seconds per hourly window over `[from, until)`, oldest first (windows clipped to the range): what
/// the storage meter's hourly roll-ups hold.
pub fn hourly_byte_seconds(samples: &[StorageSample], from: Timestamp, until: Timestamp) -> Vec<(Timestamp, i128)> {
    let mut windows = Vec::new();
    let mut start = window_start(from);
    while start < until {
        let end = window_end(start);
        windows.push((start, byte_seconds(samples, start.max(from), end.min(until))));
        start = end;
    }
    windows
}

/// GiB-months of `byte_seconds` in `period`, in micro-units, rounded up.
pub fn gib_month_micros(byte_seconds: i128, period: &Period) -> i128 {
    billing_micros(Meter::Storage, byte_seconds, period.seconds())
}

/// Storage against its limit, for the status: the period's GiB-months so far (`byte_seconds`, from the storage
/// windows the period holds) as the bytes that, held for the whole period, make them — rounded down, so never
/// overstated — against the limit, whose N GiB include N GiB-months. So `2.5Gi/5Gi` reads "2.5 of the 5
/// GiB-months included". Never `blocked`: the ResourceQuota caps what is provisioned, and refusing traffic
/// would not free any storage.
pub fn storage_limit(terms: &MeterTerms, byte_seconds: i64, period: &Period) -> MeterLimit {
    let used = byte_seconds.max(0) / period.seconds().max(1);
    MeterLimit { blocked: false, ..meter_limit(terms, used) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::units::GIB;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn s(at: &str, gib: i64) -> StorageSample {
        StorageSample { at: t(at), bytes: gib << 30 }
    }

    #[test]
    fn half_a_period_at_ten_gib_is_five_gib_months_in_any_month() {
        for (start, mid, end) in [
            ("2026-02-01T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-01T00:00:00Z"),
            ("2026-03-01T00:00:00Z", "2026-03-16T12:00:00Z", "2026-04-01T00:00:00Z"),
        ] {
            let period = Period::new(t(start), t(end)).unwrap();
            let samples = [s(start, 10), s(mid, 0)];
            let bs = byte_seconds(&samples, period.start, period.end);
            assert_eq!(bs, 10 * GIB * i128::from(period.seconds() / 2));
            assert_eq!(gib_month_micros(bs, &period), 5_000_000, "{start}");
        }
    }

    #[test]
    fn samples_hold_until_the_next_one() {
        let from = t("2026-03-01T00:00:00Z");
        let until = t("2026-03-01T03:00:00Z");
        // Out of order on purpose; the 23:00 sample before the range is in force at its start.
        let samples = [s("2026-03-01T02:00:00Z", 4), s("2026-02-28T23:00:00Z", 1), s("2026-03-01T01:00:00Z", 2)];
        let hour = i128::from(3_600i64);
        assert_eq!(byte_seconds(&samples, from, until), (GIB + 2 * GIB + 4 * GIB) * hour);
        // Without any sample before the range, nothing was provisioned until the first.
        assert_eq!(byte_seconds(&samples[..1], from, until), 4 * GIB * hour);
        assert_eq!(byte_seconds(&[], from, until), 0);
        assert_eq!(byte_seconds(&samples, until, from), 0, "an empty range");
        let negative = [StorageSample { at: from, bytes: -5 }];
        assert_eq!(byte_seconds(&negative, from, until), 0);
    }

    #[test]
    fn hourly_windows_add_up_to_the_whole() {
        let from = t("2026-03-01T00:30:00Z");
        let until = t("2026-03-01T03:15:00Z");
        let samples = [s("2026-03-01T00:00:00Z", 3), s("2026-03-01T01:45:10Z", 7)];
        let windows = hourly_byte_seconds(&samples, from, until);
        assert_eq!(
            windows.iter().map(|w| w.0).collect::<Vec<_>>(),
            [
                t("2026-03-01T00:00:00Z"),
                t("2026-03-01T01:00:00Z"),
                t("2026-03-01T02:00:00Z"),
                t("2026-03-01T03:00:00Z")
            ]
        );
        assert_eq!(windows[0].1, 3 * GIB * 1_800, "clipped to the range");
        assert_eq!(windows[1].1, 3 * GIB * 2_710 + 7 * GIB * 890);
        assert_eq!(windows.iter().map(|w| w.1).sum::<i128>(), byte_seconds(&samples, from, until));
    }

    #[test]
    fn storage_shows_gib_months_so_far_against_the_included_ones_and_never_blocks() {
        use crate::metering::limits::LimitState;
        use crate::metering::terms::plan_terms;
        use crate::metering::testing::shipped;
        let free = plan_terms(&shipped("free")).unwrap();
        let terms = free.meter(Meter::Storage);
        let march = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
        let month = i128::from(march.seconds());
        // 5 GiB for half of March: 2.5 of the free plan's 5 GiB-months.
        let half = i64::try_from(5 * GIB * month / 2).unwrap();
        let limit = storage_limit(terms, half, &march);
        assert_eq!((limit.status(), limit.state), ("2.5Gi/5Gi".to_string(), LimitState::Ok));
        // 10 GiB all month (a downgrade left more than the quota now allows): Reached, yet not blocked.
        let over = i64::try_from(10 * GIB * month).unwrap();
        let limit = storage_limit(terms, over, &march);
        assert_eq!((limit.status(), limit.state, limit.blocked), ("10Gi/5Gi".to_string(), LimitState::Reached, false));
        assert_eq!(storage_limit(terms, 0, &march).status(), "0/5Gi");
        assert_eq!(storage_limit(terms, 1, &march).used, 0, "rounded down");
    }

    #[test]
    fn gib_months_round_up_to_a_millionth() {
        let period = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
        assert_eq!(gib_month_micros(1, &period), 1, "one byte for one second still bills a micro-GiB-month");
        assert_eq!(gib_month_micros(0, &period), 0);
        assert_eq!(gib_month_micros(GIB * i128::from(period.seconds()), &period), 1_000_000);
    }
}
