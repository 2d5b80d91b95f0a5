//! The PersistentVolumeClaim cache the storage sampler reads. Claims carry no label of ours, so the watch
//! covers every namespace; each claim is reduced to what sampling needs — namespace, name and
//! `spec.resources.requests.storage` — so that a cluster with many claims costs the operator little memory.
//! (A claim being deleted counts until it is gone, see `metering::sampling`: its deletion mark is not kept.)

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// Starts the cache on its own task, for as long as the process runs (every replica, so a new leader
/// samples at once); no triggers: the sampler reads it on its own schedule.
pub(super) fn spawn(client: &Client) -> Store<PersistentVolumeClaim> {
    let (store, writer) = reflector::store();
    let stream = watcher(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default()).modify(reduce);
    tokio::spawn(reflector::reflector(writer, stream).default_backoff().for_each(|event| {
        if let Err(err) = event {
            tracing::warn!(kind = "PersistentVolumeClaim", error = %err, "cache watch failed; retrying");
        }
        std::future::ready(())
    }));
    store
}

/// Everything but the identity and the storage request dropped.
fn reduce(claim: &mut PersistentVolumeClaim) {
    let storage = claim
        .spec
        .as_mut()
        .and_then(|spec| spec.resources.as_mut()?.requests.as_mut()?.remove("storage"))
        .map(|q| BTreeMap::from([("storage".to_string(), q)]));
    let meta = std::mem::take(&mut claim.metadata);
    *claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            resource_version: meta.resource_version,
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            resources: Some(VolumeResourceRequirements { requests: storage, limits: None }),
            ..Default::default()
        }),
        status: None,
    };
}

/// A cached claim's `requests.storage`.
pub(super) fn requested(
    claim: &PersistentVolumeClaim,
) -> Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn claims_keep_only_their_identity_and_storage_request() {
        let mut claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "org-acme", "labels": {"app": "db"},
                         "annotations": {"volume.kubernetes.io/selected-node": "n1"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                     "resources": {"requests": {"storage": "10Gi", "cpu": "1"}, "limits": {"storage": "20Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}
        }))
        .unwrap();
        reduce(&mut claim);
        assert_eq!(requested(&claim), Some(&Quantity("10Gi".into())));
        assert_eq!(claim.metadata.name.as_deref(), Some("data"));
        assert_eq!(claim.metadata.namespace.as_deref(), Some("org-acme"));
        assert!(claim.metadata.labels.is_none() && claim.metadata.managed_fields.is_none());
        assert!(claim.status.is_none());
        let spec = claim.spec.unwrap();
        assert!(spec.storage_class_name.is_none() && spec.access_modes.is_none());
        assert_eq!(spec.resources.unwrap().requests.unwrap().len(), 1);
        let mut bare = PersistentVolumeClaim::default();
        reduce(&mut bare);
        assert_eq!(requested(&bare), None);
    }
}
