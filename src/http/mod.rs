//! The tenant API (`atlantiplex-operator api`): HTTPS JSON under `/v1` for an organization's people and
//! programs, in its own process with its own ServiceAccount — read-only on the custom resources, writing
//! only to the ledger (keys, usage, rate limits). The operator stays the only privileged writer.
//!
//! Every `/v1/organizations/{org}/…` request passes [`caller::admit`] in this order: who is calling (an
//! organization API key, or a Kubernetes token checked with TokenReview), the organization, its plan's API
//! access, its IP allow-list, its rate limit; then the handler asks [`access::authorize`] for its action.
//! The decisions are pure (`access`, `gcra`, `client_address`, `crate::keys`); the rest is I/O.

// Handlers fail with a `Problem` (the answer itself, ~150 bytes) only on the refused path; boxing every
// refusal would buy nothing measurable and cost a layer of indirection in every handler.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod caches;
pub mod call_meter;
pub mod caller;
pub mod client_address;
pub mod gcra;
pub mod key_table;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod settings;
pub mod signin;
pub mod views;

pub use problem::Problem;
pub use settings::ApiArgs;

use crate::http_auth::Authorizer;
use crate::keys::Hasher;
use crate::ledger::Ledger;
use std::sync::Arc;

/// What every request handler shares.
pub struct App {
    pub caches: caches::Caches,
    pub ledger: Ledger,
    pub hasher: Hasher,
    pub keys: Arc<key_table::KeyTable>,
    pub limiter: rate_limit::Limiter,
    pub calls: Arc<call_meter::CallMeter>,
    pub authorizer: Arc<Authorizer>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub default_plan: String,
    pub max_body_bytes: usize,
    pub request_timeout: std::time::Duration,
    pub usage_grace: jiff::SignedDuration,
    /// Web sign-in (`--oidc-issuer`), when configured.
    pub signin: Option<signin::SignIn>,
    /// The API server's address and CA: the console's changes go there with the person's own token.
    pub kube_config: kube::Config,
    /// The console's state: Stripe for billing portal sessions, the platform figures' cache.
    pub console: crate::console::Console,
}
