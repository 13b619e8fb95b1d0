//! The render engine's output is what a GitOps controller or a person
//! applies: the real kubectl applies it, unchanged, to an API server (the
//! in-process fake, which keeps to documented API behaviour).

mod common;

use std::path::PathBuf;
use std::process::Command;

use axum::http::{Method, StatusCode};
use common::*;
use fake_kube::FakeKube;
use serde_json::json;

fn kubectl() -> PathBuf {
    let p = std::env::var_os("CHARTBROKER_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/bin/kubectl"));
    assert!(
        p.is_file(),
        "kubectl not found at {} — run scripts/install-tools.sh",
        p.display()
    );
    p
}

const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";
const MYSQL_BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";
const POSTGRES: &str = "d342caec-23dd-4125-8813-c110e35db4cf";
const POSTGRES_BASIC: &str = "aada5de2-a6b6-4fcf-8229-6e72235083f8";
const REDIS: &str = "adecbefe-31f1-4953-9be6-d1a727229fe5";
const REDIS_BASIC: &str = "cda88906-87ac-41f7-8914-80a3fb93606c";
const WORDPRESS: &str = "c461081c-edf4-464d-a97a-c6bc513221d8";
const WORDPRESS_STANDARD: &str = "5d07b801-7bd4-41e1-b993-f981678db0af";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_example_catalog_applies_with_kubectl() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    let b = TestBroker::with_config(data, cfg).await;
    let body = |s: &str, p: &str, params: serde_json::Value| {
        json!({"service_id": s, "plan_id": p,
            "context": {"platform": "kubernetes", "namespace": "shop"}, "parameters": params})
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

    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let kubeconfig = k.kubeconfig(b.data.path());
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["apply", "--recursive", "-f"])
        .arg(b.data.path().join("render"))
        .env("HOME", b.data.path())
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl apply failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (gv, plural, name) in [
        ("apps/v1", "statefulsets", "cb-db"),
        ("apps/v1", "statefulsets", "cb-pg"),
        ("apps/v1", "statefulsets", "cb-cache"),
        ("apps/v1", "deployments", "cb-blog"),
        ("v1", "services", "cb-db"),
        ("v1", "secrets", "cb-blog-database"),
        ("v1", "secrets", "cb-bind-app"),
    ] {
        assert!(
            k.get(gv, plural, Some("shop"), name).is_some(),
            "{plural}/{name} was applied"
        );
    }
    // The binding Secret carries the credentials the bind returned.
    let secret = k.get("v1", "secrets", Some("shop"), "cb-bind-app").unwrap();
    assert_eq!(
        secret["data"]["password"].as_str().map(|s| !s.is_empty()),
        Some(true),
        "{secret}"
    );
}
