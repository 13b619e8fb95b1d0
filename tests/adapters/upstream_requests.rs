//! What chartbroker sends an upstream broker, checked in the request log of
//! a real one (tests/upstream/broker.py on openbrokerapi, which refuses a
//! provision without `organization_guid`/`space_guid` like every mainstream
//! OSB framework): guids for Kubernetes platforms that send only a
//! `context`, ids that stay one path segment whatever they hold, and
//! credentials that never travel over plain HTTP unless the operator says so.

use crate::common;

use common::upstream as support;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::upstream_requests::*;
use chartbroker::upstream::client::{Endpoint, Identity, UpstreamError};
use support::*;

/// Issue 13: provision → bind → unbind → deprovision driven by a
/// Kubernetes-style request against the real openbrokerapi upstream, which
/// answered 400 "Organization and space guid are required." before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_platform_without_guids_full_lifecycle() {
    let cloud = Cloud::start("async", 1, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;

    // Absent, then empty (as some platforms send them): both get the derived pair,
    // the same for every instance of the namespace.
    for (id, guids) in [("k8s-1", None), ("k8s-2", Some(""))] {
        let r = put(
            &b,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            k8s_provision(guids, json!({"database": "orders"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let done = b
            .wait_instance(id, r.json["operation"].as_str().unwrap())
            .await;
        assert_eq!(done.json["state"], "succeeded", "{id}: {}", done.text);
        let puts = cloud.received("PUT", &format!("/v2/service_instances/{id}"));
        assert_eq!(puts.len(), 1, "{puts:#?}");
        assert_eq!(puts[0]["body"]["organization_guid"], ORG_C1, "{id}");
        assert_eq!(puts[0]["body"]["space_guid"], SPACE_C1_APPS, "{id}");
        assert_eq!(puts[0]["body"]["context"]["clusterid"], "c-1");
    }

    // Bind, with a Kubernetes bind context only.
    let path = "/v2/service_instances/k8s-1";
    let bpath = format!("{path}/service_bindings/k8s-b1");
    let r = put(
        &b,
        &format!("{bpath}?accepts_incomplete=true"),
        json!({
            "service_id": "svc-db",
            "plan_id": "plan-premium",
            "context": {"platform": "kubernetes", "clusterid": "c-1", "namespace": "apps"},
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_binding("k8s-1", "k8s-b1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let (status, upstream) = cloud.direct(reqwest::Method::GET, &bpath, None).await;
    assert_eq!(status, 200, "{upstream}");
    let ours = b.call(Method::GET, &bpath, None).await;
    assert_eq!(ours.json["credentials"], upstream["credentials"]);
    assert_eq!(ours.json["credentials"]["host"], "k8s-1.db.cloud.example");
    let secret = b.release_dir("k8s-1").join("bindings/cb-bind-k8s-b1.yaml");
    assert!(secret.is_file(), "binding Secret written");

    // Unbind, then deprovision: both reach the upstream and finish there.
    unbind_done(&b, &bpath, "plan-premium").await;
    assert_eq!(cloud.received("DELETE", &bpath).len(), 1);
    assert!(!secret.exists());
    // The upstream binding is gone.
    cloud.assert_gone(&bpath).await;

    deprovision_done(&b, "k8s-1", "plan-premium").await;
    // The upstream instance is gone.
    cloud.assert_gone(path).await;
}

/// What the platform sends wins over anything derived; a namespace or
/// cluster of its own gets a pair of its own; an operator's fixed values
/// replace the derived ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_guids_win_and_derived_ones_follow_cluster_and_namespace() {
    let cloud = Cloud::start("sync", 0, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    let mut sent = k8s_provision(None, json!({}));
    sent["organization_guid"] = json!("org-from-platform");
    sent["space_guid"] = json!("space-from-platform");
    let mut web = k8s_provision(None, json!({}));
    web["context"]["namespace"] = json!("web");
    let mut other_cluster = k8s_provision(None, json!({}));
    other_cluster["context"]["clusterid"] = json!("c-2");
    let mut got = Vec::new();
    for (id, body) in [("g-sent", sent), ("g-web", web), ("g-c2", other_cluster)] {
        provision_until_done(&b, id, body).await;
        let put = &cloud.received("PUT", &format!("/v2/service_instances/{id}"))[0];
        got.push((
            put["body"]["organization_guid"].clone(),
            put["body"]["space_guid"].clone(),
        ));
    }
    assert_eq!(
        got[0],
        (json!("org-from-platform"), json!("space-from-platform"))
    );
    assert_eq!(got[1].0, ORG_C1, "same cluster, same organization");
    assert_ne!(got[1].1, SPACE_C1_APPS, "another namespace, another space");
    assert_ne!(got[2].0, ORG_C1, "another cluster, another organization");
    assert_ne!(got[2].1, SPACE_C1_APPS);
    assert_ne!(got[2].1, got[1].1);

    let mut o = CatalogOpts::new(&cloud.url);
    o.extra = vec!["organization_guid: org-of-the-operator".into()];
    let b = broker(&o).await;
    provision_until_done(&b, "g-op", k8s_provision(Some(""), json!({}))).await;
    let put = &cloud.received("PUT", "/v2/service_instances/g-op")[0];
    assert_eq!(put["body"]["organization_guid"], "org-of-the-operator");
    assert_eq!(put["body"]["space_guid"], SPACE_C1_APPS);
}

/// A provision that failed upstream is repeated after a restart of the
/// broker (same data directory): the upstream sees the same pair again,
/// although nothing about it was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_guids_are_the_same_after_a_restart() {
    let cloud = Cloud::start("sync", 0, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    let body = k8s_provision(None, json!({"outcome": "fail"}));
    let done = provision_until_done(&b, "again-1", body.clone()).await;
    assert_eq!(done["state"], "failed", "{done}");

    let mut cfg = common::config(b.data.path());
    cfg.catalog_dir = b.data.path().join("catalog");
    let b = b.restart(&cfg).await;
    let done = provision_until_done(&b, "again-1", body).await;
    assert_eq!(done["state"], "failed", "{done}");
    let puts = cloud.received("PUT", "/v2/service_instances/again-1");
    assert_eq!(puts.len(), 2, "{puts:#?}");
    for p in &puts {
        assert_eq!(p["body"]["organization_guid"], ORG_C1);
        assert_eq!(p["body"]["space_guid"], SPACE_C1_APPS);
    }
}

/// The client on its own, straight to the real upstream: an id that would
/// climb out of its segment arrives as one encoded segment, and ids no
/// segment can carry unchanged are never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_reach_the_upstream_as_one_encoded_segment() {
    let cloud = Cloud::start("sync", 0, &[]);
    let c = client_for(&cloud);
    let body = json!({"service_id": MYSQL_SERVICE, "plan_id": MYSQL_PREMIUM,
        "organization_guid": "o", "space_guid": "s"});
    let none = Identity::default();
    let r = c
        .send(
            reqwest::Method::PUT,
            Endpoint::Instance("a/../../v2/catalog"),
            &[("accepts_incomplete", "true")],
            Some(&body),
            none,
        )
        .await
        .unwrap();
    // waitress decodes %2F before routing, so no route matches: refused.
    assert_eq!(r.status, 404);
    let r = c
        .send(
            reqwest::Method::GET,
            Endpoint::BindingLastOperation("x?y=1#z", "b%2F.. 1"),
            &[("service_id", "s")],
            None,
            none,
        )
        .await
        .unwrap();
    assert!(r.status < 500, "{}", r.status);
    assert_eq!(
        raw_uris(&cloud),
        [
            "/v2/service_instances/a%2F..%2F..%2Fv2%2Fcatalog?accepts_incomplete=true",
            "/v2/service_instances/x%3Fy%3D1%23z/service_bindings/b%252F..%201/last_operation?service_id=s",
        ]
    );
    for id in ["..", ".", ""] {
        let e = c
            .send(
                reqwest::Method::DELETE,
                Endpoint::Binding("i", id),
                &[],
                None,
                none,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, UpstreamError::UnsafeId { .. }), "{e}");
    }
    assert_eq!(cloud.requests().len(), 2, "nothing else was sent");
}

/// Through our own API: ids with spaces, `?`, `#` and `%` go through a
/// whole lifecycle on the real upstream, which sees exactly those ids; an
/// id with `/` and `..` is refused at our edge or reaches the upstream as
/// one encoded segment, never as another path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_from_the_platform_stay_one_segment_upstream() {
    let cloud = Cloud::start("sync", 0, &[]);
    let b = broker(&CatalogOpts::new(&cloud.url)).await;
    let (id, id_enc) = ("db 1?x#y%z", "db%201%3Fx%23y%25z");
    let (bid, bid_enc) = ("b 1#%", "b%201%23%25");
    let done = provision_until_done(&b, id_enc, k8s_provision(None, json!({}))).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let bpath = format!("/v2/service_instances/{id_enc}/service_bindings/{bid_enc}");
    let r = bind_now(&b, &bpath).await;
    assert_eq!(
        r.json["credentials"]["host"],
        format!("{id}.db.cloud.example")
    );
    unbind_now(&b, &bpath).await;
    deprovision_done(&b, id_enc, "plan-premium").await;

    let seen: Vec<(String, String, String)> = cloud
        .requests()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("method"), s("path"), s("raw_uri"))
        })
        .collect();
    let inst = format!("/v2/service_instances/{id}");
    let bind = format!("{inst}/service_bindings/{bid}");
    let want = [
        (
            "PUT",
            inst.clone(),
            format!("/v2/service_instances/{id_enc}?"),
        ),
        (
            "PUT",
            bind.clone(),
            format!("/v2/service_instances/{id_enc}/service_bindings/{bid_enc}?"),
        ),
        (
            "DELETE",
            bind,
            format!("/v2/service_instances/{id_enc}/service_bindings/{bid_enc}?"),
        ),
        ("DELETE", inst, format!("/v2/service_instances/{id_enc}?")),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:#?}");
    for ((m, path, raw), (wm, wpath, wraw)) in seen.iter().zip(&want) {
        assert_eq!((m.as_str(), path), (*wm, wpath), "{seen:#?}");
        assert!(raw.starts_with(wraw.as_str()), "{raw} vs {wraw}");
    }

    // `a/../../v2/catalog` (our edge may refuse ids with dot segments).
    let before = cloud.requests().len();
    let hostile = "a%2F..%2F..%2Fv2%2Fcatalog";
    let r = put(
        &b,
        &format!("/v2/service_instances/{hostile}?accepts_incomplete=true"),
        k8s_provision(None, json!({})),
    )
    .await;
    if r.status == StatusCode::BAD_REQUEST {
        assert_eq!(cloud.requests().len(), before, "refused before any call");
        return;
    }
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_instance(hostile, r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.json["state"], "failed", "{}", done.text);
    let raws = &raw_uris(&cloud)[before..];
    assert!(!raws.is_empty());
    for raw in raws {
        assert!(
            raw.starts_with(&format!("/v2/service_instances/{hostile}?")),
            "{raws:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_over_plain_http_need_allow_insecure_http() {
    let cloud = Cloud::start("sync", 0, &[]);
    let dir = tempfile::tempdir().unwrap();

    // Refused: lint fails with a clear message, and the broker sends nothing.
    for auth in [None, Some("{bearer: {token_env: CLOUD_TOKEN_NEVER_SET}}")] {
        let mut o = CatalogOpts::new(&cloud.url);
        o.allow_insecure_http = false;
        o.auth = auth;
        let out = lint(&write_catalog(dir.path(), &o));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("plain http://") && err.contains("allow_insecure_http: true"),
            "{err}"
        );
        assert!(!err.contains(CLOUD_PASSWORD), "{err}");
    }
    let mut o = CatalogOpts::new(&cloud.url);
    o.allow_insecure_http = false;
    let b = broker(&o).await;
    let done = provision_until_done(&b, "clear-1", k8s_provision(None, json!({}))).await;
    assert_eq!(done["state"], "failed", "{done}");
    let d = done["description"].as_str().unwrap();
    assert!(d.contains("allow_insecure_http"), "{d}");
    assert!(cloud.requests().is_empty(), "{:#?}", cloud.requests());

    // Allowed by the operator: lint passes, the upstream is used.
    o.allow_insecure_http = true;
    let out = lint(&write_catalog(dir.path(), &o));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = broker(&o).await;
    let done = provision_until_done(&b, "clear-2", k8s_provision(None, json!({}))).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let put = &cloud.received("PUT", "/v2/service_instances/clear-2")[0];
    assert_eq!(put["auth_user"], CLOUD_USER);

    // Without credentials, plain HTTP needs no consent.
    o.allow_insecure_http = false;
    o.auth = Some("null");
    let out = lint(&write_catalog(dir.path(), &o));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("plain http://"), "{err}");
}
