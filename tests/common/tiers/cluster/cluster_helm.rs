//! Helpers of the tests in tests/cluster/cluster_helm.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::PathBuf;

use axum::http::Method;
use base64::Engine as _;
use common::cluster::{BrokerIdentity, Cluster};
use common::cluster_calls::*;
pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
use common::*;
use serde_json::{Value, json};

/// A broker on the example catalog and charts, helm engine, running as the
/// deploy/ ServiceAccount.
pub async fn broker(id: &BrokerIdentity, helm: PathBuf) -> TestBroker {
    TestBroker::on_cluster(id, |_, cfg| {
        cfg.helm = helm;
        cfg.catalog_dir = repo().join("catalog");
        cfg.charts_dir = repo().join("charts");
    })
    .await
}

pub async fn example_catalog_lifecycle(helm: PathBuf) {
    let (k, id, ns) = Cluster::with_tenant("alice", false).await;
    let b = broker(&id, helm).await;
    let alice = b.by("alice");

    // mysql: a StatefulSet, its Service and Secret, helm's release record.
    let body = kube_provision(MYSQL, MYSQL_BASIC, &ns, json!({"database": "shop"}));
    alice.provisioned("db-1", body).await;
    let sts = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/cb-db-1");
    let sts = k.get(&sts).await.expect("the release's StatefulSet exists");
    assert_eq!(
        sts["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "cb-db-1"
    );
    let records = k
        .list(&format!(
            "/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm,name%3Dcb-db-1"
        ))
        .await;
    assert_eq!(records.len(), 1, "one helm release record");
    assert_eq!(records[0]["metadata"]["labels"]["status"], "deployed");

    // Bind: credentials in the response and a Secret in the namespace,
    // applied server-side by the broker's own field manager.
    let bind = json!({"service_id": MYSQL, "plan_id": MYSQL_BASIC});
    let r = alice.bound("db-1", "app-1", bind).await;
    let creds = r.json["credentials"].clone();
    assert_eq!(creds["database"], "shop");
    let secrets = k
        .list(&format!(
            "/api/v1/namespaces/{ns}/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dchartbroker"
        ))
        .await;
    let binding = secrets
        .iter()
        .find(|s| {
            s["data"]["password"].as_str().map(b64_decode)
                == creds["password"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| panic!("a binding Secret with the password: {secrets:#?}"));
    assert_eq!(field_managers(binding), ["chartbroker"], "{binding:#}");
    // Service Binding for Kubernetes: the catalog's `binding: {type: mysql}`.
    assert_eq!(binding["type"], "servicebinding.io/mysql");
    assert_eq!(
        binding["data"]["type"].as_str().map(b64_decode),
        Some("mysql".into())
    );
    assert_eq!(
        binding["data"]["provider"].as_str().map(b64_decode),
        Some("chartbroker".into())
    );
    // A workload sees the Secret as files; a binding library finds the MySQL
    // binding by its `type` file alone and connects with what it reads.
    let root = tempfile::tempdir().unwrap();
    project(binding, &root.path().join("orders-db"));
    let found = find_binding(root.path(), "mysql").expect("a mysql binding in the projection");
    for key in ["host", "port", "database", "username", "password", "uri"] {
        let want = match &creds[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(found.get(key), Some(&want), "{key}");
    }
    assert_eq!(found["provider"], "chartbroker");

    // wordpress uses db-1: a Deployment, and a binding of db-1 whose Secret
    // the chart is given.
    let params = json!({"mysql_instance": "db-1"});
    let body = kube_provision(WORDPRESS, WORDPRESS_STANDARD, &ns, params);
    alice.provisioned("wp-1", body).await;
    let deploy = format!("/apis/apps/v1/namespaces/{ns}/deployments/cb-wp-1");
    let deploy = k.get(&deploy).await.expect("wordpress Deployment");
    let env = deploy["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    let secret_refs: Vec<String> = k
        .list(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
        .filter(|n| env.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        !secret_refs.is_empty(),
        "wordpress reads a Secret that exists in {ns}: {env}"
    );
    // Its binding reads the real Service back (lookups).
    let bind = json!({"service_id": WORDPRESS, "plan_id": WORDPRESS_STANDARD});
    let r = alice.bound("wp-1", "web-1", bind).await;
    assert_eq!(
        r.json["credentials"]["host"],
        format!("cb-wp-1.{ns}.svc.cluster.local"),
        "{}",
        r.text
    );
    assert_eq!(r.json["credentials"]["port"], 80, "{}", r.text);

    // A used mysql can't go first.
    let q = format!("service_id={MYSQL}&plan_id={MYSQL_BASIC}");
    let db1 = format!("/v2/service_instances/db-1?accepts_incomplete=true&{q}");
    let r = alice.call(Method::DELETE, &db1, None).await;
    assert!(r.status.is_client_error(), "{}", r.text);

    // Tear down in order; everything the releases made goes.
    alice
        .unbound("wp-1", "web-1", WORDPRESS, WORDPRESS_STANDARD)
        .await;
    alice
        .deprovisioned("wp-1", WORDPRESS, WORDPRESS_STANDARD)
        .await;
    alice.unbound("db-1", "app-1", MYSQL, MYSQL_BASIC).await;
    alice.deprovisioned("db-1", MYSQL, MYSQL_BASIC).await;
    for path in [
        format!("/apis/apps/v1/namespaces/{ns}/statefulsets/cb-db-1"),
        format!("/apis/apps/v1/namespaces/{ns}/deployments/cb-wp-1"),
    ] {
        assert!(k.get(&path).await.is_none(), "{path} is gone");
    }
    let left = k
        .list(&format!(
            "/api/v1/namespaces/{ns}/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dchartbroker"
        ))
        .await;
    assert!(left.is_empty(), "no binding Secret left: {left:#?}");
    let left = k
        .list(&format!(
            "/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm"
        ))
        .await;
    assert!(left.is_empty(), "no release record left: {left:#?}");
}

/// What the kubelet does with a Secret volume at
/// `$SERVICE_BINDING_ROOT/<binding name>`: one file per entry, named by its
/// key, holding the decoded bytes.
pub fn project(secret: &Value, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (key, value) in secret["data"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(key), bytes).unwrap();
    }
}

/// What a binding library does (spec, "Workload Projection"): every folder
/// under `$SERVICE_BINDING_ROOT` is a binding, classified by its `type` file.
pub fn find_binding(
    root: &std::path::Path,
    kind: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    std::fs::read_dir(root).unwrap().find_map(|d| {
        let dir = d.unwrap().path();
        if std::fs::read_to_string(dir.join("type")).ok()? != kind {
            return None;
        }
        Some(
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|f| {
                    let f = f.unwrap();
                    let name = f.file_name().into_string().unwrap();
                    (name, std::fs::read_to_string(f.path()).unwrap())
                })
                .collect(),
        )
    })
}
