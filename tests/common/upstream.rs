//! Shared by tests/adapters/upstream.rs and tests/adapters/upstream_faults.rs: the real
//! upstream broker (tests/upstream/broker.py on openbrokerapi, from the
//! venv scripts/install-tools.sh creates), a catalog that proxies to it, and
//! OSB helpers for upstream plans (which always run asynchronously).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{self, Resp, TestBroker};

/// Upstream ids of tests/upstream/broker.py.
pub const MYSQL_SERVICE: &str = "5b6f2a0e-3c1d-4e8f-9a7b-1c2d3e4f5a60";
/// Its premium plan.
pub const MYSQL_PREMIUM: &str = "8e9d0c1b-2a3f-4b5c-8d7e-6f5a4b3c2d10";
/// Its business plan.
pub const MYSQL_BUSINESS: &str = "9f0e1d2c-3b4a-4c5d-9e8f-7a6b5c4d3e20";
/// The basic-auth user the upstream accepts.
pub const CLOUD_USER: &str = "cloud-user";
/// Its password (given to chartbroker through a file).
pub const CLOUD_PASSWORD: &str = "cloud-pass-Zq9";

/// The Python interpreter with openbrokerapi. Fails loudly without it.
pub fn python() -> PathBuf {
    let venv = || common::repo().join(".tools/venv/bin/python");
    let p = std::env::var_os("CHARTBROKER_PYTHON").map_or_else(venv, PathBuf::from);
    assert!(
        p.is_file(),
        "python with openbrokerapi not found at {} — run scripts/install-tools.sh or set CHARTBROKER_PYTHON",
        p.display()
    );
    p
}

/// The upstream broker process; killed on drop.
pub struct Cloud {
    child: Child,
    /// Its base URL.
    pub url: String,
    /// Its JSON-lines request log.
    pub log: PathBuf,
    /// Holds the log and stderr.
    pub dir: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cloud {
    /// Starts `broker.py --mode <mode> --polls <polls>` plus `extra` args.
    pub fn start(mode: &str, polls: u32, extra: &[&str]) -> Cloud {
        // The tests' own reqwest clients need the process-wide provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let stderr = std::fs::File::create(dir.path().join("stderr.txt")).unwrap();
        let mut child = Command::new(python())
            .arg(common::repo().join("tests/upstream/broker.py"))
            .args(["--port", "0", "--mode", mode, "--polls", &polls.to_string()])
            .args(["--user", CLOUD_USER, "--password", CLOUD_PASSWORD])
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the upstream test broker starts");
        let stdout = child.stdout.take().unwrap();
        // Owned by the guard at once, so a failed start still reaps it.
        let mut cloud = Cloud {
            child,
            url: String::new(),
            log,
            dir,
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(port) = line.trim().strip_prefix("LISTENING ") else {
            let err =
                std::fs::read_to_string(cloud.dir.path().join("stderr.txt")).unwrap_or_default();
            panic!("broker.py did not start: {line:?}\n{err}")
        };
        cloud.url = format!("http://127.0.0.1:{port}");
        cloud
    }

    /// Every request the upstream received so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Requests with this method whose path is exactly `path`.
    pub fn received(&self, method: &str, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["method"] == method && r["path"] == path)
            .collect()
    }

    /// Waits (at most 20 s) until `pred` holds for the request log.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) {
        for _ in 0..400 {
            if pred(&self.requests()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("upstream never saw {what}: {:#?}", self.requests());
    }

    /// Asserts the upstream received no `method` request on `path`.
    #[track_caller]
    pub fn assert_never_received(&self, method: &str, path: &str) {
        let seen = self.received(method, path);
        assert!(
            seen.is_empty(),
            "{method} {path} reached the upstream: {seen:#?}"
        );
    }

    /// Asserts the upstream holds nothing at `path` (a direct GET: 404).
    pub async fn assert_gone(&self, path: &str) {
        let (status, body) = self.direct(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 404, "{path} is still upstream: {body}");
    }

    /// Calls the upstream directly (test setup behind chartbroker's back).
    pub async fn direct(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .basic_auth(CLOUD_USER, Some(CLOUD_PASSWORD))
            .header("X-Broker-API-Version", "2.17");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// What the test catalog looks like.
pub struct CatalogOpts<'a> {
    /// Where chartbroker reaches the upstream (the broker, or a proxy).
    pub url: &'a str,
    /// `timeout_seconds`.
    pub timeout: f64,
    /// `maximum_polling_duration` of the upstream plans.
    pub max_polling: u64,
    /// `retries`.
    pub retries: u32,
    /// An `import:` mapping (YAML flow), if any.
    pub import: Option<&'a str>,
    /// The `auth:` mapping (YAML flow); default: basic with a password file.
    pub auth: Option<&'a str>,
    /// More settings of the upstream entry, one `key: value` per line.
    pub extra: Vec<String>,
    /// Writes `allow_insecure_http: true`: the test upstream listens on
    /// plain http:// (loopback), and credentials go there only with it.
    pub allow_insecure_http: bool,
}

impl<'a> CatalogOpts<'a> {
    /// Defaults for `url`.
    pub fn new(url: &'a str) -> Self {
        CatalogOpts {
            url,
            timeout: 5.0,
            max_polling: 60,
            retries: 2,
            import: None,
            auth: None,
            extra: Vec::new(),
            allow_insecure_http: true,
        }
    }
}

/// Writes the test catalog (and the upstream password file) into `dir`;
/// returns the catalog directory.
pub fn write_catalog(dir: &Path, o: &CatalogOpts<'_>) -> PathBuf {
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::write(
        catalog.join("cloud.password"),
        format!("{CLOUD_PASSWORD}\n"),
    )
    .unwrap();
    let mut import = o
        .import
        .map(|i| format!("    import: {i}\n    refresh_seconds: 1\n"))
        .unwrap_or_default();
    if o.allow_insecure_http {
        import.push_str("    allow_insecure_http: true\n");
    }
    for line in &o.extra {
        import.push_str(&format!("    {line}\n"));
    }
    let yaml = format!(
        r#"upstreams:
  - name: cloud
    url: "{url}"
    auth: {auth}
    timeout_seconds: {timeout}
    retries: {retries}
    poll: {{initial_seconds: 0.05, max_seconds: 0.2}}
{import}services:
  - id: svc-db
    name: db
    description: Databases, some managed upstream
    bindable: true
    instances_retrievable: true
    bindings_retrievable: true
    plan_updateable: true
    plans:
      - id: plan-premium
        name: premium
        description: Managed by the cloud
        maximum_polling_duration: {max}
        schemas:
          service_instance:
            create:
              parameters:
                type: object
                additionalProperties: false
                properties:
                  database: {{type: string, pattern: "^[a-z]+$"}}
                  size_gb: {{type: integer, minimum: 1, maximum: 100}}
                  outcome: {{type: string}}
            update:
              parameters:
                type: object
                additionalProperties: false
                properties:
                  size_gb: {{type: integer, minimum: 1, maximum: 100}}
        upstream: {{broker: cloud, service_id: {MYSQL_SERVICE}, plan_id: {MYSQL_PREMIUM}}}
      - id: plan-business
        name: business
        description: The bigger managed tier
        maximum_polling_duration: {max}
        upstream: {{broker: cloud, service_id: {MYSQL_SERVICE}, plan_id: {MYSQL_BUSINESS}}}
  - id: svc-stream
    name: stream
    description: Managed streams (bind needs an app)
    bindable: true
    plans:
      - id: plan-stream-dev
        name: dev
        description: Development stream
        maximum_polling_duration: {max}
        upstream: {{broker: cloud, service_id: upstream-kafka, plan_id: upstream-kafka-dev}}
"#,
        url = o.url,
        auth = o.auth.map(str::to_owned).unwrap_or_else(|| format!(
            "{{basic: {{username: {CLOUD_USER}, password_file: cloud.password}}}}"
        )),
        timeout = o.timeout,
        retries = o.retries,
        max = o.max_polling,
    );
    std::fs::write(catalog.join("cloud.yaml"), yaml).unwrap();
    catalog
}

/// A folder holding [`write_catalog`]'s catalog for `cloud` (the default
/// options): the folder and the catalog.
pub fn catalog_for(cloud: &Cloud) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path(), &CatalogOpts::new(&cloud.url));
    (dir, catalog)
}

/// An in-process chartbroker over a catalog written by [`write_catalog`].
pub async fn broker(o: &CatalogOpts<'_>) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let catalog = write_catalog(data.path(), o);
    let mut cfg = common::config(data.path());
    cfg.catalog_dir = catalog;
    TestBroker::with_config(data, cfg).await
}

/// The originating identity tests send, and its header value.
pub fn identity() -> (Value, String) {
    let v = json!({"username": "alice", "uid": "u-1", "groups": ["devs"]});
    let h = format!(
        "kubernetes {}",
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    );
    (v, h)
}

/// An OSB request from the platform, with an originating and request identity.
pub async fn call(b: &TestBroker, method: Method, uri: &str, body: Option<Value>) -> Resp {
    let mut r = common::req(method, uri, body);
    let h = r.headers_mut();
    h.insert(
        "x-broker-api-originating-identity",
        HeaderValue::from_str(&identity().1).unwrap(),
    );
    h.insert(
        "x-broker-api-request-identity",
        HeaderValue::from_static("req-7e1f"),
    );
    b.send(r).await
}

/// A provision body for the test catalog.
pub fn provision_body(service: &str, plan: &str, params: Value) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan,
        "organization_guid": "org-1",
        "space_guid": "space-1",
        "context": {"platform": "kubernetes", "namespace": "apps"},
        "parameters": params,
    })
}

/// Provisions with `accepts_incomplete=true`; returns the 202's operation.
pub async fn provision(
    b: &TestBroker,
    id: &str,
    service: &str,
    plan: &str,
    params: Value,
) -> String {
    let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let body = provision_body(service, plan, params);
    let r = call(b, Method::PUT, &uri, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{id}: {}", r.text);
    r.json["operation"].as_str().unwrap().to_string()
}

/// Provisions and waits; returns the final last_operation body.
pub async fn provision_and_wait(b: &TestBroker, id: &str, plan: &str, params: Value) -> Value {
    let op = provision(b, id, "svc-db", plan, params).await;
    let r = b.wait_instance(id, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

/// Binds with `accepts_incomplete=true`; returns the 202's operation.
pub async fn bind(
    b: &TestBroker,
    id: &str,
    binding: &str,
    service: &str,
    plan: &str,
    resource: Value,
) -> String {
    let r = call(
        b,
        Method::PUT,
        &format!("/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true"),
        Some(json!({
            "service_id": service,
            "plan_id": plan,
            "bind_resource": resource,
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {},
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["operation"].as_str().unwrap().to_string()
}

/// Deprovisions with `accepts_incomplete=true`; returns the response.
pub async fn deprovision(b: &TestBroker, id: &str, plan: &str) -> Resp {
    call(
        b,
        Method::DELETE,
        &format!(
            "/v2/service_instances/{id}?service_id=svc-db&plan_id={plan}&accepts_incomplete=true"
        ),
        None,
    )
    .await
}

/// `chartbroker catalog lint` of `catalog` over the test charts.
pub fn lint(catalog: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["catalog", "lint"])
        .arg(catalog)
        .arg("--charts")
        .arg(common::fixtures().join("charts"))
        .output()
        .unwrap()
}

/// Updates instance `id` with `body` (`accepts_incomplete=true`): 202, then
/// its operation must succeed.
pub async fn update_done(b: &TestBroker, id: &str, body: Value) {
    let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let r = call(b, Method::PATCH, &uri, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{id}: {}", r.text);
    let op = r.json["operation"].as_str().unwrap();
    let r = b.wait_instance(id, op).await;
    assert_eq!(r.json["state"], "succeeded", "{id}: {}", r.text);
}

/// Binds at `bpath` on plan-premium without `accepts_incomplete`: 201.
pub async fn bind_now(b: &TestBroker, bpath: &str) -> Resp {
    let body = json!({"service_id": "svc-db", "plan_id": "plan-premium"});
    let r = call(b, Method::PUT, bpath, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{bpath}: {}", r.text);
    r
}

/// Unbinds at `bpath` (bound on plan-premium) without
/// `accepts_incomplete`: 200.
pub async fn unbind_now(b: &TestBroker, bpath: &str) {
    let uri = format!("{bpath}?service_id=svc-db&plan_id=plan-premium");
    let r = call(b, Method::DELETE, &uri, None).await;
    assert_eq!(r.status, StatusCode::OK, "{bpath}: {}", r.text);
}

/// Unbinds at `bpath` with `accepts_incomplete=true`: 202, then the
/// finished delete (its operation's last_operation: 200 `succeeded`).
pub async fn unbind_done(b: &TestBroker, bpath: &str, plan: &str) {
    let uri = format!("{bpath}?service_id=svc-db&plan_id={plan}&accepts_incomplete=true");
    let r = call(b, Method::DELETE, &uri, None).await;
    common::assert_delete_done(&b.finish(&uri, r).await);
}

/// [`deprovision`] of `id`: 202, then the finished delete (200 `succeeded`).
pub async fn deprovision_done(b: &TestBroker, id: &str, plan: &str) {
    let r = deprovision(b, id, plan).await;
    let path = format!("/v2/service_instances/{id}");
    common::assert_delete_done(&b.finish(&path, r).await);
}
