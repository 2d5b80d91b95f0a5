//! atlantiplex-operator: multi-tenant SaaS tenancy and billing as Kubernetes custom resources.
//!
//! `api` holds the CRD types, `tenancy` the pure decisions (what a tenant needs),
//! `controller` the reconcilers that apply them, `ledger` the history database (audit log, billing records).

pub mod admission;
pub mod api;
pub mod auth_config_command;
pub mod billing;
pub mod console;
pub mod controller;
pub mod error;
pub mod http;
pub mod http_auth;
pub mod identity;
pub mod keys;
pub mod leader;
pub mod ledger;
pub mod log_level;
pub mod login_command;
pub mod metering;
pub mod metrics;
pub mod oidc;
pub mod revenue;
pub mod settings;
pub mod tenancy;
pub mod usage_command;
pub mod usage_endpoint;
