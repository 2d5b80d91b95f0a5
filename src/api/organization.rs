//! `Organization`: a tenant with its home namespace, members, ingress and security settings.

use super::common::{Member, Subject, conditions_schema};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest slug: `org-<slug>` and `<slug>-<team>` must stay valid namespace names (63).
pub const MAX_SLUG_LEN: usize = 30;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "atlantiplex.io",
    version = "v1alpha1",
    kind = "Organization",
    shortname = "org",
    shortname = "orgs",
    category = "atlantiplex",
    status = "OrganizationStatus",
    validation = Rule::new("self.metadata.name.size() <= 63").message("metadata.name must be at most 63 characters (it is used as a label value)"),
    printcolumn = r#"{"name":"Slug","type":"string","jsonPath":".spec.slug"}"#,
    printcolumn = r#"{"name":"Plan","type":"string","jsonPath":".status.effectivePlan"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url","priority":1}"#,
    printcolumn = r#"{"name":"Users","type":"string","jsonPath":".status.usage.users","priority":1}"#,
    printcolumn = r#"{"name":"Teams","type":"string","jsonPath":".status.usage.teams","priority":1}"#,
    printcolumn = r#"{"name":"Metered","type":"string","jsonPath":".status.usage.closestMeter","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSpec {
    /// DNS label naming the tenant: home namespace `org-<slug>`, team namespaces
    /// `<slug>--<team>`, host `<slug>.<baseDomain>`. Lower-case letters, digits and single
    /// hyphens (no `--`, so team namespaces cannot collide). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.slug is immutable: create a new Organization to use another slug"))]
    #[schemars(length(min = 1, max = 30), regex(pattern = r"^[a-z](-?[a-z0-9])*$"))]
    pub slug: String,
    #[schemars(length(min = 1, max = 200))]
    pub display_name: String,
    /// Owners: full control, including billing, owners and deletion. At least one (the
    /// admission webhook fills in the requester on self-service sign-up, so it may be omitted
    /// there).
    #[serde(default)]
    #[schemars(length(min = 1, max = 50), transform = no_default)]
    pub owners: Vec<Subject>,
    /// Everyone else with access to the organization: Admin, Member or Viewer.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub members: Vec<Member>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<OrganizationIngress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    /// What deleting the Organization does to its namespaces. Retain (default) keeps them and
    /// their data and removes only the access bindings; Delete removes them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Suspend the tenant by hand: quota cut to zero pods, ingress to the suspended page, data kept.
    #[serde(default)]
    pub suspended: bool,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationIngress {
    /// The Service in the home namespace that serves the tenant (default: operator setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// White-label hosts (plans with the customDomains feature).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "custom_domains_schema")]
    pub custom_domains: Vec<String>,
    /// TLS for every host, with the certificate in Secret `<slug>-tls` (cert-manager can fill it).
    #[serde(default)]
    pub tls: bool,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    #[schemars(length(min = 1, max = 63))]
    pub service: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// Source CIDRs allowed to reach the tenant (plans with the ipAllowList feature).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "ip_allow_list_schema")]
    pub ip_allow_list: Vec<String>,
    #[serde(default)]
    pub mfa_required: bool,
    /// Identity-provider groups mapped to roles (plans with the sso feature).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub sso_group_mappings: Vec<SsoGroupMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub session_timeout_minutes: Option<i32>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.role in ['Admin', 'Member', 'Viewer']").message("an SSO group maps to Admin, Member or Viewer"))]
pub struct SsoGroupMapping {
    #[schemars(length(min = 1, max = 253))]
    pub group: String,
    pub role: super::Role,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9a-fA-F]{6}$"))]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9a-fA-F]{6}$"))]
    pub secondary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://"))]
    pub logo_url: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Provisioning,
    Active,
    Trialing,
    PastDue,
    Suspended,
    Terminating,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Every host the tenant's Ingress serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Usage against the plan's limits, as "used/limit" strings for printing and numbers for tools.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// e.g. "3/5" or "3/unlimited".
    pub users: String,
    pub teams: String,
    pub namespaces: String,
    pub user_count: i32,
    pub team_count: i32,
    pub namespace_count: i32,
    /// Egress this billing period against the plan's included amount, e.g. "12.4Gi/50Gi".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// Storage this billing period in GiB-months (sampled PersistentVolumeClaim requests, time-weighted)
    /// against those the plan includes, e.g. "2.5Gi/5Gi": 2.5 of the 5 GiB-months of a 5Gi limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Tenant API calls this billing period, e.g. "12.3k/1M".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<String>,
    /// Stream time this billing period, e.g. "3.5h/10h".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_time: Option<String>,
    /// The metered usage closest to its limit, e.g. "bandwidth 41.2Gi/50Gi (82%)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_meter: Option<String>,
}

/// Optional, yet never empty: a schema default (`[]`) would have to satisfy minItems.
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

fn custom_domains_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 20,
        "items": {
            "type": "string",
            "maxLength": 253,
            "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,63}$"
        }
    })
}

fn ip_allow_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "string",
            "maxLength": 43,
            "x-kubernetes-validations": [{
                "rule": "isCIDR(self)",
                "message": "each ipAllowList entry must be a CIDR such as 203.0.113.0/24"
            }]
        }
    })
}
