//! Replica leases for the Kubernetes store: each replica holds a
//! `coordination.k8s.io/v1` Lease of its own in the state namespace and
//! renews it every third of `--lease-seconds`; every replica watches the
//! Leases. A Lease that stops being renewed names a dead replica, whose
//! in-flight operations (records labelled with it as owner) are then taken
//! over. So while every replica lives, finding orphaned work costs one
//! renewal per replica per third of a lease and one open watch, however
//! many records the store holds.
//!
//! # Clocks
//! A Lease counts as lapsed when its `renewTime` has not changed for its
//! `leaseDurationSeconds` by this process's monotonic clock (as client-go's
//! leader election judges), never by comparing another machine's wall
//! clock with this one's. A Lease first seen at start gets a full duration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ::kube::api::{Api, DeleteParams, PostParams, Preconditions};
use ::kube::runtime::WatchStreamExt as _;
use ::kube::runtime::watcher;
use async_trait::async_trait;
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use tokio::sync::Notify;

use super::kubernetes::owner_label;
use crate::broker::ports::Replicas;
use crate::cluster::{Kube, MANAGED_BY};

/// Label on every replica Lease.
pub(crate) const REPLICA_LABEL: &str = "chartbroker.io/replica-lease";

/// How often [`Replicas::changed`] returns without an event: a lapse is
/// silence, so it must be looked for.
const TICK: Duration = Duration::from_millis(250);

/// How long start waits for the first list of Leases.
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// What this replica last saw of another's Lease.
struct Seen {
    name: String,
    resource_version: Option<String>,
    renewed: Option<String>,
    observed: Instant,
    duration: Duration,
}

/// The replicas sharing a state namespace, by their Leases.
pub(crate) struct KubeReplicas {
    api: Api<Lease>,
    me: String,
    name: String,
    duration: Duration,
    seen: Mutex<HashMap<String, Seen>>,
    notify: Notify,
    /// Becomes true once the watch has listed the Leases.
    synced: tokio::sync::watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for KubeReplicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeReplicas")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeReplicas {
    fn drop(&mut self) {
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
    }
}

/// The Lease name of replica `me`.
pub(crate) fn lease_name(me: &str) -> String {
    format!(
        "cbr-{}",
        owner_label(me).to_ascii_lowercase().replace('_', "-")
    )
}

fn status_code(e: &::kube::Error) -> Option<u16> {
    match e {
        ::kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

impl KubeReplicas {
    /// Creates this replica's Lease (`me`, held for `duration`) in
    /// `namespace` and starts renewing it and watching the others'. Fails
    /// when the API server or the broker's RBAC has no Leases; the caller
    /// then falls back to per-operation heartbeats and periodic sweeps.
    pub(crate) async fn start(
        kube: &Kube,
        namespace: &str,
        me: &str,
        duration: Duration,
    ) -> Result<Arc<Self>, String> {
        let this = Arc::new(KubeReplicas {
            api: Api::namespaced(kube.client(), namespace),
            me: me.to_string(),
            name: lease_name(me),
            duration,
            seen: Mutex::default(),
            notify: Notify::new(),
            synced: tokio::sync::watch::channel(false).0,
            tasks: Mutex::default(),
        });
        let rv = this
            .api
            .create(&PostParams::default(), &this.lease(None))
            .await
            .map_err(|e| format!("creating Lease {namespace}/{}: {e}", this.name))?
            .metadata
            .resource_version;
        let renew = tokio::spawn(renew(Arc::downgrade(&this), rv));
        let watch = tokio::spawn(watch(Arc::downgrade(&this)));
        this.tasks
            .lock()
            .expect("tasks lock")
            .extend([renew, watch]);
        // The start-up resume judges owners by their Leases when it can;
        // until the watch has listed them, by the operations' heartbeats.
        let mut synced = this.synced.subscribe();
        if tokio::time::timeout(SYNC_WAIT, synced.wait_for(|s| *s))
            .await
            .is_err()
        {
            tracing::warn!(
                "the replicas' Leases are not listed yet; judging operations by their heartbeats meanwhile"
            );
        }
        Ok(this)
    }

    fn lease(&self, resource_version: Option<String>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(
                    [
                        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                        (REPLICA_LABEL.to_string(), "true".to_string()),
                    ]
                    .into(),
                ),
                resource_version,
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.me.clone()),
                lease_duration_seconds: Some(
                    i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX),
                ),
                renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
                ..Default::default()
            }),
        }
    }

    /// Records a Lease as seen now; a renewal restarts its clock.
    fn saw(&self, l: &Lease, into: &mut HashMap<String, Seen>, before: &HashMap<String, Seen>) {
        let Some(spec) = &l.spec else { return };
        let Some(holder) = spec.holder_identity.clone() else {
            return;
        };
        let renewed = spec.renew_time.as_ref().map(|t| t.0.to_string());
        let observed = match before.get(&holder) {
            Some(s) if s.renewed == renewed => s.observed,
            _ => Instant::now(),
        };
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.duration);
        into.insert(
            holder,
            Seen {
                name: l.metadata.name.clone().unwrap_or_default(),
                resource_version: l.metadata.resource_version.clone(),
                renewed,
                observed,
                duration,
            },
        );
    }
}

/// Renews this replica's Lease every third of its duration.
async fn renew(this: Weak<KubeReplicas>, mut rv: Option<String>) {
    loop {
        let every = match this.upgrade() {
            Some(t) => (t.duration / 3).max(Duration::from_millis(500)),
            None => return,
        };
        tokio::time::sleep(every).await;
        let Some(t) = this.upgrade() else { return };
        let result = match t
            .api
            .replace(&t.name, &PostParams::default(), &t.lease(rv.clone()))
            .await
        {
            Ok(l) => Ok(l),
            // Someone else wrote it (or deleted it, taking this replica for
            // dead): write it again as this replica's.
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => {
                match t.api.get_opt(&t.name).await {
                    Ok(Some(cur)) => {
                        t.api
                            .replace(
                                &t.name,
                                &PostParams::default(),
                                &t.lease(cur.metadata.resource_version),
                            )
                            .await
                    }
                    Ok(None) => t.api.create(&PostParams::default(), &t.lease(None)).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(l) => rv = l.metadata.resource_version,
            Err(e) => {
                tracing::warn!(lease = %t.name, error = %e,
                    "could not renew this replica's Lease; others take its operations over once it lapses")
            }
        }
    }
}

/// Keeps the map of replicas' Leases from a watch (one list when it starts
/// or must restart, then changes only).
async fn watch(this: Weak<KubeReplicas>) {
    let Some(api) = this.upgrade().map(|t| t.api.clone()) else {
        return;
    };
    let config = watcher::Config::default().labels(&format!("{REPLICA_LABEL}=true"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut fresh: Option<HashMap<String, Seen>> = None;
    while let Some(event) = events.next().await {
        let Some(t) = this.upgrade() else { return };
        match event {
            Ok(watcher::Event::Init) => fresh = Some(HashMap::new()),
            Ok(watcher::Event::InitApply(l)) => {
                let seen = t.seen.lock().expect("seen lock");
                if let Some(f) = fresh.as_mut() {
                    t.saw(&l, f, &seen);
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(f) = fresh.take() {
                    *t.seen.lock().expect("seen lock") = f;
                }
                t.synced.send_replace(true);
                t.notify.notify_waiters();
            }
            Ok(watcher::Event::Apply(l)) => {
                let mut seen = t.seen.lock().expect("seen lock");
                let mut one = HashMap::new();
                t.saw(&l, &mut one, &seen);
                seen.extend(one);
                drop(seen);
                t.notify.notify_waiters();
            }
            Ok(watcher::Event::Delete(l)) => {
                if let Some(h) = l.spec.and_then(|s| s.holder_identity) {
                    t.seen.lock().expect("seen lock").remove(&h);
                }
                t.notify.notify_waiters();
            }
            Err(e) => tracing::warn!(error = %e, "watching the replicas' Leases failed; retrying"),
        }
    }
}

#[async_trait]
impl Replicas for KubeReplicas {
    fn live(&self, owner: &str) -> Option<bool> {
        if owner == self.me {
            return Some(true);
        }
        self.seen
            .lock()
            .expect("seen lock")
            .get(owner)
            .map(|s| s.observed.elapsed() <= s.duration)
    }

    fn lapsed(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("seen lock")
            .iter()
            .filter(|(h, s)| **h != self.me && s.observed.elapsed() > s.duration)
            .map(|(h, _)| h.clone())
            .collect()
    }

    async fn changed(&self) {
        let _ = tokio::time::timeout(TICK, self.notify.notified()).await;
    }

    fn leases(&self) -> Vec<crate::broker::ports::LeaseView> {
        let seen = self.seen.lock().expect("seen lock");
        let mut out: Vec<_> = seen
            .iter()
            .map(|(holder, s)| crate::broker::ports::LeaseView {
                holder: holder.clone(),
                name: s.name.clone(),
                renewed: s.renewed.clone(),
                duration_secs: s.duration.as_secs(),
                seen_secs_ago: s.observed.elapsed().as_secs(),
                live: *holder == self.me || s.observed.elapsed() <= s.duration,
                own: *holder == self.me,
            })
            .collect();
        out.sort_by(|a, b| a.holder.cmp(&b.holder));
        out
    }

    async fn release(&self, owner: &str) {
        let Some((name, rv)) = self
            .seen
            .lock()
            .expect("seen lock")
            .remove(owner)
            .map(|s| (s.name, s.resource_version))
        else {
            return;
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: rv,
                uid: None,
            }),
            ..Default::default()
        };
        match self.api.delete(&name, &params).await {
            Ok(_) => {}
            // Gone already, or renewed meanwhile (the watch brings it back).
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => {}
            Err(e) => {
                tracing::warn!(lease = %name, error = %e, "could not delete a lapsed replica's Lease")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lease_name;

    fn dns_label(s: &str) -> bool {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.ends_with('-')
    }

    #[test]
    fn a_replica_id_names_its_lease_and_odd_ids_are_hashed_into_a_valid_name() {
        let id = "4242-0f5e7a9c-3b1d-4c8e-9f00-123456789abc";
        assert_eq!(lease_name(id), format!("cbr-{id}"));
        for odd in ["Upper_Case", "a/b c", &"x".repeat(80), "-leading"] {
            let name = lease_name(odd);
            assert!(dns_label(&name), "{odd:?} -> {name}");
            assert_ne!(name, lease_name("other"));
        }
    }
}
