//! Server-side apply with the operator's single field manager.

use crate::error::Result;
use crate::tenancy::labels::FIELD_MANAGER;
use kube::api::{DeleteParams, Patch, PatchParams};
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

/// Applies the status subresource. `status` is the whole object shape: apiVersion, kind, status.
pub async fn apply_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(status)).await?;
    Ok(())
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
