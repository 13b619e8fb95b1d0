//! The store key check: which key this namespace's records are sealed
//! with, recorded in one Secret so a replica given another key is refused
//! at start; and reading the store key itself from a Secret.

use std::collections::BTreeMap;

use ::kube::api::{Api, PostParams};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::secret::status_code;
use super::{KubeStore, SECRET_TYPE, VALUE_KEY};
use crate::broker::ports::StoreError;
use crate::cluster::{Kube, MANAGED_BY};
use crate::store::seal::{SealError, Sealer};

/// The Secret that records which store key this namespace's records are
/// sealed with (a sealed constant), so a replica given another key is
/// refused at start instead of failing record by record.
pub const KEY_CHECK_SECRET: &str = "cbs-keycheck";
const KEY_CHECK_RECORD: &str = "keycheck";
const KEY_CHECK_PLAIN: &[u8] = b"chartbroker store key check";

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
}
