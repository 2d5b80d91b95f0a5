//! Billing through Stripe (issue 7). Stripe types stay in `stripe.rs`; the rest speaks plain values.
//!
//! - `settings`: flags; `keys`: deterministic idempotency keys and metadata; `signature`: webhook
//!   signatures; `catalog`: plans → Stripe prices; `plan_change`: how a plan change is billed;
//!   `sync`: one Subscription against Stripe;
//!   `webhook`: the `POST /stripe/webhook` intake. Dunning and the effective plan are pure, in
//!   `tenancy::dunning` / `tenancy::plan`.

pub mod catalog;
pub mod items;
pub mod keys;
pub mod meter_push;
pub mod meters_api;
pub mod plan_change;
pub mod settings;
pub mod signature;
pub mod stripe;
pub mod sync;
pub mod webhook;

pub use settings::BillingSettings;

use crate::api::Subscription;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Secret;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;
use std::sync::{Arc, OnceLock};

/// Keys of the Stripe Secret (`--stripe-secret`).
pub const SECRET_API_KEY: &str = "api-key";
pub const SECRET_WEBHOOK: &str = "webhook-secret";

/// Whether the operator bills, and with what.
pub enum Mode {
    Enabled {
        api: Box<stripe::StripeApi>,
        webhook_secret: Option<String>,
    },
    /// Why billing is off, for the `Billing` condition.
    Disabled {
        reason: String,
    },
}

/// What billing needs, shared by the controllers and the webhook intake.
pub struct Billing {
    pub settings: BillingSettings,
    pub mode: Mode,
    pub ledger: Option<Ledger>,
    pub catalog: catalog::Catalog,
    /// Set while this replica leads: the webhook intake triggers Subscription reconciles through it.
    trigger: OnceLock<UnboundedSender<ObjectRef<DeserializeGuard<Subscription>>>>,
}

impl Billing {
    pub fn disabled(settings: BillingSettings, reason: impl Into<String>) -> Self {
        Self {
            settings,
            mode: Mode::Disabled { reason: reason.into() },
            ledger: None,
            catalog: catalog::Catalog::default(),
            trigger: OnceLock::new(),
        }
    }

    pub fn enabled(
        settings: BillingSettings,
        api: stripe::StripeApi,
        webhook_secret: Option<String>,
        ledger: Option<Ledger>,
    ) -> Self {
        Self {
            settings,
            mode: Mode::Enabled { api: Box::new(api), webhook_secret },
            ledger,
            catalog: catalog::Catalog::default(),
            trigger: OnceLock::new(),
        }
    }

    /// Reads the Stripe Secret and builds the client; any problem disables billing with the reason
    /// (the operator keeps running; nothing pretends to be billed). Never logs the key.
    pub async fn load(
        client: kube::Client,
        namespace: &str,
        settings: BillingSettings,
        ledger: Option<Ledger>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let Some(name) = settings.stripe_secret.clone() else {
            return Self::disabled(settings, "no Stripe key configured (--stripe-secret): plans apply unbilled");
        };
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client, namespace);
        let secret = match secrets.get_opt(&name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                let reason =
                    format!("Secret {namespace}/{name} (--stripe-secret) does not exist: plans apply unbilled");
                return Self::disabled(settings, reason);
            }
            Err(err) => {
                let reason =
                    format!("Secret {namespace}/{name} (--stripe-secret) cannot be read ({err}): plans apply unbilled");
                return Self::disabled(settings, reason);
            }
        };
        let value = |key: &str| {
            let data = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
            let text = data.and_then(|b| String::from_utf8(b).ok()).map(|s| s.trim().to_string());
            text.filter(|s| !s.is_empty())
        };
        let Some(api_key) = value(SECRET_API_KEY) else {
            let reason = format!("Secret {namespace}/{name} has no key {SECRET_API_KEY:?}: plans apply unbilled");
            return Self::disabled(settings, reason);
        };
        let webhook_secret = value(SECRET_WEBHOOK);
        if webhook_secret.is_none() {
            tracing::warn!(secret = %name, "no {SECRET_WEBHOOK:?} in the Stripe Secret: webhooks are refused, changes arrive through the periodic re-sync");
        }
        match stripe::StripeApi::new(&api_key, settings.stripe_api_base.as_deref(), metrics) {
            Ok(api) => {
                tracing::info!(secret = %name, api_base = settings.stripe_api_base.as_deref().unwrap_or("https://api.stripe.com"), "billing through Stripe enabled");
                Self::enabled(settings, api, webhook_secret, ledger)
            }
            Err(err) => Self::disabled(settings, format!("the Stripe client cannot be built: {err}")),
        }
    }

    pub fn api(&self) -> Option<&stripe::StripeApi> {
        match &self.mode {
            Mode::Enabled { api, .. } => Some(api),
            Mode::Disabled { .. } => None,
        }
    }

    pub fn disabled_reason(&self) -> Option<&str> {
        match &self.mode {
            Mode::Disabled { reason } => Some(reason),
            Mode::Enabled { .. } => None,
        }
    }

    pub fn webhook_secret(&self) -> Option<&str> {
        match &self.mode {
            Mode::Enabled { webhook_secret, .. } => webhook_secret.as_deref(),
            Mode::Disabled { .. } => None,
        }
    }

    /// Called by the controllers once this replica leads.
    pub fn set_trigger(&self, tx: UnboundedSender<ObjectRef<DeserializeGuard<Subscription>>>) {
        let _ = self.trigger.set(tx);
    }

    /// Asks the Subscription controller to re-read this Subscription from Stripe. On a follower
    /// there is no controller: the leader's periodic re-sync picks the change up.
    pub fn trigger(&self, subscription: &str) -> bool {
        match self.trigger.get() {
            Some(tx) => tx.unbounded_send(ObjectRef::new(subscription)).is_ok(),
            None => false,
        }
    }
}
