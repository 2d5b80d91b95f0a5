//! `ApiKey`: an organization API key declared in YAML (GitOps). The operator generates the key once into a
//! Secret in the organization's home namespace and stores only its keyed hash in the ledger; nobody ever
//! writes the key into git. Deleting the object revokes the key.

use super::common::conditions_schema;
use crate::keys::Scope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "atlantiplex.io",
    version = "v1alpha1",
    kind = "ApiKey",
    shortname = "apikey",
    shortname = "apikeys",
    category = "atlantiplex",
    status = "ApiKeyStatus",
    printcolumn = r#"{"name":"Organization","type":"string","jsonPath":".spec.organization"}"#,
    printcolumn = r#"{"name":"Prefix","type":"string","jsonPath":".status.prefix"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Expires","type":"date","jsonPath":".spec.expiresAt","priority":1}"#,
    printcolumn = r#"{"name":"Last Used","type":"date","jsonPath":".status.lastUsedAt","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    selectable = ".spec.organization"
)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySpec {
    /// The Organization (metadata.name) the key acts for. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.organization is immutable: create a new ApiKey for another organization"))]
    #[schemars(length(min = 1, max = 63))]
    pub organization: String,
    /// What the key may do: read, usage:write, keys:write.
    #[serde(default = "default_scopes")]
    #[schemars(length(min = 1, max = 3))]
    pub scopes: Vec<Scope>,
    /// When the key stops working (RFC 3339); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// The Secret in the home namespace that receives the key (key `key`). Default: `apikey-<name>`.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.secretName is immutable: create a new ApiKey to use another Secret"))]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub secret_name: Option<String>,
}

fn default_scopes() -> Vec<Scope> {
    vec![Scope::Read]
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStatus {
    /// The key's id in the tenant API (`GET …/api-keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `atp_live_` and 4 more characters, to recognise the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `<home namespace>/<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When the key was last used (refreshed every few minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ApiKey {
    pub fn secret_name(&self) -> String {
        self.spec
            .secret_name
            .clone()
            .unwrap_or_else(|| format!("apikey-{}", self.metadata.name.as_deref().unwrap_or_default()))
    }

    /// The key's id in the ledger: fixed by the object's uid, so a re-created object is a new key.
    pub fn key_id(&self) -> String {
        format!("key_{}", self.metadata.uid.as_deref().unwrap_or_default().replace('-', ""))
    }
}
