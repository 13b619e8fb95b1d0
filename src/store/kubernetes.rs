//! The cluster store: one Secret per record in the broker's own namespace,
//! so several broker replicas share state and HA rides on etcd.
//!
//! # Objects
//! A record of `table` under `key` is the Secret
//! `cbs-<table>-<first 40 hex digits of sha256(key)>` of type
//! [`SECRET_TYPE`], labelled `app.kubernetes.io/managed-by: chartbroker` and
//! [`TABLE_LABEL`]`: <table>` (bindings also carry [`INSTANCE_LABEL`], the
//! hash of the instance id, so one instance's bindings list by selector).
//! Annotation [`KEY_ANNOTATION`] holds the key in base64 (keys may contain
//! NUL), [`VERSION_ANNOTATION`] the record's version in decimal, and
//! `data.value` the value sealed exactly as the redb store seals it (AEAD
//! associated data `"<table>/<key>"`), so the API server, etcd and anyone
//! with `get secrets` only ever see ciphertext.
//!
//! # Versions and compare-and-swap
//! A record's version is a fresh random `u64` per write, kept in the
//! annotation; it never repeats for a key (not even across delete and
//! recreate), so a stale writer cannot win. `resourceVersion` is opaque and
//! never parsed: it is only handed back to the API server as a precondition.
//! Every write is one atomic compare-and-swap using documented behaviour:
//! - `put(Absent)`: POST; 409 AlreadyExists is a [`StoreError::Conflict`].
//! - `put(Version(v))`: GET, compare the annotation with `v`, then PUT with
//!   the fetched `resourceVersion`; the API server answers 409 if anything
//!   wrote in between.
//! - `remove(v)`: GET, compare, then DELETE with a `resourceVersion` (and
//!   uid) precondition; 404 and 409 are conflicts.
//!
//! # Tags
//! A record whose operation is in flight carries [`OWNER_LABEL`] naming the
//! replica running it, and a tombstone [`TOMBSTONE_LABEL`], so a replica
//! taking a dead one's work over, or forgetting old tombstones, lists only
//! those records by label selector, however many records there are.
//!
//! A Secret being deleted (a `deletionTimestamp`, held by a finalizer someone
//! else added) counts as absent for reads and as a conflict for writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use ::kube::api::{Api, DeleteParams, PostParams, Preconditions};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ring::rand::{SecureRandom, SystemRandom};

use super::health::StoreHealth;
use super::seal::Sealer;
use crate::broker::ports::{Expect, Put, Store, StoreError, Table, Tag, Tags, WriteResult};
use crate::cluster::{Kube, MANAGED_BY};

mod key_check;
mod list;
mod secret;

pub use key_check::{KEY_CHECK_SECRET, key_from_secret};
pub(crate) use secret::owner_label;
pub use secret::secret_name;
use secret::{aad, hash40, key_of, labels, name_of, status_code, terminating, version_of};

/// The `type` of every record Secret.
pub(crate) const SECRET_TYPE: &str = "chartbroker.io/state";
/// Label: the record's table.
pub(crate) const TABLE_LABEL: &str = "chartbroker.io/table";
/// Label on binding records: 40 hex digits of sha256 of the instance id.
pub(crate) const INSTANCE_LABEL: &str = "chartbroker.io/instance";
/// Label on records with an operation in flight: the replica running it
/// (its id, or `h` and a hash of it when the id is no label value).
pub(crate) const OWNER_LABEL: &str = "chartbroker.io/owner";
/// Label on tombstones: `"true"`.
pub(crate) const TOMBSTONE_LABEL: &str = "chartbroker.io/tombstone";
/// Annotation: the record's key, base64.
pub(crate) const KEY_ANNOTATION: &str = "chartbroker.io/key";
/// Annotation: the record's version, decimal.
pub(crate) const VERSION_ANNOTATION: &str = "chartbroker.io/version";
/// The data key of the sealed value.
const VALUE_KEY: &str = "value";
/// Items per LIST page.
const DEFAULT_PAGE_SIZE: u32 = 500;

/// Called once per LIST request with what it selects: `all` (every record
/// of a table), `prefix` (one instance's bindings) or `tagged` (by owner or
/// tombstone). Feeds the metrics, so a full re-list shows.
pub(crate) type ListObserver = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The Secret-backed [`Store`]. Cheap to share; every instance (in this
/// process or another replica) pointed at the same namespace sees the same
/// records.
pub struct KubeStore {
    api: Api<Secret>,
    namespace: String,
    sealer: Arc<Sealer>,
    rng: SystemRandom,
    page_size: u32,
    health: Arc<StoreHealth>,
    lists: Option<ListObserver>,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl KubeStore {
    /// A store over the Secrets of `namespace` (the broker's own, which must
    /// exist), reached through `kube`, sealing values with `sealer`. Every
    /// replica must use the same sealing key.
    pub fn new(kube: &Kube, namespace: impl Into<String>, sealer: Sealer) -> Self {
        let namespace = namespace.into();
        KubeStore {
            api: Api::namespaced(kube.client(), &namespace),
            namespace,
            sealer: Arc::new(sealer),
            rng: SystemRandom::new(),
            page_size: DEFAULT_PAGE_SIZE,
            health: Arc::default(),
            lists: None,
        }
    }

    /// Reports records that don't open (and API failures) to `health`.
    pub fn with_health(mut self, health: Arc<StoreHealth>) -> Self {
        self.health = health;
        self
    }

    /// Reports every LIST request to `observer`.
    pub(crate) fn with_list_observer(mut self, observer: ListObserver) -> Self {
        self.lists = Some(observer);
        self
    }

    /// Sets how many Secrets one LIST request returns (default 500).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The namespace the records live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn backend(&self, action: &str, name: &str, e: ::kube::Error) -> StoreError {
        self.health.error("backend");
        StoreError::Backend(format!(
            "kubernetes API: {action} Secret {}/{name}: {e}",
            self.namespace
        ))
    }

    /// A random version, never `avoid` (the one being replaced).
    fn fresh_version(&self, avoid: Option<u64>) -> Result<u64, StoreError> {
        loop {
            let mut b = [0u8; 8];
            self.rng
                .fill(&mut b)
                .map_err(|_| StoreError::Backend("the system RNG failed".into()))?;
            let v = u64::from_le_bytes(b);
            if Some(v) != avoid {
                return Ok(v);
            }
        }
    }

    /// The record Secret as this store writes it.
    fn build(&self, table: Table, key: &str, value: &[u8], version: u64, tags: &Tags) -> Secret {
        let name = secret_name(table, key);
        Secret {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels(table, key, tags)),
                annotations: Some(BTreeMap::from([
                    (KEY_ANNOTATION.to_string(), B64.encode(key)),
                    (VERSION_ANNOTATION.to_string(), version.to_string()),
                ])),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(BTreeMap::from([(
                VALUE_KEY.to_string(),
                ByteString(self.sealer.seal(&aad(table, key), value)),
            )])),
            ..Default::default()
        }
    }

    /// The live (not terminating) record Secret of `key`, checked to be this
    /// key's.
    async fn fetch(&self, table: Table, key: &str) -> Result<Option<Secret>, StoreError> {
        let name = secret_name(table, key);
        let found = self
            .api
            .get_opt(&name)
            .await
            .map_err(|e| self.backend("reading", &name, e))?;
        match found {
            Some(s) if terminating(&s) => Ok(None),
            Some(s) => {
                if key_of(&s).as_deref() != Some(key) {
                    return Err(StoreError::Backend(format!(
                        "Secret {}/{name} does not hold the record it is named for",
                        self.namespace
                    )));
                }
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    /// Opens a record Secret already known to hold `key` of `table`.
    fn decode(&self, table: Table, key: &str, s: &Secret) -> Result<(Vec<u8>, u64), StoreError> {
        let corrupt = |what: &str| {
            StoreError::Backend(format!(
                "corrupt record in Secret {}/{}: {what}",
                self.namespace,
                name_of(s)
            ))
        };
        let version = version_of(s).ok_or_else(|| corrupt("no valid version annotation"))?;
        let sealed = s
            .data
            .as_ref()
            .and_then(|d| d.get(VALUE_KEY))
            .ok_or_else(|| corrupt("no value"))?;
        let plain = self.sealer.open(&aad(table, key), &sealed.0).map_err(|e| {
            let why = self.health.unreadable(table.name(), key, &e);
            StoreError::Unreadable(format!("{why} (Secret {}/{})", self.namespace, name_of(s)))
        })?;
        self.health.readable(table.name(), key);
        Ok((plain, version))
    }
}

#[async_trait]
impl Store for KubeStore {
    async fn get(&self, table: Table, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        match self.fetch(table, key).await? {
            Some(s) => self.decode(table, key, &s).map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, table: Table, key: &str, value: Vec<u8>, expect: Expect) -> WriteResult {
        let put = Put::new(table, key, value, expect);
        self.put_tagged(put, &Tags::default()).await
    }

    async fn put_tagged(&self, put: Put<'_>, tags: &Tags) -> WriteResult {
        let Put {
            table,
            key,
            value,
            expect,
        } = put;
        let name = secret_name(table, key);
        match expect {
            Expect::Absent => {
                let version = self.fresh_version(None)?;
                let secret = self.build(table, key, &value, version, tags);
                match self.api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        self.health.readable(table.name(), key);
                        Ok(version)
                    }
                    Err(e) if status_code(&e) == Some(409) => Err(StoreError::Conflict),
                    Err(e) => Err(self.backend("creating", &name, e)),
                }
            }
            Expect::Version(want) => {
                let Some(current) = self.fetch(table, key).await? else {
                    return Err(StoreError::Conflict);
                };
                if version_of(&current) != Some(want) {
                    return Err(StoreError::Conflict);
                }
                let version = self.fresh_version(Some(want))?;
                let mut secret = self.build(table, key, &value, version, tags);
                // The precondition: the API server refuses the replace with
                // 409 if the Secret changed since it was read.
                secret.metadata.resource_version = current.metadata.resource_version;
                secret.metadata.uid = current.metadata.uid;
                match self
                    .api
                    .replace(&name, &PostParams::default(), &secret)
                    .await
                {
                    Ok(_) => {
                        self.health.readable(table.name(), key);
                        Ok(version)
                    }
                    Err(e) if matches!(status_code(&e), Some(404 | 409)) => {
                        Err(StoreError::Conflict)
                    }
                    Err(e) => Err(self.backend("replacing", &name, e)),
                }
            }
        }
    }

    async fn remove(&self, table: Table, key: &str, version: u64) -> Result<(), StoreError> {
        let name = secret_name(table, key);
        let Some(current) = self.fetch(table, key).await? else {
            return Err(StoreError::Conflict);
        };
        if version_of(&current) != Some(version) {
            return Err(StoreError::Conflict);
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: current.metadata.resource_version,
                uid: current.metadata.uid,
            }),
            ..Default::default()
        };
        match self.api.delete(&name, &params).await {
            Ok(_) => {
                self.health.readable(table.name(), key);
                Ok(())
            }
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => Err(StoreError::Conflict),
            Err(e) => Err(self.backend("deleting", &name, e)),
        }
    }

    async fn list(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError> {
        let mut selector = format!(
            "{}={},{TABLE_LABEL}={}",
            MANAGED_BY.0,
            MANAGED_BY.1,
            table.name()
        );
        // One instance's bindings: `instance_id + "\0"`. Binding records are
        // labelled by the key's part before its first NUL, so the selector
        // is exact only when the instance id itself has none.
        if table == Table::Bindings
            && let Some(instance) = prefix.strip_suffix('\0')
            && !instance.contains('\0')
        {
            write!(selector, ",{INSTANCE_LABEL}={}", hash40(instance))
                .expect("writing to a String");
        }
        let selects = if prefix.is_empty() { "all" } else { "prefix" };
        let (out, failed) = self
            .list_selected(table, &selector, prefix, selects)
            .await?;
        // Records that could not be opened and have since been deleted by
        // another replica stop failing readiness here.
        self.health.relisted(table.name(), prefix, &failed);
        Ok(out)
    }

    async fn tagged(
        &self,
        table: Table,
        tag: Tag<'_>,
    ) -> Result<Option<Vec<(String, Vec<u8>, u64)>>, StoreError> {
        let selector = match tag {
            Tag::Owner(owner) => format!(
                "{}={},{TABLE_LABEL}={},{OWNER_LABEL}={}",
                MANAGED_BY.0,
                MANAGED_BY.1,
                table.name(),
                owner_label(owner)
            ),
            Tag::Tombstone => format!(
                "{}={},{TABLE_LABEL}={},{TOMBSTONE_LABEL}=true",
                MANAGED_BY.0,
                MANAGED_BY.1,
                table.name()
            ),
        };
        let (out, _) = self.list_selected(table, &selector, "", "tagged").await?;
        Ok(Some(out))
    }
}
