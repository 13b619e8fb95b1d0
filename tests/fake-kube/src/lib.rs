//! `fake-kube`: an in-process fake Kubernetes API server, **for tests only**.
//!
//! No real API server can run on the machines this project is developed and
//! tested on, yet chartbroker drives the real `helm` CLI and kube-rs. This crate
//! serves just enough of the documented Kubernetes REST API over plain HTTP on
//! `127.0.0.1` for both of them to work: Helm 4 (server-side apply and
//! `--server-side=false`) and Helm 3 can install, upgrade, roll back, list,
//! report and uninstall charts without hooks, and kube-rs can CRUD, patch,
//! apply, list with selectors and watch.
//!
//! What it serves:
//! - `/version`, `/healthz`, `/livez`, `/readyz`;
//! - legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`)
//!   for a fixed set of built-in resources (see [`discovery`]) plus the
//!   resources of any CustomResourceDefinition stored in it;
//! - an OpenAPI v3 index and per-group documents (see [`openapi`]), only as
//!   detailed as helm needs to trust the server with field validation;
//! - GET, LIST (label and field selectors), WATCH, POST (generateName),
//!   PUT (optimistic concurrency on `metadata.resourceVersion`), PATCH (JSON
//!   merge, strategic merge, JSON patch, server-side apply with field managers,
//!   conflicts and `force`), DELETE (preconditions, finalizers) and
//!   deletecollection, with `dryRun=All`;
//! - SubjectAccessReviews answered by a configurable rule
//!   ([`FakeKube::set_authorizer`]);
//! - protobuf request bodies for Secrets, ConfigMaps and DeleteOptions (helm's
//!   release storage writes them so). Replies are always JSON.
//!
//! ```no_run
//! # async fn demo() {
//! let fake = fake_kube::FakeKube::start().await; // http://127.0.0.1:PORT
//! let dir = tempfile::tempdir().unwrap();
//! let kubeconfig = fake.kubeconfig(dir.path()); // for `helm --kubeconfig`
//! // ... run the code under test ...
//! let cm = fake.get("v1", "configmaps", Some("default"), "settings");
//! assert!(fake.requests().iter().any(|(method, _)| method == "PATCH"));
//! fake.fail_next("PUT", "/api/v1/namespaces/default/secrets", 500);
//! # }
//! ```
//!
//! Known limits, on purpose: no controllers (a Deployment never becomes
//! ready, a Job never completes, unless a test writes `status` itself with
//! [`FakeKube::put`] or turns on [`FakeKube::set_workloads_ready`]), no
//! admission, no schema validation (`fieldValidation` is accepted and ignored),
//! no authentication (any token is accepted), no version conversion for
//! custom resources, no Table output, no aggregated discovery (the plain
//! lists are returned, which clients accept), namespace deletion is
//! immediate, strategic merge patch knows the merge keys of common
//! workload fields only, and server-side apply treats every list as atomic.
//! Errors are `Status` objects with the reasons and messages the real API
//! server uses, so client code that branches on them behaves as it would.

mod controllers;
pub mod discovery;
mod handlers;
pub mod openapi;
mod patch;
mod protobuf;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

pub use handlers::router;
pub use protobuf::{envelope as protobuf_envelope, release_secret};

/// A decision function for SubjectAccessReviews: gets the review's `spec`,
/// returns whether the access is allowed.
pub type Authorizer = dyn Fn(&Value) -> bool + Send + Sync;

/// The fake API server's shared state. Cheap to clone (an `Arc` inside); every
/// clone sees the same objects, request log and injected faults.
#[derive(Clone)]
pub struct FakeKube {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Mutex<store::Store>,
    pub(crate) requests: Mutex<Vec<(String, String)>>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) authorizer: RwLock<Arc<Authorizer>>,
}

/// A one-shot injected failure, see [`FakeKube::fail_next`].
pub(crate) struct Fault {
    pub(crate) method: String,
    pub(crate) path_prefix: String,
    pub(crate) status: u16,
}

impl Default for FakeKube {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKube {
    /// An empty cluster: namespaces `default`, `kube-system`, `kube-public`
    /// and `kube-node-lease` exist, SubjectAccessReviews are allowed.
    pub fn new() -> Self {
        FakeKube {
            inner: Arc::new(Inner {
                store: Mutex::new(store::Store::new()),
                requests: Mutex::new(Vec::new()),
                faults: Mutex::new(Vec::new()),
                authorizer: RwLock::new(Arc::new(|_: &Value| true)),
            }),
        }
    }

    /// Starts a new fake on `127.0.0.1:<random port>`.
    ///
    /// The server runs on its own thread with its own Tokio runtime rather
    /// than on the caller's runtime, so that a test may block its own thread
    /// (for example with `std::process::Command` running helm, or inside a
    /// single-threaded `#[tokio::test]`) without starving the server. It stops
    /// when the returned handle is dropped.
    pub async fn start() -> FakeKubeHandle {
        Self::new().serve()
    }

    /// Like [`FakeKube::start`], for tests that don't run on a Tokio runtime.
    pub fn start_blocking() -> FakeKubeHandle {
        Self::new().serve()
    }

    /// Serves this state on `127.0.0.1:<random port>` (see [`FakeKube::start`]).
    pub fn serve(self) -> FakeKubeHandle {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake-kube: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fake-kube: set_nonblocking");
        let addr = listener.local_addr().expect("fake-kube: local_addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(self.clone());
        let thread = std::thread::Builder::new()
            .name(format!("fake-kube-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake-kube: tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("fake-kube: tokio listener");
                    // No graceful shutdown: clients keep idle keep-alive
                    // connections and watches open, and a test fixture has
                    // nothing to flush. Returning drops the runtime, which
                    // cancels every connection task.
                    tokio::select! {
                        res = axum::serve(listener, app) => res.expect("fake-kube: serve"),
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("fake-kube: spawn server thread");
        FakeKubeHandle {
            url: format!("http://{addr}"),
            addr,
            kube: self,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The object `name` of resource `kind_plural` in `group_version` (`"v1"`,
    /// `"apps/v1"`), in namespace `ns` (`None` for cluster-scoped resources),
    /// as the API would return it.
    pub fn get(
        &self,
        group_version: &str,
        kind_plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, _version) = split_group_version(group_version);
        self.inner
            .store
            .lock()
            .unwrap()
            .get_raw(group, kind_plural, ns.unwrap_or(""), name)
    }

    /// All objects of the resource named `plural` (in any API group) in
    /// namespace `ns`, or in all namespaces for `None`, ordered by namespace
    /// and name.
    pub fn list(&self, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.inner.store.lock().unwrap().list_raw(plural, ns)
    }

    /// Stores `object` as if a client had created or replaced it, bypassing
    /// faults and the request log: for seeding a cluster or setting a `status`
    /// no controller will set. Its `apiVersion`, `kind` and `metadata` decide
    /// where it goes. Panics on an unknown kind or a missing namespace.
    pub fn put(&self, object: Value) -> Value {
        self.inner
            .store
            .lock()
            .unwrap()
            .put_raw(object)
            .unwrap_or_else(|e| panic!("fake-kube: put: {}", e.message))
    }

    /// Every request received so far, as `(method, path and query)`.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.inner.requests.lock().unwrap().clear();
    }

    /// Makes the next request whose method is `method` (case-insensitive; `"*"`
    /// for any) and whose path starts with `path_prefix` fail with a `Status`
    /// of HTTP code `status`, without touching the objects. Several faults
    /// queue up; each fires once.
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16) {
        self.inner.faults.lock().unwrap().push(Fault {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            status,
        });
    }

    /// Sets the rule that answers SubjectAccessReviews (the default allows
    /// everything). The function gets the review's `spec`.
    pub fn set_authorizer(&self, rule: impl Fn(&Value) -> bool + Send + Sync + 'static) {
        *self.inner.authorizer.write().unwrap() = Arc::new(rule);
    }

    /// Imitates the controllers of a healthy cluster (off by default): from
    /// now on, every write of a Deployment, StatefulSet, ReplicaSet,
    /// DaemonSet, Job, PVC, Pod, PodDisruptionBudget or LoadBalancer Service
    /// also sets the `status` its controller would report once all is up, so
    /// `helm install --wait` succeeds at once. Without it nothing ever
    /// becomes ready, and waits time out, as on a cluster with no nodes.
    pub fn set_workloads_ready(&self, on: bool) {
        self.inner.store.lock().unwrap().workloads_ready = on;
    }

    /// The current value of the global resourceVersion counter.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.lock().unwrap().resource_version()
    }
}

/// A running [`FakeKube`]. Dereferences to it, so `handle.get(..)`,
/// `handle.requests()`, `handle.fail_next(..)` etc. work directly. Dropping it
/// stops the server.
pub struct FakeKubeHandle {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    kube: FakeKube,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for FakeKubeHandle {
    type Target = FakeKube;
    fn deref(&self) -> &FakeKube {
        &self.kube
    }
}

impl FakeKubeHandle {
    /// The shared state, e.g. to build another [`router`] over it.
    pub fn state(&self) -> FakeKube {
        self.kube.clone()
    }

    /// Writes `dir/kubeconfig` for this server ([`write_kubeconfig`]).
    /// Returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        write_kubeconfig(&path, &self.url);
        path
    }
}

/// Writes a kubeconfig at `path`: one cluster at `url` over plain HTTP, a
/// user with a bearer token (which the fake does not check), and a current
/// context `fake` whose namespace is `default`. For a server the fake's own
/// router runs behind (a test's middleware in front of [`router`]).
pub fn write_kubeconfig(path: &Path, url: &str) {
    let text = format!(
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
    namespace: default
current-context: fake
preferences: {{}}
"
    );
    std::fs::write(path, text).expect("fake-kube: write kubeconfig");
    // client-go warns about group/world-readable kubeconfigs.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

impl Drop for FakeKubeHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `"apps/v1"` -> `("apps", "v1")`, `"v1"` -> `("", "v1")`.
pub(crate) fn split_group_version(gv: &str) -> (&str, &str) {
    match gv.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", gv),
    }
}
