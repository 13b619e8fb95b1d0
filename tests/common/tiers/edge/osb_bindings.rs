//! Helpers of the tests in tests/edge/osb_bindings/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

// === helpers ===

pub fn binding(i: &str, b: &str) -> String {
    format!("/v2/service_instances/{i}/service_bindings/{b}")
}

/// The bind body most tests send: plan-small, role reader.
pub fn reader() -> Value {
    bind_body("plan-small", json!({"role": "reader"}))
}

/// A synchronous plan-small bind of `i-1`/`b-1` with `role`: the credentials.
pub async fn bind_as(b: &TestBroker, role: &str) -> Value {
    b.bind_sync("i-1", "b-1", "plan-small", json!({ "role": role }))
        .await
}

pub fn binding_async(i: &str, b: &str) -> String {
    format!("{}?accepts_incomplete=true", binding(i, b))
}

pub fn unbind_uri(i: &str, b: &str, accepts_incomplete: bool) -> String {
    let flag = if accepts_incomplete {
        "&accepts_incomplete=true"
    } else {
        ""
    };
    format!(
        "{}?service_id=svc-tiny&plan_id=plan-small{flag}",
        binding(i, b)
    )
}

pub fn binding_last_op(i: &str, b: &str, op: Option<&str>) -> String {
    match op {
        Some(op) => format!("{}/last_operation?operation={op}", binding(i, b)),
        None => format!("{}/last_operation", binding(i, b)),
    }
}

pub fn secret_file(b: &TestBroker, instance: &str, binding: &str) -> PathBuf {
    b.release_dir(instance)
        .join("bindings")
        .join(format!("cb-bind-{binding}.yaml"))
}

/// After a 4xx on bind: no binding record, no operation, no Secret file.
pub async fn assert_no_binding(b: &TestBroker, i: &str, id: &str) {
    let r = b.get(&binding(i, id)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "binding exists: {}",
        r.text
    );
    let r = b.get(&binding_last_op(i, id, None)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "operation recorded: {}",
        r.text
    );
    assert!(!secret_file(b, i, id).exists());
}

/// A bind the broker refuses, creating nothing.
pub struct BindRefusal {
    /// Named so a failure says which case.
    pub name: &'static str,
    /// The plan and parameters of instance `i-1`, provisioned first
    /// (none: no instance).
    pub provisioned: Option<(&'static str, &'static str)>,
    /// Whether binding `b-1` of that plan is made first.
    pub first_binding: bool,
    /// The bind: instance, binding, plan, predecessor.
    pub instance: &'static str,
    pub binding: &'static str,
    pub plan: &'static str,
    pub predecessor: Option<&'static str>,
    /// The refusal.
    pub status: StatusCode,
}

/// Binds refused with a 4xx that must leave no record, operation or file.
pub const BIND_REFUSALS: &[BindRefusal] = &[
    BindRefusal {
        name: "unknown instance: 404",
        provisioned: None,
        first_binding: false,
        instance: "i-nope",
        binding: "b-1",
        plan: "plan-small",
        predecessor: None,
        status: StatusCode::NOT_FOUND,
    },
    BindRefusal {
        name: "unbindable plan: 400",
        provisioned: Some(("plan-unbindable", "{}")),
        first_binding: false,
        instance: "i-1",
        binding: "b-1",
        plan: "plan-unbindable",
        predecessor: None,
        status: StatusCode::BAD_REQUEST,
    },
    BindRefusal {
        name: "rotation on a non-rotatable plan: 400",
        provisioned: Some(("plan-large", "{}")),
        first_binding: true,
        instance: "i-1",
        binding: "b-2",
        plan: "plan-large",
        predecessor: Some("b-1"),
        status: StatusCode::BAD_REQUEST,
    },
    BindRefusal {
        name: "rotation from an unknown predecessor: 400",
        provisioned: Some(("plan-small", r#"{"message": "hi"}"#)),
        first_binding: false,
        instance: "i-1",
        binding: "b-2",
        plan: "plan-small",
        predecessor: Some("b-nope"),
        status: StatusCode::BAD_REQUEST,
    },
];

/// Sets up `c` on a new broker and sends its bind: the answer and the broker.
pub async fn refused_bind(c: &BindRefusal) -> (Resp, TestBroker) {
    let b = TestBroker::start().await;
    if let Some((plan, params)) = c.provisioned {
        let params: Value = serde_json::from_str(params).unwrap();
        b.provision_sync("i-1", plan, params).await;
        if c.first_binding {
            b.bind_sync("i-1", "b-1", plan, json!({})).await;
        }
    }
    let mut body = bind_body(c.plan, json!({}));
    if let Some(p) = c.predecessor {
        body["predecessor_binding_id"] = json!(p);
    }
    (b.put(&binding(c.instance, c.binding), body).await, b)
}

/// Holds the write of a binding's Secret file: the render engine writes
/// `<name>.tmp` and renames it, and opening a FIFO for writing blocks until a
/// reader opens it. Dropping the hold lets the writer go (it then fails,
/// since a FIFO can't be fsynced).
pub struct SecretWriteHold {
    pub fifo: PathBuf,
}

impl SecretWriteHold {
    pub fn new(b: &TestBroker, instance: &str, binding: &str) -> Self {
        let dir = b.release_dir(instance).join("bindings");
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join(format!("cb-bind-{binding}.tmp"));
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(st.success());
        SecretWriteHold { fifo }
    }

    /// Lets the writer through and waits until it has finished writing.
    pub async fn release(self) {
        let fifo = self.fifo.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut sink = Vec::new();
            f.read_to_end(&mut sink).unwrap();
        })
        .await
        .unwrap();
        // Drop still runs, harmlessly.
    }
}

impl Drop for SecretWriteHold {
    fn drop(&mut self) {
        // O_NONBLOCK: a read-only open of a FIFO then returns at once, and
        // wakes a writer blocked in open.
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000)
            .open(&self.fifo);
        let _ = std::fs::remove_file(&self.fifo);
    }
}

/// An asynchronous [`reader`] bind of `i-1`/`b-1` whose Secret write is
/// held: the hold and the bind's operation.
pub async fn held_bind(b: &TestBroker) -> (SecretWriteHold, String) {
    let hold = SecretWriteHold::new(b, "i-1", "b-1");
    let r = b.put(&binding_async("i-1", "b-1"), reader()).await;
    (hold, accepted_op(&r))
}

/// A binding Secret's `stringData` holding only the credentials `creds`
/// of a plan-small bind with `role`.
pub fn credential_data(creds: &Value, role: &str) -> Value {
    json!({
        "host": creds["host"],
        "port": "5432",
        "password": creds["password"],
        "role": role,
    })
}

pub fn read_secret_manifest(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = serde_saphyr::from_multiple::<Value>(&text).unwrap();
    docs.retain(|d| !d.is_null());
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}
