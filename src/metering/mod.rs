//! Usage metering (issue #15): from a measured quantity to what is billed for it, for four meters —
//! bandwidth, storage, API calls and stream time. Pure: no I/O, no clock (`now` is always an argument), so
//! every rule is unit-tested without a cluster, a database or Stripe. The ledger stores what these functions
//! decide (`ledger::usage`); the ingestion endpoint, the usage status and the Stripe pusher call them.
//!
//! - [`meter`]: the meters, their units and CloudEvents types.
//! - [`units`]: decimal values, base units → billing units, and the one rounding rule.
//! - [`event`]: CloudEvents 1.0 usage events: a request body parsed, each event accepted or rejected.
//! - [`intake`]: whose usage an event is (its namespace's organization) and the per-event answer.
//! - [`window`]: hourly windows and the roll-up of events into them.
//! - [`period`]: billing periods (Stripe's, or the calendar month) and period totals.
//! - [`storage`]: time-weighted GiB-months from storage samples, and storage against its limit.
//! - [`sampling`]: what a storage sampling round records (who, how much, which windows).
//! - [`terms`]: what a plan includes per meter and what happens beyond it.
//! - [`overage`]: the cost of usage beyond what is included.
//! - [`limits`]: Ok / Warning / Reached per meter, whether traffic is blocked, status strings.
//! - [`status`]: `Organization.status.usage`'s meter lines and the `UsageLimit` condition.
//! - [`push`]: Stripe meter-event identifiers and the rule for late usage (corrections).
//! - [`reconcile`]: the ledger's period totals against Stripe's at period close.
//! - [`gauges`]: the per-organization meter gauges (used and included, in billing units).
//! - [`report`], [`report_table`]: one organization's usage for people (the `usage` command).
//!
//! The formulas and rounding rules are written out in docs/metering.md.

pub mod event;
pub mod gauges;
pub mod intake;
pub mod limits;
pub mod meter;
pub mod overage;
pub mod period;
pub mod push;
pub mod reconcile;
pub mod report;
pub mod report_table;
pub mod sampling;
pub mod status;
pub mod storage;
pub mod terms;
pub mod units;
pub mod window;

#[cfg(test)]
mod testing;

pub use event::{Acceptance, BatchError, Rejection, UsageEvent, Verdict, intake};
pub use limits::{LimitState, MeterLimit, closest_to_limit};
pub use meter::Meter;
pub use overage::{Charges, MeterCharge, charges};
pub use period::{BillingPeriod, Period, PeriodSource, current_period};
pub use push::{Push, PushedWindow, meter_event_identifier, pushes_due};
pub use storage::StorageSample;
pub use terms::{MeterTerms, Overage, PlanTerms, plan_terms};
pub use window::{WindowKey, WindowSum, roll_up, window_start};
