//! Billing settings: flags and environment variables of `atlantiplex-operator run`.

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct BillingSettings {
    /// Secret in the operator's namespace with keys `api-key` (Stripe secret key) and
    /// `webhook-secret` (the endpoint's signing secret). Without it billing is disabled.
    #[arg(long, env = "ATLANTIPLEX_STRIPE_SECRET")]
    pub stripe_secret: Option<String>,
    /// Stripe API base URL (stripe-mock or a fake in tests).
    #[arg(long, env = "ATLANTIPLEX_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// Days a past_due organization keeps its plan before it is suspended (fractions allowed).
    #[arg(long, env = "ATLANTIPLEX_GRACE_PERIOD_DAYS", default_value_t = 7.0)]
    pub grace_period_days: f64,
    /// Downgrades take effect at the end of the paid period (false: at once, with a prorated credit).
    #[arg(long, env = "ATLANTIPLEX_DOWNGRADE_AT_PERIOD_END", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = true)]
    pub downgrade_at_period_end: bool,
    /// Every Subscription is re-read from Stripe at least this often (catches missed webhooks).
    #[arg(long, env = "ATLANTIPLEX_STRIPE_RESYNC_MINUTES", default_value_t = 15.0)]
    pub stripe_resync_minutes: f64,
    /// Prefix of meter event names (`<prefix>_bandwidth`) and identifiers (`<prefix>-<org>-bandwidth-<hour>`),
    /// at most 20 characters. Installations sharing one Stripe account need different prefixes.
    #[arg(long, env = "ATLANTIPLEX_METER_PREFIX", default_value = crate::metering::push::IDENTIFIER_PREFIX,
          value_parser = meter_prefix)]
    pub meter_prefix: String,
    /// How often the leader pushes closed hourly usage windows to Stripe's meters (seconds).
    #[arg(long, env = "ATLANTIPLEX_METER_PUSH_SECONDS", default_value_t = 60.0)]
    pub meter_push_seconds: f64,
}

fn meter_prefix(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 20
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!("{value:?}: use 1 to 20 lowercase letters, digits or _ (e.g. atp, or atp_staging)"))
    }
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            stripe_secret: None,
            stripe_api_base: None,
            grace_period_days: 7.0,
            downgrade_at_period_end: true,
            stripe_resync_minutes: 15.0,
            meter_prefix: crate::metering::push::IDENTIFIER_PREFIX.into(),
            meter_push_seconds: 60.0,
        }
    }
}

impl BillingSettings {
    pub fn grace(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs_f64(self.grace_period_days.max(0.0) * 86_400.0)
    }

    pub fn meter_push_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.meter_push_seconds.max(1.0))
    }

    pub fn resync(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64((self.stripe_resync_minutes * 60.0).max(1.0))
    }
}
