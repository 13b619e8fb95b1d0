use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_authorized_like_provision() {
    let k = cluster(&[("apps", json!({}))], &[("alice", &["apps"])]).await;
    let b = helm_broker(&k, |_| {}).await;
    let body = provision("svc-store", "plan-store", "apps", json!({}));
    provisioned_run(&b, Some("alice"), "i", body).await;
    let body = bind("svc-store", "plan-store", json!({}));
    bound_run(&b, Some("alice"), "i", "bb", body).await;

    let attacks = [
        (
            Method::PATCH,
            "/v2/service_instances/i?accepts_incomplete=true",
            Some(
                json!({"service_id": "svc-store", "parameters": {}, "plan_id": "plan-store", "context": {"platform": "kubernetes", "namespace": "apps", "x": 1}}),
            ),
        ),
        (
            Method::DELETE,
            "/v2/service_instances/i/service_bindings/bb?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true",
            None,
        ),
        (
            Method::DELETE,
            "/v2/service_instances/i?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true",
            None,
        ),
    ];
    for user in [Some("mallory"), None] {
        for (m, uri, body) in &attacks {
            let r = b.send(as_user(m.clone(), uri, body.clone(), user)).await;
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        }
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_some());

    // Ids that don't match the record are 400, before anything runs.
    for uri in [
        "/v2/service_instances/i/service_bindings/bb?service_id=svc-store&plan_id=plan-own-ns&accepts_incomplete=true",
        "/v2/service_instances/i/service_bindings/bb?service_id=svc-frozen&plan_id=plan-store&accepts_incomplete=true",
        "/v2/service_instances/i?service_id=svc-store&plan_id=plan-own-ns&accepts_incomplete=true",
        "/v2/service_instances/i?service_id=svc-frozen&plan_id=plan-frozen&accepts_incomplete=true",
    ] {
        let r = b
            .send(as_user(Method::DELETE, uri, None, Some("alice")))
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_some());

    for (m, uri, body) in attacks {
        let r = run(&b, Some("alice"), m, uri, body).await;
        assert!(
            r.status.is_success() || r.status == StatusCode::GONE,
            "{}",
            r.text
        );
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_none());
}

// === 4. ids ===

#[tokio::test]
async fn ids_that_could_alias_are_refused_at_the_edge() {
    let b = render_broker(|_| {}).await;
    let long = "x".repeat(256);
    let bad = [
        "..",
        "%2E",
        "%2E%2E",
        "a%2Fb",
        "a%00b",
        "a%0Ab",
        "a%7Fb",
        long.as_str(),
    ];
    for id in bad {
        let r = store_put(&b, id, "apps").await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        for (m, uri) in [
            (Method::GET, format!("/v2/service_instances/{id}")),
            (
                Method::GET,
                format!("/v2/service_instances/{id}/last_operation"),
            ),
            (
                Method::DELETE,
                format!("/v2/service_instances/{id}?service_id=svc-store&plan_id=plan-store"),
            ),
        ] {
            assert_osb_error(
                &b.call(m, &uri, None).await,
                StatusCode::BAD_REQUEST,
                Some("BadRequest"),
            );
        }
    }
    store_created(&b, "a", "apps").await;
    for id in bad {
        let r = store_bind_put(&b, "a", id, json!({})).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    }
    // Nothing of the refused ids reached the store or the render tree.
    // (One release folder, and the one record of its objects.)
    for dir in ["render/apps", "render/apps/.objects"] {
        let names: Vec<String> = std::fs::read_dir(b.data.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(names, ["cb-a"], "{dir}");
    }
    assert_eq!(
        std::fs::read_dir(b.release_dir("a").join("bindings"))
            .into_iter()
            .flatten()
            .count(),
        0
    );
}

// === 5. binding Secrets belong to (instance, binding) ===

#[tokio::test]
async fn another_instances_binding_cannot_take_over_a_rendered_secret() {
    let b = render_broker(|_| {}).await;
    for (id, ns) in [("victim", "apps"), ("attacker", "other")] {
        store_created(&b, id, ns).await;
    }
    let params = json!({"namespace": "apps", "secret_name": "db-creds"});
    store_bind_created(&b, "victim", "b1", params.clone()).await;
    let victims = rendered_secrets(&b, "apps", "db-creds");
    assert_eq!(victims.len(), 1);
    let before = std::fs::read_to_string(&victims[0]).unwrap();

    // Same binding id, same Secret: refused.
    let r = store_bind_put(&b, "attacker", "b1", params).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.text
    );
    assert!(r.description().contains("another binding"), "{}", r.text);
    assert_eq!(rendered_secrets(&b, "apps", "db-creds"), victims);
    // Unbinding, or deprovisioning, the attacker leaves it alone.
    b.del("/v2/service_instances/attacker/service_bindings/b1?service_id=svc-store&plan_id=plan-store").await;
    let r = b
        .del("/v2/service_instances/attacker?service_id=svc-store&plan_id=plan-store")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(std::fs::read_to_string(&victims[0]).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_binding_cannot_take_over_a_cluster_secret() {
    let k = cluster(&[("apps", json!({})), ("other", json!({}))], &[]).await;
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    for (id, ns) in [("victim", "apps"), ("attacker", "other")] {
        let body = provision("svc-store", "plan-store", ns, json!({}));
        provisioned_run(&b, None, id, body).await;
    }
    let params = json!({"namespace": "apps", "secret_name": "db-creds"});
    store_bind_created(&b, "victim", "b1", params.clone()).await;
    let before = secret_data(&b, "apps", "db-creds")
        .await
        .expect("victim's Secret");

    let r = store_bind_put(&b, "attacker", "b1", params).await;
    assert!(r.description().contains("does not belong"), "{}", r.text);
    assert_eq!(
        secret_data(&b, "apps", "db-creds").await.as_ref(),
        Some(&before)
    );
    b.del("/v2/service_instances/attacker/service_bindings/b1?service_id=svc-store&plan_id=plan-store").await;
    let r = run(&b, None, Method::DELETE, "/v2/service_instances/attacker?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true", None).await;
    assert_delete_done(&r);
    assert_eq!(
        secret_data(&b, "apps", "db-creds").await.as_ref(),
        Some(&before)
    );
}

// === 6. context updates ===

#[tokio::test]
async fn context_updates_follow_the_catalog_and_the_namespace_rules() {
    let b = render_broker(|_| {}).await;
    for (id, s, p) in [
        ("f", "svc-frozen", "plan-frozen"),
        ("s", "svc-store", "plan-store"),
    ] {
        b.put_created(
            &format!("/v2/service_instances/{id}"),
            provision(s, p, "apps", json!({})),
        )
        .await;
    }
    let patch = |s: &str, ctx: Value| json!({"service_id": s, "context": ctx});
    let ctx = |ns: &str| json!({"platform": "kubernetes", "namespace": ns});
    let clusterid = json!({"platform": "kubernetes", "namespace": "apps", "clusterid": "x"});
    let (f, st) = ("/v2/service_instances/f", "/v2/service_instances/s");
    // allow_context_updates: false
    let r = b.patch(f, patch("svc-frozen", clusterid.clone())).await;
    assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains("allow_context_updates"), "{}", r.text);
    // The same context is no change.
    let r = b.patch(f, patch("svc-frozen", ctx("apps"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Allowed, but validated like a provision: no moving to a system or
    // another tenant's namespace.
    for ns in ["kube-system", "team-b", "Not_A_Namespace"] {
        let r = b.patch(st, patch("svc-store", ctx(ns))).await;
        assert!(r.status.is_client_error(), "{ns}: {}", r.text);
        assert_osb_error(&r, r.status, None);
    }
    let r = b.patch(st, patch("svc-store", clusterid)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Binding still goes where the instance lives.
    store_bind_created(&b, "s", "sb", json!({})).await;
    assert_eq!(rendered_secrets(&b, "apps", "cb-bind-sb").len(), 1);
}

#[tokio::test]
async fn an_instance_namespace_is_never_taken_from_another_tenant() {
    let b = render_broker(|_| {}).await;
    // Tenant B lives in `cb-shop` and has a binding Secret there.
    store_created(&b, "b-store", "cb-shop").await;
    store_bind_created(&b, "b-store", "b-bind", json!({})).await;
    let before = tree_of(&b, "cb-shop");
    assert!(!before.is_empty());

    // Tenant A asks for instance `shop` of a plan with its own namespace:
    // `cb-shop`, synchronously and asynchronously.
    let own_ns = provision("svc-store", "plan-own-ns", "apps", json!({}));
    let r = b.put("/v2/service_instances/shop", own_ns.clone()).await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("namespace cb-shop") && d.contains("another service instance"),
        "{d}"
    );
    assert!(
        !d.contains("b-store"),
        "names the other tenant's instance: {d}"
    );
    let uri = "/v2/service_instances/shop?accepts_incomplete=true";
    let r = b.put(uri, own_ns).await;
    let r = match r.status {
        StatusCode::ACCEPTED => {
            b.wait_instance("shop", r.json["operation"].as_str().unwrap())
                .await
        }
        _ => r,
    };
    assert!(
        r.json["state"] == "failed" || r.status == StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        r.text
    );
    assert!(r.description().contains("namespace cb-shop"), "{}", r.text);
    // Nothing was written: no Namespace manifest claims cb-shop, and B's
    // part of the tree is as it was, also after A deprovisions.
    assert!(namespace_manifests(&b, "cb-shop").is_empty());
    assert_eq!(tree_of(&b, "cb-shop"), before);
    b.del("/v2/service_instances/shop?service_id=svc-store&plan_id=plan-own-ns")
        .await;
    assert_eq!(tree_of(&b, "cb-shop"), before);
}
