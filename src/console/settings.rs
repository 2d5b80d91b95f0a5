//! The console's flags of `atlantiplex-operator api`.

use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// A Stripe key that may create Billing Portal sessions (a restricted key with only that right is
    /// enough), for the console's "Manage billing" button. Without it the button explains why it is off.
    #[arg(long = "stripe-secret", env = "ATLANTIPLEX_STRIPE_SECRET", hide_env_values = true)]
    pub stripe_secret: Option<String>,
    /// Stripe's API base URL (stripe-mock in development and tests).
    #[arg(long = "stripe-api-base", env = "ATLANTIPLEX_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
}
