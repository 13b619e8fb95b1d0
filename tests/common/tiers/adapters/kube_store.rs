//! Helpers of the tests in tests/adapters/kube_store/
//! (helpers live under tests/common: tests/README.md).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chartbroker::broker::ports::{Expect, Store, StoreError, Table};
use chartbroker::cluster::Kube;
use chartbroker::store::health::StoreHealth;
use chartbroker::store::kubernetes::{KubeStore, secret_name};
use chartbroker::store::seal::Sealer;
use fake_kube::{FakeKube, FakeKubeHandle};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};

pub const NS: &str = "chartbroker-system";
pub const SECRETS: &str = "/api/v1/namespaces/chartbroker-system/secrets";

pub async fn cluster() -> FakeKubeHandle {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    k
}

pub async fn store_at(kubeconfig: &Path, key: &str) -> KubeStore {
    let kube = Kube::connect(Some(kubeconfig)).await.unwrap();
    KubeStore::new(&kube, NS, Sealer::from_base64(key).unwrap())
}

/// Two stores ("replicas") over one cluster, sharing a sealing key.
pub async fn replicas(k: &FakeKubeHandle, dir: &Path) -> (KubeStore, KubeStore) {
    let kc = k.kubeconfig(dir);
    let key = Sealer::generate_base64();
    (store_at(&kc, &key).await, store_at(&kc, &key).await)
}

/// [`cluster`] and two [`replicas`] over it (their kubeconfig lives in the
/// returned folder).
pub async fn cluster_and_replicas() -> (FakeKubeHandle, tempfile::TempDir, KubeStore, KubeStore) {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&k, dir.path()).await;
    (k, dir, a, b)
}

/// Writes a new record (`Expect::Absent`), which must succeed: its version.
pub async fn insert(s: &KubeStore, table: Table, key: &str, value: &[u8]) -> u64 {
    s.put(table, key, value.to_vec(), Expect::Absent)
        .await
        .unwrap()
}

/// `put` of an instance record (`value`, if `expect` holds).
pub async fn put_instance(
    s: &KubeStore,
    key: &str,
    value: &[u8],
    expect: Expect,
) -> Result<u64, StoreError> {
    s.put(Table::Instances, key, value.to_vec(), expect).await
}

/// What the store reads at `key` (the read must work).
pub async fn read(s: &KubeStore, table: Table, key: &str) -> Option<(Vec<u8>, u64)> {
    s.get(table, key).await.unwrap()
}

/// Asserts the store reads `value` at `version` under `key`.
pub async fn assert_reads(s: &KubeStore, (table, key): (Table, &str), value: &[u8], version: u64) {
    let got = read(s, table, key).await;
    assert_eq!(got, Some((value.to_vec(), version)), "{key}");
}

/// A folder, a [`test_cluster`] with its kubeconfig there, and two fresh
/// store keys.
pub async fn keyed_cluster() -> (tempfile::TempDir, TestCluster, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    (dir, c, Sealer::generate_base64(), Sealer::generate_base64())
}

pub fn stored(k: &FakeKube, table: Table, key: &str) -> Option<Value> {
    k.get("v1", "secrets", Some(NS), &secret_name(table, key))
}

pub fn backend<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
}

pub fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
}

// --- A writer that slips in between the store's GET and its write ---

/// The next request with this method and path first changes the stored
/// Secret behind the store's back (as another writer would), without
/// touching the record's version annotation.
#[derive(Clone)]
pub struct Interfere {
    pub fake: FakeKube,
    pub armed: Arc<Mutex<Option<(String, String, String)>>>,
}

pub async fn interfere(State(i): State<Interfere>, req: Request, next: Next) -> Response {
    let hit = {
        let mut armed = i.armed.lock().unwrap();
        match armed.as_ref() {
            Some((method, path, _))
                if req.method().as_str() == method && req.uri().path() == path =>
            {
                armed.take().map(|(_, _, name)| name)
            }
            _ => None,
        }
    };
    if let Some(name) = hit {
        let mut obj = i.fake.get("v1", "secrets", Some(NS), &name).unwrap();
        let n = obj["metadata"]["annotations"]["example.com/other-writer"]
            .as_str()
            .map_or(0, |n| n.parse::<u32>().unwrap());
        // A real change, so the resourceVersion moves.
        obj["metadata"]["annotations"]["example.com/other-writer"] = json!((n + 1).to_string());
        i.fake.put(obj);
    }
    next.run(req).await
}

/// A kubeconfig in `dir` for the server at `url` (the fake behind a hook).
pub fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig-hooked");
    fake_kube::write_kubeconfig(&path, url);
    path
}

// ---------------------------------------------------------------------------
// Store keys shared by replicas (issue 14) and sealed-record integrity. These
// tests reach the API server only through `test_cluster`'s kubeconfig and
// kube-rs, so they can be pointed at a real API server.

/// The API server the tests below use, and a kubeconfig for it.
pub struct TestCluster {
    pub _fake: FakeKubeHandle,
    pub kubeconfig: PathBuf,
}

pub async fn test_cluster(dir: &Path) -> TestCluster {
    let fake = cluster().await;
    let kubeconfig = fake.kubeconfig(dir);
    TestCluster {
        _fake: fake,
        kubeconfig,
    }
}

impl TestCluster {
    pub async fn kube(&self) -> Kube {
        Kube::connect(Some(&self.kubeconfig)).await.unwrap()
    }

    pub async fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.kube().await.client(), NS)
    }

    pub async fn store(&self, sealer: Sealer) -> (KubeStore, Arc<StoreHealth>) {
        let health = Arc::new(StoreHealth::default());
        let s = KubeStore::new(&self.kube().await, NS, sealer).with_health(health.clone());
        (s, health)
    }
}

pub fn sealer(key: &str) -> Sealer {
    Sealer::from_base64(key).unwrap()
}

pub fn refused(r: Result<(), StoreError>, key_id: &str) -> String {
    match r {
        Err(StoreError::Unreadable(msg)) => {
            assert!(msg.contains(key_id), "names the key the store needs: {msg}");
            assert!(msg.contains("give every replica the same key"), "{msg}");
            msg
        }
        other => panic!("expected the key to be refused, got {other:?}"),
    }
}
