//! Test harness: a real broker (real redb store, real `helm template`)
//! driven in-process through its axum router, plus helpers to build OSB
//! requests. Shared by the integration test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use chartbroker::runtime::{Engine, Runtime, ServeConfig};

pub mod browser;
pub mod cluster;
pub mod cluster_calls;
pub mod dashboard;
pub mod databases;
pub mod deletes;
pub mod example_catalog;
pub mod goyaml;
pub mod hanging_helm;
pub mod layout;
pub mod mariadb_admin;
pub mod platform;
pub mod process;
pub mod requests;
pub mod upstream;

// Not every tier uses every helper (as `allow(dead_code)` above).
#[allow(unused_imports)]
pub use requests::*;

/// Basic-auth user every test broker accepts.
pub const USER: &str = "platform";
/// Its password.
pub const PASS: &str = "s3cret-test-password";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real helm 4 binary. Tests fail loudly without it: run
/// `scripts/install-tools.sh` (CI does).
pub fn helm_bin() -> PathBuf {
    tool_bin("CHARTBROKER_HELM", "helm", "helm")
}

/// The tool `.tools/bin/<file>`, or the one environment variable `var`
/// names; `what` names it when it is missing.
fn tool_bin(var: &str, file: &str, what: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/bin").join(file));
    assert!(
        p.is_file(),
        "{what} not found at {} — run scripts/install-tools.sh or set {var}",
        p.display()
    );
    p
}

/// Writes an executable shell script to `path`.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes `<dir>/helm-gated`: a helm that holds `helm template` until the
/// file `<dir>/gate` exists (giving up after 20 s so a broken test can't
/// hang), then execs the real helm. Returns the wrapper and the gate file.
pub fn gated_helm_in(dir: &Path) -> (PathBuf, PathBuf) {
    let gate = dir.join("gate");
    let wrapper = dir.join("helm-gated");
    let wait = format!(
        "n=0\n  while [ ! -e '{}' ] && [ $n -lt 400 ]; do\n    sleep 0.05\n    n=$((n+1))\n  done",
        gate.display()
    );
    write_helm_wrapper(
        &wrapper,
        &format!("if [ \"$1\" = template ]; then\n  {wait}\nfi\n"),
    );
    (wrapper, gate)
}

/// A helm that, run as `helm <subcommand>`, writes its pid to
/// `<dir>/a-helm.pid` and hangs for a minute (a replica to kill mid-step);
/// anything else is the real helm. Returns the wrapper and the pid file.
pub fn helm_hanging_in(dir: &Path, subcommand: &str) -> (PathBuf, PathBuf) {
    let pidfile = dir.join("a-helm.pid");
    let wrapper = dir.join("slow-helm");
    let hang = format!("echo $$ > '{}'; sleep 60;;", pidfile.display());
    write_helm_wrapper(
        &wrapper,
        &format!("case \"$1\" in {subcommand}) {hang} esac\n"),
    );
    (wrapper, pidfile)
}

/// Writes the script `path`: `prelude`, then the real helm with the same
/// arguments.
pub fn write_helm_wrapper(path: &Path, prelude: &str) {
    let helm = helm_bin();
    write_script(
        path,
        &format!("#!/bin/sh\n{prelude}exec '{}' \"$@\"\n", helm.display()),
    );
}

/// The real helm 3 binary (`.tools/bin/helm3`, or `CHARTBROKER_HELM3`).
pub fn helm3_bin() -> PathBuf {
    tool_bin("CHARTBROKER_HELM3", "helm3", "helm 3")
}

/// Where the test catalog and charts live.
pub fn fixtures() -> PathBuf {
    repo().join("tests/fixtures")
}

/// A broker configuration over a data directory.
pub fn config(data: &Path) -> ServeConfig {
    ServeConfig {
        catalog_dir: fixtures().join("catalog"),
        charts_dir: fixtures().join("charts"),
        data_dir: data.to_path_buf(),
        engine: Engine::Render,
        helm: helm_bin(),
        helm_timeout: Duration::from_secs(60),
        max_helm_processes: chartbroker::helm::DEFAULT_MAX_PROCESSES,
        default_namespace: "default".into(),
        store_key: None,
        store_key_file: None,
        store_key_secret: None,
        store_old_key_files: Vec::new(),
        username: Some(USER.into()),
        password: Some(PASS.into()),
        credentials_file: None,
        platforms_file: None,
        operation_timeout: Duration::from_secs(120),
        sync_timeout: Duration::from_secs(60),
        kubeconfig: None,
        store: chartbroker::runtime::StoreKind::Redb,
        state_namespace: "chartbroker-system".into(),
        lease: Duration::from_secs(30),
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_chartbroker"))),
        namespaces: Vec::new(),
        namespace_selector: None,
        subject_access_review: true,
        release_identity: Default::default(),
    }
}

/// A running broker with its own data directory.
pub struct TestBroker {
    /// The HTTP application.
    pub app: chartbroker::server::App,
    /// The wired runtime.
    pub runtime: Runtime,
    /// Its data directory (removed on drop).
    pub data: tempfile::TempDir,
}

impl TestBroker {
    /// A broker over the test catalog.
    pub async fn start() -> TestBroker {
        let data = tempfile::tempdir().unwrap();
        let cfg = config(data.path());
        Self::with_config(data, cfg).await
    }

    /// A broker over a custom configuration (its data dir is `data`).
    pub async fn with_config(data: tempfile::TempDir, cfg: ServeConfig) -> TestBroker {
        let runtime = Runtime::start(&cfg).await.expect("broker starts");
        TestBroker {
            app: runtime.app(),
            runtime,
            data,
        }
    }

    /// Stops this broker and starts another over the same data directory
    /// with `cfg`, retrying while the old runtime's tasks still hold the
    /// store.
    pub async fn restart(self, cfg: &ServeConfig) -> TestBroker {
        let TestBroker { data, runtime, app } = self;
        drop((runtime, app));
        for _ in 0..50 {
            match Runtime::start(cfg).await {
                Ok(runtime) => {
                    return TestBroker {
                        app: runtime.app(),
                        runtime,
                        data,
                    };
                }
                // The store is released once the old runtime's tasks are gone.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("the broker did not restart over {}", data.path().display());
    }

    /// Sends a request built by [`req`].
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Authenticated OSB request with a JSON body (or none).
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        self.send(req(method, uri, body)).await
    }

    /// Polls an instance's last_operation until it leaves `in progress`.
    pub async fn wait_instance(&self, instance: &str, operation: &str) -> Resp {
        let uri = format!("/v2/service_instances/{instance}/last_operation?operation={operation}");
        self.poll(&uri).await
    }

    /// Polls a binding's last_operation until it leaves `in progress`.
    pub async fn wait_binding(&self, instance: &str, binding: &str, operation: &str) -> Resp {
        let uri = format!(
            "/v2/service_instances/{instance}/service_bindings/{binding}/last_operation?operation={operation}"
        );
        self.poll(&uri).await
    }

    async fn poll(&self, uri: &str) -> Resp {
        // Generous: helm against the real API server on a shared machine.
        self.poll_settled(uri, 2400)
            .await
            .unwrap_or_else(|| panic!("operation at {uri} did not finish in 120 s"))
    }

    /// Polls a last_operation `uri` every 50 ms, at most `tries` times,
    /// until it answers other than 200 `in progress`: that answer, or None.
    pub async fn poll_settled(&self, uri: &str, tries: usize) -> Option<Resp> {
        for _ in 0..tries {
            let r = self.call(Method::GET, uri, None).await;
            if r.status != StatusCode::OK || r.json["state"] != "in progress" {
                return Some(r);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// A response, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (Null when not JSON).
    pub json: Value,
    /// Body as text.
    pub text: String,
}

/// The basic `Authorization` header value of the test user.
pub fn auth() -> String {
    basic(USER, PASS)
}

/// A `Basic` Authorization header value.
pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// An authenticated request with `X-Broker-API-Version: 2.17`.
pub fn req(method: Method, uri: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", auth())
        .header("x-broker-api-version", "2.17");
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&v).unwrap()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// A provision body for the test catalog.
pub fn provision_body(plan: &str, params: Value) -> Value {
    provision_body_in(plan, "apps", params)
}

/// A provision body for the test catalog whose platform namespace is `ns`.
pub fn provision_body_in(plan: &str, ns: &str, params: Value) -> Value {
    serde_json::json!({
        "service_id": "svc-tiny",
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": params,
    })
}

/// A provision body for `service`'s `plan` (platform namespace `apps`).
pub fn provision_body_of(service: &str, plan: &str, params: Value) -> Value {
    let mut v = provision_body(plan, params);
    v["service_id"] = service.into();
    v
}

/// A bind body for the test catalog.
pub fn bind_body(plan: &str, params: Value) -> Value {
    serde_json::json!({
        "service_id": "svc-tiny",
        "plan_id": plan,
        "bind_resource": {"app_guid": "app-1"},
        "parameters": params,
    })
}

// === helpers for the tests/osb_*.rs suites ===

/// A closed gate for `helm template`: operations stay `in progress` until the
/// test opens it, so "while in progress" rules are tested without racing.
pub struct Gate {
    path: PathBuf,
}

impl Gate {
    /// Lets every waiting and future `helm template` through.
    pub fn open(&self) {
        std::fs::write(&self.path, b"").unwrap();
    }

    /// Holds every future `helm template` again.
    pub fn close(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Gate {
    /// A test that fails half-way must not leave helm waiting.
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, b"");
    }
}

impl TestBroker {
    /// A broker whose helm is a wrapper script (in the test's data dir) that
    /// holds `helm template` until the returned [`Gate`] opens, then execs the
    /// real helm. The wrapper gives up waiting after 20 s so a broken test
    /// can't hang.
    pub async fn start_gated() -> (TestBroker, Gate) {
        Self::start_gated_with(|_| {}).await
    }

    /// [`TestBroker::start_gated`] with the configuration adjusted by `tune`.
    pub async fn start_gated_with(tune: impl FnOnce(&mut ServeConfig)) -> (TestBroker, Gate) {
        let data = tempfile::tempdir().unwrap();
        let bin = data.path().join("test-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let (wrapper, gate) = gated_helm_in(&bin);
        let mut cfg = config(data.path());
        cfg.helm = wrapper;
        tune(&mut cfg);
        (Self::with_config(data, cfg).await, Gate { path: gate })
    }

    /// Where the render engine writes an instance provisioned by
    /// [`provision_body`] (namespace `apps`).
    pub fn release_dir(&self, instance: &str) -> PathBuf {
        self.data.path().join(format!("render/apps/cb-{instance}"))
    }

    /// Synchronous provision that must answer 201.
    pub async fn provision_sync(&self, instance: &str, plan: &str, params: Value) {
        self.put_created(&inst(instance), provision_body(plan, params))
            .await;
    }

    /// Asynchronous provision: answers 202 with an operation, which is returned.
    pub async fn provision_async(&self, instance: &str, plan: &str, params: Value) -> String {
        let uri = format!("{}?accepts_incomplete=true", inst(instance));
        accepted_op(&self.put(&uri, provision_body(plan, params)).await)
    }

    /// Synchronous bind that must answer 201; returns the credentials.
    pub async fn bind_sync(
        &self,
        instance: &str,
        binding: &str,
        plan: &str,
        params: Value,
    ) -> Value {
        let uri = format!("{}/service_bindings/{binding}", inst(instance));
        let r = self.put_created(&uri, bind_body(plan, params)).await;
        r.json["credentials"].clone()
    }
}

/// A request with only the given headers (no auth or version unless listed).
pub fn bare(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap()
}

/// The poll of a finished asynchronous delete: 200 `succeeded` while the
/// tombstone lives (410 only once the broker has forgotten it).
#[track_caller]
pub fn assert_delete_done(r: &Resp) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

/// Asserts an OSB error: the status, and a body that is a JSON object with a
/// non-empty `description` (and the `error` code, when given).
#[track_caller]
pub fn assert_osb_error(r: &Resp, status: StatusCode, error: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text);
    let d = r.json["description"].as_str().unwrap_or("");
    assert!(
        !d.trim().is_empty(),
        "error body needs a description: {}",
        r.text
    );
    if let Some(e) = error {
        assert_eq!(r.json["error"], e, "{}", r.text);
    }
}
