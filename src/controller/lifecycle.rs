//! The shape Organization and Team reconciles share: wait for our own last write to reach the
//! cache, keep the cleanup finalizer (kube's helper adds it unless the mutating webhook did), then
//! provision or clean up.

use super::Context;
use crate::error::{Error, Result};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A safety net only: the watch event of our own write triggers the reconcile that sees it.
const OWN_WRITE_RECHECK: Duration = Duration::from_secs(2);

pub async fn reconcile<K, P, PF, C, CF>(
    guard: &DeserializeGuard<K>,
    ctx: &Context,
    kind: &'static str,
    finalizer_name: &str,
    provision: P,
    cleanup: C,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
    P: FnOnce(Arc<K>) -> PF,
    PF: Future<Output = Result<Action>>,
    C: FnOnce(Arc<K>) -> CF,
    CF: Future<Output = Result<Action>>,
{
    let Some(obj) = super::readable(guard, ctx).await else { return Ok(Action::await_change()) };
    let (name, version) = (obj.name_any(), obj.resource_version());
    if ctx.own_writes.cache_behind(kind, &name, version.as_deref()) {
        return Ok(Action::requeue(OWN_WRITE_RECHECK));
    }
    let adds_finalizer =
        obj.meta().deletion_timestamp.is_none() && !obj.finalizers().iter().any(|f| f == finalizer_name);
    let api: Api<K> = Api::all(ctx.client.clone());
    let action = finalizer(&api, finalizer_name, Arc::new(obj.clone()), |event| async move {
        match event {
            Event::Apply(obj) => provision(obj).await,
            Event::Cleanup(obj) => cleanup(obj).await,
        }
    })
    .await
    .map_err(Error::from)?;
    if adds_finalizer {
        ctx.own_writes.wrote(kind, &name, version.as_deref(), None);
    }
    Ok(action)
}
