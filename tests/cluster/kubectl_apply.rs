//! The render engine's output is what a GitOps controller or a person
//! applies: the real kubectl applies it, unchanged, with server-side apply
//! to the real API server (tests/testenv), whose schema validation is
//! strict: an unknown or misspelt field fails the apply.

use crate::common;

use crate::helpers::kubectl_apply::*;
use common::cluster::{Cluster, kubectl, secret_value};
use common::cluster_calls::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_example_catalog_applies_with_kubectl() {
    let k = Cluster::admin().await;
    let ns = k.namespace("shop").await;
    let b = example_broker().await;
    let platform = b.by(None);
    let blog = json!({"mysql_instance": "db"});
    for (id, s, p, params) in [
        ("db", MYSQL, MYSQL_BASIC, json!({})),
        ("pg", POSTGRES, POSTGRES_BASIC, json!({})),
        ("cache", REDIS, REDIS_BASIC, json!({})),
        ("blog", WORDPRESS, WORDPRESS_STANDARD, blog),
    ] {
        let uri = format!("/v2/service_instances/{id}");
        platform.created(&uri, kube_body(s, p, &ns, params)).await;
    }
    let bind = json!({"service_id": REDIS, "plan_id": REDIS_BASIC});
    let r = platform.bound("cache", "app", bind).await;
    let creds = r.json["credentials"].clone();

    let render = b.data.path().join("render");
    let render = render.to_str().unwrap();
    let strict = [
        "apply",
        "--server-side",
        "--validate=strict",
        "--recursive",
        "-f",
        render,
    ];
    let (ok, out) = kubectl(&k.kubeconfig, &strict, "");
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
        let managers = field_managers(&obj);
        assert!(
            managers.iter().any(|m| m == "kubectl"),
            "{name}: {managers:?}"
        );
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
    let again = ["apply", "--server-side", "--recursive", "-f", render];
    let (ok, out) = kubectl(&k.kubeconfig, &again, "");
    assert!(ok, "second apply: {out}");
}
