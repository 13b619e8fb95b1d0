//! Plans proxied to a real upstream broker (tests/upstream/broker.py, built
//! on openbrokerapi from PyPI), driven through our own OSB API: the whole
//! lifecycle in synchronous and asynchronous upstream modes, id mapping,
//! identities, credentials reaching the binding Secret, our schema checks
//! before any upstream call, catalog import, `catalog lint`, and a kill -9
//! of the real binary in the middle of an upstream async provision.

use crate::common;
use common::upstream as support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::upstream::*;
use common::process::{Remote, poll_last_operation};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_upstream_full_lifecycle() {
    let cloud = Cloud::start("sync", 0, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    lifecycle(&cloud, &b, "sync-1").await;
    // A synchronous upstream is never polled.
    assert!(
        !cloud
            .requests()
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("last_operation")),
        "{:#?}",
        cloud.requests()
    );
    // Every upstream call is measured, by broker, method and outcome.
    let metrics = b.get("/metrics").await.text;
    assert!(
        metrics.contains(
            r#"chartbroker_upstream_call_duration_seconds_count{broker="cloud",method="PUT",outcome="201"}"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_upstream_is_polled_and_credentials_fetched() {
    let cloud = Cloud::start("async", 1, &["--retry-after", "1"]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    lifecycle(&cloud, &b, "async-1").await;
    let path = "/v2/service_instances/async-1/last_operation";
    let polls = cloud.received("GET", path);
    // One "in progress" answer and a final one, for provision, two updates
    // and deprovision; each poll names the upstream's operation.
    assert!(polls.len() >= 8, "{polls:#?}");
    assert!(
        polls.iter().all(|p| p["query"]["operation"].is_string()),
        "{polls:#?}"
    );
    assert_eq!(polls[0]["query"]["service_id"], MYSQL_SERVICE);
    // `Retry-After: 1` is honoured: never polled sooner than asked.
    for pair in polls.windows(2) {
        if pair[0]["query"]["operation"] == pair[1]["query"]["operation"] {
            let gap = pair[1]["time"].as_f64().unwrap() - pair[0]["time"].as_f64().unwrap();
            assert!(
                gap >= 0.9,
                "polled again after {gap}s despite Retry-After: 1"
            );
        }
    }
    // Credentials of an async binding come from GET binding.
    let gets = cloud.received(
        "GET",
        "/v2/service_instances/async-1/service_bindings/bind-1",
    );
    assert!(!gets.is_empty());
    assert!(gets.iter().any(|g| g["auth_user"] == CLOUD_USER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_schema_validation_runs_before_any_upstream_call() {
    let cloud = Cloud::start("sync", 0, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    for params in [
        json!({"database": "Not Valid!"}),
        json!({"unknown": 1}),
        json!({"size_gb": 0}),
    ] {
        let r = call(
            &b,
            Method::PUT,
            "/v2/service_instances/bad-1?accepts_incomplete=true",
            Some(provision_body("svc-db", "plan-premium", params.clone())),
        )
        .await;
        common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    // Without accepts_incomplete: 422 AsyncRequired, also before any call.
    let r = call(
        &b,
        Method::PUT,
        "/v2/service_instances/bad-2",
        Some(provision_body("svc-db", "plan-premium", json!({}))),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("AsyncRequired"));
    assert!(cloud.requests().is_empty(), "{:#?}", cloud.requests());

    // An update with parameters outside the update schema never leaves either.
    provision_and_wait(&b, "ok-1", "plan-premium", json!({})).await;
    let r = call(
        &b,
        Method::PATCH,
        "/v2/service_instances/ok-1?accepts_incomplete=true",
        Some(json!({"service_id": "svc-db", "parameters": {"database": "other"}})),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    cloud.assert_never_received("PATCH", "/v2/service_instances/ok-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_credentials_from_a_file() {
    let cloud = Cloud::start("sync", 0, &["--token", "tok-3b9f"]);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("token"), "tok-3b9f\n").unwrap();
    let auth = format!(
        "{{bearer: {{token_file: {}}}}}",
        data.path().join("token").display()
    );
    let mut o = CatalogOpts::new(&cloud.url);
    o.auth = Some(&auth);
    let b = broker(&o).await;
    let done = provision_and_wait(&b, "tok-1", "plan-premium", json!({})).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let put = &cloud.received("PUT", "/v2/service_instances/tok-1")[0];
    assert_eq!(put["bearer"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_catalog_is_filtered_prefixed_and_served() {
    let cloud = Cloud::start("sync", 0, &[]);
    let mut o = CatalogOpts::new(&cloud.url);
    o.import = Some("{tags: [cache], id_prefix: cloud-, name_prefix: cloud-}");
    let b = broker(&o).await;
    let r = b.get("/v2/catalog").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "stream", "cloud-managed-redis"], "{}", r.text);
    let redis = &r.json["services"][2];
    assert_eq!(redis["id"], "cloud-upstream-redis");
    assert_eq!(redis["plans"][0]["id"], "cloud-upstream-redis-small");
    assert!(redis["plans"][0]["schemas"]["service_instance"]["create"].is_object());
    assert!(
        !r.text.contains("upstream\":"),
        "no broker-only fields leak"
    );

    // The imported schema is enforced by us; then the call maps ids back.
    let r = call(
        &b,
        Method::PUT,
        "/v2/service_instances/redis-1?accepts_incomplete=true",
        Some(provision_body(
            "cloud-upstream-redis",
            "cloud-upstream-redis-small",
            json!({"memory_mb": 8}),
        )),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    cloud.assert_never_received("PUT", "/v2/service_instances/redis-1");
    let op = provision(
        &b,
        "redis-1",
        "cloud-upstream-redis",
        "cloud-upstream-redis-small",
        json!({"memory_mb": 128}),
    )
    .await;
    let r = b.wait_instance("redis-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let put = &cloud.received("PUT", "/v2/service_instances/redis-1")[0];
    assert_eq!(put["body"]["service_id"], "upstream-redis");
    assert_eq!(put["body"]["plan_id"], "upstream-redis-small");

    // The upstream goes away: the last good import stays, in memory and on
    // disk, so a restarted broker still serves (and can deprovision) it.
    assert!(b.data.path().join("upstream/cloud.catalog.json").is_file());
    drop(cloud);
    tokio::time::sleep(Duration::from_millis(1500)).await; // past refresh_seconds: 1
    let r = b.get("/v2/catalog").await;
    assert!(r.text.contains("cloud-managed-redis"), "{}", r.text);
    let mut cfg = common::config(b.data.path());
    cfg.catalog_dir = b.data.path().join("catalog");
    let b = b.restart(&cfg).await;
    let r = b.get("/v2/catalog").await;
    assert!(r.text.contains("cloud-managed-redis"), "{}", r.text);
    let r = b.get("/v2/service_instances/redis-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_lint_checks_upstreams() {
    let cloud = Cloud::start("sync", 0, &[]);
    let dir = tempfile::tempdir().unwrap();

    // Reachable and consistent: ok.
    let mut o = CatalogOpts::new(&cloud.url);
    o.import = Some("{tags: [cache], id_prefix: cloud-, name_prefix: cloud-}");
    let catalog = write_catalog(dir.path(), &o);
    let out = lint(&catalog);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An import without prefixes clashes with a local service; a plan maps
    // to an upstream plan that does not exist.
    o.import = Some("{tags: [cache]}");
    let catalog = write_catalog(dir.path(), &o);
    std::fs::write(
        catalog.join("local.yaml"),
        format!(
            "services:\n- id: upstream-redis\n  name: managed-redis\n  description: local\n  bindable: false\n  plans:\n  - {{id: p-x, name: x, description: d, upstream: {{broker: cloud, service_id: {MYSQL_SERVICE}, plan_id: no-such-plan}}}}\n"
        ),
    )
    .unwrap();
    let out = lint(&catalog);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "duplicate service id `upstream-redis`",
        "duplicate service name `managed-redis`",
        "no-such-plan",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }

    // An unreachable upstream is a warning, not a failure.
    std::fs::remove_file(catalog.join("local.yaml")).unwrap();
    let port = common::process::free_port();
    let closed = format!("http://127.0.0.1:{port}");
    let catalog = write_catalog(dir.path(), &CatalogOpts::new(&closed));
    let out = lint(&catalog);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("unreachable"),
        "{err}"
    );
    // The broker itself starts with that upstream down.
    let b = broker(&CatalogOpts::new(&closed)).await;
    let r = b.get("/v2/catalog").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_async_provision_then_restart_resumes_polling() {
    // Cloud::start installs the TLS provider the broker's client needs.
    let cloud = Cloud::start("async", 25, &[]);
    let (dir, catalog) = catalog_for(&cloud);
    let data = dir.path().join("state");
    let mut first = start_binary(&catalog, &data).await;
    let survives = provision_body("svc-db", "plan-premium", json!({"database": "survives"}));
    let (status, body) = Remote::on(first.port)
        .put(
            "/v2/service_instances/crash-1?accepts_incomplete=true",
            survives,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let operation = body["operation"].as_str().unwrap().to_string();
    // Polling has begun, so the upstream's operation is checkpointed.
    let lo = "/v2/service_instances/crash-1/last_operation";
    cloud
        .wait_for("a last_operation poll", |rs| {
            rs.iter().any(|r| r["path"] == lo)
        })
        .await;
    first.kill_9();
    let polls_before = cloud.received("GET", lo).len();
    assert!(polls_before < 25, "the kill landed mid-operation");

    let second = start_binary(&catalog, &data).await;
    let url = format!("{}{lo}?operation={operation}", second.url);
    let last = poll_last_operation(&url, 300, Duration::from_millis(50)).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // Resumed from the checkpoint: the provision was never sent again, and
    // polling went on with the upstream's operation token.
    let puts = cloud.received("PUT", "/v2/service_instances/crash-1");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    let polls = cloud.received("GET", lo);
    assert!(
        polls.len() > polls_before,
        "polling resumed after the restart"
    );
    assert!(
        polls
            .iter()
            .all(|p| p["query"]["operation"] == polls[0]["query"]["operation"])
    );
    let (status, body) = Remote::on(second.port)
        .get("/v2/service_instances/crash-1")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["parameters"]["database"], "survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_private_ca() {
    let cloud = Cloud::start("sync", 0, &[]);
    let tls_dir = tempfile::tempdir().unwrap();
    let pki = pki::new();
    let url = mtls_front(cloud.url.clone(), tls_dir.path(), &pki).await;
    std::fs::write(tls_dir.path().join("client.pem"), &pki.client.0).unwrap();
    std::fs::write(tls_dir.path().join("client.key"), &pki.client.1).unwrap();
    let ca = tls_dir.path().join("ca.pem");
    let (cert, key) = (
        tls_dir.path().join("client.pem"),
        tls_dir.path().join("client.key"),
    );

    // With the CA bundle and the client certificate: works end to end.
    let mut o = CatalogOpts::new(&url);
    o.max_polling = 6;
    o.extra = vec![
        format!("ca_file: {:?}", ca.display().to_string()),
        format!("client_cert_file: {:?}", cert.display().to_string()),
        format!("client_key_file: {:?}", key.display().to_string()),
    ];
    let b = broker(&o).await;
    let done = provision_and_wait(&b, "tls-1", "plan-premium", json!({})).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        cloud.received("PUT", "/v2/service_instances/tls-1").len(),
        1
    );

    // Without the client certificate the server refuses the session: the
    // request never reaches the upstream broker, and the operation fails.
    // (Under TLS 1.3 the client learns of the refusal only after sending,
    // sometimes just as a broken pipe; the broker then cannot rule out an
    // orphan and mitigates until the deadline, which this plan keeps short.)
    o.extra.truncate(1);
    let b = broker(&o).await;
    let done = provision_and_wait(&b, "tls-2", "plan-premium", json!({})).await;
    assert_eq!(done["state"], "failed", "{done}");
    cloud.assert_never_received("PUT", "/v2/service_instances/tls-2");
    // Without the CA bundle the server is not trusted.
    let b = broker(&CatalogOpts::new(&url)).await;
    let done = provision_and_wait(&b, "tls-3", "plan-premium", json!({})).await;
    assert_eq!(done["state"], "failed", "{done}");
    let d = done["description"].as_str().unwrap();
    assert!(d.contains("unreachable"), "{d}");
}

/// Platforms that never bind asynchronously (Service Catalog) bind without
/// `accepts_incomplete`: the broker waits for the upstream within the
/// request, polling an asynchronous upstream, and answers 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_without_accepts_incomplete_wait_for_the_upstream() {
    for mode in ["sync", "async"] {
        let cloud = Cloud::start(mode, 1, &[]);
        let b = broker(&CatalogOpts::new(&cloud.url)).await;
        let id = format!("sb-{mode}");
        let done = provision_and_wait(&b, &id, "plan-premium", json!({"database": "shop"})).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        let bpath = format!("/v2/service_instances/{id}/service_bindings/b-{mode}");
        let r = bind_now(&b, &bpath).await;
        let (_, upstream) = cloud.direct(reqwest::Method::GET, &bpath, None).await;
        assert_eq!(r.json["credentials"], upstream["credentials"], "{mode}");
        unbind_now(&b, &bpath).await;
        assert_eq!(cloud.received("DELETE", &bpath).len(), 1, "{mode}");
    }
}
