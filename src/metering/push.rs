//! What goes to Stripe Billing Meters, decided from the ledger's hourly windows and what was pushed before.
//!
//! **Identifiers.** One meter event per (organization, meter, hourly window): `atp-<org>-<meter>-<unix hour>`,
//! e.g. `atp-acme-bandwidth-492540`. Deterministic, so a push retried after a crash carries the same identifier
//! and Stripe drops the copy (it keeps identifiers for at least 24 hours). Organization names longer than 40
//! characters are shortened to their first 23 and 16 hex digits of their SHA-256, so the identifier stays
//! within Stripe's 100 characters; the meter name (which has no `-`) and the hour are always whole.
//!
//! **Late usage: a correction, never a cancel.** An event that arrives for a window already pushed is sent as
//! a further event for that window with a sequence number, `…-492540-c1`, `-c2`, carrying only the difference.
//! Not cancel-and-resend: Stripe's adjustments can only cancel an event by its identifier, so a resend is two
//! calls that can be cut apart by a crash (usage cancelled and not sent again), and the resend needs a new
//! identifier anyway. Usage only grows (values are never negative and events are never removed), so the
//! difference is never negative and a cancel is never needed.
//!
//! **Quantities: one rounding per period.** Values are in billing micro-units, rounded up. Each push sends
//! what brings Stripe's total for the period to the period's running total rounded up:
//!
//! ```text
//! value = ⌈covered base units so far, in micro-units⌉ − micro-units already sent in the period
//! ```
//!
//! so at every moment Stripe holds exactly ⌈period usage⌉, never a rounding per window (720 windows a month
//! each rounded up would add up to 720 micro-units). A window's pushes record the base units they covered, so
//! a late event is found as "window total − covered". Pushing is the leader's job alone (one writer per
//! organization and meter); push storage only for periods Stripe has confirmed, since its conversion depends
//! on the period's length.
//!
//! **Protocol (for the pusher):** record the push in the ledger first (pending), then send it to Stripe with
//! its identifier and [`Push::timestamp`], then mark it sent. A pending push is re-sent as recorded, never
//! recomputed: if the first attempt did reach Stripe, the same identifier makes the second a no-op, and only
//! the recorded value matches what Stripe kept. A push of 0 (the running total did not reach the next
//! micro-unit) is recorded and not sent.

use super::meter::Meter;
use super::period::Period;
use super::units::{billing_micros, format_micros};
use super::window::{window_end, window_stamp};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default identifier prefix (at most 20 characters). Installations sharing one Stripe account (staging
/// and production on one test account) need different prefixes: identifiers are unique per account.
pub const IDENTIFIER_PREFIX: &str = "atp";
/// Stripe's limit on a meter event identifier.
pub const MAX_IDENTIFIER_CHARS: usize = 100;
/// Organization names up to this length appear whole in identifiers.
pub const MAX_ORGANIZATION_CHARS: usize = 40;
/// Stripe refuses meter values of more than 15 significant digits: below 10^15 micro-units (10^9 units).
pub const MAX_PUSH_MICROS: i128 = 999_999_999_999_999;

/// The identifier of the `sequence`th push (0: the window's first) of one organization's meter in the hourly
/// window starting at `window_start`.
pub fn meter_event_identifier(
    prefix: &str,
    organization: &str,
    meter: Meter,
    window_start: Timestamp,
    sequence: u32,
) -> String {
    let hour = window_start.as_second().div_euclid(3_600);
    let org = short_organization(organization);
    match sequence {
        0 => format!("{prefix}-{org}-{meter}-{hour}"),
        n => format!("{prefix}-{org}-{meter}-{hour}-c{n}"),
    }
}

/// The organization as it appears in identifiers: whole up to 40 characters, else shortened with a hash.
fn short_organization(organization: &str) -> String {
    if organization.chars().count() <= MAX_ORGANIZATION_CHARS {
        return organization.to_string();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, organization.as_bytes());
    let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let head: String = organization.chars().take(MAX_ORGANIZATION_CHARS - hex.len() - 1).collect();
    format!("{head}-{hex}")
}

/// A push already recorded in the ledger (pending or sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedWindow {
    pub window_start: Timestamp,
    pub sequence: u32,
    /// Base units of the window this push accounted for.
    pub covered: i64,
    /// Micro-units it sent.
    pub micros: i64,
}

/// A push to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    pub window_start: Timestamp,
    pub sequence: u32,
    pub identifier: String,
    /// The window's base units this push accounts for (total − covered before).
    pub covered: i64,
    pub micros: i64,
    /// `value` in the meter event's payload.
    pub value: String,
    /// The meter event's timestamp: the window's last second, which is in the period (see `period`).
    pub timestamp: Timestamp,
}

impl Push {
    /// A push of 0 is recorded (so the window counts as pushed) but not sent: Stripe would add nothing.
    pub fn needs_sending(&self) -> bool {
        self.micros > 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error(
        "{meter} window {window} was pushed for {covered} {unit} but holds only {total}: usage in the ledger went \
         down, which ingestion never does; restore the ledger's usage tables from a backup before pushing again"
    )]
    UsageShrank { meter: Meter, window: Timestamp, covered: i64, total: i64, unit: &'static str },
    #[error("{meter} window {window}: a push of {micros} micro-units exceeds Stripe's 15 significant digits")]
    TooLarge { meter: Meter, window: Timestamp, micros: i128 },
}

/// The pushes due for one organization's meter in `period`, oldest window first: a first push for every
/// closed window (ended by `now`) not yet pushed, and a correction for every pushed window whose total grew.
/// `windows` are the ledger's (window start, base-unit total); `pushed` the pushes recorded so far. Windows
/// and pushes outside the period are ignored (each period's rounding stands alone).
pub fn pushes_due(
    prefix: &str,
    organization: &str,
    meter: Meter,
    period: &Period,
    now: Timestamp,
    windows: &[(Timestamp, i64)],
    pushed: &[PushedWindow],
) -> Result<Vec<Push>, PushError> {
    let seconds = period.seconds();
    let mut covered: BTreeMap<Timestamp, (i64, Option<u32>)> = BTreeMap::new();
    let (mut covered_total, mut sent): (i128, i128) = (0, 0);
    for p in pushed.iter().filter(|p| period.holds_window(p.window_start)) {
        let entry = covered.entry(p.window_start).or_insert((0, None));
        entry.0 = entry.0.saturating_add(p.covered);
        entry.1 = entry.1.max(Some(p.sequence));
        covered_total += i128::from(p.covered);
        sent += i128::from(p.micros);
    }
    let mut ordered: Vec<(Timestamp, i64)> =
        windows.iter().copied().filter(|&(start, _)| period.holds_window(start) && window_end(start) <= now).collect();
    ordered.sort_by_key(|&(start, _)| start);
    let mut due = Vec::new();
    for (start, total) in ordered {
        let (done, last) = covered.get(&start).copied().unwrap_or((0, None));
        if total < done {
            return Err(PushError::UsageShrank { meter, window: start, covered: done, total, unit: meter.base_unit() });
        }
        let pending = total - done;
        // Nothing new (a window of zero-valued events, or already covered): nothing to push.
        if pending == 0 {
            continue;
        }
        covered_total += i128::from(pending);
        // Never negative: if Stripe already holds more than the rounded total (two pushers overlapping in a
        // leader change, or storage pushed for an estimated period that turned out longer), send nothing until
        // usage catches up, rather than refuse to push at all.
        let micros = (billing_micros(meter, covered_total, seconds) - sent).max(0);
        if micros > MAX_PUSH_MICROS {
            return Err(PushError::TooLarge { meter, window: start, micros });
        }
        sent += micros;
        let sequence = last.map_or(0, |s| s.saturating_add(1));
        due.push(Push {
            window_start: start,
            sequence,
            identifier: meter_event_identifier(prefix, organization, meter, start, sequence),
            covered: pending,
            micros: i64::try_from(micros).unwrap_or(i64::MAX),
            value: format_micros(micros),
            timestamp: window_stamp(start),
        });
    }
    Ok(due)
}

#[cfg(test)]
mod tests;
