//! What this broker knows about records it cannot open. A replica given the
//! wrong store key (or reading tampered records) fails readiness and says
//! which record and why, instead of answering an opaque 500 per request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::seal::SealError;

/// Called once per store error, with its kind (`unknown_key`, `tampered`,
/// `format`, `legacy_key`, `backend`): feeds the metrics.
pub(crate) type ErrorObserver = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Records this broker met and could not open, by record name. A record
/// leaves the set once it opens, is rewritten or removed.
#[derive(Default)]
pub struct StoreHealth {
    /// (table, key) -> why.
    unreadable: Mutex<BTreeMap<(String, String), String>>,
    observer: Option<ErrorObserver>,
}

impl std::fmt::Debug for StoreHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHealth")
            .field("unreadable", &self.unreadable_count())
            .finish()
    }
}

/// A record name for people: keys may hold NUL (instance NUL binding).
pub(crate) fn display_record(table: &str, key: &str) -> String {
    format!("{table}/{}", key.replace('\0', "/"))
}

impl StoreHealth {
    /// Health that reports each error to `observer`.
    pub(crate) fn with_observer(observer: ErrorObserver) -> Self {
        StoreHealth {
            observer: Some(observer),
            ..Default::default()
        }
    }

    /// Counts an error of `kind`.
    pub(crate) fn error(&self, kind: &'static str) {
        if let Some(o) = &self.observer {
            o(kind);
        }
    }

    /// `key` of `table` did not open; returns the message callers report.
    pub(crate) fn unreadable(&self, table: &str, key: &str, e: &SealError) -> String {
        self.error(e.kind());
        let why = format!("store record {}: {e}", display_record(table, key));
        self.unreadable
            .lock()
            .expect("health lock")
            .insert((table.to_string(), key.to_string()), why.clone());
        why
    }

    /// `key` of `table` opened, was rewritten or removed.
    pub(crate) fn readable(&self, table: &str, key: &str) {
        let mut u = self.unreadable.lock().expect("health lock");
        if !u.is_empty() {
            u.remove(&(table.to_string(), key.to_string()));
        }
    }

    /// A complete listing of `table`'s keys starting with `prefix` found
    /// exactly the keys `failed` unreadable: others it knew of there are gone.
    pub(crate) fn relisted(&self, table: &str, prefix: &str, failed: &BTreeSet<String>) {
        self.unreadable
            .lock()
            .expect("health lock")
            .retain(|(t, k), _| t != table || !k.starts_with(prefix) || failed.contains(k));
    }

    /// How many records this broker currently cannot open.
    pub fn unreadable_count(&self) -> usize {
        self.unreadable.lock().expect("health lock").len()
    }

    /// Why this broker is not fit to serve, if it is not.
    pub fn problem(&self) -> Option<String> {
        let u = self.unreadable.lock().expect("health lock");
        let (_, first) = u.iter().next()?;
        Some(match u.len() {
            1 => first.clone(),
            n => format!("{n} store records cannot be opened, e.g. {first}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_a_problem_until_it_opens_again() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let h = StoreHealth::with_observer(Arc::new(move |k| s.lock().unwrap().push(k)));
        assert!(h.problem().is_none());
        let why = h.unreadable(
            "bindings",
            "i\0b",
            &SealError::UnknownKey {
                key_id: "00112233aabbccdd".into(),
            },
        );
        assert!(why.contains("bindings/i/b"), "{why}");
        assert!(why.contains("00112233aabbccdd"), "{why}");
        assert_eq!(h.problem().as_deref(), Some(why.as_str()));
        h.unreadable("instances", "x", &SealError::Open);
        assert!(h.problem().unwrap().starts_with("2 store records"));
        h.readable("bindings", "i\0b");
        assert_eq!(h.unreadable_count(), 1);
        // A listing of another table or prefix, or one that still fails
        // it, keeps it.
        h.relisted("bindings", "", &Default::default());
        h.relisted("instances", "y", &Default::default());
        h.relisted("instances", "", &["x".to_string()].into());
        assert_eq!(h.unreadable_count(), 1);
        // Gone from a complete listing: forgotten.
        h.relisted("instances", "", &Default::default());
        assert!(h.problem().is_none());
        assert_eq!(*seen.lock().unwrap(), ["unknown_key", "tampered"]);
    }
}
