//! Acting on `tenancy::claim`'s decisions: the one place that creates a tenant namespace.

use super::apply::create_owned;
use super::context::Context;
use crate::error::{Error, Result};
use crate::tenancy::claim::{self, Claim, Refusal};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

/// Claims `namespace` as `decide` rules (home or team): creates it when absent — create-only, so of
/// two tenants racing for one name exactly one gets it — and after a conflict decides again from a
/// fresh read, not the cache. Ok(Ok(true)) when it was just created, Ok(Ok(false)) when it already
/// was (or now is) the claimant's, Ok(Err(_)) when it is someone else's.
pub(super) async fn claim_namespace(
    namespace: &Namespace,
    ctx: &Context,
    decide: impl Fn(Option<&ObjectMeta>) -> Claim,
) -> Result<std::result::Result<bool, Refusal>> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let mut current = ctx.namespaces.get(&ObjectRef::new(&name)).map(|m| m.metadata.clone());
    for _ in 0..3 {
        match decide(current.as_ref()) {
            Claim::Ours => return Ok(Ok(false)),
            Claim::Refused(refusal) => return Ok(Err(refusal)),
            Claim::Adopt { why, clear_release } => {
                tracing::info!(namespace = %name, why, "adopting a tenant namespace");
                if clear_release {
                    // A release is good for one adoption: left in place, it would hand the
                    // namespace to the next claimant of that name too.
                    let patch = serde_json::json!({"metadata": {"annotations": {claim::RELEASE_TO: null}}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
                return Ok(Ok(false));
            }
            Claim::Create => {
                if create_owned(&api, namespace).await? {
                    return Ok(Ok(true));
                }
                current = api.get_metadata_opt(&name).await?.map(|m| m.metadata);
            }
        }
    }
    Err(Error::Conflict(format!("namespace {name} keeps appearing and disappearing")))
}
