//! `Subscription`: puts an organization on a plan, billed through Stripe. The status mirrors the
//! Stripe subscription; the organization's effective plan and phase follow it (`tenancy::plan`).

use super::common::conditions_schema;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "atlantiplex.io",
    version = "v1alpha1",
    kind = "Subscription",
    shortname = "sub",
    shortname = "subs",
    category = "atlantiplex",
    status = "SubscriptionStatus",
    printcolumn = r#"{"name":"Organization","type":"string","jsonPath":".spec.organization"}"#,
    printcolumn = r#"{"name":"Plan","type":"string","jsonPath":".spec.plan"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.stripeState"}"#,
    printcolumn = r#"{"name":"Trial End","type":"date","jsonPath":".status.trialEnd","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    selectable = ".spec.organization"
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// The Organization (metadata.name) being billed. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.organization is immutable: create a new Subscription for another organization"))]
    #[schemars(length(min = 1, max = 63))]
    pub organization: String,
    /// The Plan (metadata.name), e.g. professional.
    #[schemars(length(min = 1, max = 63))]
    pub plan: String,
    #[schemars(regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]
    pub billing_email: String,
    /// Start with the plan's trial when the organization never had one.
    #[serde(default = "default_true")]
    pub trial: bool,
}

fn default_true() -> bool {
    true
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_subscription_id: Option<String>,
    /// Stripe's subscription status: trialing, active, past_due, unpaid, canceled, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<String>,
    /// The Stripe billing period: usage is totalled, limited and billed per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_invoice: Option<InvoiceSummary>,
    /// The plan in effect (billed by Stripe now); differs from spec.plan while a downgrade waits
    /// for the end of the paid period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A downgrade that takes effect at `scheduledAt` (the end of the paid period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    /// When the operator first saw the subscription past_due: the grace period counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_due_since: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceSummary {
    pub id: String,
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_url: Option<String>,
}
