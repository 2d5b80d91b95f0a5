//! Types shared by several kinds: subjects, roles, conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who a role is granted to, as in an RBAC RoleBinding subject.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SERVICE_ACCOUNT_NAMESPACE_RULE).message(SERVICE_ACCOUNT_NAMESPACE_MESSAGE))]
pub struct Subject {
    pub kind: SubjectKind,
    /// User name, group name or service account name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The service account's namespace (ServiceAccount only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

/// The five roles of DESIGN.md §4. Owner is granted through `owners`; TeamAdmin only on a Team.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Owner,
    Admin,
    TeamAdmin,
    Member,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::TeamAdmin => "teamadmin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Higher is more powerful; used to pick the strongest grant when a subject has several.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 5,
            Role::Admin => 4,
            Role::TeamAdmin => 3,
            Role::Member => 2,
            Role::Viewer => 1,
        }
    }
}

/// A subject with a role (the subject's fields inline, as kubectl users expect).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SERVICE_ACCOUNT_NAMESPACE_RULE).message(SERVICE_ACCOUNT_NAMESPACE_MESSAGE))]
#[x_kube(validation = Rule::new("self.role in ['Admin', 'Member', 'Viewer']").message("organization members have role Admin, Member or Viewer (Owner: use spec.owners; TeamAdmin: grant it on a Team)"))]
pub struct Member {
    pub kind: SubjectKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    pub role: Role,
}

impl Member {
    pub fn subject(&self) -> Subject {
        Subject { kind: self.kind, name: self.name.clone(), namespace: self.namespace.clone() }
    }
}

const SERVICE_ACCOUNT_NAMESPACE_RULE: &str =
    "self.kind == 'ServiceAccount' ? (has(self.__namespace__) && self.__namespace__ != '') : !has(self.__namespace__)";
const SERVICE_ACCOUNT_NAMESPACE_MESSAGE: &str =
    "namespace is required for kind ServiceAccount and not allowed for User and Group";

/// Conditions as a list map keyed by type, so server-side apply merges them per type.
/// (k8s-openapi types carry no JSON schema, hence the hand-written metav1.Condition schema.)
pub fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "maxLength": 316},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "reason": {"type": "string", "maxLength": 1024},
                "message": {"type": "string", "maxLength": 32768}
            }
        }
    })
}

/// A Kubernetes quantity ("5Gi", "500m", 10), as the apiserver's own schemas describe it.
pub fn quantity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$"
    })
}

pub fn optional_quantity_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    quantity_schema(g)
}

pub fn quantity_map_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let quantity = quantity_schema(g);
    schemars::json_schema!({"type": "object", "additionalProperties": quantity})
}

pub const CONDITION_READY: &str = "Ready";

/// Finds a condition by type.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
