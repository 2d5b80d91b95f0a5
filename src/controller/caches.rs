//! The shared caches: one watch per kind whose events, once the cache holds them, trigger the
//! reconciles they affect.
//!
//! Every object a cache learns about triggers — from a watch event, and from a list, the first
//! one and every re-list after a watch restart (an expired resourceVersion, an API server
//! restart, a CRD re-installed). A re-list is how a watch catches up on what it missed, so what
//! it brings is exactly what nobody has reconciled yet; and what a re-list no longer returns was
//! deleted while the watch was down, which triggers like a deletion.

use super::apply;
use crate::tenancy::labels::{MANAGED, PREFIX};
use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// What happened to a cached object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    Applied,
    Deleted,
}

/// A cache kept current by its own watch, on its own task, for as long as the process runs.
/// `on_change` runs for every object added, changed or deleted, once the cache has it.
pub(super) fn spawn_cache<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    on_change: impl Fn(&K, Change, &Store<K>) + Send + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let store = writer.as_reader();
    let slim = watcher(api, config).modify(slim);
    let stream = reflector::reflector(writer, slim).default_backoff();
    let mut triggers = Triggers::default();
    tokio::spawn(stream.for_each(move |event| {
        match event {
            Ok(event) => {
                for (obj, change) in triggers.after(&event, &store) {
                    on_change(&obj, change, &store);
                }
            }
            Err(err) => tracing::warn!(kind = %K::kind(&()), error = %err, "cache watch failed; retrying"),
        }
        std::future::ready(())
    }));
}

/// Turns watcher events, already applied to the store, into the changes they mean.
///
/// A list's objects are held back until the list is complete: the reflector swaps them into the
/// store only then, and a reconcile triggered earlier would not find its object.
pub(super) struct Triggers<K: Resource<DynamicType = ()>> {
    /// The objects of the list in progress.
    listed: Vec<ObjectRef<K>>,
    /// What the store held when a re-list began (empty on the first list).
    before: Vec<std::sync::Arc<K>>,
}

impl<K: Resource<DynamicType = ()>> Default for Triggers<K> {
    fn default() -> Self {
        Self { listed: Vec::new(), before: Vec::new() }
    }
}

impl<K> Triggers<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    pub(super) fn after(&mut self, event: &watcher::Event<K>, store: &Store<K>) -> Vec<(K, Change)> {
        match event {
            watcher::Event::Apply(obj) => vec![(obj.clone(), Change::Applied)],
            watcher::Event::Delete(obj) => vec![(obj.clone(), Change::Deleted)],
            watcher::Event::Init => {
                // The store still shows the state before the watch restarted.
                self.before = store.state();
                self.listed.clear();
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                self.listed.push(ObjectRef::from_obj(obj));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let listed = std::mem::take(&mut self.listed);
                let mut changes: Vec<(K, Change)> =
                    listed.iter().filter_map(|r| store.get(r)).map(|obj| (K::clone(&obj), Change::Applied)).collect();
                let gone = std::mem::take(&mut self.before)
                    .into_iter()
                    .filter(|obj| store.get(&ObjectRef::from_obj(&**obj)).is_none())
                    .map(|obj| (K::clone(&obj), Change::Deleted));
                changes.extend(gone);
                changes
            }
        }
    }
}

/// What the caches keep of an object: managedFields are most of its metadata, and only the managed
/// objects' drift check needs them, as who wrote when (not which fields) — at 1,000 tenants the
/// caches hold some 30,000 objects, so every field dropped here counts.
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    let managed = meta.labels.as_ref().is_some_and(|l| l.contains_key(MANAGED));
    if !managed {
        meta.managed_fields = None;
        return;
    }
    for entry in meta.managed_fields.iter_mut().flatten() {
        entry.fields_v1 = None;
        entry.fields_type = None;
        entry.api_version = None;
        entry.operation = None;
    }
    // Managed objects are cached as metadata for applies, drift and triggers: these are never read.
    // (The creation time stays: a namespace's age tells whom it was created for, see `tenancy::claim`.)
    meta.uid = None;
    meta.generation = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(PREFIX));
    }
}

/// Whether a managed object's change needs its owner reconciled: the echo of our own apply does
/// not (the reconcile that wrote it is current); a deletion or a change by someone else is drift.
pub(super) fn is_drift<K: Resource>(obj: &K, change: Change) -> bool {
    change == Change::Deleted || apply::changed_by_others(obj.meta())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some("ns".into()), ..Default::default() },
            ..Default::default()
        }
    }

    /// Feeds events through a real reflector store, as the watch does, and collects the triggers.
    fn run(events: Vec<watcher::Event<ConfigMap>>) -> Vec<Vec<(String, Change)>> {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let mut triggers = Triggers::default();
        events
            .into_iter()
            .map(|event| {
                writer.apply_watcher_event(&event);
                triggers
                    .after(&event, &store)
                    .into_iter()
                    .map(|(o, c)| (o.metadata.name.unwrap_or_default(), c))
                    .collect()
            })
            .collect()
    }

    use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};

    #[test]
    fn the_first_list_triggers_every_object_once_the_store_has_them() {
        let out = run(vec![Init, InitApply(cm("a")), InitApply(cm("b")), InitDone]);
        assert_eq!(out[1], vec![], "nothing before the store holds the list");
        assert_eq!(out[3], vec![("a".into(), Change::Applied), ("b".into(), Change::Applied)]);
    }

    #[test]
    fn a_relist_triggers_what_it_brings_and_what_disappeared_meanwhile() {
        let out = run(vec![
            Init,
            InitApply(cm("kept")),
            InitApply(cm("removed-while-down")),
            InitDone,
            // The watch expired (410 Gone) and re-lists: "new" was created while it was down.
            Init,
            InitApply(cm("kept")),
            InitApply(cm("new")),
            InitDone,
        ]);
        assert_eq!(
            out[7],
            vec![
                ("kept".into(), Change::Applied),
                ("new".into(), Change::Applied),
                ("removed-while-down".into(), Change::Deleted)
            ]
        );
    }

    #[test]
    fn watch_events_trigger_at_once() {
        let out = run(vec![Init, InitDone, Apply(cm("a")), Delete(cm("a"))]);
        assert_eq!(out[2], vec![("a".into(), Change::Applied)]);
        assert_eq!(out[3], vec![("a".into(), Change::Deleted)]);
    }
}
