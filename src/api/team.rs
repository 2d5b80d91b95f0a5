//! `Team`: a group inside an organization, nested under an optional parent team. Named
//! `<organization>.<team>`, so a team name is unique within its organization by construction.

use super::common::conditions_schema;
use super::{Role, SubjectKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "atlantiplex.io",
    version = "v1alpha1",
    kind = "Team",
    shortname = "team",
    category = "atlantiplex",
    status = "TeamStatus",
    validation = Rule::new("self.metadata.name.startsWith(self.spec.organization + '.') && self.metadata.name.size() <= self.spec.organization.size() + 32 && self.metadata.name.substring(self.spec.organization.size() + 1).matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("a Team is named <organization>.<team>, where <team> is a DNS label of at most 31 characters (e.g. acme.video)"),
    validation = Rule::new("!has(self.spec.parent) || (self.spec.parent.startsWith(self.spec.organization + '.') && self.spec.parent != self.metadata.name)").message("spec.parent must name another Team of the same organization (<organization>.<team>)"),
    printcolumn = r#"{"name":"Organization","type":"string","jsonPath":".spec.organization"}"#,
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".status.path"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TeamSpec {
    /// The Organization (metadata.name) this team belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.organization is immutable: teams cannot move between organizations"))]
    #[schemars(length(min = 1, max = 63))]
    pub organization: String,
    /// Parent Team (metadata.name) in the same organization; absent for a top-level team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 127))]
    pub parent: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub members: Vec<TeamMember>,
    /// Percentage of the organization's quota reserved for this team's namespace; without it
    /// the team shares what explicit shares leave equally with the home namespace and other teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub quota_share: Option<i32>,
    /// Allow deleting this team while it has child teams (they are deleted first). Without it,
    /// deleting a team with children waits, with a DeletionBlocked condition, until they are gone.
    #[serde(default)]
    pub allow_cascade_delete: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.role in ['TeamAdmin', 'Member', 'Viewer']").message("team members have role TeamAdmin, Member or Viewer"))]
#[x_kube(validation = Rule::new("self.kind == 'ServiceAccount' ? (has(self.__namespace__) && self.__namespace__ != '') : !has(self.__namespace__)").message("namespace is required for kind ServiceAccount and not allowed for User and Group"))]
pub struct TeamMember {
    pub kind: SubjectKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    pub role: Role,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TeamStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// e.g. "acme/engineering/video".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
