//! Revenue metrics: the platform's MRR, ARR, paying organizations and ARPA per currency now, this calendar
//! month's MRR movements and churn and trial-conversion rates, and each paying organization's MRR — the same
//! figures the console's super-admin pages show, for dashboards and alerts (an MRR drop, a churn spike).
//!
//! The figures are computed by [`crate::revenue::report`] (its module doc has the definitions) from the
//! ledger's whole subscription history, with the Plans marked `internal` earning nothing, and recomputed
//! every [`PERIOD`] by [`refresh_every`]. Gauges are per process and every replica serves `/metrics`, so
//! every replica computes them, not only the leader: it is a read of the shared ledger (no write, nothing
//! to fence), and a follower's figures are as current as the leader's. Dashboards take `max` over replicas.
//! When the ledger cannot be read, the previous figures stay and
//! `atlantiplex_revenue_figures_computed_timestamp_seconds` stops moving (alert on its age).
//!
//! Amounts are in the currency's smallest unit ("cents"; whole units for zero-decimal currencies such as
//! `jpy`), per lower-case currency code; the month figures are month to date (calendar month in UTC). A
//! rate whose denominator is 0 has no series. Label values are bounded: currencies × 6 movements, and one
//! `organization_mrr_cents` series per paying organization (an organization without MRR — trialing,
//! canceled, internal, deleted — has none).

use crate::controller::Context;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::revenue::{self, Report};
use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{Atomic, Gauge};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How often [`refresh_every`] recomputes the figures.
pub const PERIOD: Duration = Duration::from_secs(60);

/// The `movement` label's values, as in [`crate::revenue::MonthFigures`].
pub const MOVEMENTS: [&str; 6] = ["new", "expansion", "reactivation", "contraction", "churn", "net_new"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CurrencyLabels {
    pub currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MovementLabels {
    pub currency: String,
    /// One of [`MOVEMENTS`].
    pub movement: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct OrganizationLabels {
    pub organization: String,
    pub currency: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct RevenueMetrics {
    pub mrr: Family<CurrencyLabels, Gauge>,
    pub arr: Family<CurrencyLabels, Gauge>,
    pub paying_organizations: Family<CurrencyLabels, Gauge>,
    pub arpa: Family<CurrencyLabels, Gauge>,
    pub movements: Family<MovementLabels, Gauge>,
    pub logo_churn: Family<CurrencyLabels, FloatGauge>,
    pub gross_revenue_churn: Family<CurrencyLabels, FloatGauge>,
    pub net_revenue_churn: Family<CurrencyLabels, FloatGauge>,
    pub trial_conversion: Family<CurrencyLabels, FloatGauge>,
    pub organization_mrr: Family<OrganizationLabels, Gauge>,
    pub computed: FloatGauge,
    /// The currencies and organizations of the last [`RevenueMetrics::set`], whose series a later one
    /// removes when they are gone; held for the whole update, so updates never interleave.
    exported: Mutex<Exported>,
}

#[derive(Default)]
struct Exported {
    currencies: BTreeSet<String>,
    organizations: BTreeSet<OrganizationLabels>,
}

impl RevenueMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = RevenueMetrics {
            mrr: Family::default(),
            arr: Family::default(),
            paying_organizations: Family::default(),
            arpa: Family::default(),
            movements: Family::default(),
            logo_churn: Family::default(),
            gross_revenue_churn: Family::default(),
            net_revenue_churn: Family::default(),
            trial_conversion: Family::default(),
            organization_mrr: Family::default(),
            computed: FloatGauge::default(),
            exported: Mutex::default(),
        };
        registry.register(
            "revenue_mrr_cents",
            "Monthly recurring revenue now per currency, in cents: plan prices of active and past_due subscriptions (yearly / 12), internal plans and trials excluded",
            metrics.mrr.clone(),
        );
        registry.register(
            "revenue_arr_cents",
            "Annual recurring revenue now per currency: 12 × MRR, in cents",
            metrics.arr.clone(),
        );
        registry.register(
            "revenue_paying_organizations",
            "Organizations with MRR above 0 now, per currency",
            metrics.paying_organizations.clone(),
        );
        registry.register(
            "revenue_arpa_cents",
            "Average revenue per paying organization now per currency (MRR / paying organizations), in cents; absent without paying organizations",
            metrics.arpa.clone(),
        );
        registry.register(
            "revenue_mrr_movement_cents",
            "MRR movements this calendar month (UTC, month to date) per currency, in cents: new, expansion, reactivation, contraction, churn (losses positive), net_new (= end - start MRR)",
            metrics.movements.clone(),
        );
        registry.register(
            "revenue_logo_churn_ratio",
            "This calendar month: churned organizations / paying organizations at the month's start; absent when there were none",
            metrics.logo_churn.clone(),
        );
        registry.register(
            "revenue_gross_revenue_churn_ratio",
            "This calendar month: (churn + contraction) / MRR at the month's start; absent when it was 0",
            metrics.gross_revenue_churn.clone(),
        );
        registry.register(
            "revenue_net_revenue_churn_ratio",
            "This calendar month: (churn + contraction - expansion) / MRR at the month's start, below 0 on net expansion; absent when it was 0",
            metrics.net_revenue_churn.clone(),
        );
        registry.register(
            "revenue_trial_conversion_ratio",
            "This calendar month: trials converted to active or past_due / trials ended; absent when none ended",
            metrics.trial_conversion.clone(),
        );
        registry.register(
            "organization_mrr_cents",
            "Per paying organization: its MRR now in cents, in the currency it pays in (no series: no MRR)",
            metrics.organization_mrr.clone(),
        );
        registry.register(
            "revenue_figures_computed_timestamp_seconds",
            "When the revenue figures were last computed from the ledger (Unix time); stops moving while the ledger cannot be read",
            metrics.computed.clone(),
        );
        metrics
    }

    /// Exports `report`, computed at `computed_at`: its currencies' figures now, the movements and rates of
    /// its last month (the current one, as [`refresh`] asks for), and its paying organizations' MRR. Series
    /// of currencies and organizations the previous report had and this one has not are removed.
    pub fn set(&self, report: &Report, computed_at: Timestamp) {
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        let currencies: BTreeSet<String> = report.currencies.keys().cloned().collect();
        for gone in exported.currencies.difference(&currencies) {
            self.remove_currency(gone);
        }
        for (currency, figures) in &report.currencies {
            let labels = CurrencyLabels { currency: currency.clone() };
            let now = &figures.current;
            self.mrr.get_or_create(&labels).set(now.mrr_cents);
            self.arr.get_or_create(&labels).set(now.arr_cents);
            self.paying_organizations.get_or_create(&labels).set(count(now.paying_customers));
            set_or_remove(&self.arpa, &labels, now.arpa_cents);
            let Some(month) = figures.months.last() else {
                self.remove_month(currency);
                continue;
            };
            let movements = [
                month.new_cents,
                month.expansion_cents,
                month.reactivation_cents,
                month.contraction_cents,
                month.churn_cents,
                month.net_new_cents,
            ];
            for (movement, cents) in MOVEMENTS.into_iter().zip(movements) {
                let labels = MovementLabels { currency: currency.clone(), movement: movement.into() };
                self.movements.get_or_create(&labels).set(cents);
            }
            set_or_remove(&self.logo_churn, &labels, month.logo_churn_rate);
            set_or_remove(&self.gross_revenue_churn, &labels, month.gross_revenue_churn_rate);
            set_or_remove(&self.net_revenue_churn, &labels, month.net_revenue_churn_rate);
            set_or_remove(&self.trial_conversion, &labels, month.trial_conversion_rate);
        }

        let mut paying = BTreeSet::new();
        for (name, organization) in report.organizations.iter().filter(|(_, o)| o.mrr_cents > 0) {
            let labels = OrganizationLabels { organization: name.clone(), currency: organization.currency.clone() };
            self.organization_mrr.get_or_create(&labels).set(organization.mrr_cents);
            paying.insert(labels);
        }
        for gone in exported.organizations.difference(&paying) {
            self.organization_mrr.remove(gone);
        }
        self.computed.set(computed_at.as_microsecond() as f64 / 1e6);
        *exported = Exported { currencies, organizations: paying };
    }

    fn remove_currency(&self, currency: &str) {
        let labels = CurrencyLabels { currency: currency.into() };
        for family in [&self.mrr, &self.arr, &self.paying_organizations, &self.arpa] {
            family.remove(&labels);
        }
        self.remove_month(currency);
    }

    fn remove_month(&self, currency: &str) {
        let labels = CurrencyLabels { currency: currency.into() };
        for family in [&self.logo_churn, &self.gross_revenue_churn, &self.net_revenue_churn, &self.trial_conversion] {
            family.remove(&labels);
        }
        for movement in MOVEMENTS {
            self.movements.remove(&MovementLabels { currency: currency.into(), movement: movement.into() });
        }
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sets the series, or removes it when there is no value.
fn set_or_remove<L, V, A>(family: &Family<L, Gauge<V, A>>, labels: &L, value: Option<V>)
where
    L: Clone + std::hash::Hash + Eq,
    A: Atomic<V> + Default,
{
    match value {
        Some(value) => {
            family.get_or_create(labels).set(value);
        }
        None => {
            family.remove(labels);
        }
    }
}

/// Computes the figures at `now` from the ledger's whole history (an organization's first paying month,
/// however long ago, decides new against reactivation) and exports them; on error the previous stay.
pub async fn refresh(
    ledger: &Ledger,
    metrics: &RevenueMetrics,
    internal_plans: &BTreeSet<String>,
    now: Timestamp,
) -> Result<(), LedgerError> {
    let history = ledger.subscription_history(None, Timestamp::UNIX_EPOCH, now).await?;
    let months = revenue::months_ending(now, 1);
    let report = revenue::report(&revenue::Inputs { history: &history, internal_plans, months, now });
    metrics.set(&report, now);
    Ok(())
}

/// The Plans marked `internal` in the controller's Plan cache (a Plan that does not parse counts as billable).
pub fn internal_plans(context: &Context) -> BTreeSet<String> {
    context
        .plans
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok())
        .filter(|plan| plan.spec.internal)
        .filter_map(|plan| plan.metadata.name.clone())
        .collect()
}

/// Refreshes the revenue metrics every [`PERIOD`], the first time as soon as the controller's caches are
/// filled (`context` is set then: which Plans are internal is only known from then on), for as long as the
/// process runs. A failed refresh is logged and the previous figures stay.
pub async fn refresh_every(ledger: Ledger, metrics: Arc<Metrics>, context: Arc<OnceLock<Arc<Context>>>) {
    let context = loop {
        if let Some(context) = context.get() {
            break context.clone();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let internal = internal_plans(&context);
        if let Err(e) = refresh(&ledger, &metrics.revenue, &internal, Timestamp::now()).await {
            tracing::warn!(error = %e, "revenue metrics not refreshed (the ledger could not be read); keeping the previous figures");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::SubscriptionChange;

    fn change(id: &str, organization: &str, at: &str, plan: &str, state: &str, price: i64) -> SubscriptionChange {
        SubscriptionChange {
            id: id.into(),
            organization: organization.into(),
            at: at.parse().unwrap(),
            plan: plan.into(),
            state: state.into(),
            price_cents: price,
            currency: "usd".into(),
            billing_interval: "month".into(),
            reason: String::new(),
        }
    }

    /// In March 2025: acme pays 100 € since January and upgrades to 150; beta paid 50 and cancels; gamma is new
    /// at 30; delta's trial converts; staff is on an internal plan.
    fn history() -> Vec<SubscriptionChange> {
        vec![
            change("1", "acme", "2025-01-10T00:00:00Z", "pro", "active", 10_000),
            change("2", "beta", "2025-01-15T00:00:00Z", "team", "active", 5_000),
            change("3", "staff", "2025-01-20T00:00:00Z", "staff", "active", 99_900),
            change("4", "acme", "2025-03-02T00:00:00Z", "business", "active", 15_000),
            change("5", "beta", "2025-03-03T00:00:00Z", "team", "canceled", 5_000),
            change("6", "gamma", "2025-03-04T00:00:00Z", "starter", "active", 3_000),
            change("7", "delta", "2025-02-20T00:00:00Z", "team", "trialing", 5_000),
            change("8", "delta", "2025-03-05T00:00:00Z", "team", "active", 5_000),
        ]
    }

    fn now() -> Timestamp {
        "2025-03-10T12:00:00Z".parse().unwrap()
    }

    fn report_at(history: &[SubscriptionChange], now: Timestamp) -> Report {
        let internal = BTreeSet::from(["staff".to_string()]);
        revenue::report(&revenue::Inputs {
            history,
            internal_plans: &internal,
            months: revenue::months_ending(now, 1),
            now,
        })
    }

    fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    fn assert_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(text.lines().any(|l| l == *line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn figures_of_now_and_this_month_are_exported() {
        let mut registry = Registry::with_prefix("atlantiplex");
        let metrics = RevenueMetrics::register(&mut registry);
        metrics.set(&report_at(&history(), now()), now());
        let text = encode(&registry);
        // Now: acme 150 + gamma 30 + delta 50 = 230 €, three paying.
        assert_lines(
            &text,
            &[
                r#"atlantiplex_revenue_mrr_cents{currency="usd"} 23000"#,
                r#"atlantiplex_revenue_arr_cents{currency="usd"} 276000"#,
                r#"atlantiplex_revenue_paying_organizations{currency="usd"} 3"#,
                r#"atlantiplex_revenue_arpa_cents{currency="usd"} 7667"#,
                // March: start 150 (acme, beta), end 230.
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="new"} 8000"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="expansion"} 5000"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="reactivation"} 0"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="contraction"} 0"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="churn"} 5000"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="net_new"} 8000"#,
                r#"atlantiplex_revenue_logo_churn_ratio{currency="usd"} 0.5"#,
                r#"atlantiplex_revenue_trial_conversion_ratio{currency="usd"} 1.0"#,
                r#"atlantiplex_organization_mrr_cents{organization="acme",currency="usd"} 15000"#,
                r#"atlantiplex_organization_mrr_cents{organization="gamma",currency="usd"} 3000"#,
                r#"atlantiplex_organization_mrr_cents{organization="delta",currency="usd"} 5000"#,
                "atlantiplex_revenue_figures_computed_timestamp_seconds 1741608000.0",
            ],
        );
        let gross = text.lines().find(|l| l.starts_with("atlantiplex_revenue_gross_revenue_churn_ratio{")).unwrap();
        assert!(gross.ends_with(" 0.3333333333333333"), "{gross}");
        let net = text.lines().find(|l| l.starts_with("atlantiplex_revenue_net_revenue_churn_ratio{")).unwrap();
        assert!(net.ends_with(" 0.0"), "{net}");
        assert!(text.contains("# TYPE atlantiplex_revenue_mrr_cents gauge"), "{text}");
        // Canceled, internal: no MRR, no series.
        assert!(!text.contains(r#"organization="beta""#), "{text}");
        assert!(!text.contains(r#"organization="staff""#), "{text}");
    }

    #[test]
    fn rates_without_a_denominator_and_departed_organizations_lose_their_series() {
        let mut registry = Registry::with_prefix("atlantiplex");
        let metrics = RevenueMetrics::register(&mut registry);
        metrics.set(&report_at(&history(), now()), now());
        // April: nobody churned or tried, acme moved to euros, gamma canceled.
        let mut later = history();
        later.push(SubscriptionChange {
            currency: "eur".into(),
            ..change("9", "acme", "2025-04-01T00:00:00Z", "business", "active", 14_000)
        });
        later.push(change("10", "gamma", "2025-04-02T00:00:00Z", "starter", "canceled", 3_000));
        let april: Timestamp = "2025-04-03T00:00:00Z".parse().unwrap();
        metrics.set(&report_at(&later, april), april);
        let text = encode(&registry);
        assert_lines(
            &text,
            &[
                r#"atlantiplex_organization_mrr_cents{organization="acme",currency="eur"} 14000"#,
                r#"atlantiplex_organization_mrr_cents{organization="delta",currency="usd"} 5000"#,
                r#"atlantiplex_revenue_mrr_cents{currency="eur"} 14000"#,
                r#"atlantiplex_revenue_mrr_cents{currency="usd"} 5000"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="eur",movement="reactivation"} 14000"#,
                r#"atlantiplex_revenue_mrr_movement_cents{currency="usd",movement="churn"} 18000"#,
            ],
        );
        assert!(!text.contains(r#"organization="acme",currency="usd""#), "{text}");
        assert!(!text.contains(r#"organization="gamma""#), "{text}");
        // Euros had no paying organization at April's start and no trial: no rates in euros.
        for rate in ["logo_churn", "gross_revenue_churn", "net_revenue_churn", "trial_conversion"] {
            assert!(!text.contains(&format!(r#"atlantiplex_revenue_{rate}_ratio{{currency="eur"}}"#)), "{text}");
        }
        // No trial ended in April in dollars either.
        assert!(!text.contains(r#"atlantiplex_revenue_trial_conversion_ratio{currency="usd"}"#), "{text}");
        assert_lines(&text, &[r#"atlantiplex_revenue_logo_churn_ratio{currency="usd"} 0.6666666666666666"#]);

        // A currency gone from the report loses every series.
        metrics.set(&report_at(&[], april), april);
        let text = encode(&registry);
        assert!(!text.contains("currency="), "{text}");
    }

    #[tokio::test]
    async fn refresh_reads_the_ledger_and_keeps_the_figures_when_it_cannot() {
        let ledger = Ledger::connect("sqlite::memory:").await.unwrap();
        for change in history() {
            ledger.record_subscription_change(&change).await.unwrap();
        }
        let mut registry = Registry::with_prefix("atlantiplex");
        let metrics = RevenueMetrics::register(&mut registry);
        let internal = BTreeSet::from(["staff".to_string()]);
        refresh(&ledger, &metrics, &internal, now()).await.unwrap();
        let before = encode(&registry);
        assert_lines(&before, &[r#"atlantiplex_revenue_mrr_cents{currency="usd"} 23000"#]);

        ledger.close().await;
        let later: Timestamp = "2025-03-10T12:01:00Z".parse().unwrap();
        assert!(refresh(&ledger, &metrics, &internal, later).await.is_err());
        assert_eq!(encode(&registry), before);
    }
}
