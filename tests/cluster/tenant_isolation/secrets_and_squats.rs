use super::*;

#[tokio::test]
async fn nobody_else_renders_into_an_owned_namespace_and_deletion_takes_only_its_own() {
    let b = render_broker(|_| {}).await;
    b.put_created(
        "/v2/service_instances/mine",
        provision("svc-store", "plan-own-ns", "apps", json!({})),
    )
    .await;
    assert_eq!(namespace_manifests(&b, "cb-mine").len(), 1);
    let owned = tree_of(&b, "cb-mine");

    // Another tenant names the owned namespace as its own.
    let r = store_put(&b, "intruder", "cb-mine").await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("namespace cb-mine belongs to another service instance"),
        "{d}"
    );
    assert_eq!(tree_of(&b, "cb-mine"), owned);
    b.del("/v2/service_instances/intruder?service_id=svc-store&plan_id=plan-store")
        .await;
    assert_eq!(tree_of(&b, "cb-mine"), owned);

    // The owner binds, deprovisions: its folder goes, and the namespace
    // is free again.
    b.put_created(
        "/v2/service_instances/mine/service_bindings/mb",
        bind("svc-store", "plan-own-ns", json!({})),
    )
    .await;
    b.del(
        "/v2/service_instances/mine/service_bindings/mb?service_id=svc-store&plan_id=plan-own-ns",
    )
    .await;
    let r = b
        .del("/v2/service_instances/mine?service_id=svc-store&plan_id=plan-own-ns")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(tree_of(&b, "cb-mine").is_empty());
    store_created(&b, "newcomer", "cb-mine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_render_engine_checks_instance_namespaces_against_its_cluster() {
    let k = common::cluster::Cluster::admin().await;
    let state = k.namespace("rstate").await;
    // Someone else's namespace in the cluster, named like the namespace of
    // instance `rsquat-<suffix>`.
    let taken = k.namespace("cb-rsquat").await;
    let squatter = taken.trim_start_matches("cb-").to_string();
    let free = format!("rfree-{}", common::cluster::suffix());
    let b = render_broker(|c| {
        c.store = chartbroker::runtime::StoreKind::Kube;
        c.kubeconfig = Some(k.kubeconfig.clone());
        c.state_namespace = state.clone();
        c.store_key = Some(chartbroker::store::seal::Sealer::generate_base64());
    })
    .await;
    let r = b
        .put(
            &format!("/v2/service_instances/{squatter}"),
            provision("svc-store", "plan-own-ns", "apps", json!({})),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains(&format!("namespace {taken} already exists in the cluster")),
        "{d}"
    );
    assert!(tree_of(&b, &taken).is_empty());
    // A namespace the cluster doesn't have is the instance's to take.
    b.put_created(
        &format!("/v2/service_instances/{free}"),
        provision("svc-store", "plan-own-ns", "apps", json!({})),
    )
    .await;
    assert_eq!(namespace_manifests(&b, &format!("cb-{free}")).len(), 1);
}

#[tokio::test]
async fn a_binding_secret_never_shadows_a_release_object() {
    let b = render_broker(|_| {}).await;
    for (id, ns) in [("v1", "apps"), ("att", "other")] {
        store_created(&b, id, ns).await;
    }
    // The victim's chart renders Secret apps/cb-v1 (and ConfigMap apps/cb-v1).
    let victims = rendered_secrets(&b, "apps", "cb-v1");
    assert_eq!(victims.len(), 1);
    let before = tree_of(&b, "apps");
    // Another tenant's binding asks for that name: refused, by any binding,
    // the victim's own included.
    for (instance, binding) in [("att", "ab"), ("v1", "vb")] {
        let params = json!({"namespace": "apps", "secret_name": "cb-v1"});
        let r = store_bind_put(&b, instance, binding, params).await;
        assert!(
            r.status.is_server_error() || r.status.is_client_error(),
            "{}",
            r.text
        );
        assert_osb_error(&r, r.status, None);
        let d = r.json["description"].as_str().unwrap();
        assert!(
            d.contains("apps/cb-v1") && d.contains("choose another secret_name"),
            "{d}"
        );
        assert_eq!(rendered_secrets(&b, "apps", "cb-v1"), victims);
        assert_eq!(tree_of(&b, "apps"), before);
    }
}

#[tokio::test]
async fn a_release_never_renders_an_object_named_like_a_binding_secret() {
    let b = render_broker(|_| {}).await;
    store_created(&b, "att", "other").await;
    // The attacker binds first, under the name the victim's release will use.
    let params = json!({"namespace": "apps", "secret_name": "cb-v2"});
    store_bind_created(&b, "att", "ab", params).await;
    let planted = rendered_secrets(&b, "apps", "cb-v2");
    assert_eq!(planted.len(), 1);
    let r = store_put(&b, "v2", "apps").await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("apps/cb-v2") && d.contains("binding Secret"),
        "{d}"
    );
    // Nothing of the release was written: one file declares the name.
    assert!(!b.release_dir("v2").exists());
    assert_eq!(rendered_secrets(&b, "apps", "cb-v2"), planted);
    // Once the binding is gone the name is free.
    b.del("/v2/service_instances/v2?service_id=svc-store&plan_id=plan-store")
        .await;
    let r = b
        .del(
            "/v2/service_instances/att/service_bindings/ab?service_id=svc-store&plan_id=plan-store",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    store_created(&b, "v2", "apps").await;
    assert_eq!(
        rendered_secrets(&b, "apps", "cb-v2"),
        vec![b.release_dir("v2").join("manifests.yaml")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charts_failure_text_never_carries_a_transformed_secret() {
    use common::process::{osb, serve};
    use reqwest::Method as M;
    let data = tempfile::tempdir().unwrap();
    let s = serve(
        &fixtures().join("catalog-tenant"),
        &fixtures().join("charts"),
        data.path(),
        &helm_bin(),
        &[],
    )
    .await;
    let body = |mode: &str| {
        json!({"service_id": "svc-leak", "plan_id": "plan-leak",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"mode": mode}})
    };
    let (status, _) = osb(
        M::PUT,
        format!("{}/v2/service_instances/leak", s.url),
        Some(body("ok")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, bound) = osb(
        M::PUT,
        format!("{}/v2/service_instances/leak/service_bindings/lb", s.url),
        Some(json!({"service_id": "svc-leak", "plan_id": "plan-leak"})),
    )
    .await;
    assert_eq!(status, 201, "{bound}");
    let password = String::from(bound["credentials"]["password"].as_str().unwrap());
    assert_eq!(password.len(), 24);

    // The chart fails with the password dotted, upper-cased, reversed,
    // split across lines, interleaved, with zero-width spaces and in
    // pieces: synchronously (error body) and asynchronously
    // (last_operation).
    let update = json!({"service_id": "svc-leak", "parameters": {"mode": "leak"}});
    let (status, sync) = osb(
        M::PATCH,
        format!("{}/v2/service_instances/leak", s.url),
        Some(update.clone()),
    )
    .await;
    assert_eq!(status, 500, "{sync}");
    let (status, accepted) = osb(
        M::PATCH,
        format!(
            "{}/v2/service_instances/leak?accepts_incomplete=true",
            s.url
        ),
        Some(update),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let op = accepted["operation"].as_str().unwrap();
    let last = loop {
        let (status, last) = osb(
            M::GET,
            format!(
                "{}/v2/service_instances/leak/last_operation?operation={op}",
                s.url
            ),
            None,
        )
        .await;
        assert_eq!(status, 200, "{last}");
        if last["state"] != "in progress" {
            break last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(last["state"], "failed", "{last}");
    for d in [&sync["description"], &last["description"]] {
        let d = d.as_str().unwrap();
        // The failure is reported (the chart's own words, masked).
        assert!(d.contains("dots=") && d.contains("<redacted>"), "{d}");
        assert!(longest_run(d, &password) < 6, "{d}");
    }
    let log = std::fs::read_to_string(data.path().join("broker.log")).unwrap();
    assert!(log.contains("<redacted>"), "{log}");
    assert!(longest_run(&log, &password) < 6, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_engine_redacts_a_transformed_secret_too() {
    let k = cluster(&[("apps", json!({}))], &[]).await;
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    let body = |mode: &str| {
        json!({"service_id": "svc-leak", "plan_id": "plan-leak",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"mode": mode}})
    };
    let id = format!("hleak-{}", common::cluster::suffix());
    let body = body("ok");
    provisioned_run(&b, None, &id, body).await;
    let r = b
        .put_created(
            &format!("/v2/service_instances/{id}/service_bindings/hb"),
            json!({"service_id": "svc-leak", "plan_id": "plan-leak"}),
        )
        .await;
    let credentials = r.json["credentials"].clone();
    let password = credentials["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 24);
    let r = run(
        &b,
        None,
        Method::PATCH,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        Some(json!({"service_id": "svc-leak", "parameters": {"mode": "leak"}})),
    )
    .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains("dots=") && d.contains("<redacted>"), "{d}");
    assert!(longest_run(d, &password) < 6, "{d}");
}

// === namespaces are owned ===

/// Tenant B owns namespace `cb-<id>`; tenant A provisions a `namespace:
/// instance` plan with instance id `<id>`. Refused, nothing written into
/// B's namespace, and A's deprovision deletes nothing of B's.
#[tokio::test(flavor = "multi_thread")]
async fn namespace_squat_is_refused_and_writes_nothing() {
    use common::cluster::{Cluster, suffix};
    let k = Cluster::admin().await;
    let id = k.install_broker(true).await;
    let b = TestBroker::on_cluster(&id, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-cluster");
    })
    .await;
    let home = k.namespace("home").await;
    k.grant_user(&home, "alice");
    let instance = format!("shop-{}", suffix());
    let squatted = format!("cb-{instance}");
    // B's namespace, even labelled as if the broker made it: the label alone
    // (which anyone creating a namespace can set) does not make it A's.
    k.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": squatted,
               "labels": {"app.kubernetes.io/managed-by": "chartbroker"}}}),
    )
    .await;
    k.create(
        &format!("/api/v1/namespaces/{squatted}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b-data"},
               "stringData": {"k": "v"}}),
    )
    .await;

    let uri = format!("/v2/service_instances/{instance}?accepts_incomplete=true");
    let (done, writes) = k
        .writes_during(&format!("/api/v1/namespaces/{squatted}/secrets"), async {
            b.run_as(
                "alice",
                Method::PUT,
                &uri,
                Some(provision(
                    "svc-cluster",
                    "plan-own-ns",
                    &home,
                    json!({"message": "x"}),
                )),
            )
            .await
        })
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(
        done.headers["content-type"], "application/json",
        "{:?}",
        done.headers
    );
    assert_eq!(done.json["state"], "failed", "{}", done.text);
    let d = done.json["description"].as_str().unwrap();
    assert!(
        d.contains(&squatted) && d.contains("already exists") && d.contains("nothing was written"),
        "{d}"
    );
    assert!(
        writes.is_empty(),
        "Secrets written in B's namespace: {writes:?}"
    );
    for path in [
        format!("/api/v1/namespaces/{squatted}/configmaps/cb-{instance}"),
        format!(
            "/api/v1/namespaces/{squatted}/serviceaccounts/{}",
            id.identity_names().service_account
        ),
        format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{squatted}/rolebindings/{}",
            id.identity_names().release_role
        ),
    ] {
        assert!(k.get(&path).await.is_none(), "{path} was created");
    }

    // A's deprovision succeeds and leaves B's namespace and data alone.
    let done = b
        .run_as(
            "alice",
            Method::DELETE,
            &format!(
                "/v2/service_instances/{instance}?accepts_incomplete=true&service_id=svc-cluster&plan_id=plan-own-ns"
            ),
            None,
        )
        .await;
    assert_delete_done(&done);
    let ns = k
        .get(&format!("/api/v1/namespaces/{squatted}"))
        .await
        .expect("B's namespace stands");
    assert!(ns["metadata"]["deletionTimestamp"].is_null(), "{ns:#}");
    assert!(
        k.get(&format!("/api/v1/namespaces/{squatted}/secrets/b-data"))
            .await
            .is_some()
    );
}
