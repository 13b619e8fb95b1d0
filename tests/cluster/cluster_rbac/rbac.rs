use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn deploy_manifests_pass_the_api_servers_own_validation() {
    let k = Cluster::admin().await;
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    // Optional namespace RBAC and a target namespace too. Left out:
    // cert-manager's objects (they need its CRDs, which a bare control plane
    // does not have) and the cluster-wide release binding (it would grant
    // what the checks below expect to be refused; it applies in
    // an_instance_namespace_is_created_and_really_goes_away).
    files.push(dir.join("optional/rbac-namespaces.yaml"));
    let mut yaml = vec!["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n".to_string()];
    yaml.extend(files.iter().map(|f| std::fs::read_to_string(f).unwrap()));
    yaml.push(std::fs::read_to_string(dir.join("targets/apps.yaml")).unwrap());
    let yaml = yaml.join("\n---\n");
    // Strict server-side field validation: an unknown or misspelt field is
    // an error, not a warning.
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        &yaml,
    );
    assert!(ok, "{out}");
    for kind in [
        "serviceaccount/chartbroker",
        "deployment.apps/chartbroker",
        "role.rbac.authorization.k8s.io/chartbroker-state",
        "clusterrole.rbac.authorization.k8s.io/chartbroker-release",
        "rolebinding.rbac.authorization.k8s.io/chartbroker-release",
        "clusterrole.rbac.authorization.k8s.io/chartbroker-target",
        "rolebinding.rbac.authorization.k8s.io/chartbroker-target",
        "serviceaccount/chartbroker-release",
        "validatingadmissionpolicy.admissionregistration.k8s.io/chartbroker-release-identity",
    ] {
        assert!(out.contains(kind), "{kind} applied: {out}");
    }
    // A second apply changes nothing and conflicts with nothing.
    let (ok, out) = kubectl(&k.kubeconfig, &["apply", "--server-side", "-f", "-"], &yaml);
    assert!(ok, "{out}");
    // The ServiceAccounts can do what the comments in deploy/ say, and no
    // more: the broker its own work (no chart object), the release
    // identity of `apps` a release's work in `apps` only.
    let sa = "system:serviceaccount:chartbroker-system:chartbroker";
    let release = "system:serviceaccount:apps:chartbroker-release";
    let roles = "roles.rbac.authorization.k8s.io";
    for (who, verb, what, ns, expect) in [
        (release, "patch", "statefulsets.apps", "apps", "yes"),
        (release, "create", roles, "apps", "yes"),
        (release, "update", "secrets", "apps", "yes"),
        (release, "get", "secrets", "default", "no"),
        (release, "get", "secrets", "chartbroker-system", "no"),
        (release, "escalate", roles, "apps", "no"),
        (release, "create", "daemonsets.apps", "apps", "no"),
        (sa, "patch", "statefulsets.apps", "apps", "no"),
        (sa, "create", "configmaps", "apps", "no"),
        (sa, "create", roles, "apps", "no"),
        (sa, "patch", "secrets", "apps", "yes"),
    ] {
        let (answer, out) = can_i(&k, who, &[verb, what, "-n", ns]);
        assert_eq!(answer, expect, "{who} can-i {verb} {what} -n {ns}: {out}");
    }
    // Tokens: the broker mints the release identity's only, the release
    // identity none.
    for (who, account, expect) in [
        (sa, "chartbroker-release", "yes"),
        (sa, "default", "no"),
        (release, "chartbroker-release", "no"),
        (release, "default", "no"),
    ] {
        let what = format!("serviceaccounts/{account}");
        let args = ["create", &what, "--subresource=token", "-n", "apps"];
        let (answer, out) = can_i(&k, who, &args);
        assert_eq!(answer, expect, "{who}: token of {account}: {out}");
    }
    for (verb, what, ns, expect) in [
        ("create", "secrets", "chartbroker-system", "yes"),
        ("update", "secrets", "chartbroker-system", "yes"),
        (
            "create",
            "subjectaccessreviews.authorization.k8s.io",
            "",
            "yes",
        ),
        ("create", "secrets", "default", "no"),
        ("get", "secrets", "kube-system", "no"),
        ("create", "clusterroles.rbac.authorization.k8s.io", "", "no"),
        ("create", "pods/exec", "apps", "no"),
    ] {
        let mut args = vec![verb, what];
        if !ns.is_empty() {
            args.extend(["-n", ns]);
        }
        let (answer, out) = can_i(&k, sa, &args);
        assert_eq!(answer, expect, "can-i {verb} {what} -n {ns}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_the_rbac_does_not_grant_fails_with_kubernetes_own_forbidden() {
    let (k, id, ns, b) = tenant_broker("carol").await;
    // The plan's policy allows a Lease; the release ClusterRole does not.
    let body = cluster_provision("plan-lease", &ns, json!({}));
    let d = b.by("carol").provision_fails("lease-1", body).await;
    // The API server's own words: who (helm as the release identity of the
    // namespace, not the broker), what, where.
    assert!(d.contains("forbidden"), "{d}");
    assert!(d.contains(&id.release_user(&ns)), "{d}");
    assert!(d.contains("leases"), "{d}");
    let lease = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/cb-lease-1");
    assert!(!k.has(&lease).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn subject_access_review_is_answered_by_the_real_authorizer() {
    let (k, id, allowed) = Cluster::with_tenant("dave", false).await;
    // The broker may install here, but dave has no rights in it.
    let other = k.namespace("other").await;
    k.grant_target(&id, &other);
    let b = broker(&id).await;

    let r = b
        .call_as(
            "dave",
            Method::PUT,
            "/v2/service_instances/sar-b?accepts_incomplete=true",
            Some(cluster_provision(
                "plan-tiny",
                &other,
                json!({"message": "x"}),
            )),
        )
        .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, None);
    assert!(
        r.text.contains("dave") && r.text.contains(&other),
        "{}",
        r.text
    );
    assert!(
        !k.has(&format!("/api/v1/namespaces/{other}/configmaps/cb-sar-b"))
            .await
    );

    let dave = b.by("dave");
    let body = cluster_provision("plan-tiny", &allowed, json!({"message": "x"}));
    dave.provisioned("sar-a", body).await;
    assert!(
        k.has(&format!("/api/v1/namespaces/{allowed}/configmaps/cb-sar-a"))
            .await
    );

    // Granting dave the namespace later is seen at once: nothing is cached.
    k.grant_user(&other, "dave");
    let body = cluster_provision("plan-tiny", &other, json!({"message": "x"}));
    dave.provisioned("sar-b", body).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_upgrade_rolls_back_in_helms_history() {
    let (k, _id, ns, b) =
        tenant_with_instance("erin", "up-1", "plan-labelled", json!({"tier": "one"})).await;
    let erin = b.by("erin");

    // helm template accepts it; the API server refuses the label value.
    let update = json!({"service_id": "svc-cluster", "parameters": {"tier": "not a label!"}});
    let done = erin.update("up-1", update).await;
    let d = done.assert_state("failed");
    assert!(d.contains("Invalid value") || d.contains("invalid"), "{d}");

    let cm = k
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-up-1"))
        .await
        .unwrap();
    assert_eq!(
        cm["metadata"]["labels"]["tier"], "one",
        "the old release stands"
    );
    let rows: Vec<(String, String)> = k
        .helm_history(&ns, "cb-up-1")
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                r["description"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1].0, "failed", "{rows:?}");
    assert_eq!(rows[2].0, "deployed", "{rows:?}");
    assert!(rows[2].1.contains("Rollback to 1"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_namespace_is_created_and_really_goes_away() {
    let k = Cluster::admin().await;
    let id = k.install_broker(true).await;
    let b = broker(&id).await;
    // The platform's namespace only says where the user is; the release goes
    // to a namespace of its own.
    let home = k.namespace("home").await;
    k.grant_user(&home, "frank");
    let frank = b.by("frank");
    let body = cluster_provision("plan-own-ns", &home, json!({"message": "x"}));
    frank.provisioned("own-1", body).await;
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-own-ns"});
    let r = frank.bound("own-1", "b-1", bind).await;
    let ns = r.json["credentials"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(ns, home);
    // Owned by this instance, with its release identity in it.
    let namespace = k.instance_namespace(&ns, "own-1").await;
    assert_eq!(
        namespace["metadata"]["labels"]["chartbroker.io/instance"],
        "own-1"
    );
    let names = id.identity_names();
    assert!(
        k.get(&format!(
            "/api/v1/namespaces/{ns}/serviceaccounts/{}",
            names.service_account
        ))
        .await
        .is_some()
    );
    let rb = k
        .get(&format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{}",
            names.release_role
        ))
        .await
        .expect("the release RoleBinding");
    assert_eq!(rb["subjects"][0]["name"], names.service_account.as_str());
    assert!(
        k.get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-own-1"))
            .await
            .is_some()
    );
    frank
        .unbound("own-1", "b-1", "svc-cluster", "plan-own-ns")
        .await;
    frank
        .deprovisioned("own-1", "svc-cluster", "plan-own-ns")
        .await;
    // Terminating first (the namespace controller empties it), then gone.
    k.wait_gone(
        &format!("/api/v1/namespaces/{ns}"),
        Duration::from_secs(120),
    )
    .await;
}
