//! The releases' object records of each namespace, kept in memory while
//! the namespace's `.objects` folder is unchanged, so a bind or a render
//! reads one folder's timestamp instead of every release's record.
//!
//! The broker's own changes update the copy under the claims lock; any
//! other change to `.objects` (a record added, replaced or removed by hand)
//! changes the folder's modification time, and the next check reads the
//! folder again. Release folders that predate records are read from their
//! manifests when the namespace is first read or `.objects` changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a namespace's records looked like, and when `.objects` last changed.
struct Entry<T> {
    stamp: Option<SystemTime>,
    records: Arc<Vec<T>>,
}

/// Records per namespace.
pub(super) struct Cache<T>(Mutex<HashMap<String, Entry<T>>>);

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }
}

/// The modification time of `objects` (a namespace's `.objects` folder),
/// `None` when it does not exist.
///
/// One `statx` on the calling task: through `tokio::fs` each such call
/// was a blocking-pool hand-off (a futex wake of a pool thread, then an
/// eventfd wake of the runtime), which cost more CPU than the call itself.
pub(super) fn stamp(objects: &Path) -> Option<SystemTime> {
    std::fs::metadata(objects)
        .ok()
        .and_then(|m| m.modified().ok())
}

impl<T: Clone> Cache<T> {
    /// The records of `namespace` if they were read at `stamp`.
    pub(super) fn get(&self, namespace: &str, stamp: Option<SystemTime>) -> Option<Arc<Vec<T>>> {
        let map = self.0.lock().expect("records lock");
        map.get(namespace)
            .filter(|e| stamp.is_some() && e.stamp == stamp)
            .map(|e| e.records.clone())
    }

    /// Keeps `records` of `namespace` as read at `stamp`.
    pub(super) fn put(&self, namespace: &str, stamp: Option<SystemTime>, records: Arc<Vec<T>>) {
        let mut map = self.0.lock().expect("records lock");
        map.insert(namespace.to_string(), Entry { stamp, records });
    }

    /// Applies the broker's own change to the kept records (if any), which
    /// left `.objects` at `stamp`.
    pub(super) fn update(
        &self,
        namespace: &str,
        stamp: Option<SystemTime>,
        change: impl FnOnce(&mut Vec<T>),
    ) {
        let mut map = self.0.lock().expect("records lock");
        if let Some(e) = map.get_mut(namespace) {
            let mut records = (*e.records).clone();
            change(&mut records);
            e.records = Arc::new(records);
            e.stamp = stamp;
        }
    }
}
