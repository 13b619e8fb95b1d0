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

use ::kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::health::StoreHealth;
use super::seal::{SealError, Sealer};
use crate::broker::ports::{Expect, Store, StoreError, Table, Tag, Tags};
use crate::cluster::{Kube, MANAGED_BY};

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
/// The Secret that records which store key this namespace's records are
/// sealed with (a sealed constant), so a replica given another key is
/// refused at start instead of failing record by record.
pub const KEY_CHECK_SECRET: &str = "cbs-keycheck";
const KEY_CHECK_RECORD: &str = "keycheck";
const KEY_CHECK_PLAIN: &[u8] = b"chartbroker store key check";
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

/// First 40 hex digits of sha256(`s`): label-value and name safe.
fn hash40(s: &str) -> String {
    let d = digest(&SHA256, s.as_bytes());
    let mut out = String::with_capacity(40);
    for b in &d.as_ref()[..20] {
        write!(out, "{b:02x}").expect("writing to a String");
    }
    out
}

/// The Secret holding `key` of `table`.
pub fn secret_name(table: Table, key: &str) -> String {
    format!("cbs-{}-{}", table.name(), hash40(key))
}

fn aad(table: Table, key: &str) -> String {
    format!("{}/{key}", table.name())
}

fn status_code(e: &::kube::Error) -> Option<u16> {
    match e {
        ::kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// `owner` as a label value: itself when it is one, else a hash.
pub(crate) fn owner_label(owner: &str) -> String {
    let valid = !owner.is_empty()
        && owner.len() <= 63
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && owner.starts_with(|c: char| c.is_ascii_alphanumeric())
        && owner.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        owner.to_string()
    } else {
        format!("h{}", hash40(owner))
    }
}

fn labels(table: Table, key: &str, tags: &Tags) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (TABLE_LABEL.to_string(), table.name().to_string()),
    ]);
    if table == Table::Bindings
        && let Some((instance, _)) = key.split_once('\0')
    {
        l.insert(INSTANCE_LABEL.to_string(), hash40(instance));
    }
    if let Some(owner) = &tags.owner {
        l.insert(OWNER_LABEL.to_string(), owner_label(owner));
    }
    if tags.tombstone {
        l.insert(TOMBSTONE_LABEL.to_string(), "true".to_string());
    }
    l
}

fn annotation<'a>(s: &'a Secret, name: &str) -> Option<&'a str> {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(name))
        .map(String::as_str)
}

fn version_of(s: &Secret) -> Option<u64> {
    annotation(s, VERSION_ANNOTATION).and_then(|v| v.parse().ok())
}

fn key_of(s: &Secret) -> Option<String> {
    let raw = B64.decode(annotation(s, KEY_ANNOTATION)?).ok()?;
    String::from_utf8(raw).ok()
}

fn terminating(s: &Secret) -> bool {
    s.metadata.deletion_timestamp.is_some()
}

fn name_of(s: &Secret) -> &str {
    s.metadata.name.as_deref().unwrap_or("<unnamed>")
}

/// The store key held in Secret `name` of `namespace`: `store.key` is the
/// current key, every `old-*` entry an old one (read only). Errors name the
/// Secret and entry, never a value.
pub async fn key_from_secret(
    kube: &Kube,
    namespace: &str,
    name: &str,
) -> Result<Sealer, SealError> {
    let bad = |what: String| SealError::Io {
        path: format!("Secret {namespace}/{name}"),
        source: std::io::Error::other(what),
    };
    let secret = Api::<Secret>::namespaced(kube.client(), namespace)
        .get(name)
        .await
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    let data = secret.data.unwrap_or_default();
    let text = |k: &str, v: &ByteString| {
        std::str::from_utf8(&v.0)
            .map(str::to_string)
            .map_err(|_| bad(format!("entry {k} is not base64 text")))
    };
    let current = data
        .get("store.key")
        .ok_or_else(|| bad("has no entry store.key".into()))?;
    let mut sealer = Sealer::from_base64(&text("store.key", current)?)
        .map_err(|e| bad(format!("entry store.key: {e}")))?;
    for (k, v) in data.iter().filter(|(k, _)| k.starts_with("old-")) {
        sealer = sealer
            .with_old_base64(&text(k, v)?)
            .map_err(|e| bad(format!("entry {k}: {e}")))?;
    }
    Ok(sealer)
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

    /// Refuses a store key other than the one this namespace's records are
    /// sealed with; call once at start. The first broker to start records
    /// its key; one given an old key as well rewrites the record with its
    /// current key (a rotation).
    pub async fn check_key(&self) -> Result<(), StoreError> {
        for _ in 0..3 {
            let Some(found) = self
                .api
                .get_opt(KEY_CHECK_SECRET)
                .await
                .map_err(|e| self.backend("reading", KEY_CHECK_SECRET, e))?
            else {
                match self
                    .api
                    .create(&PostParams::default(), &self.key_check(None))
                    .await
                {
                    Ok(_) => return Ok(()),
                    // Another replica recorded its key first: check against it.
                    Err(e) if status_code(&e) == Some(409) => continue,
                    Err(e) => return Err(self.backend("creating", KEY_CHECK_SECRET, e)),
                }
            };
            let sealed = found
                .data
                .as_ref()
                .and_then(|d| d.get(VALUE_KEY))
                .map(|b| b.0.as_slice())
                .unwrap_or_default();
            match self.sealer.open(KEY_CHECK_RECORD, sealed) {
                Ok(plain) if plain == KEY_CHECK_PLAIN => {}
                Ok(_) => return Err(self.key_refused(&SealError::Open)),
                Err(e) => return Err(self.key_refused(&e)),
            }
            if self.sealer.sealed_with_current(sealed) {
                return Ok(());
            }
            let mut replace = self.key_check(found.metadata.resource_version.clone());
            replace.metadata.uid = found.metadata.uid.clone();
            match self
                .api
                .replace(KEY_CHECK_SECRET, &PostParams::default(), &replace)
                .await
            {
                Ok(_) => {
                    tracing::info!(key_id = %self.sealer.key_id(),
                        "the store key check now names this broker's current key");
                    return Ok(());
                }
                Err(e) if matches!(status_code(&e), Some(404 | 409)) => continue,
                Err(e) => return Err(self.backend("replacing", KEY_CHECK_SECRET, e)),
            }
        }
        Err(StoreError::Backend(format!(
            "Secret {}/{KEY_CHECK_SECRET} kept changing while this broker checked its store key",
            self.namespace
        )))
    }

    fn key_check(&self, resource_version: Option<String>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(KEY_CHECK_SECRET.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                resource_version,
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(BTreeMap::from([(
                VALUE_KEY.to_string(),
                ByteString(self.sealer.seal(KEY_CHECK_RECORD, KEY_CHECK_PLAIN)),
            )])),
            ..Default::default()
        }
    }

    fn key_refused(&self, e: &SealError) -> StoreError {
        self.health.error(e.kind());
        StoreError::Unreadable(format!(
            "the store in namespace {ns} (Secret {ns}/{KEY_CHECK_SECRET}) is not sealed with this \
             broker's store key {id}: {e}. Replicas with different keys cannot read each other's \
             records, so give every replica the same key (--store-key-file, CHARTBROKER_STORE_KEY \
             or --store-key-secret)",
            ns = self.namespace,
            id = self.sealer.key_id(),
        ))
    }

    /// Sets how many Secrets one LIST request returns (default 250).
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

    async fn put(
        &self,
        table: Table,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        self.put_tagged(table, key, value, expect, &Tags::default())
            .await
    }

    async fn put_tagged(
        &self,
        table: Table,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
        tags: &Tags,
    ) -> Result<u64, StoreError> {
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

impl KubeStore {
    /// The records `selector` selects whose keys start with `prefix`,
    /// sorted by key, and the keys of those that did not open.
    async fn list_selected(
        &self,
        table: Table,
        selector: &str,
        prefix: &str,
        scope: &'static str,
    ) -> Result<ListedRecords, StoreError> {
        let mut out = Vec::new();
        let mut failed = std::collections::BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().labels(selector).limit(self.page_size);
            if let Some(o) = &self.lists {
                o(scope);
            }
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = self.api.list(&params).await.map_err(|e| {
                self.health.error("backend");
                StoreError::Backend(format!(
                    "kubernetes API: listing Secrets in {} ({selector}): {e}",
                    self.namespace
                ))
            })?;
            for s in &page.items {
                if terminating(s) {
                    continue;
                }
                let Some(key) = key_of(s) else {
                    tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        "skipping a store Secret without a valid key annotation"
                    );
                    continue;
                };
                if !key.starts_with(prefix) {
                    continue;
                }
                if s.metadata.name.as_deref() != Some(secret_name(table, &key).as_str()) {
                    tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        "skipping a store Secret not named for the record it holds"
                    );
                    continue;
                }
                match self.decode(table, &key, s) {
                    Ok((plain, version)) => out.push((key, plain, version)),
                    Err(e) => {
                        failed.insert(key.clone());
                        tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        error = %e,
                        "skipping a store record that does not open"
                        )
                    }
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((out, failed))
    }
}

/// Records as `(key, value, version)`, and the keys that did not open.
type ListedRecords = (
    Vec<(String, Vec<u8>, u64)>,
    std::collections::BTreeSet<String>,
);
