use super::*;

// === helm faults ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_helm_fails_the_operation_and_a_repeat_succeeds() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let crash = |_: &Path| "  echo 'about to crash' >&2\n  kill -9 $$".to_string();
    let (b, wrapper) = wrapped_broker(&e, "crash", crash).await;

    let first = start_provision(&b, apps, "crash-1", "plan-ctx", json!({"message": "hi"})).await;
    let r = b.wait_instance("crash-1", &first).await;
    let d = assert_failed(&r, "helm upgrade crashed");
    assert!(d.contains("SIGKILL") || d.contains("signal: 9"), "{d}");
    assert!(d.contains("about to crash"), "helm's stderr is kept: {d}");
    // Nothing stays in progress, and nothing reached the cluster.
    let r = last_operation(&b, "crash-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert!(configmap(k, apps, "cb-crash-1").await.is_none());
    assert!(release_records(k, apps, "cb-crash-1").await.is_empty());

    // The same PUT again, with a working helm: a new operation that succeeds
    // (a repeat of an operation still in progress would get the same id).
    wrapper.use_real_helm();
    let second = start_provision(&b, apps, "crash-1", "plan-ctx", json!({"message": "hi"})).await;
    assert_ne!(first, second, "the crashed operation is over");
    assert_succeeded(&b.wait_instance("crash-1", &second).await);
    assert_eq!(
        configmap(k, apps, "cb-crash-1").await.expect("installed")["data"]["message"],
        "hi"
    );
    assert_eq!(
        record_statuses(k, apps, "cb-crash-1").await,
        vec![(1, "deployed".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_helm_is_stopped_at_the_timeout_and_killed() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let mut wrapper = None;
    let b = broker(&e, |data, cfg| {
        // `read` is a shell builtin: the wrapper itself blocks (opening a
        // FIFO nobody writes), as a hung helm would, with no child process.
        let fifo = data.join("fifo");
        let hang = format!(
            "  mkfifo '{fifo}' 2>/dev/null\n  read never < '{fifo}'\n  exit 3",
            fifo = fifo.display()
        );
        let w = Wrapper::new(data, "hang", &hang);
        cfg.helm = w.path.clone();
        cfg.helm_timeout = Duration::from_secs(5);
        wrapper = Some(w);
    })
    .await;
    let wrapper = wrapper.unwrap();

    let op = start_provision(&b, apps, "hang-1", "plan-ctx", json!({})).await;
    // The hung process shows up under its marker (so the check below means
    // something)...
    let mut seen = false;
    for _ in 0..200 {
        if !wrapper.processes().is_empty() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the hung helm never showed up as {}", wrapper.marker);
    let r = b.wait_instance("hang-1", &op).await;
    let d = assert_failed(&r, "did not finish");
    assert!(d.contains("helm upgrade"), "{d}");
    // ...and is gone once the operation failed.
    let mut left = wrapper.processes();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = wrapper.processes();
    }
    assert!(left.is_empty(), "helm left running: pids {left:?}");
    assert!(configmap(k, apps, "cb-hang-1").await.is_none());
    assert!(release_records(k, apps, "cb-hang-1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_missing_after_start_fails_the_operation() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let (b, wrapper) = wrapped_broker(&e, "gone", |_| "  :".to_string()).await;
    std::fs::remove_file(&wrapper.path).unwrap();

    let (r, writes) = k
        .writes_during(
            &format!("/api/v1/namespaces/{apps}/secrets"),
            provision(&b, apps, "gone-1", "plan-ctx", json!({})),
        )
        .await;
    let d = assert_failed(&r, "could not run helm");
    assert!(
        d.contains(&wrapper.path.display().to_string()),
        "names the binary: {d}"
    );
    assert!(writes.is_empty(), "{writes:?}");
    assert!(configmap(k, apps, "cb-gone-1").await.is_none());
}

/// A 500 on a chosen write: only the fake API can be told to answer that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_fail_the_install_with_the_servers_message() {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    k.put(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "chartbroker-release", "namespace": "apps"}}));
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.catalog_dir = fixtures().join("catalog-helm");
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    let b = TestBroker::with_config(data, cfg).await;
    let configmap = |name: &str| k.get("v1", "configmaps", Some("apps"), name);
    let records = |release: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = k
            .list("secrets", Some("apps"))
            .into_iter()
            .filter(|s| {
                s["metadata"]["labels"]["owner"] == "helm"
                    && s["metadata"]["labels"]["name"] == release
            })
            .map(|s| {
                let l = &s["metadata"]["labels"];
                (
                    l["version"].as_str().unwrap().to_string(),
                    l["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };

    // 1. Helm's own release record can't be written: nothing is installed.
    k.fail_next("POST", "/api/v1/namespaces/apps/secrets", 500);
    let r = provision(&b, "apps", "api-1", "plan-ctx", json!({"message": "one"})).await;
    assert_failed(&r, "injected fault: POST /api/v1/namespaces/apps/secrets");
    assert!(configmap("cb-api-1").is_none());
    assert!(records("cb-api-1").is_empty());
    let r = provision(&b, "apps", "api-1", "plan-ctx", json!({"message": "one"})).await;
    assert_succeeded(&r);
    assert_eq!(configmap("cb-api-1").unwrap()["data"]["message"], "one");

    // 2. An object of the chart is refused: helm records a failed release,
    //    which the repeated provision removes before installing again.
    k.fail_next("PATCH", "/api/v1/namespaces/apps/configmaps/cb-api-2", 500);
    let r = provision(&b, "apps", "api-2", "plan-ctx", json!({"message": "two"})).await;
    assert_failed(
        &r,
        "injected fault: PATCH /api/v1/namespaces/apps/configmaps/cb-api-2",
    );
    assert!(configmap("cb-api-2").is_none());
    assert_eq!(records("cb-api-2"), vec![("1".into(), "failed".into())]);
    let r = provision(&b, "apps", "api-2", "plan-ctx", json!({"message": "two"})).await;
    assert_succeeded(&r);
    assert_eq!(configmap("cb-api-2").unwrap()["data"]["message"], "two");
    assert_eq!(records("cb-api-2"), vec![("1".into(), "deployed".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_install_is_repaired() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    // A helm killed during the first install: its record says
    // pending-install, and part of the manifest is applied.
    let chart = fixtures().join("charts/tiny");
    let out = k.helm(&["template", "cb-pend-1", chart.to_str().unwrap(), "-n", apps]);
    assert!(out.status.success(), "{out:?}");
    let manifest = String::from_utf8(out.stdout).unwrap();
    assert!(manifest.contains("kind: ConfigMap"), "{manifest}");
    seed_release_record(k, apps, "cb-pend-1", 1, "pending-install", &manifest).await;
    half_apply_configmap(k, apps, "cb-pend-1");

    // The seeded record is what helm itself sees, and plain helm refuses to
    // go on from there.
    let out = k.helm(&["status", "cb-pend-1", "-n", apps, "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "pending-install");
    let out = k.helm(&[
        "upgrade",
        "--install",
        "cb-pend-1",
        chart.to_str().unwrap(),
        "-n",
        apps,
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another operation"),
        "{out:?}"
    );

    let r = provision(&b, apps, "pend-1", "plan-ctx", json!({"message": "fixed"})).await;
    assert_succeeded(&r);
    assert_eq!(
        configmap(k, apps, "cb-pend-1").await.unwrap()["data"]["message"],
        "fixed"
    );
    assert_eq!(
        record_statuses(k, apps, "cb-pend-1").await,
        vec![(1, "deployed".to_string())],
        "the pending record was removed and a fresh install recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_upgrade_is_rolled_back_then_upgraded() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "pend-2", "plan-ctx", json!({"message": "v1"})).await);
    // A helm killed during an upgrade leaves the next revision pending (with
    // the manifest it was applying: here the same chart) and part of it
    // applied.
    let out = k.helm(&["get", "manifest", "cb-pend-2", "-n", apps]);
    assert!(out.status.success(), "{out:?}");
    let manifest = String::from_utf8(out.stdout).unwrap();
    seed_release_record(k, apps, "cb-pend-2", 2, "pending-upgrade", &manifest).await;
    half_apply_configmap(k, apps, "cb-pend-2");
    let out = k.helm(&["status", "cb-pend-2", "-n", apps, "-o", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "pending-upgrade", "{out:?}");

    let update = json!({"service_id": SVC, "parameters": {"message": "v2"}});
    assert_succeeded(&b.by(None).update("pend-2", update).await);
    assert_eq!(
        configmap(k, apps, "cb-pend-2").await.unwrap()["data"]["message"],
        "v2"
    );
    // The engine rolled back to revision 1 first (revision 3), then
    // upgraded (revision 4). Helm's rollback leaves the interrupted
    // revision's record as it was; only the latest revision counts.
    let statuses = record_statuses(k, apps, "cb-pend-2").await;
    assert_eq!(
        statuses.last(),
        Some(&(4, "deployed".to_string())),
        "{statuses:?}"
    );
    let history = k.helm_history(apps, "cb-pend-2");
    let rev3 = history
        .iter()
        .find(|h| h["revision"] == 3)
        .expect("revision 3");
    assert_eq!(rev3["description"], "Rollback to 1", "{history:?}");
    let out = k.helm(&["status", "cb-pend-2", "-n", apps, "-o", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{out:?}");
    assert_eq!(status["version"], 4, "{out:?}");
}

// === policy ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_chart_is_refused_before_any_write_to_the_cluster() {
    let e = env(true).await;
    let k = &e.k;
    let b = broker(&e, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-helm/hostile");
        cfg.charts_dir = fixtures().join("hostile-charts");
    })
    .await;
    // The plan asks for a namespace of its own: a policy check that ran too
    // late would show as that Namespace being created.
    let id = format!("evil-{}", suffix());
    let own_ns = format!("cb-{id}");
    let request = async {
        let r = b
            .put(
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                json!({
                    "service_id": "svc-hostile",
                    "plan_id": "plan-privileged",
                    "organization_guid": "org",
                    "space_guid": "space",
                    "context": {"platform": "kubernetes", "namespace": e.apps},
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        b.wait_instance(&id, r.json["operation"].as_str().unwrap())
            .await
    };
    // Nothing can be written in a namespace that was never created; the
    // platform's namespace is watched too.
    let secrets = format!("/api/v1/namespaces/{}/secrets", e.apps);
    let ((r, secret_writes), namespace_writes) = k
        .writes_during("/api/v1/namespaces", k.writes_during(&secrets, request))
        .await;
    let d = assert_failed(&r, "policy rejected the chart: ");
    assert!(
        d.contains(&format!(
            "Deployment/{own_ns}-web: container \"app\" is privileged"
        )),
        "{d}"
    );
    assert!(d.contains("(rule: privileged-container)"), "{d}");
    assert!(secret_writes.is_empty(), "{secret_writes:?}");
    let ours: Vec<&String> = namespace_writes
        .iter()
        .filter(|w| w.ends_with(&format!(" {own_ns}")))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    assert!(
        k.get(&format!("/api/v1/namespaces/{own_ns}"))
            .await
            .is_none()
    );
}

// === namespace per instance ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_per_instance_is_created_labelled_and_deleted() {
    let e = env(true).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    let id = format!("ns-{}", suffix());
    let own = format!("cb-{id}");

    let r = provision(&b, apps, &id, "plan-own-ns", json!({"message": "own"})).await;
    assert_succeeded(&r);
    k.instance_namespace(&own, &id).await;
    assert_eq!(
        configmap(k, &own, &own)
            .await
            .expect("release in its namespace")["data"]["message"],
        "own"
    );
    assert!(configmap(k, apps, &own).await.is_none());
    assert_eq!(release_records(k, &own, &own).await.len(), 1);

    // The binding Secret goes to the instance's namespace by default.
    assert_succeeded(&bind(&b, &id, "nsb-1", "plan-own-ns", json!({})).await);
    assert!(
        k.has(&format!("/api/v1/namespaces/{own}/secrets/cb-bind-nsb-1"))
            .await
    );
    assert!(
        !k.has(&format!("/api/v1/namespaces/{apps}/secrets/cb-bind-nsb-1"))
            .await
    );

    let r = deprovision(&b, &id, "plan-own-ns").await;
    assert_delete_done(&r);
    // Deleted by the broker (Terminating, or already gone), then emptied
    // and removed by the namespace controller.
    assert_deleted(
        &k.get(&format!("/api/v1/namespaces/{own}")).await,
        "the instance's namespace",
    );
    k.wait_gone(
        &format!("/api/v1/namespaces/{own}"),
        Duration::from_secs(120),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_broker_did_not_create_is_never_deleted() {
    let e = env(true).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    // Someone else's namespace, with the name an instance will get.
    let id = format!("ns2-{}", suffix());
    let theirs = format!("cb-{id}");
    k.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": theirs, "labels": {"team": "someone-else"}}}),
    )
    .await;
    k.create(
        &format!("/api/v1/namespaces/{theirs}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "keep-me"}, "data": {"precious": "yes"}}),
    )
    .await;
    let b = broker(&e, |_, _| {}).await;

    // Refused: a `namespace: instance` plan installs only into a namespace
    // the broker created for that instance.
    let r = provision(&b, apps, &id, "plan-own-ns", json!({"message": "guest"})).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains(&theirs) && d.contains("already exists"), "{d}");
    assert!(configmap(k, &theirs, &theirs).await.is_none());
    assert!(release_records(k, &theirs, &theirs).await.is_empty());
    let ns = k
        .get(&format!("/api/v1/namespaces/{theirs}"))
        .await
        .unwrap();
    assert_eq!(ns["metadata"]["labels"]["team"], "someone-else", "{ns}");
    assert!(
        ns["metadata"]["labels"]
            .get("app.kubernetes.io/managed-by")
            .is_none(),
        "the broker did not take ownership: {ns}"
    );

    let r = deprovision(&b, &id, "plan-own-ns").await;
    assert_delete_done(&r);
    // A DELETE of a namespace can't be taken back: it would show as a
    // deletionTimestamp until the namespace is gone.
    assert_not_deleted(
        &k.get(&format!("/api/v1/namespaces/{theirs}")).await,
        "the namespace",
    );
    assert_eq!(
        configmap(k, &theirs, "keep-me")
            .await
            .expect("its objects stay")["data"]["precious"],
        "yes"
    );
}
