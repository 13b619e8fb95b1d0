//! Small OSB request and encoding helpers more than one test module uses.

use axum::http::{Method, StatusCode};
use base64::Engine as _;

use serde_json::{Value, json};

use super::{
    Gate, Resp, TestBroker, assert_osb_error, bare, config, fixtures, provision_body_of, repo,
};

/// One-line OSB calls: the same requests as [`TestBroker::call`], so a test
/// reads as its requests and checks rather than as request plumbing.
impl TestBroker {
    /// Authenticated `PUT` with a JSON body.
    pub async fn put(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::PUT, uri, Some(body)).await
    }

    /// [`TestBroker::put`] that must answer 201 Created: the answer.
    pub async fn put_created(&self, uri: &str, body: Value) -> Resp {
        let r = self.put(uri, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r
    }

    /// An asynchronous provision of instance `id` that must answer 202
    /// Accepted: its last_operation once finished.
    pub async fn provision_done(&self, id: &str, body: Value) -> Resp {
        let r = self
            .put(
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{id}: {}", r.text);
        self.wait_instance(id, r.json["operation"].as_str().unwrap())
            .await
    }

    /// A broker over `cfg` (its data dir is `data`) whose database users are
    /// made by `users`.
    pub async fn with_users(
        data: tempfile::TempDir,
        cfg: &chartbroker::runtime::ServeConfig,
        users: std::sync::Arc<dyn chartbroker::dbusers::UserAdmin>,
    ) -> TestBroker {
        let runtime = chartbroker::runtime::Runtime::start_with(cfg, users)
            .await
            .expect("broker starts");
        TestBroker {
            app: runtime.app(),
            runtime,
            data,
        }
    }

    /// Authenticated `PATCH` with a JSON body.
    pub async fn patch(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::PATCH, uri, Some(body)).await
    }

    /// Authenticated `GET`.
    pub async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, None).await
    }

    /// Authenticated `DELETE`.
    pub async fn del(&self, uri: &str) -> Resp {
        self.call(Method::DELETE, uri, None).await
    }

    /// The finished last_operation of instance `id`'s operation `op`, which
    /// must have succeeded.
    pub async fn wait_succeeded(&self, id: &str, op: &str) -> Resp {
        let r = self.wait_instance(id, op).await;
        assert_eq!(r.json["state"], "succeeded", "{id}: {}", r.text);
        r
    }

    /// The finished last_operation of binding `binding` of instance `id`'s
    /// operation `op`, which must have succeeded.
    pub async fn wait_binding_succeeded(&self, id: &str, binding: &str, op: &str) -> Resp {
        let r = self.wait_binding(id, binding, op).await;
        assert_eq!(r.json["state"], "succeeded", "{id}/{binding}: {}", r.text);
        r
    }

    /// `GET /v2/catalog` at version 2.17 with only the `Authorization`
    /// header `authorization`.
    pub async fn catalog_as(&self, authorization: &str) -> Resp {
        let headers = [
            ("x-broker-api-version", "2.17"),
            ("authorization", authorization),
        ];
        self.send_bare(Method::GET, "/v2/catalog", &headers, None)
            .await
    }

    /// Sends a [`bare`] request: only the given headers.
    pub async fn send_bare(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.send(bare(method, uri, headers, body)).await
    }
}

impl Resp {
    /// Header `name` as text, when present (and text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Standard base64 of `s`, as a Secret's `data` holds it.
pub fn b64_encode(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Standard base64 `s` decoded, as UTF-8 (a Secret's `data` value).
pub fn b64_decode(s: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

/// `GET last_operation` of instance `id`.
pub async fn last_operation(b: &TestBroker, id: &str) -> Resp {
    b.call(
        Method::GET,
        &format!("/v2/service_instances/{id}/last_operation"),
        None,
    )
    .await
}

/// The path of instance `id`.
pub fn inst(id: &str) -> String {
    format!("/v2/service_instances/{id}")
}

/// The provision body most tests send: plan-small, message "hi".
pub fn hi_body() -> Value {
    super::provision_body("plan-small", json!({"message": "hi"}))
}

/// A broker on the repository's example catalog and charts.
pub async fn example_broker() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    TestBroker::with_config(data, cfg).await
}

/// A broker with instance `i-1` of plan-small provisioned (message "hi").
pub async fn broker_with_instance() -> TestBroker {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    b
}

/// A gated broker whose plan-small provision of `i-1` with `params` is
/// held at the gate: the broker, the gate and the operation.
pub async fn provisioning_broker(params: Value) -> (TestBroker, Gate, String) {
    let (b, gate) = TestBroker::start_gated().await;
    let op = b.provision_async("i-1", "plan-small", params).await;
    (b, gate, op)
}

/// [`broker_with_instance`] with its operations held at a closed gate.
pub async fn gated_broker_with_instance() -> (TestBroker, Gate) {
    let (b, gate) = TestBroker::start_gated().await;
    gate.open();
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    gate.close();
    (b, gate)
}

/// A 202 Accepted answer: its operation.
#[track_caller]
pub fn accepted_op(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["operation"]
        .as_str()
        .expect("202 carries an operation")
        .to_string()
}

/// A repeat of a request still in progress: 202 with the same operation `op`.
#[track_caller]
pub fn assert_same_operation(r: &Resp, op: &str) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json["operation"], op, "{}", r.text);
}

/// A request refused because another operation on the same resource runs:
/// 422 `ConcurrencyError`.
#[track_caller]
pub fn assert_concurrency_error(r: &Resp) {
    assert_osb_error(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("ConcurrencyError"),
    );
}

/// A DELETE of `path` (an instance or binding) without `service_id` or
/// `plan_id`, or with one empty, in each way: 400 every time.
pub async fn assert_delete_needs_ids(b: &TestBroker, path: &str) {
    for query in [
        "",
        "?plan_id=plan-small",
        "?service_id=svc-tiny",
        "?service_id=&plan_id=plan-small",
        "?service_id=svc-tiny&plan_id=",
    ] {
        let r = b.del(&format!("{path}{query}")).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
}

/// [`assert_osb_error`] without an error code, whose description names
/// each of `needles`; `case` says which request in the message.
#[track_caller]
pub fn assert_osb_error_naming(r: &Resp, status: StatusCode, needles: &[&str], case: &str) {
    assert_osb_error(r, status, None);
    let d = r.json["description"].as_str().unwrap();
    for needle in needles {
        assert!(d.contains(needle), "{case}: {needle} not in {}", r.text);
    }
}

/// [`assert_osb_error_naming`] for a 400 Bad Request.
#[track_caller]
pub fn assert_400_naming(r: &Resp, needle: &str, case: &str) {
    assert_osb_error_naming(r, StatusCode::BAD_REQUEST, &[needle], case);
}

/// The echo fixture: its chart's values schema quotes the password back
/// (`'<password>' does not match pattern`) when `message` is "fail".
pub async fn echo_broker() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = fixtures().join("catalog-echo");
    TestBroker::with_config(data, cfg).await
}

/// Provisions and binds on the echo plan, then makes helm fail with the
/// password in its message, synchronously and asynchronously. Returns the
/// password and the failure descriptions.
pub async fn echo_failures(b: &TestBroker) -> (String, Vec<String>) {
    let body = |params: Value| provision_body_of("svc-echo", "plan-echo", params);
    b.put_created("/v2/service_instances/e-1", body(json!({"message": "ok"})))
        .await;
    let r = b
        .put_created(
            "/v2/service_instances/e-1/service_bindings/b-1",
            json!({"service_id": "svc-echo", "plan_id": "plan-echo"}),
        )
        .await;
    let password = r.json["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24);

    let update = json!({"service_id": "svc-echo", "parameters": {"message": "fail"}});
    let r = b.patch("/v2/service_instances/e-1", update.clone()).await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let sync = r.json["description"].as_str().unwrap().to_string();
    let r = b
        .patch("/v2/service_instances/e-1?accepts_incomplete=true", update)
        .await;
    let r = b.wait_instance("e-1", &accepted_op(&r)).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let asynchronous = r.json["description"].as_str().unwrap().to_string();
    (password, vec![sync, asynchronous])
}
