//! `Plan`: a pricing tier — price, trial, limits, quota, features.

use super::common::{conditions_schema, optional_quantity_schema, quantity_map_schema};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Spec-level CEL: a limit's overage entry only makes sense where the limit exists.
macro_rules! overage_needs_limit {
    ($meter:literal) => {
        concat!("!has(self.overage) || !has(self.overage.", $meter, ") || has(self.limits.", $meter, ")")
    };
}

macro_rules! overage_needs_limit_message {
    ($meter:literal) => {
        concat!(
            "overage.",
            $meter,
            " applies beyond limits.",
            $meter,
            ", which is absent (unlimited): set limits.",
            $meter,
            " to the amount included, or remove overage.",
            $meter
        )
    };
}

/// Bill needs a Stripe subscription to put the charge on; internal and zero-price plans have none.
const OVERAGE_BILL_NEEDS_BILLED_PLAN: &str = "(!self.internal && self.price.amountCents > 0) || !has(self.overage) || \
     ((!has(self.overage.bandwidth) || self.overage.bandwidth.action == 'Block') && \
     (!has(self.overage.storage) || self.overage.storage.action == 'Block') && \
     (!has(self.overage.apiCalls) || self.overage.apiCalls.action == 'Block') && \
     (!has(self.overage.streamHours) || self.overage.streamHours.action == 'Block'))";
const OVERAGE_BILL_NEEDS_BILLED_PLAN_MESSAGE: &str = "overage action Bill needs a billed plan: this plan is internal or \
     has price.amountCents 0, so no Stripe subscription carries the charge; use action Block, or give the plan a price";

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
#[x_kube(validation = Rule::new(OVERAGE_BILL_NEEDS_BILLED_PLAN).message(OVERAGE_BILL_NEEDS_BILLED_PLAN_MESSAGE))]
#[x_kube(validation = Rule::new(overage_needs_limit!("bandwidth")).message(overage_needs_limit_message!("bandwidth")))]
#[x_kube(validation = Rule::new(overage_needs_limit!("storage")).message(overage_needs_limit_message!("storage")))]
#[x_kube(validation = Rule::new(overage_needs_limit!("apiCalls")).message(overage_needs_limit_message!("apiCalls")))]
#[x_kube(validation = Rule::new(overage_needs_limit!("streamHours")).message(overage_needs_limit_message!("streamHours")))]
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
    /// Counted limits; an absent limit is unlimited. For the four meters (bandwidth, storage, apiCalls,
    /// streamHours) the limit is the amount included in the price each billing period; `overage` says what
    /// happens beyond it.
    #[serde(default)]
    pub limits: PlanLimits,
    /// What happens to metered usage beyond its limit, per meter: Block (the default for a limited meter
    /// without an entry) or Bill at a unit price.
    #[serde(default, skip_serializing_if = "PlanOverage::is_empty")]
    pub overage: PlanOverage,
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
    /// Egress per billing period (metered; included in the price, see `overage.bandwidth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_schema")]
    pub bandwidth: Option<Quantity>,
    /// Tenant API calls per billing period (metered; 0 with `overage.apiCalls` Bill bills every call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub api_calls: Option<i64>,
    /// Hours of stream time per billing period (metered; 0 with `overage.streamHours` Bill bills every hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub stream_hours: Option<i64>,
    /// Namespaces across the organization (home + teams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub namespaces: Option<i32>,
}

/// What happens to a meter's usage beyond its limit.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverageAction {
    /// Usage stops at the limit: the meter's traffic is refused from 100 % until the next period.
    Block,
    /// Usage goes on and what is beyond the limit is billed at the entry's unit price.
    Bill,
}

/// Per meter, what happens beyond `limits`. An absent entry for a limited meter means Block: nothing is
/// billed that nobody priced. Prices are in cents of `price.currency`, each in the meter's billing unit.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanOverage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthOverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageOverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<ApiCallsOverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_hours: Option<StreamHoursOverage>,
}

impl PlanOverage {
    pub fn is_empty(&self) -> bool {
        self == &PlanOverage::default()
    }
}

// One type per meter so each price names its unit (`centsPerGiB`, not a bare number whose unit one has to
// look up); the two rules on each say which price field Bill needs and Block refuses.

/// Bandwidth beyond `limits.bandwidth`, priced per GiB (2^30 bytes).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action != 'Bill' || has(self.centsPerGiB)").message("action Bill needs a price: set centsPerGiB (cents per GiB beyond limits.bandwidth, e.g. 8), or use action Block"))]
#[x_kube(validation = Rule::new("self.action != 'Block' || !has(self.centsPerGiB)").message("action Block bills nothing: remove centsPerGiB, or use action Bill"))]
pub struct BandwidthOverage {
    pub action: OverageAction,
    /// Cents per GiB beyond the limit (Bill only).
    #[serde(default, rename = "centsPerGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub cents_per_gib: Option<i64>,
}

/// Storage beyond `limits.storage`, priced per GiB-month (one GiB held for a whole billing period).
/// The ResourceQuota's `requests.storage` (from `quota`, else `limits.storage`) stays the hard ceiling:
/// to let Bill take effect, set `quota.requests.storage` above `limits.storage`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action != 'Bill' || has(self.centsPerGiBMonth)").message("action Bill needs a price: set centsPerGiBMonth (cents per GiB-month beyond limits.storage, e.g. 10), or use action Block"))]
#[x_kube(validation = Rule::new("self.action != 'Block' || !has(self.centsPerGiBMonth)").message("action Block bills nothing: remove centsPerGiBMonth, or use action Bill"))]
pub struct StorageOverage {
    pub action: OverageAction,
    /// Cents per GiB-month beyond the limit (Bill only).
    #[serde(default, rename = "centsPerGiBMonth", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub cents_per_gib_month: Option<i64>,
}

/// API calls beyond `limits.apiCalls`, priced per 1,000 calls.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action != 'Bill' || has(self.centsPerThousandCalls)").message("action Bill needs a price: set centsPerThousandCalls (cents per 1,000 calls beyond limits.apiCalls, e.g. 1), or use action Block"))]
#[x_kube(validation = Rule::new("self.action != 'Block' || !has(self.centsPerThousandCalls)").message("action Block bills nothing: remove centsPerThousandCalls, or use action Bill"))]
pub struct ApiCallsOverage {
    pub action: OverageAction,
    /// Cents per 1,000 calls beyond the limit (Bill only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub cents_per_thousand_calls: Option<i64>,
}

/// Stream time beyond `limits.streamHours`, priced per hour.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action != 'Bill' || has(self.centsPerHour)").message("action Bill needs a price: set centsPerHour (cents per stream hour beyond limits.streamHours, e.g. 50), or use action Block"))]
#[x_kube(validation = Rule::new("self.action != 'Block' || !has(self.centsPerHour)").message("action Block bills nothing: remove centsPerHour, or use action Bill"))]
pub struct StreamHoursOverage {
    pub action: OverageAction,
    /// Cents per hour beyond the limit (Bill only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub cents_per_hour: Option<i64>,
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
