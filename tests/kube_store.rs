//! The Secret-backed store against the fake API server: compare-and-swap by
//! resourceVersion, versions that never repeat, listing by label selector,
//! sealing at rest, and two "replicas" sharing one namespace.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chartbroker::broker::ports::{Expect, Store, StoreError, Table};
use chartbroker::cluster::Kube;
use chartbroker::store::health::StoreHealth;
use chartbroker::store::kubernetes::{KEY_CHECK_SECRET, KubeStore, key_from_secret, secret_name};
use chartbroker::store::seal::Sealer;
use fake_kube::{FakeKube, FakeKubeHandle};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const NS: &str = "chartbroker-system";
const SECRETS: &str = "/api/v1/namespaces/chartbroker-system/secrets";

async fn cluster() -> FakeKubeHandle {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    k
}

async fn store_at(kubeconfig: &Path, key: &str) -> KubeStore {
    let kube = Kube::connect(Some(kubeconfig)).await.unwrap();
    KubeStore::new(&kube, NS, Sealer::from_base64(key).unwrap())
}

/// Two stores ("replicas") over one cluster, sharing a sealing key.
async fn replicas(k: &FakeKubeHandle, dir: &Path) -> (KubeStore, KubeStore) {
    let kc = k.kubeconfig(dir);
    let key = Sealer::generate_base64();
    (store_at(&kc, &key).await, store_at(&kc, &key).await)
}

fn stored(k: &FakeKube, table: Table, key: &str) -> Option<Value> {
    k.get("v1", "secrets", Some(NS), &secret_name(table, key))
}

fn backend<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
}

#[tokio::test]
async fn put_absent_twice_conflicts() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = replicas(&k, dir.path()).await;
    let v = s
        .put(Table::Instances, "i1", b"one".to_vec(), Expect::Absent)
        .await
        .unwrap();
    conflict(
        s.put(Table::Instances, "i1", b"two".to_vec(), Expect::Absent)
            .await,
    );
    assert_eq!(
        s.get(Table::Instances, "i1").await.unwrap(),
        Some((b"one".to_vec(), v))
    );
    assert_eq!(s.get(Table::Instances, "nope").await.unwrap(), None);
    // The same key in another table is another record.
    s.put(Table::Bindings, "i1", b"b".to_vec(), Expect::Absent)
        .await
        .unwrap();
}

#[tokio::test]
async fn version_cas_succeeds_once_and_rejects_stale_writers() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = replicas(&k, dir.path()).await;
    let v1 = s
        .put(Table::Instances, "i1", b"one".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let v2 = s
        .put(Table::Instances, "i1", b"two".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    assert_ne!(v1, v2);
    conflict(
        s.put(
            Table::Instances,
            "i1",
            b"stale".to_vec(),
            Expect::Version(v1),
        )
        .await,
    );
    conflict(
        s.put(
            Table::Instances,
            "absent",
            b"x".to_vec(),
            Expect::Version(v2),
        )
        .await,
    );
    assert_eq!(
        s.get(Table::Instances, "i1").await.unwrap(),
        Some((b"two".to_vec(), v2))
    );
    assert!(s.get(Table::Instances, "absent").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_replicas_exactly_one_wins_each_round() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&k, dir.path()).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut version = a
        .put(Table::Instances, "hot", b"start".to_vec(), Expect::Absent)
        .await
        .unwrap();
    for round in 0..40 {
        // Both replicas read the same version, then race to replace it.
        let seen_a = a.get(Table::Instances, "hot").await.unwrap().unwrap().1;
        let seen_b = b.get(Table::Instances, "hot").await.unwrap().unwrap().1;
        assert_eq!((seen_a, seen_b), (version, version));
        let write = |s: Arc<KubeStore>, who: &'static str| {
            let value = format!("{who}-{round}").into_bytes();
            tokio::spawn(async move {
                s.put(Table::Instances, "hot", value, Expect::Version(version))
                    .await
            })
        };
        let (ra, rb) = (write(a.clone(), "a"), write(b.clone(), "b"));
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        let (winner, new_version) = match (ra, rb) {
            (Ok(v), Err(StoreError::Conflict)) => ("a", v),
            (Err(StoreError::Conflict), Ok(v)) => ("b", v),
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        assert_ne!(new_version, version);
        let (value, v) = b.get(Table::Instances, "hot").await.unwrap().unwrap();
        assert_eq!(v, new_version);
        assert_eq!(value, format!("{winner}-{round}").into_bytes());
        version = new_version;
    }
}

// --- A writer that slips in between the store's GET and its write ---

/// The next request with this method and path first changes the stored
/// Secret behind the store's back (as another writer would), without
/// touching the record's version annotation.
#[derive(Clone)]
struct Interfere {
    fake: FakeKube,
    armed: Arc<Mutex<Option<(String, String, String)>>>,
}

async fn interfere(State(i): State<Interfere>, req: Request, next: Next) -> Response {
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

fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig-hooked");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake
  user:
    token: fake-token
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
current-context: fake
"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_get_and_put_or_delete_is_a_conflict() {
    let k = cluster().await;
    let armed = Arc::new(Mutex::new(None));
    let hook = Interfere {
        fake: k.state(),
        armed: armed.clone(),
    };
    let app =
        fake_kube::router(k.state()).layer(axum::middleware::from_fn_with_state(hook, interfere));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(
        &write_kubeconfig(dir.path(), &url),
        &Sealer::generate_base64(),
    )
    .await;

    let v = s
        .put(Table::Instances, "i1", b"one".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let name = secret_name(Table::Instances, "i1");
    let path = format!("{SECRETS}/{name}");

    // The version annotation still matches when the store reads it, but the
    // Secret changed before the PUT: the stale resourceVersion loses.
    *armed.lock().unwrap() = Some(("PUT".into(), path.clone(), name.clone()));
    conflict(
        s.put(Table::Instances, "i1", b"two".to_vec(), Expect::Version(v))
            .await,
    );
    assert!(armed.lock().unwrap().is_none(), "the hook fired");
    let obj = stored(&k, Table::Instances, "i1").unwrap();
    assert_eq!(
        obj["metadata"]["annotations"]["example.com/other-writer"],
        "1"
    );
    assert_eq!(
        s.get(Table::Instances, "i1").await.unwrap(),
        Some((b"one".to_vec(), v))
    );

    // Likewise for DELETE: the resourceVersion precondition fails.
    *armed.lock().unwrap() = Some(("DELETE".into(), path.clone(), name.clone()));
    conflict(s.remove(Table::Instances, "i1", v).await);
    assert!(armed.lock().unwrap().is_none(), "the hook fired");
    assert!(s.get(Table::Instances, "i1").await.unwrap().is_some());

    // Undisturbed, both go through.
    let v2 = s
        .put(Table::Instances, "i1", b"two".to_vec(), Expect::Version(v))
        .await
        .unwrap();
    s.remove(Table::Instances, "i1", v2).await.unwrap();
    assert!(s.get(Table::Instances, "i1").await.unwrap().is_none());
    server.abort();
}

#[tokio::test]
async fn remove_checks_version_and_recreate_gets_a_fresh_one() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, other) = replicas(&k, dir.path()).await;
    let v1 = s
        .put(Table::Instances, "i1", b"one".to_vec(), Expect::Absent)
        .await
        .unwrap();
    conflict(s.remove(Table::Instances, "i1", v1.wrapping_add(1)).await);
    conflict(s.remove(Table::Instances, "missing", v1).await);
    assert!(s.get(Table::Instances, "i1").await.unwrap().is_some());
    s.remove(Table::Instances, "i1", v1).await.unwrap();
    assert!(s.get(Table::Instances, "i1").await.unwrap().is_none());
    assert!(stored(&k, Table::Instances, "i1").is_none());
    conflict(s.remove(Table::Instances, "i1", v1).await);

    // Recreated: a version nobody held before, so a stale writer that still
    // holds v1 (here, the other replica) can neither write nor delete.
    let v2 = s
        .put(Table::Instances, "i1", b"again".to_vec(), Expect::Absent)
        .await
        .unwrap();
    assert_ne!(v2, v1);
    conflict(
        other
            .put(
                Table::Instances,
                "i1",
                b"stale".to_vec(),
                Expect::Version(v1),
            )
            .await,
    );
    conflict(other.remove(Table::Instances, "i1", v1).await);
    assert_eq!(
        other.get(Table::Instances, "i1").await.unwrap(),
        Some((b"again".to_vec(), v2))
    );
}

#[tokio::test]
async fn list_by_instance_label_and_by_table() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = replicas(&k, dir.path()).await;
    let s = s.with_page_size(2);
    let bindings = ["i1\0b2", "i1\0b1", "i10\0b1", "i2\0b1", "i1\0b3"];
    for key in bindings {
        s.put(
            Table::Bindings,
            key,
            key.as_bytes().to_vec(),
            Expect::Absent,
        )
        .await
        .unwrap();
    }
    for key in ["i1", "i10", "i2"] {
        s.put(Table::Instances, key, b"inst".to_vec(), Expect::Absent)
            .await
            .unwrap();
    }

    k.clear_requests();
    let rows = s.list(Table::Bindings, "i1\0").await.unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(keys, ["i1\0b1", "i1\0b2", "i1\0b3"]);
    for (key, value, version) in &rows {
        assert_eq!(value, key.as_bytes());
        assert_eq!(
            s.get(Table::Bindings, key).await.unwrap().unwrap().1,
            *version
        );
    }
    // That was a label-selected LIST, paged.
    let lists: Vec<String> = k
        .requests()
        .into_iter()
        .filter(|(m, p)| m == "GET" && p.starts_with(&format!("{SECRETS}?")))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(
        lists
            .iter()
            .all(|p| p.contains("chartbroker.io%2Finstance%3D")),
        "{lists:?}"
    );

    let all = s.list(Table::Bindings, "").await.unwrap();
    assert_eq!(all.len(), bindings.len());
    let instances = s.list(Table::Instances, "").await.unwrap();
    let keys: Vec<&str> = instances.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(keys, ["i1", "i10", "i2"]);
    // Any other prefix filters the table by key.
    let keys: Vec<String> = s
        .list(Table::Instances, "i1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(keys, ["i1", "i10"]);
    assert_eq!(s.list(Table::Bindings, "i1\0b2").await.unwrap().len(), 1);
    assert!(s.list(Table::Bindings, "i3\0").await.unwrap().is_empty());

    // Unrelated Secrets in the namespace, and ones that only look like
    // records, are not listed.
    k.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "unrelated", "namespace": NS},
        "data": {"value": B64.encode("x")}}));
    k.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "lookalike", "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "chartbroker",
                       "chartbroker.io/table": "instances"},
            "annotations": {"chartbroker.io/key": B64.encode("i1x"),
                            "chartbroker.io/version": "7"}},
        "data": {"value": B64.encode("x")}}));
    assert_eq!(s.list(Table::Instances, "").await.unwrap().len(), 3);
}

#[tokio::test]
async fn records_are_sealed_secrets_with_the_documented_shape() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = replicas(&k, dir.path()).await;
    let key = "inst-1\0bind-1";
    let plain = b"{\"password\":\"hunter2-hunter2\"}".to_vec();
    let v = s
        .put(Table::Bindings, key, plain.clone(), Expect::Absent)
        .await
        .unwrap();
    let obj = stored(&k, Table::Bindings, key).unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cbs-bindings-"), "{name}");
    assert_eq!(name.len(), "cbs-bindings-".len() + 40);
    assert_eq!(obj["type"], "chartbroker.io/state");
    let labels = &obj["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "chartbroker");
    assert_eq!(labels["chartbroker.io/table"], "bindings");
    assert_eq!(
        labels["chartbroker.io/instance"].as_str().unwrap().len(),
        40
    );
    let ann = &obj["metadata"]["annotations"];
    assert_eq!(
        B64.decode(ann["chartbroker.io/key"].as_str().unwrap())
            .unwrap(),
        key.as_bytes()
    );
    assert_eq!(ann["chartbroker.io/version"], v.to_string());
    // Only ciphertext reaches the API server.
    let sealed = B64.decode(obj["data"]["value"].as_str().unwrap()).unwrap();
    assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
    assert!(obj.get("stringData").is_none());
    assert!(!obj.to_string().contains("hunter2"));
    assert_eq!(s.get(Table::Bindings, key).await.unwrap(), Some((plain, v)));
    // An instance record has no instance label.
    s.put(Table::Instances, "inst-1", b"x".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let obj = stored(&k, Table::Instances, "inst-1").unwrap();
    assert!(obj["metadata"]["labels"]["chartbroker.io/instance"].is_null());
}

#[tokio::test]
async fn a_sealed_value_only_opens_with_its_key_and_under_its_name() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = k.kubeconfig(dir.path());
    let right = store_at(&kc, &Sealer::generate_base64()).await;
    let wrong = store_at(&kc, &Sealer::generate_base64()).await;
    right
        .put(
            Table::Instances,
            "i1",
            b"secret-value".to_vec(),
            Expect::Absent,
        )
        .await
        .unwrap();
    match wrong.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => {
            assert!(!msg.contains("secret-value"), "{msg}");
            assert!(msg.contains("which this broker was not given"), "{msg}");
        }
        other => panic!("expected an unreadable record, got {other:?}"),
    }
    // list skips records that don't open.
    assert!(wrong.list(Table::Instances, "").await.unwrap().is_empty());
    assert_eq!(right.list(Table::Instances, "").await.unwrap().len(), 1);

    // A record's ciphertext copied under another key does not open there.
    right
        .put(Table::Instances, "i2", b"other".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let from = stored(&k, Table::Instances, "i1").unwrap();
    let mut to = stored(&k, Table::Instances, "i2").unwrap();
    to["data"]["value"] = from["data"]["value"].clone();
    k.put(to);
    assert!(matches!(
        right.get(Table::Instances, "i2").await,
        Err(StoreError::Unreadable(_))
    ));
}

#[tokio::test]
async fn a_second_replica_sees_and_continues_the_same_records() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&k, dir.path()).await;
    let v1 = a
        .put(Table::Instances, "i1", b"from-a".to_vec(), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(
        b.get(Table::Instances, "i1").await.unwrap(),
        Some((b"from-a".to_vec(), v1))
    );
    conflict(
        b.put(Table::Instances, "i1", b"x".to_vec(), Expect::Absent)
            .await,
    );
    let v2 = b
        .put(
            Table::Instances,
            "i1",
            b"from-b".to_vec(),
            Expect::Version(v1),
        )
        .await
        .unwrap();
    assert_eq!(
        a.get(Table::Instances, "i1").await.unwrap(),
        Some((b"from-b".to_vec(), v2))
    );
    assert_eq!(a.list(Table::Instances, "").await.unwrap().len(), 1);
    a.remove(Table::Instances, "i1", v2).await.unwrap();
    assert!(b.get(Table::Instances, "i1").await.unwrap().is_none());
}

#[tokio::test]
async fn api_failures_are_backend_errors() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = replicas(&k, dir.path()).await;
    k.fail_next("POST", SECRETS, 500);
    backend(
        s.put(Table::Instances, "i1", b"v".to_vec(), Expect::Absent)
            .await,
    );
    let v = s
        .put(Table::Instances, "i1", b"v".to_vec(), Expect::Absent)
        .await
        .unwrap();
    k.fail_next("GET", SECRETS, 500);
    backend(s.get(Table::Instances, "i1").await);
    // (kube-rs itself retries 429, 503 and 504.)
    k.fail_next("PUT", SECRETS, 500);
    backend(
        s.put(Table::Instances, "i1", b"w".to_vec(), Expect::Version(v))
            .await,
    );
    k.fail_next("DELETE", SECRETS, 500);
    backend(s.remove(Table::Instances, "i1", v).await);
    k.fail_next("GET", SECRETS, 500);
    backend(s.list(Table::Instances, "").await);
    // Nothing changed.
    assert_eq!(
        s.get(Table::Instances, "i1").await.unwrap(),
        Some((b"v".to_vec(), v))
    );
}

// ---------------------------------------------------------------------------
// Store keys shared by replicas (issue 14) and sealed-record integrity. These
// tests reach the API server only through `test_cluster`'s kubeconfig and
// kube-rs, so they can be pointed at a real API server.

/// The API server the tests below use, and a kubeconfig for it.
struct TestCluster {
    _fake: FakeKubeHandle,
    kubeconfig: PathBuf,
}

async fn test_cluster(dir: &Path) -> TestCluster {
    let fake = cluster().await;
    let kubeconfig = fake.kubeconfig(dir);
    TestCluster {
        _fake: fake,
        kubeconfig,
    }
}

impl TestCluster {
    async fn kube(&self) -> Kube {
        Kube::connect(Some(&self.kubeconfig)).await.unwrap()
    }

    async fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.kube().await.client(), NS)
    }

    async fn store(&self, sealer: Sealer) -> (KubeStore, Arc<StoreHealth>) {
        let health = Arc::new(StoreHealth::default());
        let s = KubeStore::new(&self.kube().await, NS, sealer).with_health(health.clone());
        (s, health)
    }
}

fn sealer(key: &str) -> Sealer {
    Sealer::from_base64(key).unwrap()
}

fn refused(r: Result<(), StoreError>, key_id: &str) -> String {
    match r {
        Err(StoreError::Unreadable(msg)) => {
            assert!(msg.contains(key_id), "names the key the store needs: {msg}");
            assert!(msg.contains("give every replica the same key"), "{msg}");
            msg
        }
        other => panic!("expected the key to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_replica_with_another_store_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (ka, kb) = (Sealer::generate_base64(), Sealer::generate_base64());
    let (a, _) = c.store(sealer(&ka)).await;
    a.check_key().await.unwrap();
    a.check_key().await.unwrap();
    // Another replica, another key: refused before it touches a record.
    let (b, _) = c.store(sealer(&kb)).await;
    let msg = refused(b.check_key().await, &sealer(&ka).key_id());
    assert!(
        !msg.contains(&ka) && !msg.contains(&kb),
        "no key material: {msg}"
    );
    // The same key: accepted, also by a replica started later.
    let (a2, _) = c.store(sealer(&ka)).await;
    a2.check_key().await.unwrap();
    // The check record holds only ciphertext.
    let check = c.secrets().await.get(KEY_CHECK_SECRET).await.unwrap();
    assert_eq!(check.type_.as_deref(), Some("chartbroker.io/state"));
    let sealed = &check.data.unwrap()["value"].0;
    assert_eq!(&sealed[..2], b"s2");
    assert!(!sealed.windows(8).any(|w| w == b"key chec"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (ka, kb) = (Sealer::generate_base64(), Sealer::generate_base64());
    let ((a, _), (b, _)) = (c.store(sealer(&ka)).await, c.store(sealer(&kb)).await);
    let (ra, rb) = tokio::join!(a.check_key(), b.check_key());
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one key wins: {ra:?} / {rb:?}"
    );
}

#[tokio::test]
async fn a_rotation_reads_old_records_and_then_refuses_the_old_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (old, new) = (Sealer::generate_base64(), Sealer::generate_base64());
    let (before, _) = c.store(sealer(&old)).await;
    before.check_key().await.unwrap();
    let v = before
        .put(
            Table::Instances,
            "i1",
            b"sealed-old".to_vec(),
            Expect::Absent,
        )
        .await
        .unwrap();
    let (rotated, health) = c.store(sealer(&new).with_old_base64(&old).unwrap()).await;
    rotated.check_key().await.unwrap();
    assert_eq!(
        rotated.get(Table::Instances, "i1").await.unwrap(),
        Some((b"sealed-old".to_vec(), v))
    );
    // Rewritten with the new key, which the old key alone cannot open.
    let v2 = rotated
        .put(
            Table::Instances,
            "i1",
            b"sealed-new".to_vec(),
            Expect::Version(v),
        )
        .await
        .unwrap();
    assert!(health.problem().is_none());
    let (old_only, old_health) = c.store(sealer(&old)).await;
    refused(old_only.check_key().await, &sealer(&new).key_id());
    assert!(matches!(
        old_only.get(Table::Instances, "i1").await,
        Err(StoreError::Unreadable(_))
    ));
    assert!(old_health.problem().is_some());
    // A replica given both keys the other way round still reads everything.
    let (both, _) = c.store(sealer(&old).with_old_base64(&new).unwrap()).await;
    assert_eq!(
        both.get(Table::Instances, "i1").await.unwrap(),
        Some((b"sealed-new".to_vec(), v2))
    );
}

#[tokio::test]
async fn records_sealed_with_an_unknown_key_fail_readiness_until_they_open() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (ka, kb) = (Sealer::generate_base64(), Sealer::generate_base64());
    let (a, _) = c.store(sealer(&ka)).await;
    a.put(Table::Instances, "i1", b"x".to_vec(), Expect::Absent)
        .await
        .unwrap();
    a.put(Table::Bindings, "i1\0b1", b"y".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let (b, health) = c.store(sealer(&kb)).await;
    // A list skips what it cannot open, but the replica knows.
    assert!(b.list(Table::Bindings, "i1\0").await.unwrap().is_empty());
    let problem = health.problem().expect("flagged");
    assert!(problem.contains("bindings/i1/b1"), "{problem}");
    assert!(problem.contains(&sealer(&ka).key_id()), "{problem}");
    match b.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => {
            assert!(msg.contains("instances/i1"), "{msg}");
            assert!(msg.contains(&secret_name(Table::Instances, "i1")), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(health.unreadable_count(), 2);
    // The records themselves are untouched: the right key still reads them.
    assert_eq!(
        a.get(Table::Instances, "i1").await.unwrap().unwrap().0,
        b"x"
    );
    // Once the records are gone (or open), the replica is healthy again.
    let (v_i, v_b) = (
        a.get(Table::Instances, "i1").await.unwrap().unwrap().1,
        a.get(Table::Bindings, "i1\0b1").await.unwrap().unwrap().1,
    );
    b.remove(Table::Instances, "i1", v_i).await.unwrap();
    assert_eq!(health.unreadable_count(), 1);
    // Removed by the replica that can read it: B's next listing forgets it.
    a.remove(Table::Bindings, "i1\0b1", v_b).await.unwrap();
    assert_eq!(health.unreadable_count(), 1);
    assert!(b.list(Table::Bindings, "").await.unwrap().is_empty());
    assert!(health.problem().is_none());
}

#[tokio::test]
async fn swapped_or_relabelled_record_secrets_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (s, health) = c.store(sealer(&Sealer::generate_base64())).await;
    for (k, v) in [("i1", "secret-one"), ("i2", "secret-two")] {
        s.put(Table::Instances, k, v.as_bytes().to_vec(), Expect::Absent)
            .await
            .unwrap();
    }
    let api = c.secrets().await;
    let (n1, n2) = (
        secret_name(Table::Instances, "i1"),
        secret_name(Table::Instances, "i2"),
    );
    let (mut s1, mut s2) = (api.get(&n1).await.unwrap(), api.get(&n2).await.unwrap());
    std::mem::swap(&mut s1.data, &mut s2.data);
    api.replace(&n1, &PostParams::default(), &s1).await.unwrap();
    api.replace(&n2, &PostParams::default(), &s2).await.unwrap();
    for k in ["i1", "i2"] {
        match s.get(Table::Instances, k).await {
            Err(StoreError::Unreadable(msg)) => {
                assert!(msg.contains("failed authentication"), "{msg}");
                assert!(msg.contains(&format!("instances/{k}")), "{msg}");
                assert!(!msg.contains("secret-"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(health.unreadable_count(), 2);
    // The format bytes: "s2" rewritten to the first release's "s1".
    let mut s1 = api.get(&n1).await.unwrap();
    let value = &mut s1.data.as_mut().unwrap().get_mut("value").unwrap().0;
    value[1] = b'1';
    api.replace(&n1, &PostParams::default(), &s1).await.unwrap();
    match s.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => assert!(msg.contains("(s1)"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_store_key_comes_from_a_named_secret() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (key, old) = (Sealer::generate_base64(), Sealer::generate_base64());
    let api = c.secrets().await;
    let secret = |name: &str, data: Value| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap()
    };
    api.create(
        &PostParams::default(),
        &secret("store-key", json!({"store.key": key, "old-1": old})),
    )
    .await
    .unwrap();
    let kube = c.kube().await;
    let s = key_from_secret(&kube, NS, "store-key").await.unwrap();
    assert_eq!(s.key_id(), sealer(&key).key_id());
    let from_old = sealer(&old).seal("instances/a", b"v");
    assert_eq!(s.open("instances/a", &from_old).unwrap(), b"v");
    // Missing Secret, missing entry, a bad key: errors name the Secret and
    // the entry, never a value.
    let e = key_from_secret(&kube, NS, "nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Secret chartbroker-system/nope"), "{e}");
    api.create(
        &PostParams::default(),
        &secret("no-entry", json!({"key": key})),
    )
    .await
    .unwrap();
    let e = key_from_secret(&kube, NS, "no-entry")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no entry store.key"), "{e}");
    assert!(!e.contains(&key), "{e}");
    api.create(
        &PostParams::default(),
        &secret("short", json!({"store.key": "c2hvcnQ=", "old-2": old})),
    )
    .await
    .unwrap();
    let e = key_from_secret(&kube, NS, "short")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("entry store.key") && e.contains("32 bytes"),
        "{e}"
    );
    assert!(!e.contains(&old), "{e}");
}
