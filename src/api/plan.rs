//! `Plan`: a pricing tier — price, trial, limits, quota, features.

use super::common::{conditions_schema, optional_quantity_schema, quantity_map_schema};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "atlantiplex.io",
    version = "v1alpha1",
    kind = "Plan",
    shortname = "plan",
    category = "atlantiplex",
    status = "PlanStatus",
    printcolumn = r#"{"name":"Price","type":"string","jsonPath":".status.price"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".spec.limits.users"}"#,
    printcolumn = r#"{"name":"Teams","type":"integer","jsonPath":".spec.limits.teams"}"#,
    printcolumn = r#"{"name":"Storage","type":"string","jsonPath":".spec.limits.storage"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.internal || self.price.amountCents == 0").message("an internal plan is never billed: set price.amountCents to 0"))]
pub struct PlanSpec {
    /// Human-readable tier name, e.g. "Professional".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub price: Price,
    /// Trial length for the first paid subscription; 0 means no trial.
    #[serde(default)]
    #[schemars(range(min = 0, max = 730))]
    pub trial_days: i32,
    /// Internal plans (admin) are never billed.
    #[serde(default)]
    pub internal: bool,
    /// Counted limits; an absent limit is unlimited.
    #[serde(default)]
    pub limits: PlanLimits,
    /// ResourceQuota `hard` values for the tenant (e.g. `requests.cpu: "4"`, `pods: "50"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "quantity_map_schema")]
    pub quota: BTreeMap<String, Quantity>,
    /// Container defaults written into the tenant's LimitRange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_defaults: Option<ContainerDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub features: PlanFeatures,
    #[serde(default)]
    pub support: SupportLevel,
    /// Idle session timeout for the tenant's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub session_timeout_minutes: Option<i32>,
    /// Existing Stripe ids; when absent the operator creates the product and price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeIds>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    #[schemars(range(min = 0))]
    pub amount_cents: i64,
    /// ISO 4217 code, lower case.
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = r"^[a-z]{3}$"))]
    pub currency: String,
    #[serde(default)]
    pub interval: BillingInterval,
}

fn default_currency() -> String {
    "usd".into()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BillingInterval {
    #[default]
    Month,
    Year,
}

/// Counted limits. Quantities use Kubernetes notation (`5Gi`, `2Ti`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub users: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub teams: Option<i32>,
    /// Persistent storage across the tenant (maps to `requests.storage` in the quota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_schema")]
    pub storage: Option<Quantity>,
    /// Egress per month (metered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_schema")]
    pub bandwidth: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub api_calls: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stream_hours: Option<i64>,
    /// Namespaces across the organization (home + teams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub namespaces: Option<i32>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefaults {
    /// Default limits (e.g. `cpu: 500m`, `memory: 512Mi`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "quantity_map_schema")]
    pub limits: BTreeMap<String, Quantity>,
    /// Default requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "quantity_map_schema")]
    pub requests: BTreeMap<String, Quantity>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    #[schemars(range(min = 1))]
    pub requests_per_minute: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<i32>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanFeatures {
    #[serde(default)]
    pub api_access: bool,
    #[serde(default)]
    pub custom_domains: bool,
    #[serde(default)]
    pub white_label: bool,
    #[serde(default)]
    pub sso: bool,
    #[serde(default)]
    pub ip_allow_list: bool,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SupportLevel {
    #[default]
    Community,
    Email,
    Priority,
    Dedicated,
    Full,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StripeIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Display price, e.g. "$29.99/month".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
}

impl Price {
    pub fn display(&self) -> String {
        let symbol =
            if self.currency == "usd" { "$".to_string() } else { format!("{} ", self.currency.to_uppercase()) };
        let interval = match self.interval {
            BillingInterval::Month => "month",
            BillingInterval::Year => "year",
        };
        format!("{symbol}{}.{:02}/{interval}", self.amount_cents / 100, self.amount_cents % 100)
    }
}
