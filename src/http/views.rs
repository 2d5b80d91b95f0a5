//! What the tenant API answers: its own types (the contract in openapi/v1.json), built from the custom
//! resources and the ledger, so the CRDs can change without breaking API clients.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A count against the plan's limit; `limit` absent: unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counted {
    pub used: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Metered usage this billing period against what the plan includes, as the Organization's status shows it
/// (e.g. `12.4Gi/50Gi`); `GET …/usage` has the figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeteredSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationView {
    /// The Organization object's name (the path's `{org}`).
    pub name: String,
    pub slug: String,
    pub display_name: String,
    /// The plan in effect.
    pub plan: String,
    /// Provisioning, Active, Trialing, PastDue, Suspended or Terminating.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub ready: bool,
    pub users: Counted,
    pub teams: Counted,
    pub metered: MeteredSummary,
    /// The plan's API rate limit, requests per minute (absent: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// User, Group or ServiceAccount.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Owner, Admin, Member or Viewer.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MembersView {
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// e.g. `acme/engineering/video`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub members: Vec<MemberView>,
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TeamsView {
    pub teams: Vec<TeamView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due_cents: i64,
    pub amount_paid_cents: i64,
    pub period_start: String,
    pub period_end: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub name: String,
    pub plan: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_plan: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BillingView {
    /// The organization's Subscriptions (none: on the default plan).
    pub subscriptions: Vec<SubscriptionView>,
    /// Newest first.
    pub invoices: Vec<InvoiceView>,
}

/// A UTC day's sum, in the meter's base unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayView {
    /// `2026-03-10`.
    pub day: String,
    pub quantity: i64,
    pub events: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterView {
    /// bandwidth, storage, apiCalls or streamTime.
    pub meter: String,
    /// bytes, byte-seconds, calls or milliseconds.
    pub base_unit: String,
    /// GiB, GiB-month, 1k calls or hour.
    pub billing_unit: String,
    /// This billing period so far, in billing units (a decimal string).
    pub period_billed: String,
    pub period_quantity: i64,
    /// Included per period in billing units, or `unlimited`; absent when the plan is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// What the usage beyond the included amount costs so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overage_cents: Option<i64>,
    /// One entry per UTC day of the window, oldest first (days without usage are 0).
    pub daily: Vec<DayView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    pub organization: String,
    /// Days in the daily series: 30 or 90.
    pub days: u32,
    pub period_start: String,
    pub period_end: String,
    pub meters: Vec<MeterView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub object: String,
    pub action: String,
    /// allowed, denied, succeeded or failed.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// `atp_live_` and 4 more characters: enough to recognise a key, never to use it.
    pub prefix: String,
    pub scopes: Vec<crate::keys::Scope>,
    /// `api`, or `ApiKey/<name>` for a key declared as a custom resource.
    pub origin: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKeysView {
    pub keys: Vec<ApiKeyView>,
}

/// The answer to a create: the key itself, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The secret: store it now; only its keyed hash is kept.
    pub key: String,
    #[serde(flatten)]
    pub details: ApiKeyView,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1–100 characters, to tell keys apart.
    pub name: String,
    /// Default: `[read]`.
    #[serde(default)]
    pub scopes: Option<Vec<crate::keys::Scope>>,
    /// RFC 3339; absent: the key does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Each event's outcome, as `POST /v1/usage` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageReportView {
    pub accepted: usize,
    pub duplicate: usize,
    pub rejected: usize,
    /// Per event, in request order: `{index, outcome, rule?, detail?}`.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<serde_json::Value>,
}
