//! The walk behind [`super::report`]: each organization's sorted rows once across all months, adding its
//! start and end MRR, its movement and its trial changes to per-currency tallies.

use super::{CurrencyReport, MonthFigures, Snapshot, divide_rounded, ratio};
use crate::ledger::SubscriptionChange;
use jiff::Timestamp;

/// One history row with what the walk asks of it worked out once.
pub(super) struct Fact<'a> {
    pub at: Timestamp,
    pub monthly_cents: i64,
    /// Index into [`Currencies`].
    pub currency: usize,
    pub trialing: bool,
    /// `active` or `past_due`: the state a converted trial goes to.
    pub converts_trial: bool,
    pub change: &'a SubscriptionChange,
}

/// One reported month as instants: `[start, end)`.
pub(super) struct MonthBounds {
    pub label: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Lower-case currency codes by index, so the walk compares numbers instead of strings.
#[derive(Default)]
pub(super) struct Currencies {
    names: Vec<String>,
    /// Most rows share a currency: the last one found is tried first.
    last: usize,
}

impl Currencies {
    pub fn index(&mut self, code: &str) -> usize {
        if self.names.get(self.last).is_some_and(|name| name.eq_ignore_ascii_case(code)) {
            return self.last;
        }
        // A handful of currencies at most: a scan beats hashing, and allocates only for a new one.
        self.last = match self.names.iter().position(|name| name.eq_ignore_ascii_case(code)) {
            Some(known) => known,
            None => {
                self.names.push(code.to_ascii_lowercase());
                self.names.len() - 1
            }
        };
        self.last
    }

    pub fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or("", String::as_str)
    }
}

/// An organization's MRR at a boundary, when it is above 0.
#[derive(Clone, Copy)]
struct Paying {
    currency: usize,
    cents: i64,
}

#[derive(Default, Clone)]
struct MonthTally {
    start_mrr: i64,
    end_mrr: i64,
    new: i64,
    expansion: i64,
    contraction: i64,
    churn: i64,
    reactivation: i64,
    customers_start: usize,
    customers_end: usize,
    churned_customers: usize,
    trials_started: usize,
    trials_ended: usize,
    trials_converted: usize,
}

#[derive(Default)]
struct NowTally {
    mrr: i64,
    paying_customers: usize,
}

struct CurrencyTally {
    months: Vec<MonthTally>,
    now: NowTally,
}

/// Per currency (by index), per month and at `now`; a currency gets its tally on its first figure.
pub(super) struct Tallies {
    month_count: usize,
    currencies: Vec<Option<CurrencyTally>>,
}

impl Tallies {
    pub fn new(month_count: usize) -> Self {
        Tallies { month_count, currencies: Vec::new() }
    }

    /// Adds one organization's months; `facts` sorted by `(at, id)`, `months` oldest first.
    pub fn add_organization(&mut self, facts: &[Fact], months: &[MonthBounds]) {
        // `facts[..next]` are the rows before the boundary reached last; `facts.get(next - 1)` is in force.
        let mut next = 0;
        let mut paid_before = false;
        for (month, bounds) in months.iter().enumerate() {
            // History before the first month, or between months that are not adjacent.
            while let Some(fact) = facts.get(next).filter(|fact| fact.at < bounds.start) {
                paid_before |= paid_for_a_while(fact, facts.get(next + 1));
                next += 1;
            }
            let start = paying(facts, next);
            let paid_before_start = paid_before;
            while let Some(fact) = facts.get(next).filter(|fact| fact.at < bounds.end) {
                paid_before |= paid_for_a_while(fact, facts.get(next + 1));
                self.add_trial_change(fact, next.checked_sub(1).and_then(|previous| facts.get(previous)), month);
                next += 1;
            }
            let end = paying(facts, next);
            self.add_movement(month, start, end, paid_before_start);
        }
    }

    /// Adds one organization at `now` and returns its row in force then, if it has one.
    pub fn add_now<'f, 'a>(&mut self, facts: &'f [Fact<'a>], now: Timestamp) -> Option<&'f Fact<'a>> {
        let in_force = facts.partition_point(|fact| fact.at <= now).checked_sub(1)?;
        let current = facts.get(in_force)?;
        if current.monthly_cents > 0 {
            let tally = &mut self.currency(current.currency).now;
            tally.mrr += current.monthly_cents;
            tally.paying_customers += 1;
        }
        Some(current)
    }

    /// The reports by currency index.
    pub fn into_reports(self, months: &[MonthBounds]) -> impl Iterator<Item = (usize, CurrencyReport)> + '_ {
        self.currencies.into_iter().enumerate().filter_map(move |(currency, tally)| {
            let tally = tally?;
            let months = tally.months.iter().zip(months).map(|(month, bounds)| month.figures(&bounds.label)).collect();
            Some((currency, CurrencyReport { months, current: tally.now.snapshot() }))
        })
    }

    fn add_trial_change(&mut self, fact: &Fact, previous: Option<&Fact>, month: usize) {
        let trial = previous.filter(|previous| previous.trialing);
        if fact.trialing && trial.is_none() {
            self.month(fact.currency, month).trials_started += 1;
        }
        if let Some(trial) = trial
            && !fact.trialing
        {
            let tally = self.month(trial.currency, month);
            tally.trials_ended += 1;
            tally.trials_converted += usize::from(fact.converts_trial);
        }
    }

    fn add_movement(&mut self, month: usize, start: Option<Paying>, end: Option<Paying>, paid_before_start: bool) {
        if let Some(start) = start {
            let tally = self.month(start.currency, month);
            tally.start_mrr += start.cents;
            tally.customers_start += 1;
        }
        if let Some(end) = end {
            let tally = self.month(end.currency, month);
            tally.end_mrr += end.cents;
            tally.customers_end += 1;
        }
        match (start, end) {
            (Some(start), Some(end)) if start.currency == end.currency => {
                let tally = self.month(start.currency, month);
                tally.expansion += (end.cents - start.cents).max(0);
                tally.contraction += (start.cents - end.cents).max(0);
            }
            // Not paying at one end, or paying in another currency at the end: lost and/or won, per currency.
            _ => {
                if let Some(start) = start {
                    let tally = self.month(start.currency, month);
                    tally.churn += start.cents;
                    tally.churned_customers += 1;
                }
                if let Some(end) = end {
                    let tally = self.month(end.currency, month);
                    if paid_before_start {
                        tally.reactivation += end.cents;
                    } else {
                        tally.new += end.cents;
                    }
                }
            }
        }
    }

    fn month(&mut self, currency: usize, month: usize) -> &mut MonthTally {
        // Only called from inside the walk over the months, so `month < month_count`.
        &mut self.currency(currency).months[month]
    }

    fn currency(&mut self, currency: usize) -> &mut CurrencyTally {
        if self.currencies.len() <= currency {
            self.currencies.resize_with(currency + 1, || None);
        }
        let month_count = self.month_count;
        self.currencies[currency].get_or_insert_with(|| CurrencyTally {
            months: vec![MonthTally::default(); month_count],
            now: NowTally::default(),
        })
    }
}

/// The MRR in force once `facts[..next]` have passed.
fn paying(facts: &[Fact], next: usize) -> Option<Paying> {
    let in_force = facts.get(next.checked_sub(1)?)?;
    (in_force.monthly_cents > 0).then_some(Paying { currency: in_force.currency, cents: in_force.monthly_cents })
}

/// Whether a row earned MRR at some instant: a row replaced at its own `at` never did.
fn paid_for_a_while(fact: &Fact, following: Option<&Fact>) -> bool {
    fact.monthly_cents > 0 && following.is_none_or(|following| following.at > fact.at)
}

impl MonthTally {
    fn figures(&self, label: &str) -> MonthFigures {
        let start_mrr = self.start_mrr as f64;
        MonthFigures {
            month: label.to_string(),
            start_mrr_cents: self.start_mrr,
            end_mrr_cents: self.end_mrr,
            new_cents: self.new,
            expansion_cents: self.expansion,
            contraction_cents: self.contraction,
            churn_cents: self.churn,
            reactivation_cents: self.reactivation,
            net_new_cents: self.new + self.expansion + self.reactivation - self.contraction - self.churn,
            customers_start: self.customers_start,
            customers_end: self.customers_end,
            churned_customers: self.churned_customers,
            trials_started: self.trials_started,
            trials_ended: self.trials_ended,
            trials_converted: self.trials_converted,
            logo_churn_rate: ratio(self.churned_customers as f64, self.customers_start as f64),
            gross_revenue_churn_rate: ratio((self.churn + self.contraction) as f64, start_mrr),
            net_revenue_churn_rate: ratio((self.churn + self.contraction - self.expansion) as f64, start_mrr),
            trial_conversion_rate: ratio(self.trials_converted as f64, self.trials_ended as f64),
            arpa_cents: divide_rounded(self.end_mrr, self.customers_end),
            arr_cents: 12 * self.end_mrr,
        }
    }
}

impl NowTally {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            mrr_cents: self.mrr,
            arr_cents: 12 * self.mrr,
            paying_customers: self.paying_customers,
            arpa_cents: divide_rounded(self.mrr, self.paying_customers),
        }
    }
}
