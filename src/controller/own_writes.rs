//! Our own writes that the caches have not shown yet. A reconcile triggered by something else
//! right after we wrote an object would otherwise decide from the version before that write and
//! repeat it: a second status write, a second event, a finalizer added twice (refused, 422).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this, a write the cache never showed (its watch restarted, say) no longer holds anything up.
const MAX_WAIT: Duration = Duration::from_secs(3);

/// (kind, name) of an object.
type Key = (&'static str, String);

/// The resourceVersion an object had before our write, and when we wrote.
struct Pending {
    before: String,
    at: Instant,
}

#[derive(Default)]
pub struct OwnWrites {
    pending: Mutex<HashMap<Key, Pending>>,
}

impl OwnWrites {
    /// Records that we changed `name` from version `before` to `after` (unchanged: nothing to wait for).
    pub fn wrote(&self, kind: &'static str, name: &str, before: Option<&str>, after: Option<&str>) {
        let (Some(before), true) = (before, before != after) else { return };
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert((kind, name.to_string()), Pending { before: before.to_string(), at: Instant::now() });
        }
    }

    /// Whether the cache still shows `name` as it was before our latest write: its watch event is on
    /// the way and triggers a reconcile that sees the write.
    pub fn cache_behind(&self, kind: &'static str, name: &str, cached: Option<&str>) -> bool {
        let Ok(mut pending) = self.pending.lock() else { return false };
        let key = (kind, name.to_string());
        match pending.get(&key) {
            Some(p) if Some(p.before.as_str()) == cached && p.at.elapsed() < MAX_WAIT => true,
            Some(_) => {
                pending.remove(&key);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_until_the_cache_shows_another_version() {
        let writes = OwnWrites::default();
        assert!(!writes.cache_behind("Team", "a", Some("1")), "nothing written");
        writes.wrote("Team", "a", Some("1"), Some("2"));
        assert!(writes.cache_behind("Team", "a", Some("1")));
        assert!(!writes.cache_behind("Team", "b", Some("1")), "another object");
        assert!(!writes.cache_behind("Organization", "a", Some("1")), "another kind");
        assert!(!writes.cache_behind("Team", "a", Some("2")), "the cache caught up");
        assert!(!writes.cache_behind("Team", "a", Some("1")), "forgotten once caught up");
    }

    #[test]
    fn a_write_that_changed_nothing_waits_for_nothing() {
        let writes = OwnWrites::default();
        writes.wrote("Team", "a", Some("1"), Some("1"));
        assert!(!writes.cache_behind("Team", "a", Some("1")));
    }

    #[test]
    fn a_later_write_by_someone_else_counts_as_caught_up() {
        let writes = OwnWrites::default();
        writes.wrote("Team", "a", Some("1"), Some("2"));
        assert!(!writes.cache_behind("Team", "a", Some("3")));
    }
}
