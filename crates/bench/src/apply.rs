//! A minimal server-side-apply client for JSON manifests: the baseline, and how the benchmark
//! applies tenants.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;

pub const FIELD_MANAGER: &str = "atlantiplex-bench";

fn resource(api_version: &str, kind: &str) -> anyhow::Result<(ApiResource, bool)> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "ResourceQuota" => ("resourcequotas", true),
        "LimitRange" => ("limitranges", true),
        "Service" => ("services", true),
        "NetworkPolicy" => ("networkpolicies", true),
        "Ingress" => ("ingresses", true),
        "RoleBinding" => ("rolebindings", true),
        "Organization" => ("organizations", false),
        "Team" => ("teams", false),
        "Plan" => ("plans", false),
        "Subscription" => ("subscriptions", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        other => anyhow::bail!("the benchmark does not know kind {other}"),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced))
}

/// Server-side applies one manifest (forcing ownership, like the operator).
pub async fn apply(client: &Client, manifest: &Value) -> anyhow::Result<()> {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let kind = manifest["kind"].as_str().unwrap_or_default();
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let (ar, namespaced) = resource(api_version, kind)?;
    let api: Api<DynamicObject> = if namespaced {
        let ns = manifest["metadata"]["namespace"].as_str().unwrap_or("default");
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(manifest)).await?;
    Ok(())
}
