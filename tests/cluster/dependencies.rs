//! Dependent charts: a WordPress instance uses a MySQL instance. The broker
//! binds to MySQL, puts the binding Secret in WordPress's namespace, passes
//! its name to the chart, and refuses to deprovision MySQL while it is used.
//! The render engine writes files; the helm engine runs against the real
//! API server (tests/testenv).

use crate::common;

use crate::helpers::dependencies::*;
use axum::http::{Method, StatusCode};
use common::cluster::{Cluster, secret_value};
use common::cluster_calls::*;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn wordpress_uses_mysql_with_the_render_engine() {
    let b = example_broker().await;
    let platform = b.by(None);
    let body = kube_body(MYSQL, MYSQL_BASIC, "web", json!({"database": "blog"}));
    platform.created("/v2/service_instances/db-1", body).await;

    // A missing, unknown or wrong-service instance is refused up front.
    for (params, needle) in [
        (json!({}), "mysql_instance"),
        (json!({"mysql_instance": "nope"}), "does not exist"),
    ] {
        let body = kube_body(WORDPRESS, WORDPRESS_STANDARD, "web", params);
        let (wp_bad, bad) = ("/v2/service_instances/wp-bad", StatusCode::BAD_REQUEST);
        let r = platform.answers(Method::PUT, wp_bad, Some(body), bad).await;
        assert!(r.description().contains(needle), "{}", r.text);
    }

    let params = json!({"mysql_instance": "db-1"});
    let body = kube_body(WORDPRESS, WORDPRESS_STANDARD, "web", params);
    platform.created("/v2/service_instances/wp-1", body).await;
    let manifests =
        std::fs::read_to_string(b.data.path().join("render/web/cb-wp-1/manifests.yaml")).unwrap();
    assert!(
        manifests.contains(r#""name":"cb-wp-1-database""#),
        "the chart reads the binding Secret by name"
    );
    // The binding Secret is in WordPress's namespace with MySQL's credentials.
    let secret_file = b
        .data
        .path()
        .join("render/web/cb-wp-1/bindings/cb-wp-1-database.yaml");
    let secret: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&secret_file).unwrap()).unwrap();
    assert_eq!(secret["metadata"]["namespace"], "web");
    assert_eq!(secret["stringData"]["database"], "blog");
    let host = secret["stringData"]["host"].as_str().unwrap();
    assert!(host.ends_with(".web.svc.cluster.local"));

    // Credentials read the release's Service (a lookup).
    let bind = json!({"service_id": WORDPRESS, "plan_id": WORDPRESS_STANDARD});
    let r = platform.bound("wp-1", "wb-1", bind).await;
    assert_eq!(
        r.json["credentials"]["host"], "cb-wp-1.web.svc.cluster.local",
        "{}",
        r.text
    );
    assert_eq!(
        r.json["credentials"]["url"],
        "http://cb-wp-1.web.svc.cluster.local:80/"
    );

    // The dependency cannot change, and MySQL cannot go while used.
    let update = json!({"service_id": WORDPRESS, "parameters": {"mysql_instance": "other"}});
    let wp1 = "/v2/service_instances/wp-1";
    platform
        .answers(Method::PATCH, wp1, Some(update), StatusCode::BAD_REQUEST)
        .await;
    let db1 = format!("/v2/service_instances/db-1?service_id={MYSQL}&plan_id={MYSQL_BASIC}");
    let r = platform
        .answers(Method::DELETE, &db1, None, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(r.description().contains("wp-1"), "{}", r.text);

    let wp1 = format!("{wp1}?service_id={WORDPRESS}&plan_id={WORDPRESS_STANDARD}");
    platform
        .answers(Method::DELETE, &wp1, None, StatusCode::OK)
        .await;
    assert!(
        !secret_file.exists(),
        "the dependency binding went with WordPress"
    );
    platform
        .answers(Method::DELETE, &db1, None, StatusCode::OK)
        .await;
}

/// The same with the helm engine on the real API server (tests/testenv),
/// as the deploy/ ServiceAccount, MySQL and WordPress in namespaces of their
/// own: the binding Secret crosses into WordPress's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordpress_uses_mysql_with_the_helm_engine() {
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let (data_ns, web) = (k.namespace("data").await, k.namespace("web").await);
    k.grant_target(&id, &data_ns);
    k.grant_target(&id, &web);
    // WordPress may reach a MySQL in another namespace only where its plan
    // says so: a copy of the example catalog lists the data namespace.
    let catalog = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("catalog")).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.replace(
            "database: {service: mysql, parameter: mysql_instance}",
            &format!(
                "database: {{service: mysql, parameter: mysql_instance, namespaces: [{data_ns}]}}"
            ),
        );
        std::fs::write(catalog.path().join(f.file_name().unwrap()), text).unwrap();
    }
    let b = TestBroker::on_cluster(&id, |_, cfg| {
        // These requests carry no originating identity; authorization has its own suites.
        cfg.subject_access_review = false;
        cfg.catalog_dir = catalog.path().to_path_buf();
        cfg.charts_dir = repo().join("charts");
    })
    .await;
    let platform = b.by(None);
    let body = kube_body(MYSQL, MYSQL_BASIC, &data_ns, json!({"database": "blog"}));
    platform.provisioned("db-2", body).await;
    let params = json!({"mysql_instance": "db-2"});
    let body = kube_body(WORDPRESS, WORDPRESS_STANDARD, &web, params);
    platform.provisioned("wp-2", body).await;
    let secret_path = format!("/api/v1/namespaces/{web}/secrets/cb-wp-2-database");
    let secret = k.get(&secret_path).await;
    let secret = secret.expect("binding Secret in WordPress's namespace");
    let annotations = &secret["metadata"]["annotations"];
    assert_eq!(annotations["chartbroker.io/instance-id"], "db-2");
    assert_eq!(secret_value(&secret, "database").as_deref(), Some("blog"));
    assert_eq!(
        secret_value(&secret, "host"),
        Some(format!("cb-db-2.{data_ns}.svc.cluster.local")),
        "MySQL's Service, in MySQL's namespace"
    );
    let in_data = format!("/api/v1/namespaces/{data_ns}/secrets/cb-wp-2-database");
    assert!(!k.has(&in_data).await, "not in MySQL's namespace");
    let deploy_path = format!("/apis/apps/v1/namespaces/{web}/deployments/cb-wp-2");
    let deployment = k.get(&deploy_path).await.expect("WordPress deployed");
    assert!(deployment.to_string().contains("cb-wp-2-database"));

    platform
        .deprovisioned("wp-2", WORDPRESS, WORDPRESS_STANDARD)
        .await;
    assert!(k.get(&secret_path).await.is_none());
    assert!(k.get(&deploy_path).await.is_none());
    let mysql = format!("/apis/apps/v1/namespaces/{data_ns}/statefulsets/cb-db-2");
    assert!(k.has(&mysql).await, "MySQL stays");
}
