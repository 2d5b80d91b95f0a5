//! Prometheus metrics of the operator, served at /metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

pub struct Metrics {
    pub registry: Registry,
    pub webhook_decisions: Family<DecisionLabels, Counter>,
    pub webhook_duration: Family<KindLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 10 µs … ~0.3 s: decisions take microseconds; the tail shows cache or CPU starvation.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
}

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
            Family::<KindLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "webhook_decision_duration_seconds",
            "Time to decide one admission request, in the operator",
            webhook_duration.clone(),
        );
        Self { registry, webhook_decisions, webhook_duration }
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
