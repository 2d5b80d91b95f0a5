//! SaaS revenue figures — MRR, its month-over-month movements, churn rates, ARPA, ARR and trial
//! conversion — from the subscription history the ledger keeps ([`SubscriptionChange`] rows).
//!
//! Pure: no I/O, no clock (`now` and the months are inputs), so every figure is unit-tested from seeded
//! histories. The super-admin console calls [`report`] on every page load.
//!
//! # The facts
//!
//! Each row is its organization's subscription from the row's `at` until that organization's next row
//! (rows are ordered by `(at, id)`, in whatever order they are passed). Before its first row an
//! organization has no subscription.
//!
//! # MRR
//!
//! - The MRR of an organization at an instant is [`monthly_cents`] of its latest row at or before it:
//!   `price_cents` when `billing_interval` is `month`, `price_cents / 12` rounded half-up to the cent when
//!   it is `year` — and 0 unless the state is `active` or `past_due`, the plan is not internal and the
//!   price is above 0. Trials (`trialing`) count 0, and so does an interval other than `month` or `year`
//!   (rather than a guess).
//! - MRR comes from the plan prices of subscriptions, never from invoices: discounts, credits, usage
//!   charges and taxes are not in it.
//! - Figures are per currency (keyed by the lower-case code); an organization's MRR counts in the currency
//!   of its current row. A currency is reported once it has MRR at a month boundary or at `now`, or a trial.
//! - "Paying customers" are the organizations with MRR above 0.
//!
//! # Months
//!
//! A month M is a calendar month in UTC, `[start, end)` with `end` the start of the next month, labelled
//! `"YYYY-MM"`. Its **start MRR** is the MRR in force just before `start` (latest row with `at < start`),
//! its **end MRR** the MRR in force at the last instant of M (latest row with `at < end`) — so one month's
//! end is the next month's start. Each organization's start and end MRR are compared — the standard
//! month-over-month method: changes inside the month net out, so an upgrade and a cancellation in the same
//! month are one churn of the start MRR:
//!
//! - start 0, end > 0: **new** (end MRR) if the organization never had MRR > 0 at any instant before
//!   `start` (all its earlier rows are looked at; a row replaced at its own instant never was in force),
//!   else **reactivation** (end MRR);
//! - start > 0, end 0: **churn** (start MRR), and one churned customer;
//! - both > 0: end > start is **expansion** (end − start), end < start **contraction** (start − end).
//!
//! An organization that pays in another currency at the end than at the start churns in the old currency
//! and reactivates in the new one, so every currency's movements add up. Per month and currency:
//!
//! - net new = new + expansion + reactivation − contraction − churn = end MRR − start MRR
//! - logo churn rate = churned customers / paying customers at start
//! - gross revenue churn rate = (churn + contraction) / start MRR
//! - net revenue churn rate = (churn + contraction − expansion) / start MRR — below 0 when expansion
//!   outgrows the losses; reactivation is not netted (it is won back like new business)
//! - ARPA = end MRR / paying customers at end, rounded half-up to the cent
//! - ARR = 12 × end MRR
//! - trials started = rows dated in M whose state is `trialing` and whose previous row is absent or not
//!   `trialing`; trials ended = rows dated in M that follow a `trialing` row and are not `trialing`, and
//!   converted when that row is `active` or `past_due`; trial conversion rate = converted / ended. Trials
//!   count in the currency of the `trialing` row.
//!
//! Rates are fractions (0.042 is 4.2 %, see [`format_rate`]) and `None` when their denominator is 0.
//!
//! # Now
//!
//! At the instant `now` (latest row with `at <= now`): per currency MRR, ARR = 12 × MRR, paying
//! customers and ARPA = MRR / paying customers (rounded half-up); per organization with a row by then its MRR, currency,
//! plan and state.
//!
//! # Cost
//!
//! Rows are grouped by organization once and each organization's rows are walked once across all months
//! with a moving index: O(rows + organizations × months), with no allocation per row or per month beyond
//! the figures themselves. The months are reported oldest first, each once; between months that are not
//! adjacent the walk carries the state on, so a month's start MRR never depends on which months were asked.

mod movements;
#[cfg(test)]
mod tests;

use crate::ledger::SubscriptionChange;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use movements::{Currencies, Fact, MonthBounds, Tallies};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What [`report`] computes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs<'a> {
    /// Any order; sorted by `(at, id)` per organization inside.
    pub history: &'a [SubscriptionChange],
    /// Plans that never earn MRR (staff, demo, partner accounts).
    pub internal_plans: &'a BTreeSet<String>,
    /// Months to report, by any day in them (usually the 1st); reported oldest first, each once.
    pub months: Vec<Date>,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Keyed by lower-case currency code.
    pub currencies: BTreeMap<String, CurrencyReport>,
    /// Every organization with a row at or before `now`.
    pub organizations: BTreeMap<String, OrganizationMrr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyReport {
    /// One per requested month, oldest first.
    pub months: Vec<MonthFigures>,
    pub current: Snapshot,
}

/// One month in one currency; amounts in cents (the currency's smallest unit).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthFigures {
    /// `"YYYY-MM"`.
    pub month: String,
    pub start_mrr_cents: i64,
    pub end_mrr_cents: i64,
    pub new_cents: i64,
    pub expansion_cents: i64,
    pub contraction_cents: i64,
    pub churn_cents: i64,
    pub reactivation_cents: i64,
    /// new + expansion + reactivation − contraction − churn, which equals end − start MRR.
    pub net_new_cents: i64,
    pub customers_start: usize,
    pub customers_end: usize,
    pub churned_customers: usize,
    pub trials_started: usize,
    pub trials_ended: usize,
    pub trials_converted: usize,
    /// churned customers / customers at start.
    pub logo_churn_rate: Option<f64>,
    /// (churn + contraction) / start MRR.
    pub gross_revenue_churn_rate: Option<f64>,
    /// (churn + contraction − expansion) / start MRR; below 0 is net expansion.
    pub net_revenue_churn_rate: Option<f64>,
    /// trials converted / trials ended.
    pub trial_conversion_rate: Option<f64>,
    /// end MRR / customers at end, rounded half-up.
    pub arpa_cents: Option<i64>,
    /// 12 × end MRR.
    pub arr_cents: i64,
}

/// One currency at `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub mrr_cents: i64,
    pub arr_cents: i64,
    pub paying_customers: usize,
    pub arpa_cents: Option<i64>,
}

/// One organization at `now`, from its row in force then.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationMrr {
    pub mrr_cents: i64,
    /// Lower-case.
    pub currency: String,
    pub plan: String,
    pub state: String,
}

/// The MRR a row stands for while it is in force (the rule is in the module doc).
pub fn monthly_cents(change: &SubscriptionChange, internal_plans: &BTreeSet<String>) -> i64 {
    let earning = matches!(change.state.as_str(), "active" | "past_due");
    if !earning || change.price_cents <= 0 || internal_plans.contains(&change.plan) {
        return 0;
    }
    let price = change.price_cents;
    match change.billing_interval.as_str() {
        "month" => price,
        // Half-up without `price + 6`, which could overflow.
        "year" => price / 12 + i64::from(price % 12 >= 6),
        _ => 0,
    }
}

/// The `count` calendar months (UTC) up to and including `now`'s, oldest first, as their 1st days.
/// Fewer when the calendar runs out.
pub fn months_ending(now: Timestamp, count: usize) -> Vec<Date> {
    let mut month = now.to_zoned(TimeZone::UTC).date().first_of_month();
    let mut months = Vec::new();
    while months.len() < count {
        months.push(month);
        match month.checked_sub(Span::new().months(1)) {
            Ok(previous) => month = previous,
            Err(_) => break,
        }
    }
    months.reverse();
    months
}

/// `"YYYY-MM"`, the label of the month holding `day`.
pub fn month_label(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// All figures for the months and `now` (formulas in the module doc).
pub fn report(inputs: &Inputs) -> Report {
    let months = month_bounds(&inputs.months);
    let mut currencies = Currencies::default();
    // The report is computed at most every 30 s (console::platform): the default hasher is fast enough.
    let mut by_organization: HashMap<&str, Vec<Fact>> = HashMap::new();
    for change in inputs.history {
        let fact = Fact {
            at: change.at,
            monthly_cents: monthly_cents(change, inputs.internal_plans),
            currency: currencies.index(&change.currency),
            trialing: change.state == "trialing",
            converts_trial: matches!(change.state.as_str(), "active" | "past_due"),
            change,
        };
        by_organization.entry(change.organization.as_str()).or_default().push(fact);
    }

    let mut tallies = Tallies::new(months.len());
    let mut organizations = BTreeMap::new();
    for (organization, facts) in &mut by_organization {
        // Ids are unique, so an unstable sort is deterministic; it is linear on rows that come sorted, as the
        // ledger returns them, and needs no scratch space.
        facts.sort_unstable_by(|a, b| (a.at, &a.change.id).cmp(&(b.at, &b.change.id)));
        tallies.add_organization(facts, &months);
        if let Some(current) = tallies.add_now(facts, inputs.now) {
            organizations.insert(
                organization.to_string(),
                OrganizationMrr {
                    mrr_cents: current.monthly_cents,
                    currency: currencies.name(current.currency).to_string(),
                    plan: current.change.plan.clone(),
                    state: current.change.state.clone(),
                },
            );
        }
    }

    let currencies = tallies
        .into_reports(&months)
        .map(|(currency, report)| (currencies.name(currency).to_string(), report))
        .collect();
    Report { currencies, organizations }
}

/// The requested months as instants, oldest first and each once; a month the calendar cannot end is left out.
fn month_bounds(days: &[Date]) -> Vec<MonthBounds> {
    let mut firsts: Vec<Date> = days.iter().map(|day| day.first_of_month()).collect();
    firsts.sort_unstable();
    firsts.dedup();
    let midnight = |day: Date| day.to_zoned(TimeZone::UTC).ok().map(|zoned| zoned.timestamp());
    firsts
        .into_iter()
        .filter_map(|first| {
            let next = first.checked_add(Span::new().months(1)).ok()?;
            Some(MonthBounds { label: month_label(first), start: midnight(first)?, end: midnight(next)? })
        })
        .collect()
}

/// `a / b` rounded half-up, for non-negative amounts; `None` when `b` is 0.
fn divide_rounded(a: i64, b: usize) -> Option<i64> {
    let b = i64::try_from(b).ok().filter(|b| *b > 0)?;
    Some(a / b + i64::from(a % b * 2 >= b))
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| numerator / denominator)
}

/// Stripe's zero-decimal currencies: their smallest unit is the whole unit, so there are no cents to show.
const ZERO_DECIMAL_CURRENCIES: [&str; 16] =
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

/// An amount in the currency's smallest unit for people: "$1,234.50" (usd), "€…" (eur), "£…" (gbp),
/// otherwise "1,234.50 XYZ" ("1,234 JPY" for zero-decimal currencies).
pub fn format_cents(cents: i64, currency: &str) -> String {
    let code = currency.to_ascii_lowercase();
    let magnitude = cents.unsigned_abs();
    let amount = if ZERO_DECIMAL_CURRENCIES.contains(&code.as_str()) {
        group_thousands(magnitude)
    } else {
        format!("{}.{:02}", group_thousands(magnitude / 100), magnitude % 100)
    };
    let sign = if cents < 0 { "-" } else { "" };
    match code.as_str() {
        "usd" => format!("{sign}${amount}"),
        "eur" => format!("{sign}€{amount}"),
        "gbp" => format!("{sign}£{amount}"),
        _ => format!("{sign}{amount} {}", code.to_ascii_uppercase()),
    }
}

/// A rate (a fraction) as a percentage with one decimal, "4.2 %"; "—" when there is none.
pub fn format_rate(rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{:.1} %", rate * 100.0),
        None => "—".to_string(),
    }
}

fn group_thousands(units: u64) -> String {
    let digits = units.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
