use super::*;

// === 1. `uses` across namespaces ===

#[tokio::test]
async fn uses_cannot_reach_another_tenants_instance() {
    let b = render_broker(|_| {}).await;
    store_created(&b, "victim-db", "team-a").await;

    // The attacker knows the id; the answer is the one for an id that
    // does not exist.
    let r = app_using(&b, "thief", "victim-db").await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    let stolen = r.json["description"].as_str().unwrap().to_string();
    let r = app_using(&b, "thief", "no-such-db").await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    assert_eq!(
        stolen.replace("victim-db", "X"),
        r.json["description"]
            .as_str()
            .unwrap()
            .replace("no-such-db", "X")
    );
    assert!(!b.data.path().join("render/team-b/cb-thief").exists());

    // Nothing holds the victim's instance: it deprovisions.
    let r = b
        .del("/v2/service_instances/victim-db?service_id=svc-store&plan_id=plan-store")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Its own namespace, and a namespace the plan lists, still work.
    for (id, ns) in [("own-db", "team-b"), ("shared-db", "shared")] {
        let r = put_instance(
            &b,
            None,
            id,
            provision("svc-store", "plan-store", ns, json!({})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app_using(&b, "app-1", "own-db").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app_using(&b, "app-2", "shared-db").await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    let params = json!({"store_instance": "shared-db"});
    let body = provision("svc-app", "plan-app-shared", "team-b", params);
    let r = put_instance(&b, None, "app-3", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_checks_the_user_in_the_used_instances_namespace() {
    let k = cluster(
        &[("shared", json!({})), ("team-b", json!({}))],
        &[
            ("carol", &["shared"]),
            ("bob", &["team-b"]),
            ("alice", &["team-b", "shared"]),
        ],
    )
    .await;
    let b = helm_broker(&k, |_| {}).await;
    let body = provision("svc-store", "plan-store", "shared", json!({}));
    provisioned_run(&b, Some("carol"), "db", body).await;

    // The plan may reach `shared`, but bob may not.
    let r = provision_run(
        &b,
        Some("bob"),
        "bobs",
        provision(
            "svc-app",
            "plan-app-shared",
            "team-b",
            json!({"store_instance": "db"}),
        ),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(r.description().contains("shared"), "{}", r.text);
    assert!(secret_data(&b, "team-b", "cb-bobs-store").await.is_none());

    let body = provision(
        "svc-app",
        "plan-app-shared",
        "team-b",
        json!({"store_instance": "db"}),
    );
    provisioned_run(&b, Some("alice"), "alices", body).await;
    assert!(secret_data(&b, "team-b", "cb-alices-store").await.is_some());
}

// === 2. namespaces the broker may act in ===

#[tokio::test]
async fn system_and_own_namespaces_are_refused_by_default() {
    let b = render_broker(|_| {}).await;
    for ns in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "chartbroker-system",
    ] {
        let r = store_put(&b, "sys", ns).await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        assert!(r.description().contains(ns), "{}", r.text);
        assert!(!b.data.path().join("render").join(ns).exists());
    }
    let r = b.get("/v2/service_instances/sys/last_operation").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "nothing recorded: {}",
        r.text
    );

    // A binding Secret can't be steered there either, even by a plan
    // that lists them.
    store_created(&b, "ok", "apps").await;
    for ns in ["kube-system", "chartbroker-system"] {
        let params = json!({"namespace": ns, "secret_name": "creds"});
        let r = store_bind_put(&b, "ok", "sb", params).await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        assert!(rendered_secrets(&b, ns, "creds").is_empty());
    }
    let params = json!({"namespace": "shared", "secret_name": "creds"});
    store_bind_created(&b, "ok", "sb", params).await;
}

#[tokio::test]
async fn the_operators_namespace_list_is_enforced() {
    let b = render_broker(|c| {
        c.namespaces = vec![
            "team-*".into(),
            "!team-admin".into(),
            "*-public".into(),
            "kube-node-lease".into(),
        ]
    })
    .await;
    for (ns, allowed) in [
        ("team-a", true),
        ("team-admin", false),
        ("apps", false),
        ("kube-public", false),
        ("kube-node-lease", true),
    ] {
        let r = store_put(&b, &format!("i-{ns}"), ns).await;
        if allowed {
            assert_eq!(r.status, StatusCode::CREATED, "{ns}: {}", r.text);
        } else {
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        }
    }
    // `namespace: instance` plans: the namespace the broker would create
    // is judged too.
    let b = render_broker(|c| c.namespaces = vec!["apps".into(), "!cb-*".into()]).await;
    let r = b
        .put(
            "/v2/service_instances/own",
            provision("svc-store", "plan-own-ns", "apps", json!({})),
        )
        .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(r.description().contains("cb-own"), "{}", r.text);
    assert!(!b.data.path().join("render/cb-own").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_selector_is_enforced() {
    let k = cluster(
        &[("team-a", json!({"tenant": "yes"})), ("team-b", json!({}))],
        &[("alice", &["team-a", "team-b", "ghost"])],
    )
    .await;
    let b = helm_broker(&k, |c| c.namespace_selector = Some("tenant=yes".into())).await;
    for (ns, ok) in [("team-b", false), ("ghost", false), ("team-a", true)] {
        let r = provision_run(
            &b,
            Some("alice"),
            &format!("s-{ns}"),
            provision("svc-store", "plan-store", ns, json!({})),
        )
        .await;
        if ok {
            assert_eq!(r.json["state"], "succeeded", "{}", r.text);
        } else {
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
            assert!(r.description().contains("tenant=yes"), "{}", r.text);
        }
    }
    // A binding Secret's namespace must match too.
    let r = bind_run(
        &b,
        Some("alice"),
        "s-team-a",
        "x",
        bind("svc-store", "plan-store", json!({"namespace": "other"})),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
}

// === 3. authorization fails closed ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_request_without_an_identity_is_refused() {
    let k = cluster(&[("apps", json!({}))], &[("alice", &["apps"])]).await;
    let b = helm_broker(&k, |_| {}).await;
    let r = provision_run(
        &b,
        None,
        "anon",
        provision("svc-store", "plan-store", "apps", json!({})),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(
        r.description().contains("Originating-Identity"),
        "{}",
        r.text
    );
    // Another platform's identity can't stand in for a Kubernetes user.
    let cf = format!(
        "cloudfoundry {}",
        base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"u"}"#)
    );
    let mut request = req(
        Method::PUT,
        "/v2/service_instances/anon?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "apps", json!({}))),
    );
    request
        .headers_mut()
        .insert("x-broker-api-originating-identity", cf.parse().unwrap());
    assert_osb_error(
        &b.send(request).await,
        StatusCode::FORBIDDEN,
        Some("Forbidden"),
    );

    // Turned off explicitly, the platform is trusted.
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    let body = provision("svc-store", "plan-store", "apps", json!({}));
    provisioned_run(&b, None, "anon", body).await;
}
