//! HTTP-level behaviour, in process through the router: what neither helm
//! nor kube-rs happen to exercise in the other tests.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use fake_kube::{FakeKube, protobuf_envelope, release_secret, router};
use prost::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

const APPLY: &str = "application/apply-patch+yaml";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";

struct Fake(FakeKube);

impl Fake {
    fn new() -> Self {
        Fake(FakeKube::new())
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let (status, text) = self.raw(method, uri, ctype, body).await;
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    async fn raw(
        &self,
        method: &str,
        uri: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ctype)
            .body(Body::from(body))
            .unwrap();
        let resp = router(self.0.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() {
            vec![]
        } else {
            body.to_string().into_bytes()
        };
        self.call(method, uri, "application/json", body).await
    }

    async fn patch(&self, uri: &str, ctype: &str, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        self.call("PATCH", uri, ctype, body.into()).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.json("GET", uri, Value::Null).await
    }
}

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

#[tokio::test]
async fn version_and_discovery() {
    let f = Fake::new();
    let (code, v) = f.get("/version").await;
    assert_eq!(
        (code, v["gitVersion"].as_str()),
        (StatusCode::OK, Some("v1.35.0"))
    );
    assert_eq!(
        f.raw("GET", "/healthz", "", vec![]).await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(f.get("/api").await.1["versions"], json!(["v1"]));

    let (_, groups) = f.get("/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "apiextensions.k8s.io",
        "storage.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    assert_eq!(
        f.get("/apis/apps").await.1["preferredVersion"]["groupVersion"],
        "apps/v1"
    );

    let (_, core) = f.get("/api/v1").await;
    assert_eq!(core["groupVersion"], "v1");
    assert_eq!(resource(&core, "namespaces")["namespaced"], false);
    assert_eq!(resource(&core, "secrets")["namespaced"], true);
    assert_eq!(resource(&core, "configmaps")["kind"], "ConfigMap");
    assert!(
        resource(&core, "pods/status")["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("update"))
    );
    let (_, rbac) = f.get("/apis/rbac.authorization.k8s.io/v1").await;
    assert_eq!(resource(&rbac, "clusterroles")["namespaced"], false);
    assert_eq!(resource(&rbac, "rolebindings")["namespaced"], true);
    let (_, authz) = f.get("/apis/authorization.k8s.io/v1").await;
    assert_eq!(
        resource(&authz, "subjectaccessreviews")["verbs"],
        json!(["create"])
    );
    assert_eq!(f.get("/apis/nope/v1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(f.get("/api/v1/nopes").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_v3_advertises_field_validation() {
    let f = Fake::new();
    let (_, index) = f.get("/openapi/v3").await;
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
    let (code, doc) = f.get(url).await;
    assert_eq!(code, StatusCode::OK);
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
    let (_, core) = f.get("/openapi/v3/api/v1").await;
    assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
}

#[tokio::test]
async fn protobuf_secret_and_delete_options() {
    let f = Fake::new();
    let pb = "application/vnd.kubernetes.protobuf";
    let record = release_secret("rec", b"raw bytes");
    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, created) = f.call("POST", secrets, pb, record).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["data"]["release"], "cmF3IGJ5dGVz"); // base64("raw bytes")
    assert_eq!(created["type"], "helm.sh/release.v1");

    // A stale resourceVersion precondition in protobuf DeleteOptions.
    let opts = |rv: &str| {
        let o = k8s_pb::apimachinery::pkg::apis::meta::v1::DeleteOptions {
            preconditions: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::Preconditions {
                uid: None,
                resource_version: Some(rv.into()),
            }),
            ..Default::default()
        };
        protobuf_envelope("meta.k8s.io/v1", "DeleteOptions", o.encode_to_vec())
    };
    let uri = "/api/v1/namespaces/default/secrets/rec";
    let (code, status) = f.call("DELETE", uri, pb, opts("1")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{status}");
    assert_eq!(status["reason"], "Conflict");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, status) = f.call("DELETE", uri, pb, opts(&rv)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["kind"], "secrets");

    // Kinds nobody sends as protobuf are refused, not misread.
    let (code, _) = f
        .call(
            "POST",
            "/api/v1/namespaces/default/pods",
            pb,
            protobuf_envelope("v1", "Pod", vec![]),
        )
        .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn errors_are_status_objects() {
    let f = Fake::new();
    let (code, s) = f.get("/api/v1/namespaces/default/configmaps/missing").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        s,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "configmaps \"missing\" not found", "reason": "NotFound", "code": 404,
               "details": {"name": "missing", "kind": "configmaps"}})
    );
    let (_, s) = f
        .get("/apis/apps/v1/namespaces/default/deployments/x")
        .await;
    assert_eq!(s["message"], "deployments.apps \"x\" not found");
    assert_eq!(s["details"]["group"], "apps");

    let cm = json!({"metadata": {"name": "Bad_Name"}});
    let (code, s) = f
        .json("POST", "/api/v1/namespaces/default/configmaps", cm)
        .await;
    assert_eq!(
        (code, s["reason"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Invalid"))
    );
    let cm = json!({"metadata": {"name": "x", "namespace": "other"}});
    let (code, _) = f
        .json("POST", "/api/v1/namespaces/default/configmaps", cm)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // Apply needs a field manager; unknown patch types are 415.
    let uri = "/api/v1/namespaces/default/configmaps/x";
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec();
    let (code, _) = f.patch(uri, APPLY, body.clone()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let managed = format!("{uri}?fieldManager=t");
    let (code, _) = f.patch(&managed, APPLY, body).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, _) = f.patch(uri, "text/plain", b"{}".to_vec()).await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn apply_accepts_yaml() {
    let f = Fake::new();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels:\n    a: b\ndata:\n  k: v\n";
    let uri = "/api/v1/namespaces/default/configmaps/y?fieldManager=helm&force=false";
    let (code, obj) = f.patch(uri, APPLY, yaml).await;
    assert_eq!(code, StatusCode::CREATED, "{obj}");
    assert_eq!(obj["data"]["k"], "v");
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Apply");
}

#[tokio::test]
async fn json_patch_and_dry_run_and_delete_collection() {
    let f = Fake::new();
    let base = "/api/v1/namespaces/default/configmaps";
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let cm = json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "1"}});
        assert_eq!(f.json("POST", base, cm).await.0, StatusCode::CREATED);
    }
    let ops = json!([{"op": "replace", "path": "/data/k", "value": "2"}, {"op": "add", "path": "/data/n", "value": "3"}]);
    let a = format!("{base}/a");
    let (code, obj) = f.patch(&a, JSON_PATCH, ops.to_string()).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(obj["data"], json!({"k": "2", "n": "3"}));

    let (code, obj) = f
        .json(
            "POST",
            &format!("{base}?dryRun=All"),
            json!({"metadata": {"name": "dry"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(obj["metadata"]["name"], "dry");
    assert_eq!(f.get(&format!("{base}/dry")).await.0, StatusCode::NOT_FOUND);

    // limit/continue paging.
    let (_, page) = f.get(&format!("{base}?limit=2")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, rest) = f.get(&format!("{base}?limit=2&continue={token}")).await;
    assert_eq!(rest["items"][0]["metadata"]["name"], "c");

    let (code, deleted) = f
        .json(
            "DELETE",
            &format!("{base}?labelSelector=tier%3Dx"),
            Value::Null,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(deleted["kind"], "ConfigMapList");
    assert_eq!(deleted["items"].as_array().unwrap().len(), 2);
    let names: Vec<String> =
        f.0.list("configmaps", Some("default"))
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(names, ["c"]);
}

#[tokio::test]
async fn status_subresource_and_finalizers() {
    let f = Fake::new();
    let uri = "/apis/apps/v1/namespaces/default/deployments";
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "finalizers": ["example.com/hold"]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"readyReplicas": 9}});
    let (code, created) = f.json("POST", uri, deploy).await;
    assert_eq!(code, StatusCode::CREATED);
    assert!(
        created.get("status").is_none(),
        "status is ignored on create"
    );
    assert_eq!(created["metadata"]["generation"], 1);

    // Status only through /status; spec changes bump the generation.
    let mut obj = created.clone();
    obj["status"] = json!({"readyReplicas": 1});
    let (_, put) = f.json("PUT", &format!("{uri}/d/status"), obj.clone()).await;
    assert_eq!(put["status"]["readyReplicas"], 1);
    assert_eq!(put["metadata"]["generation"], 1);
    let mut obj = put.clone();
    obj["spec"]["replicas"] = json!(3);
    obj["status"] = json!({"readyReplicas": 7});
    let (_, put) = f.json("PUT", &format!("{uri}/d"), obj).await;
    assert_eq!(put["status"]["readyReplicas"], 1);
    assert_eq!(put["metadata"]["generation"], 2);

    // A finalizer holds the object, marked, until it is removed.
    let (code, held) = f.json("DELETE", &format!("{uri}/d"), Value::Null).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(f.get(&format!("{uri}/d")).await.0, StatusCode::OK);
    let patch = json!({"metadata": {"finalizers": null}});
    let d = format!("{uri}/d");
    let (code, _) = f.patch(&d, MERGE_PATCH, patch.to_string()).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(f.get(&format!("{uri}/d")).await.0, StatusCode::NOT_FOUND);

    // Seeding a status directly, for tests that need a "ready" workload.
    let seeded =
        f.0.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ready", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}},
        "status": {"readyReplicas": 1}}));
    assert_eq!(seeded["status"]["readyReplicas"], 1);
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version() {
    let f = Fake::new();
    let base = "/api/v1/namespaces/default/configmaps";
    let (_, a) = f
        .json("POST", base, json!({"metadata": {"name": "a"}}))
        .await;
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    f.json("POST", base, json!({"metadata": {"name": "b"}}))
        .await;
    f.json("DELETE", &format!("{base}/a"), Value::Null).await;
    f.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "other"}}),
    )
    .await;

    // Changes after `rv`, then the stream ends at timeoutSeconds.
    let f = &f;
    let watch =
        |query: String| async move { f.raw("GET", &format!("{base}?{query}"), "", vec![]).await };
    let (code, body) = watch(format!("watch=true&resourceVersion={rv}&timeoutSeconds=1")).await;
    assert_eq!(code, StatusCode::OK);
    let events: Vec<(String, String)> = body
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            (
                e["type"].as_str().unwrap().into(),
                e["object"]["metadata"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [("ADDED".into(), "b".into()), ("DELETED".into(), "a".into())]
    );

    // Without a resourceVersion: the current objects as ADDED.
    let (_, text) = watch("watch=1&timeoutSeconds=1".into()).await;
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains(r#""type":"ADDED""#) && text.contains(r#""name":"b""#));
}
