use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pvcs_removes_only_the_releases_claims() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "pvc-1", "plan-pvc", json!({})).await);
    assert_succeeded(&provision(&b, apps, "pvc-2", "plan-ctx", json!({})).await);
    // What StatefulSets' volumeClaimTemplates leave behind.
    let pvcs = format!("/api/v1/namespaces/{apps}/persistentvolumeclaims");
    for (name, label) in [
        ("data-cb-pvc-1-0", "cb-pvc-1"),
        ("data-cb-pvc-2-0", "cb-pvc-2"),
        ("unrelated", "someone-else"),
    ] {
        k.create(&pvcs, pvc(name, label)).await;
    }
    let claim = |name: &str| {
        let path = format!("{pvcs}/{name}");
        async move { k.get(&path).await }
    };

    assert_delete_done(&deprovision(&b, "pvc-1", "plan-pvc").await);
    let pvc1 = claim("data-cb-pvc-1-0").await;
    assert_deleted(&pvc1, "delete_pvcs: true deletes it");
    assert_not_deleted(&claim("data-cb-pvc-2-0").await, "another release's claim");
    assert_not_deleted(&claim("unrelated").await, "an unrelated claim");

    assert_delete_done(&deprovision(&b, "pvc-2", "plan-ctx").await);
    let pvc2 = claim("data-cb-pvc-2-0").await;
    assert_not_deleted(&pvc2, "delete_pvcs: false keeps the data");
    assert_not_deleted(&claim("unrelated").await, "an unrelated claim");
    assert!(configmap(k, apps, "cb-pvc-2").await.is_none());
}

// === binding Secrets ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_secrets_never_take_over_and_stay_in_allowed_namespaces() {
    let e = env(false).await;
    let (k, apps, shared, other) = (&e.k, e.apps.as_str(), e.shared.as_str(), e.other.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "bs-1", "plan-ctx", json!({})).await);

    // An app's own Secret, and one another binding owns.
    let secrets = format!("/api/v1/namespaces/{apps}/secrets");
    k.create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "app-own", "labels": {"app": "mine"}},
               "data": {"token": "c2VjcmV0"}}),
    )
    .await;
    k.create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "taken",
                            "annotations": {"chartbroker.io/binding-id": "someone-else"}},
               "data": {"token": "dGFrZW4="}}),
    )
    .await;
    // As stored, resourceVersion and managedFields included: any write
    // would change them.
    let own = k.get(&format!("{secrets}/app-own")).await.unwrap();
    let foreign = k.get(&format!("{secrets}/taken")).await.unwrap();
    for (bid, name, original) in [("bs-own", "app-own", &own), ("bs-taken", "taken", &foreign)] {
        let r = bind(
            &b,
            "bs-1",
            bid,
            "plan-ctx",
            json!({"secret_name": name, "role": "reader"}),
        )
        .await;
        assert_failed(
            &r,
            &format!("Secret {apps}/{name} already exists and does not belong to this binding"),
        );
        assert_eq!(
            k.get(&format!("{secrets}/{name}")).await.as_ref(),
            Some(original),
            "the existing Secret is untouched"
        );
    }

    // The failed bind left nothing of its own: its unbind answers 410 Gone,
    // and the Secret it never owned is left alone.
    let bs_own = "/v2/service_instances/bs-1/service_bindings/bs-own";
    let r = start_delete(&b, bs_own, "plan-ctx").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert_eq!(
        k.get(&format!("{secrets}/app-own")).await.as_ref(),
        Some(&own)
    );

    // A namespace the plan does not allow: refused before anything runs.
    let params = json!({"namespace": other});
    let r = start_bind(&b, "bs-1", "bs-other", "plan-ctx", params).await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains(&format!("\"{other}\" is not allowed")), "{d}");
    assert!(d.contains(&format!("{apps}, {shared}")), "{d}");
    assert!(
        k.list(&format!("/api/v1/namespaces/{other}/secrets"))
            .await
            .is_empty()
    );

    // An allowed one: the Secret lands there, and unbind removes it there.
    let r = bind(
        &b,
        "bs-1",
        "bs-shared",
        "plan-ctx",
        json!({"namespace": shared, "role": "writer"}),
    )
    .await;
    assert_succeeded(&r);
    let s = k
        .get(&format!(
            "/api/v1/namespaces/{shared}/secrets/cb-bind-bs-shared"
        ))
        .await
        .expect("binding Secret in the requested namespace");
    assert_eq!(data_keys(&s), ["host", "password", "port", "role"], "{s}");
    assert_eq!(
        s["metadata"]["annotations"]["chartbroker.io/binding-id"],
        "bs-shared"
    );
    assert!(
        k.get(&format!("{secrets}/cb-bind-bs-shared"))
            .await
            .is_none()
    );
    let r = b
        .get("/v2/service_instances/bs-1/service_bindings/bs-shared")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"]["role"], "writer");
    let r = unbind(&b, "bs-1", "bs-shared", "plan-ctx").await;
    assert_delete_done(&r);
    assert!(
        k.get(&format!(
            "/api/v1/namespaces/{shared}/secrets/cb-bind-bs-shared"
        ))
        .await
        .is_none()
    );

    // Deprovisioning with the failed binding still recorded leaves both
    // foreign Secrets alone too.
    let r = deprovision(&b, "bs-1", "plan-ctx").await;
    assert_delete_done(&r);
    assert_eq!(
        k.get(&format!("{secrets}/app-own")).await.as_ref(),
        Some(&own)
    );
    assert_eq!(
        k.get(&format!("{secrets}/taken")).await.as_ref(),
        Some(&foreign)
    );
    assert!(configmap(k, apps, "cb-bs-1").await.is_none());
}

/// The "nothing was written" checks above mean something only if the watch
/// sees writes, even an object that came and went before it looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_watch_sees_an_object_that_came_and_went() {
    let k = Cluster::admin().await;
    let ns = k.namespace("watch").await;
    let secrets = format!("/api/v1/namespaces/{ns}/secrets");
    let ((), writes) = k
        .writes_during(&secrets, async {
            k.create(
                &secrets,
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "brief"}}),
            )
            .await;
            k.delete(&format!("{secrets}/brief")).await;
        })
        .await;
    assert_eq!(writes, ["ADDED brief", "DELETED brief"]);
}
