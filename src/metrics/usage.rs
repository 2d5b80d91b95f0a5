//! Metering metrics: per organization and meter, used and included this billing period in billing units;
//! and usage ingestion (`POST /v1/usage`): events by outcome and rule, requests by status, answer time.
//! Label values are bounded: organizations × 4 meters, 3 outcomes × the fixed reject rules, a few codes.

use crate::metering::gauges::MeterGauge;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MeterLabels {
    pub organization: String,
    pub meter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `accepted`, `duplicate`, `rejected`.
    pub outcome: String,
    /// The reject rule; empty unless rejected.
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP status of the answer (202, 400, 401, 403, 413, 503, ...).
    pub code: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct UsageMetrics {
    pub meter_used: Family<MeterLabels, FloatGauge>,
    pub meter_included: Family<MeterLabels, FloatGauge>,
    pub events: Family<EventLabels, Counter>,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Histogram,
}

impl UsageMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = UsageMetrics {
            meter_used: Family::default(),
            meter_included: Family::default(),
            events: Family::default(),
            requests: Family::default(),
            // 0.5 ms … ~8 s: a committed batch takes milliseconds; the tail is the database.
            request_duration: Histogram::new(exponential_buckets(0.000_5, 2.0, 15)),
        };
        registry.register(
            "organization_meter_used",
            "Per organization and meter: usage this billing period in billing units (bandwidth GiB, storage GiB-months, api_calls thousands, stream_time hours), rounded up to a millionth as billed",
            metrics.meter_used.clone(),
        );
        registry.register(
            "organization_meter_included",
            "Per organization and meter: the plan's included amount per billing period in the same billing units; absent: unlimited",
            metrics.meter_included.clone(),
        );
        registry.register(
            "usage_events",
            "Usage events received on POST /v1/usage by outcome (accepted, duplicate, rejected) and reject rule",
            metrics.events.clone(),
        );
        registry.register(
            "usage_requests",
            "Requests to POST /v1/usage by HTTP status of the answer",
            metrics.requests.clone(),
        );
        registry.register(
            "usage_request_duration_seconds",
            "Time to answer POST /v1/usage in the operator, from the request's headers to the answer (202 after the ledger committed)",
            metrics.request_duration.clone(),
        );
        metrics
    }

    /// An organization's meters this period; an unlimited meter has no included series.
    pub fn set_meters(&self, organization: &str, gauges: &[MeterGauge]) {
        for g in gauges {
            let labels = MeterLabels { organization: organization.into(), meter: g.meter.as_str().into() };
            self.meter_used.get_or_create(&labels).set(g.used);
            match g.included {
                Some(included) => {
                    self.meter_included.get_or_create(&labels).set(included);
                }
                None => {
                    self.meter_included.remove(&labels);
                }
            }
        }
    }

    pub fn remove_organization(&self, organization: &str) {
        for meter in crate::metering::Meter::ALL {
            let labels = MeterLabels { organization: organization.into(), meter: meter.as_str().into() };
            self.meter_used.remove(&labels);
            self.meter_included.remove(&labels);
        }
    }

    /// One answered request: its status, time, and its events' outcomes (`rule` empty unless rejected).
    pub fn observe_request(&self, code: u16, seconds: f64, outcomes: &[(&str, &str)]) {
        self.requests.get_or_create(&RequestLabels { code: code.to_string() }).inc();
        self.request_duration.observe(seconds);
        for (outcome, rule) in outcomes {
            self.events.get_or_create(&EventLabels { outcome: (*outcome).into(), rule: (*rule).into() }).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::Meter;

    #[test]
    fn meter_gauges_and_ingestion_counters_are_exported() {
        let mut registry = Registry::with_prefix("atlantiplex");
        let metrics = UsageMetrics::register(&mut registry);
        let gauges = [
            MeterGauge { meter: Meter::Bandwidth, used: 1.5, included: Some(50.0) },
            MeterGauge { meter: Meter::ApiCalls, used: 2.0, included: None },
        ];
        metrics.set_meters("acme", &gauges);
        metrics.observe_request(202, 0.004, &[("accepted", ""), ("rejected", "unknown-type")]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"atlantiplex_organization_meter_used{organization="acme",meter="bandwidth"} 1.5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"atlantiplex_organization_meter_included{organization="acme",meter="bandwidth"} 50.0"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"atlantiplex_organization_meter_included{organization="acme",meter="api_calls"}"#),
            "{text}"
        );
        assert!(text.contains(r#"atlantiplex_usage_events_total{outcome="rejected",rule="unknown-type"} 1"#), "{text}");
        assert!(text.contains(r#"atlantiplex_usage_requests_total{code="202"} 1"#), "{text}");
        assert!(text.contains("atlantiplex_usage_request_duration_seconds_count 1"), "{text}");
        metrics.remove_organization("acme");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains(r#"organization="acme""#), "{text}");
    }
}
