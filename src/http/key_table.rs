//! Every replica's table of API keys, by keyed hash, in memory: a key check is a hash and a map lookup
//! (microseconds), not a database round trip. Why polling and not a notification: it works the same on
//! SQLite and PostgreSQL and needs nothing new. Every [`REFRESH`] the replica reads the keys changed since
//! its last read (less an overlap for transactions that commit late), so a key revoked on any replica is
//! refused on every replica within a second. A key not in the table (created a moment ago on another
//! replica) is looked up in the ledger once. Last-use times are collected here and written in batches.

use crate::ledger::{ApiKey, Ledger};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often changes are read: with the read itself, well inside the 1 s promise.
pub const REFRESH: Duration = Duration::from_millis(250);
/// Changes are re-read this far back, so a transaction stamped earlier but committed later is not missed.
const OVERLAP: SignedDuration = SignedDuration::from_secs(5);
/// How often last-use times are written.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

pub struct KeyTable {
    ledger: Ledger,
    by_hash: RwLock<HashMap<String, Arc<ApiKey>>>,
    newest: Mutex<Option<Timestamp>>,
    used: Mutex<HashMap<String, Timestamp>>,
}

/// Why a stored key no longer works, if it does not.
pub fn unusable(key: &ApiKey, now: Timestamp) -> Option<(&'static str, String)> {
    if let Some(at) = key.revoked_at {
        return Some(("key-revoked", format!("API key {} was revoked at {at}: use another key", key.id)));
    }
    match key.expires_at {
        Some(at) if at <= now => Some(("key-expired", format!("API key {} expired at {at}: create a new key", key.id))),
        _ => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KeyTable {
    /// Loads every key and keeps the table current on its own task.
    pub async fn start(ledger: Ledger) -> crate::ledger::Result<Arc<Self>> {
        let table = Arc::new(KeyTable {
            ledger,
            by_hash: RwLock::new(HashMap::new()),
            newest: Mutex::new(None),
            used: Mutex::new(HashMap::new()),
        });
        table.refresh().await?;
        tokio::spawn(table.clone().refresh_forever());
        tokio::spawn(table.clone().touch_forever());
        Ok(table)
    }

    async fn refresh(&self) -> crate::ledger::Result<()> {
        let since = *lock(&self.newest);
        let changed = self.ledger.api_keys_changed_since(since.map(|t| t - OVERLAP)).await?;
        for key in changed {
            self.remember(key);
        }
        Ok(())
    }

    async fn refresh_forever(self: Arc<Self>) {
        let mut failing = false;
        loop {
            tokio::time::sleep(REFRESH).await;
            match self.refresh().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("API key table current again");
                }
                Ok(()) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(error = %err, "cannot refresh the API key table; revocations wait for the ledger");
                }
                Err(_) => {}
            }
        }
    }

    async fn touch_forever(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TOUCH_EVERY).await;
            self.flush_touches().await;
        }
    }

    /// Writes the collected last-use times (also at shutdown).
    pub async fn flush_touches(&self) {
        let used: Vec<(String, Timestamp)> = lock(&self.used).drain().collect();
        if used.is_empty() {
            return;
        }
        if let Err(err) = self.ledger.touch_api_keys(&used).await {
            tracing::debug!(error = %err, "cannot record API key last use; keeping it for the next round");
            let mut pending = lock(&self.used);
            for (id, at) in used {
                let slot = pending.entry(id).or_insert(at);
                *slot = (*slot).max(at);
            }
        }
    }

    /// Puts a key (new or changed) into the table.
    pub fn remember(&self, key: ApiKey) {
        let mut newest = lock(&self.newest);
        *newest = Some(newest.map_or(key.updated_at, |n| n.max(key.updated_at)));
        drop(newest);
        let mut table = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        table.insert(key.hash.clone(), Arc::new(key));
    }

    /// The key with this hash: from memory, else (once) from the ledger.
    pub async fn find(&self, hash: &str) -> crate::ledger::Result<Option<Arc<ApiKey>>> {
        if let Some(key) = self.find_cached(hash) {
            return Ok(Some(key));
        }
        let Some(key) = self.ledger.find_api_key(hash).await? else { return Ok(None) };
        self.remember(key);
        Ok(self.find_cached(hash))
    }

    pub fn find_cached(&self, hash: &str) -> Option<Arc<ApiKey>> {
        self.by_hash.read().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }

    pub fn touch(&self, id: &str, at: Timestamp) {
        lock(&self.used).insert(id.to_string(), at);
    }

    pub fn len(&self) -> usize {
        self.by_hash.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
