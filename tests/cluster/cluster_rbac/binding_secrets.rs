use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn binding_secrets_are_applied_server_side_and_unbind_deletes_only_its_own() {
    let (k, _id, ns, b) =
        tenant_with_instance("gina", "s-1", "plan-tiny", json!({"message": "x"})).await;
    let gina = b.by("gina");

    // An app's own Secret, not the broker's.
    k.create(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "app-config"}, "stringData": {"token": "mine"}}),
    )
    .await;
    let r = b
        .call_as(
            "gina",
            Method::PUT,
            "/v2/service_instances/s-1/service_bindings/b-steal",
            Some(json!({"service_id": "svc-cluster", "plan_id": "plan-tiny",
                    "parameters": {"secret_name": "app-config"}})),
        )
        .await;
    assert!(!r.status.is_success(), "{}", r.text);
    assert!(r.text.contains("app-config"), "{}", r.text);
    let mine = k
        .get(&format!("/api/v1/namespaces/{ns}/secrets/app-config"))
        .await
        .expect("the app's Secret is untouched");
    assert_eq!(mine["data"]["token"], "bWluZQ==");
    assert!(mine["metadata"]["labels"].is_null(), "{mine:#}");

    // The broker's own binding Secret: its field manager, then someone else
    // edits a field; unbind still removes it (it is the broker's Secret).
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-tiny",
                      "parameters": {"secret_name": "s1-creds"}});
    gina.bound("s-1", "b-1", bind).await;
    let path = format!("/api/v1/namespaces/{ns}/secrets/s1-creds");
    let s = k.get(&path).await.expect("binding Secret");
    let managed = managed_fields(&s);
    assert_eq!(managed, [("chartbroker".to_string(), "Apply".to_string())]);
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=someone-else",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1-creds\n  namespace: {ns}\n  \
             annotations:\n    note: edited\nstringData:\n  password: changed\n"
        ),
    );
    assert!(ok, "{out}");
    let s = k.get(&path).await.unwrap();
    let managers = field_managers(&s);
    assert!(managers.iter().any(|m| m == "someone-else"), "{managers:?}");

    gina.unbound("s-1", "b-1", "svc-cluster", "plan-tiny").await;
    assert!(k.get(&path).await.is_none(), "the broker's Secret is gone");
    assert!(
        k.get(&format!("/api/v1/namespaces/{ns}/secrets/app-config"))
            .await
            .is_some(),
        "the app's Secret stays"
    );
}
