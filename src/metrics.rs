//! Prometheus metrics of the operator, served at /metrics.

pub mod revenue;
pub mod usage;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub kind: String,
    pub operation: String,
    pub allowed: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub organization: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub organization: String,
    pub phase: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub webhook_decisions: Family<DecisionLabels, Counter>,
    pub webhook_duration: Family<KindLabels, Histogram>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub organization_usage: Family<UsageLabels, Gauge>,
    pub organization_limit: Family<UsageLabels, Gauge>,
    pub organization_phase: Family<PhaseLabels, Gauge>,
    pub leader: Gauge,
    /// The audit writer's counters, copied in every few seconds.
    pub audit: Family<AuditLabels, Gauge>,
    pub stripe_requests: Family<StripeLabels, Counter>,
    /// Meter events by meter and result: sent, zero (recorded, nothing to send), resent (after a crash or an
    /// error), settled (found in Stripe's total after its identifier window).
    pub meter_pushes: Family<MeterPushLabels, Counter>,
    /// Pusher rounds that failed (Stripe or the ledger unreachable): retried at the next pass.
    pub meter_push_failures: Counter,
    /// Billing periods compared with Stripe's meter totals, by result (matched, mismatched).
    pub meter_reconciliations: Family<ResultLabels, Counter>,
    /// Storage samples written (`taken`) and not (`failed`: the ledger refused), per organization sampled.
    pub storage_samples: Family<ResultLabels, Counter>,
    /// Meter gauges and usage ingestion (`metrics/usage.rs`).
    pub usage: usage::UsageMetrics,
    /// Revenue figures from the subscription history (`metrics/revenue.rs`).
    pub revenue: revenue::RevenueMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MeterPushLabels {
    pub meter: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StripeLabels {
    pub operation: String,
    /// `success`, `refused` (Stripe answered with an error), `error` (no answer, unparsable).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuditLabels {
    pub counter: String,
}

fn webhook_histogram() -> Histogram {
    // 10 µs … ~0.3 s: decisions take microseconds; the tail shows cache or CPU starvation.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
}

fn reconcile_histogram() -> Histogram {
    // 1 ms … ~30 s: a reconcile is a few API round trips, a slow one waits on the API server.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The phases an organization can be in, for the one-hot phase gauge.
pub const PHASES: [&str; 6] = ["Provisioning", "Active", "Trialing", "PastDue", "Suspended", "Terminating"];

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atlantiplex");
        let webhook_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "webhook_decisions",
            "Admission decisions by kind, operation, outcome and deciding rule",
            webhook_decisions.clone(),
        );
        let webhook_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(webhook_histogram as fn() -> Histogram);
        registry.register(
            "webhook_decision_duration_seconds",
            "Time to decide one admission request, in the operator",
            webhook_duration.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by kind and result (success, error)", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register("reconcile_errors", "Failed reconciles by kind and error category", reconcile_errors.clone());
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(reconcile_histogram as fn() -> Histogram);
        registry.register("reconcile_duration_seconds", "Time per reconcile", reconcile_duration.clone());
        let organization_usage = Family::<UsageLabels, Gauge>::default();
        registry.register(
            "organization_usage",
            "Per organization: users, teams and namespaces in use; metered usage this billing period (bandwidth bytes, storage GiB-months as bytes held all period, api_calls, stream_time milliseconds)",
            organization_usage.clone(),
        );
        let organization_limit = Family::<UsageLabels, Gauge>::default();
        registry.register(
            "organization_limit",
            "Per organization: the plan's limit of users, teams and namespaces, and the included amount per meter (-1: unlimited)",
            organization_limit.clone(),
        );
        let organization_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "organization_phase",
            "Per organization: 1 for its current phase",
            organization_phase.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        let audit = Family::<AuditLabels, Gauge>::default();
        registry.register(
            "audit_records",
            "Audit writer: queued, written, failed, retries, journaled, replayed, lost (totals); queue_depth, journal_pending (now)",
            audit.clone(),
        );
        let stripe_requests = Family::<StripeLabels, Counter>::default();
        registry.register(
            "stripe_requests",
            "Stripe API requests by operation and result (success, refused, error)",
            stripe_requests.clone(),
        );
        let meter_pushes = Family::<MeterPushLabels, Counter>::default();
        registry.register(
            "meter_pushes",
            "Stripe meter events by meter and result (sent, zero, resent, settled)",
            meter_pushes.clone(),
        );
        let meter_push_failures = Counter::default();
        registry.register(
            "meter_push_failures",
            "Meter pusher rounds that failed and are retried at the next pass",
            meter_push_failures.clone(),
        );
        let meter_reconciliations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "meter_reconciliations",
            "Billing periods compared with Stripe's meter totals, by result (matched, mismatched)",
            meter_reconciliations.clone(),
        );
        let storage_samples = Family::<ResultLabels, Counter>::default();
        registry.register(
            "storage_samples",
            "Storage samples of organizations' provisioned storage by result (taken, failed)",
            storage_samples.clone(),
        );
        let usage = usage::UsageMetrics::register(&mut registry);
        let revenue = revenue::RevenueMetrics::register(&mut registry);
        Self {
            usage,
            revenue,
            registry,
            stripe_requests,
            meter_pushes,
            meter_push_failures,
            meter_reconciliations,
            storage_samples,
            webhook_decisions,
            webhook_duration,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            organization_usage,
            organization_limit,
            organization_phase,
            leader,
            audit,
        }
    }

    pub fn set_audit(&self, stats: &crate::ledger::AuditStats) {
        let values = [
            ("queued", stats.queued),
            ("written", stats.written),
            ("failed", stats.failed),
            ("retries", stats.retries),
            ("journaled", stats.journaled),
            ("replayed", stats.replayed),
            ("lost", stats.lost),
            ("queue_depth", stats.queue_depth),
            ("journal_pending", stats.journal_pending),
        ];
        for (counter, value) in values {
            self.audit.get_or_create(&AuditLabels { counter: counter.into() }).set(value as i64);
        }
    }

    /// An organization's usage, limits (None: unlimited) and phase.
    pub fn set_organization(&self, organization: &str, usage: [(&str, i64, Option<i64>); 3], phase: &str) {
        for (resource, used, limit) in usage {
            let labels = UsageLabels { organization: organization.into(), resource: resource.into() };
            self.organization_usage.get_or_create(&labels).set(used);
            self.organization_limit.get_or_create(&labels).set(limit.unwrap_or(-1));
        }
        for p in PHASES {
            let labels = PhaseLabels { organization: organization.into(), phase: p.into() };
            self.organization_phase.get_or_create(&labels).set(i64::from(p == phase));
        }
    }

    /// Metered usage this billing period per meter (`resource` = the meter's name), used and included in the
    /// meter's base unit (bytes, calls, milliseconds); included -1: unlimited.
    pub fn set_organization_meters(&self, organization: &str, meters: &[(&str, i64, Option<i64>)]) {
        for (meter, used, included) in meters {
            let labels = UsageLabels { organization: organization.into(), resource: (*meter).into() };
            self.organization_usage.get_or_create(&labels).set(*used);
            self.organization_limit.get_or_create(&labels).set(included.unwrap_or(-1));
        }
    }

    /// Forgets a deleted organization's series.
    pub fn remove_organization(&self, organization: &str) {
        for resource in ["users", "teams", "namespaces", "bandwidth", "storage", "api_calls", "stream_time"] {
            let labels = UsageLabels { organization: organization.into(), resource: resource.into() };
            self.organization_usage.remove(&labels);
            self.organization_limit.remove(&labels);
        }
        for p in PHASES {
            self.organization_phase.remove(&PhaseLabels { organization: organization.into(), phase: p.into() });
        }
        self.usage.remove_organization(organization);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
