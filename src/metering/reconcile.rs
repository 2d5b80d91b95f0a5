//! At period close, the ledger's totals against Stripe's: each billed meter's usage (rounded up once, as
//! pushed), what the ledger recorded as sent, and the sum of Stripe's meter event summaries for the customer
//! over the period. Stripe reports a float (`aggregated_value`); values are micro-unit decimals, so a
//! difference under half a micro-unit is float noise, not usage.

use super::meter::Meter;
use super::units::{MICROS, format_micros};
use serde::{Deserialize, Serialize};

/// One meter's period, compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterReconciliation {
    pub meter: Meter,
    /// ⌈the period's usage⌉ in micro-units, from the ledger's hourly windows.
    pub ledger_micros: i64,
    /// Micro-units the ledger recorded as sent to Stripe.
    pub sent_micros: i64,
    /// Stripe's total for the customer and period, in micro-units (rounded to the nearest).
    pub stripe_micros: i64,
}

impl MeterReconciliation {
    pub fn new(meter: Meter, ledger_micros: i64, sent_micros: i64, stripe_units: f64) -> Self {
        let stripe_micros = (stripe_units * MICROS as f64).round() as i64;
        Self { meter, ledger_micros, sent_micros, stripe_micros }
    }

    pub fn matches(&self) -> bool {
        self.ledger_micros == self.stripe_micros && self.sent_micros == self.stripe_micros
    }

    /// What is wrong, for a condition message; None when it matches.
    pub fn difference(&self) -> Option<String> {
        if self.matches() {
            return None;
        }
        let unit = self.meter.billing_unit();
        let (ledger, stripe) = (format_micros(self.ledger_micros.into()), format_micros(self.stripe_micros.into()));
        let why = if self.sent_micros != self.ledger_micros {
            format!(
                "; the ledger sent {} (pushes pending or failed: see atlantiplex_meter_pushes_total)",
                format_micros(self.sent_micros.into())
            )
        } else {
            String::new()
        };
        let delta = format_micros((i128::from(self.stripe_micros) - i128::from(self.ledger_micros)).abs());
        let direction = if self.stripe_micros > self.ledger_micros { "more" } else { "less" };
        Some(format!(
            "{}: Stripe holds {stripe} {unit}, the ledger {ledger} {unit} ({delta} {unit} {direction} in Stripe){why}",
            self.meter
        ))
    }
}

/// A period's comparison, meter by meter; a summary line for the Subscription's condition.
pub fn summary(meters: &[MeterReconciliation]) -> (bool, String) {
    let differences: Vec<String> = meters.iter().filter_map(MeterReconciliation::difference).collect();
    if differences.is_empty() {
        let what: Vec<String> = meters
            .iter()
            .map(|m| format!("{} {} {}", m.meter, format_micros(m.ledger_micros.into()), m.meter.billing_unit()))
            .collect();
        let what = if what.is_empty() { "no metered usage".to_string() } else { what.join(", ") };
        (true, format!("Stripe's meter totals equal the ledger's: {what}"))
    } else {
        (false, differences.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_totals_match_despite_float_noise() {
        let m = MeterReconciliation::new(Meter::Bandwidth, 12_345_678, 12_345_678, 12.345_678_000_000_1);
        assert!(m.matches());
        let (ok, message) = summary(&[m]);
        assert!(ok);
        assert_eq!(message, "Stripe's meter totals equal the ledger's: bandwidth 12.345678 GiB");
    }

    #[test]
    fn a_difference_names_the_meter_the_amounts_and_the_side() {
        let m = MeterReconciliation::new(Meter::StreamTime, 2_000_000, 2_000_000, 3.5);
        let (ok, message) = summary(&[m]);
        assert!(!ok);
        assert_eq!(message, "stream_time: Stripe holds 3.5 hour, the ledger 2 hour (1.5 hour more in Stripe)");
    }

    #[test]
    fn unsent_usage_is_called_out() {
        let m = MeterReconciliation::new(Meter::ApiCalls, 5_000_000, 4_000_000, 4.0);
        let text = m.difference().unwrap();
        assert!(text.contains("the ledger sent 4"), "{text}");
        assert!(text.contains("(1 1,000 calls less in Stripe)"), "{text}");
    }
}
