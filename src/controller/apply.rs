//! Server-side apply with the operator's single field manager.

use crate::error::Result;
use crate::tenancy::labels::FIELD_MANAGER;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Applies `obj` as the operator, taking ownership of its fields from anyone who changed them
/// (that is how drift is repaired).
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    Ok(api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj)).await?)
}

/// Annotation holding a digest of what the operator last applied to an object.
pub const APPLIED_HASH: &str = "atlantiplex.io/applied-hash";

/// Applies `obj` unless the cache shows it already applied unchanged and nobody else has
/// touched it since — so a re-sync or a restart writes nothing, while an edit by anyone else
/// (another field manager in managedFields) or a deletion (absent from the cache) is repaired.
/// Returns whether it wrote.
pub async fn apply_if_changed<K>(api: &Api<K>, obj: &K, cached: Option<ObjectMeta>) -> Result<bool>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let digest = digest(obj)?;
    let why = match &cached {
        None => "not in cache",
        Some(meta) if up_to_date(meta, &digest) => return Ok(false),
        Some(meta) if meta.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH)) != Some(&digest) => "changed",
        Some(_) => "touched by another field manager",
    };
    tracing::debug!(kind = %K::kind(&K::DynamicType::default()), name = ?obj.meta().name, namespace = ?obj.meta().namespace, why, "applying");
    let mut obj = obj.clone();
    obj.meta_mut().annotations.get_or_insert_with(Default::default).insert(APPLIED_HASH.into(), digest);
    apply(api, &obj).await?;
    Ok(true)
}

/// Creates `obj` only if nothing of its name exists: the API server decides atomically, so of
/// two reconciles racing for one name (two Organizations with one slug) exactly one creates it.
/// Stamped like [`apply_if_changed`] so the next reconcile sees it current. Returns false when
/// the object already existed (409): the caller reads who holds it.
pub async fn create_owned<K>(api: &Api<K>, obj: &K) -> Result<bool>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let mut obj = obj.clone();
    let digest = digest(&obj)?;
    obj.meta_mut().annotations.get_or_insert_with(Default::default).insert(APPLIED_HASH.into(), digest);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match api.create(&params, &obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err.into()),
    }
}

fn up_to_date(meta: &ObjectMeta, digest: &str) -> bool {
    let ours = meta.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH)).is_some_and(|d| d == digest);
    ours && !changed_by_others(meta)
}

/// Whether anyone but the operator changed the object since the operator last wrote it: it
/// has no digest of ours, or another field manager (status writers aside) wrote after us.
/// Comparing times, not just managers, keeps a foreign field we never apply (say, a label
/// someone added) from making every later reconcile re-apply.
pub fn changed_by_others(meta: &ObjectMeta) -> bool {
    if meta.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH)).is_none() {
        return true;
    }
    let entries = meta.managed_fields.iter().flatten();
    let ours =
        entries.clone().filter(|e| e.manager.as_deref() == Some(FIELD_MANAGER)).filter_map(|e| e.time.clone()).max();
    entries.filter(|e| e.manager.as_deref() != Some(FIELD_MANAGER) && e.subresource.as_deref() != Some("status")).any(
        |e| match (&e.time, &ours) {
            // Times have one-second resolution: a write in the same second as ours counts as
            // later (at worst one needless no-op apply, never a missed edit).
            (Some(theirs), Some(ours)) => theirs.0 >= ours.0,
            _ => true,
        },
    )
}

/// FNV-1a over the object's JSON: stable across runs and builds (std's hasher is not).
fn digest<K: Serialize>(obj: &K) -> Result<String> {
    let bytes = serde_json::to_vec(obj)?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    Ok(format!("{hash:016x}"))
}

/// Applies the status subresource. `status` is the whole object shape: apiVersion, kind, status.
/// Server-side applies a status; returns the object's new resourceVersion.
pub async fn apply_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<Option<String>>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let written = api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(status)).await?;
    Ok(written.meta().resource_version.clone())
}

/// Deletes an object; one that is already gone is fine.
pub async fn delete_if_exists<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}
