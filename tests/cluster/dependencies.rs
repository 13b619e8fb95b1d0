//! Dependent charts: a WordPress instance uses a MySQL instance. The broker
//! binds to MySQL, puts the binding Secret in WordPress's namespace, passes
//! its name to the chart, and refuses to deprovision MySQL while it is used.
//! The render engine writes files; the helm engine runs against the real
//! API server (tests/testenv).

use crate::common;

use crate::helpers::dependencies::*;
use axum::http::{Method, StatusCode};
use common::cluster::{Cluster, secret_value};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn wordpress_uses_mysql_with_the_render_engine() {
    let data = tempfile::tempdir().unwrap();
    let cfg = example_config(data.path());
    let b = TestBroker::with_config(data, cfg).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/db-1",
            Some(body(MYSQL, MYSQL_BASIC, "web", json!({"database": "blog"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // A missing, unknown or wrong-service instance is refused up front.
    for (params, needle) in [
        (json!({}), "mysql_instance"),
        (json!({"mysql_instance": "nope"}), "does not exist"),
    ] {
        let r = b
            .call(
                Method::PUT,
                "/v2/service_instances/wp-bad",
                Some(body(WORDPRESS, WORDPRESS_STANDARD, "web", params)),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(
            r.json["description"].as_str().unwrap().contains(needle),
            "{}",
            r.text
        );
    }

    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/wp-1",
            Some(body(
                WORDPRESS,
                WORDPRESS_STANDARD,
                "web",
                json!({"mysql_instance": "db-1"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
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
    assert!(
        secret["stringData"]["host"]
            .as_str()
            .unwrap()
            .ends_with(".web.svc.cluster.local")
    );

    // Credentials read the release's Service (a lookup).
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/wp-1/service_bindings/wb-1",
            Some(json!({"service_id": WORDPRESS, "plan_id": WORDPRESS_STANDARD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
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
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/wp-1",
            Some(json!({"service_id": WORDPRESS, "parameters": {"mysql_instance": "other"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = b
        .call(
            Method::DELETE,
            &format!("/v2/service_instances/db-1?service_id={MYSQL}&plan_id={MYSQL_BASIC}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.json["description"].as_str().unwrap().contains("wp-1"),
        "{}",
        r.text
    );

    let r = b
        .call(
            Method::DELETE,
            &format!(
                "/v2/service_instances/wp-1?service_id={WORDPRESS}&plan_id={WORDPRESS_STANDARD}"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        !secret_file.exists(),
        "the dependency binding went with WordPress"
    );
    let r = b
        .call(
            Method::DELETE,
            &format!("/v2/service_instances/db-1?service_id={MYSQL}&plan_id={MYSQL_BASIC}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
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
    let b = TestBroker::on_cluster(&id, |data, cfg| {
        // These requests carry no originating identity; authorization has its own suites.
        cfg.subject_access_review = false;
        let example = example_config(data);
        cfg.catalog_dir = catalog.path().to_path_buf();
        cfg.charts_dir = example.charts_dir;
    })
    .await;
    let done = b
        .run(
            Method::PUT,
            "/v2/service_instances/db-2?accepts_incomplete=true",
            Some(body(
                MYSQL,
                MYSQL_BASIC,
                &data_ns,
                json!({"database": "blog"}),
            )),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let done = b
        .run(
            Method::PUT,
            "/v2/service_instances/wp-2?accepts_incomplete=true",
            Some(body(
                WORDPRESS,
                WORDPRESS_STANDARD,
                &web,
                json!({"mysql_instance": "db-2"}),
            )),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let secret_path = format!("/api/v1/namespaces/{web}/secrets/cb-wp-2-database");
    let secret = k
        .get(&secret_path)
        .await
        .expect("binding Secret in WordPress's namespace");
    assert_eq!(
        secret["metadata"]["annotations"]["chartbroker.io/instance-id"],
        "db-2"
    );
    assert_eq!(secret_value(&secret, "database").as_deref(), Some("blog"));
    assert_eq!(
        secret_value(&secret, "host"),
        Some(format!("cb-db-2.{data_ns}.svc.cluster.local")),
        "MySQL's Service, in MySQL's namespace"
    );
    assert!(
        k.get(&format!(
            "/api/v1/namespaces/{data_ns}/secrets/cb-wp-2-database"
        ))
        .await
        .is_none(),
        "not in MySQL's namespace"
    );
    let deploy_path = format!("/apis/apps/v1/namespaces/{web}/deployments/cb-wp-2");
    let deployment = k.get(&deploy_path).await.expect("WordPress deployed");
    assert!(deployment.to_string().contains("cb-wp-2-database"));

    let gone = b
        .run(
            Method::DELETE,
            &format!("/v2/service_instances/wp-2?service_id={WORDPRESS}&plan_id={WORDPRESS_STANDARD}&accepts_incomplete=true"),
            None,
        )
        .await;
    assert_delete_done(&gone);
    assert!(k.get(&secret_path).await.is_none());
    assert!(k.get(&deploy_path).await.is_none());
    assert!(
        k.get(&format!(
            "/apis/apps/v1/namespaces/{data_ns}/statefulsets/cb-db-2"
        ))
        .await
        .is_some(),
        "MySQL stays"
    );
}
