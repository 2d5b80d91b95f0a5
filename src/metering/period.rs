//! Billing periods: usage is totalled and limits reset per period. An organization billed through Stripe uses
//! its subscription's current period; an unbilled one (free, internal, no Subscription) the calendar month in
//! UTC.
//!
//! A period holds the hourly windows whose **last second** falls in it, and Stripe receives each window stamped
//! with that second. A window is pushed after it closes, so its stamp is never in a period whose invoice may
//! already be final; when a Stripe period starts mid-hour (10:23), that hour's usage counts in the new period.
//! Calendar months start on the hour, so for them this is simply "the windows that start in the month".

use super::meter::Meter;
use super::window::{window_end, window_stamp, window_start};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("a billing period must end after it starts (start {start}, end {end})")]
    Empty { start: Timestamp, end: Timestamp },
    #[error("{0} is outside the range of calendar dates")]
    OutOfRange(Timestamp),
}

impl Period {
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Period, PeriodError> {
        if end <= start {
            return Err(PeriodError::Empty { start, end });
        }
        Ok(Period { start, end })
    }

    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// The period's length in whole seconds (the divisor of GiB-months).
    pub fn seconds(&self) -> i64 {
        self.end.as_second() - self.start.as_second()
    }

    /// Whether the hourly window starting at `start` is billed in this period (its last second is in it).
    pub fn holds_window(&self, start: Timestamp) -> bool {
        self.contains(window_stamp(start))
    }

    /// The starts of the windows this period holds, as `[from, to)`: for queries over window starts.
    pub fn window_starts(&self) -> (Timestamp, Timestamp) {
        let first = |at: Timestamp| {
            let start = window_start(at);
            if window_stamp(start) < at { window_end(start) } else { start }
        };
        (first(self.start), first(self.end))
    }
}

/// The calendar month (UTC) holding `at`.
pub fn calendar_month(at: Timestamp) -> Result<Period, PeriodError> {
    let day = at.to_zoned(TimeZone::UTC).date();
    let first = day.first_of_month();
    let next = first.checked_add(jiff::Span::new().months(1)).map_err(|_| PeriodError::OutOfRange(at))?;
    let midnight = |d: jiff::civil::Date| {
        d.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).map_err(|_| PeriodError::OutOfRange(at))
    };
    Period::new(midnight(first)?, midnight(next)?)
}

/// Where a period came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeriodSource {
    /// The Stripe subscription's current period.
    Stripe,
    /// Stripe's period has ended and the mirror has not caught up (a webhook or re-sync is due): the next
    /// period, assumed as long as the last one. Its start is exact; its end is a guess until Stripe says.
    StripeEstimated,
    /// Not billed through Stripe: the calendar month in UTC.
    CalendarMonth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub period: Period,
    pub source: PeriodSource,
}

/// The period open at `now`: the Stripe subscription's (`stripe`, from its current period start and end)
/// when there is one, else the calendar month. A Stripe period that has ended rolls on by its own length;
/// one that has not started yet (a clock ahead of ours) leaves the calendar month in place.
pub fn current_period(stripe: Option<Period>, now: Timestamp) -> Result<BillingPeriod, PeriodError> {
    let Some(p) = stripe.filter(|p| p.start <= now) else {
        return Ok(BillingPeriod { period: calendar_month(now)?, source: PeriodSource::CalendarMonth });
    };
    if now < p.end {
        return Ok(BillingPeriod { period: p, source: PeriodSource::Stripe });
    }
    let length = p.end.as_second() - p.start.as_second();
    let missed = (now.as_second() - p.end.as_second()) / length;
    let start = p.end.as_second() + missed * length;
    let at = |s: i64| Timestamp::from_second(s).map_err(|_| PeriodError::OutOfRange(now));
    Ok(BillingPeriod { period: Period::new(at(start)?, at(start + length)?)?, source: PeriodSource::StripeEstimated })
}

/// Per meter, the sum of the hourly windows the period holds. `windows` are (meter, window start, quantity in
/// base units), e.g. the ledger's hourly roll-ups; windows of other periods are left out.
pub fn period_totals(
    windows: impl IntoIterator<Item = (Meter, Timestamp, i64)>,
    period: &Period,
) -> BTreeMap<Meter, i64> {
    let mut totals = BTreeMap::new();
    for (meter, start, quantity) in windows {
        if period.holds_window(start) {
            let total: &mut i64 = totals.entry(meter).or_default();
            *total = total.saturating_add(quantity);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_months_in_utc() {
        let m = calendar_month(t("2026-02-14T23:30:00-05:00")).unwrap();
        assert_eq!((m.start, m.end), (t("2026-02-01T00:00:00Z"), t("2026-03-01T00:00:00Z")));
        assert_eq!(m.seconds(), 28 * 86_400);
        let dec = calendar_month(t("2026-12-31T23:59:59Z")).unwrap();
        assert_eq!(dec.end, t("2027-01-01T00:00:00Z"));
        // Late on Jan 31 in New York is already February in UTC.
        assert_eq!(calendar_month(t("2026-01-31T20:00:00-05:00")).unwrap().start, t("2026-02-01T00:00:00Z"));
    }

    #[test]
    fn stripe_period_or_the_calendar_month() {
        let stripe = Period::new(t("2026-03-05T10:23:17Z"), t("2026-04-05T10:23:17Z")).unwrap();
        let now = t("2026-03-20T00:00:00Z");
        assert_eq!(
            current_period(Some(stripe), now).unwrap(),
            BillingPeriod { period: stripe, source: PeriodSource::Stripe }
        );
        let unbilled = current_period(None, now).unwrap();
        assert_eq!(unbilled.source, PeriodSource::CalendarMonth);
        assert_eq!(unbilled.period.start, t("2026-03-01T00:00:00Z"));
        // Ended, mirror not updated yet: the next period starts exactly at the old end.
        let later = current_period(Some(stripe), t("2026-04-06T00:00:00Z")).unwrap();
        assert_eq!(later.source, PeriodSource::StripeEstimated);
        assert_eq!(later.period.start, stripe.end);
        assert_eq!(later.period.seconds(), stripe.seconds());
        // Two periods missed.
        let much_later =
            current_period(Some(stripe), stripe.end + jiff::SignedDuration::from_secs(stripe.seconds() + 5)).unwrap();
        assert_eq!(much_later.period.start.as_second(), stripe.end.as_second() + stripe.seconds());
        // Not started yet by our clock.
        assert_eq!(
            current_period(Some(stripe), t("2026-03-05T10:00:00Z")).unwrap().source,
            PeriodSource::CalendarMonth
        );
        assert!(Period::new(now, now).is_err());
    }

    #[test]
    fn a_window_belongs_to_the_period_of_its_last_second() {
        let p = Period::new(t("2026-03-05T10:23:17Z"), t("2026-04-05T10:23:17Z")).unwrap();
        assert!(p.holds_window(t("2026-03-05T10:00:00Z")), "10:00-11:00 ends after the 10:23 start");
        assert!(!p.holds_window(t("2026-03-05T09:00:00Z")));
        assert!(!p.holds_window(t("2026-04-05T10:00:00Z")), "its last second is in the next period");
        assert!(p.holds_window(t("2026-04-05T09:00:00Z")));
        assert_eq!(p.window_starts(), (t("2026-03-05T10:00:00Z"), t("2026-04-05T10:00:00Z")));
        // Hour-aligned periods hold exactly the windows that start in them.
        let m = calendar_month(t("2026-03-10T00:00:00Z")).unwrap();
        assert_eq!(m.window_starts(), (m.start, m.end));
        assert!(m.holds_window(t("2026-03-31T23:00:00Z")));
        assert!(!m.holds_window(t("2026-04-01T00:00:00Z")));
    }

    #[test]
    fn totals_sum_the_windows_of_the_period() {
        let m = calendar_month(t("2026-03-10T00:00:00Z")).unwrap();
        let windows = [
            (Meter::Bandwidth, t("2026-02-28T23:00:00Z"), 1_000),
            (Meter::Bandwidth, t("2026-03-01T00:00:00Z"), 10),
            (Meter::Bandwidth, t("2026-03-31T23:00:00Z"), 5),
            (Meter::ApiCalls, t("2026-03-15T12:00:00Z"), 7),
            (Meter::ApiCalls, t("2026-04-01T00:00:00Z"), 1_000),
        ];
        let totals = period_totals(windows, &m);
        assert_eq!(totals, BTreeMap::from([(Meter::Bandwidth, 15), (Meter::ApiCalls, 7)]));
    }
}
