//! The four meters: what each counts, in which base unit (what the ledger stores), and in which unit it is
//! priced and sent to Stripe.

use serde::{Deserialize, Serialize};

/// A metered quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    /// Egress, reported in bytes; priced per GiB.
    Bandwidth,
    /// Provisioned storage, sampled by the operator (no events); stored as byte-seconds, priced per GiB-month.
    Storage,
    /// Tenant API calls, reported as a count; priced per 1,000 calls.
    ApiCalls,
    /// Stream time, reported in seconds (up to millisecond precision); stored in milliseconds, priced per hour.
    StreamTime,
}

/// The CloudEvents `type` of every usage event starts with this.
pub const EVENT_TYPE_PREFIX: &str = "io.atlantiplex.usage.";

impl Meter {
    pub const ALL: [Meter; 4] = [Meter::Bandwidth, Meter::Storage, Meter::ApiCalls, Meter::StreamTime];

    /// The name in the ledger, in Stripe identifiers and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Meter::Bandwidth => "bandwidth",
            Meter::Storage => "storage",
            Meter::ApiCalls => "api_calls",
            Meter::StreamTime => "stream_time",
        }
    }

    pub fn parse(name: &str) -> Option<Meter> {
        Meter::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The CloudEvents `type` reporters send. Storage has none: the operator samples it itself.
    pub fn event_type(self) -> Option<&'static str> {
        match self {
            Meter::Bandwidth => Some("io.atlantiplex.usage.bandwidth"),
            Meter::Storage => None,
            Meter::ApiCalls => Some("io.atlantiplex.usage.api_calls"),
            Meter::StreamTime => Some("io.atlantiplex.usage.stream_time"),
        }
    }

    pub fn from_event_type(event_type: &str) -> Option<Meter> {
        Meter::ALL.into_iter().find(|m| m.event_type() == Some(event_type))
    }

    /// The Plan field that holds the meter's limit and overage (`limits.<field>`, `overage.<field>`).
    pub fn plan_field(self) -> &'static str {
        match self {
            Meter::Bandwidth => "bandwidth",
            Meter::Storage => "storage",
            Meter::ApiCalls => "apiCalls",
            Meter::StreamTime => "streamHours",
        }
    }

    /// What the ledger counts in.
    pub fn base_unit(self) -> &'static str {
        match self {
            Meter::Bandwidth => "bytes",
            Meter::Storage => "byte-seconds",
            Meter::ApiCalls => "calls",
            Meter::StreamTime => "milliseconds",
        }
    }

    /// What an event's `data.value` is counted in.
    pub fn event_unit(self) -> &'static str {
        match self {
            Meter::Bandwidth => "bytes",
            Meter::Storage => "bytes",
            Meter::ApiCalls => "calls",
            Meter::StreamTime => "seconds",
        }
    }

    /// Decimal places `data.value` may carry: whole bytes and calls; seconds to the millisecond.
    pub fn event_decimals(self) -> u32 {
        match self {
            Meter::StreamTime => 3,
            _ => 0,
        }
    }

    /// The unit prices are quoted in and Stripe is sent.
    pub fn billing_unit(self) -> &'static str {
        match self {
            Meter::Bandwidth => "GiB",
            Meter::Storage => "GiB-month",
            Meter::ApiCalls => "1,000 calls",
            Meter::StreamTime => "hour",
        }
    }
}

impl std::fmt::Display for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_event_types_round_trip() {
        for meter in Meter::ALL {
            assert_eq!(Meter::parse(meter.as_str()), Some(meter));
            if let Some(t) = meter.event_type() {
                assert!(t.starts_with(EVENT_TYPE_PREFIX));
                assert_eq!(Meter::from_event_type(t), Some(meter));
            }
        }
        assert_eq!(Meter::from_event_type("io.atlantiplex.usage.storage"), None, "storage is sampled, not reported");
        assert_eq!(Meter::parse("bogus"), None);
        assert_eq!(serde_json::to_string(&Meter::StreamTime).unwrap(), "\"stream_time\"");
    }
}
