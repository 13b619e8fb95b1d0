//! The render engine's output is what a GitOps controller or a person
//! applies: the real kubectl applies it, unchanged, with server-side apply
//! to the real API server (tests/testenv), whose schema validation is
//! strict: an unknown or misspelt field fails the apply.

use crate::common;

use crate::helpers::kubectl_apply::*;
use axum::http::{Method, StatusCode};
use common::cluster::{Cluster, kubectl, secret_value};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_example_catalog_applies_with_kubectl() {
    let k = Cluster::admin().await;
    let ns = k.namespace("shop").await;
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    let b = TestBroker::with_config(data, cfg).await;
    let body = |s: &str, p: &str, params: serde_json::Value| {
        json!({"service_id": s, "plan_id": p,
            "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
    };
    for (id, s, p, params) in [
        ("db", MYSQL, MYSQL_BASIC, json!({})),
        ("pg", POSTGRES, POSTGRES_BASIC, json!({})),
        ("cache", REDIS, REDIS_BASIC, json!({})),
        (
            "blog",
            WORDPRESS,
            WORDPRESS_STANDARD,
            json!({"mysql_instance": "db"}),
        ),
    ] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}"),
                Some(body(s, p, params)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.text);
    }
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/cache/service_bindings/app",
            Some(json!({"service_id": REDIS, "plan_id": REDIS_BASIC})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let creds = r.json["credentials"].clone();

    let render = b.data.path().join("render");
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &[
            "apply",
            "--server-side",
            "--validate=strict",
            "--recursive",
            "-f",
            render.to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "kubectl apply failed:\n{out}");
    for (path, name) in [
        ("apis/apps/v1", "statefulsets/cb-db"),
        ("apis/apps/v1", "statefulsets/cb-pg"),
        ("apis/apps/v1", "statefulsets/cb-cache"),
        ("apis/apps/v1", "deployments/cb-blog"),
        ("api/v1", "services/cb-db"),
        ("api/v1", "secrets/cb-blog-database"),
        ("api/v1", "secrets/cb-bind-app"),
    ] {
        let obj = k
            .get(&format!("/{path}/namespaces/{ns}/{name}"))
            .await
            .unwrap_or_else(|| panic!("{name} was applied: {out}"));
        let managers: Vec<&str> = obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(managers.contains(&"kubectl"), "{name}: {managers:?}");
    }
    // The binding Secret carries the credentials the bind returned.
    let secret = k
        .get(&format!("/api/v1/namespaces/{ns}/secrets/cb-bind-app"))
        .await
        .unwrap();
    let password = secret_value(&secret, "password").unwrap_or_default();
    assert!(!password.is_empty(), "{secret}");
    assert_eq!(Some(password.as_str()), creds["password"].as_str());

    // Applied again, unchanged: nothing conflicts (a GitOps controller
    // applies the same files over and over).
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &[
            "apply",
            "--server-side",
            "--recursive",
            "-f",
            render.to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "second apply: {out}");
}
