use super::*;

#[tokio::test]
async fn put_absent_twice_conflicts() {
    let (_k, _dir, s, _) = cluster_and_replicas().await;
    let v = insert(&s, Table::Instances, "i1", b"one").await;
    conflict(put_instance(&s, "i1", b"two", Expect::Absent).await);
    assert_reads(&s, (Table::Instances, "i1"), b"one", v).await;
    assert_eq!(read(&s, Table::Instances, "nope").await, None);
    // The same key in another table is another record.
    insert(&s, Table::Bindings, "i1", b"b").await;
}

#[tokio::test]
async fn version_cas_succeeds_once_and_rejects_stale_writers() {
    let (_k, _dir, s, _) = cluster_and_replicas().await;
    let v1 = insert(&s, Table::Instances, "i1", b"one").await;
    let v2 = put_instance(&s, "i1", b"two", Expect::Version(v1))
        .await
        .unwrap();
    assert_ne!(v1, v2);
    conflict(put_instance(&s, "i1", b"stale", Expect::Version(v1)).await);
    conflict(put_instance(&s, "absent", b"x", Expect::Version(v2)).await);
    assert_reads(&s, (Table::Instances, "i1"), b"two", v2).await;
    assert!(read(&s, Table::Instances, "absent").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_replicas_exactly_one_wins_each_round() {
    let (_k, _dir, a, b) = cluster_and_replicas().await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut version = insert(&a, Table::Instances, "hot", b"start").await;
    for round in 0..40 {
        // Both replicas read the same version, then race to replace it.
        let seen_a = read(&a, Table::Instances, "hot").await.unwrap().1;
        let seen_b = read(&b, Table::Instances, "hot").await.unwrap().1;
        assert_eq!((seen_a, seen_b), (version, version));
        let write = |s: Arc<KubeStore>, who: &'static str| {
            let value = format!("{who}-{round}").into_bytes();
            tokio::spawn(async move {
                s.put(Table::Instances, "hot", value, Expect::Version(version))
                    .await
            })
        };
        let (ra, rb) = (write(a.clone(), "a"), write(b.clone(), "b"));
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        let (winner, new_version) = match (ra, rb) {
            (Ok(v), Err(StoreError::Conflict)) => ("a", v),
            (Err(StoreError::Conflict), Ok(v)) => ("b", v),
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        assert_ne!(new_version, version);
        let (value, v) = read(&b, Table::Instances, "hot").await.unwrap();
        assert_eq!(v, new_version);
        assert_eq!(value, format!("{winner}-{round}").into_bytes());
        version = new_version;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_get_and_put_or_delete_is_a_conflict() {
    let k = cluster().await;
    let armed = Arc::new(Mutex::new(None));
    let hook = Interfere {
        fake: k.state(),
        armed: armed.clone(),
    };
    let app =
        fake_kube::router(k.state()).layer(axum::middleware::from_fn_with_state(hook, interfere));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(
        &write_kubeconfig(dir.path(), &url),
        &Sealer::generate_base64(),
    )
    .await;

    let v = insert(&s, Table::Instances, "i1", b"one").await;
    let name = secret_name(Table::Instances, "i1");
    let path = format!("{SECRETS}/{name}");

    // The version annotation still matches when the store reads it, but the
    // Secret changed before the PUT: the stale resourceVersion loses.
    *armed.lock().unwrap() = Some(("PUT".into(), path.clone(), name.clone()));
    conflict(put_instance(&s, "i1", b"two", Expect::Version(v)).await);
    assert!(armed.lock().unwrap().is_none(), "the hook fired");
    let obj = stored(&k, Table::Instances, "i1").unwrap();
    assert_eq!(
        obj["metadata"]["annotations"]["example.com/other-writer"],
        "1"
    );
    assert_reads(&s, (Table::Instances, "i1"), b"one", v).await;

    // Likewise for DELETE: the resourceVersion precondition fails.
    *armed.lock().unwrap() = Some(("DELETE".into(), path.clone(), name.clone()));
    conflict(s.remove(Table::Instances, "i1", v).await);
    assert!(armed.lock().unwrap().is_none(), "the hook fired");
    assert!(read(&s, Table::Instances, "i1").await.is_some());

    // Undisturbed, both go through.
    let v2 = put_instance(&s, "i1", b"two", Expect::Version(v))
        .await
        .unwrap();
    s.remove(Table::Instances, "i1", v2).await.unwrap();
    assert!(read(&s, Table::Instances, "i1").await.is_none());
    server.abort();
}

#[tokio::test]
async fn remove_checks_version_and_recreate_gets_a_fresh_one() {
    let (k, _dir, s, other) = cluster_and_replicas().await;
    let v1 = insert(&s, Table::Instances, "i1", b"one").await;
    conflict(s.remove(Table::Instances, "i1", v1.wrapping_add(1)).await);
    conflict(s.remove(Table::Instances, "missing", v1).await);
    assert!(read(&s, Table::Instances, "i1").await.is_some());
    s.remove(Table::Instances, "i1", v1).await.unwrap();
    assert!(read(&s, Table::Instances, "i1").await.is_none());
    assert!(stored(&k, Table::Instances, "i1").is_none());
    conflict(s.remove(Table::Instances, "i1", v1).await);

    // Recreated: a version nobody held before, so a stale writer that still
    // holds v1 (here, the other replica) can neither write nor delete.
    let v2 = insert(&s, Table::Instances, "i1", b"again").await;
    assert_ne!(v2, v1);
    conflict(put_instance(&other, "i1", b"stale", Expect::Version(v1)).await);
    conflict(other.remove(Table::Instances, "i1", v1).await);
    assert_reads(&other, (Table::Instances, "i1"), b"again", v2).await;
}

#[tokio::test]
async fn list_by_instance_label_and_by_table() {
    let (k, _dir, s, _) = cluster_and_replicas().await;
    let s = s.with_page_size(2);
    let bindings = ["i1\0b2", "i1\0b1", "i10\0b1", "i2\0b1", "i1\0b3"];
    for key in bindings {
        s.put(
            Table::Bindings,
            key,
            key.as_bytes().to_vec(),
            Expect::Absent,
        )
        .await
        .unwrap();
    }
    for key in ["i1", "i10", "i2"] {
        put_instance(&s, key, b"inst", Expect::Absent)
            .await
            .unwrap();
    }

    k.clear_requests();
    let rows = s.list(Table::Bindings, "i1\0").await.unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(keys, ["i1\0b1", "i1\0b2", "i1\0b3"]);
    for (key, value, version) in &rows {
        assert_eq!(value, key.as_bytes());
        assert_eq!(read(&s, Table::Bindings, key).await.unwrap().1, *version);
    }
    // That was a label-selected LIST, paged.
    let lists: Vec<String> = k
        .requests()
        .into_iter()
        .filter(|(m, p)| m == "GET" && p.starts_with(&format!("{SECRETS}?")))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(
        lists
            .iter()
            .all(|p| p.contains("chartbroker.io%2Finstance%3D")),
        "{lists:?}"
    );

    let all = s.list(Table::Bindings, "").await.unwrap();
    assert_eq!(all.len(), bindings.len());
    let instances = s.list(Table::Instances, "").await.unwrap();
    let keys: Vec<&str> = instances.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(keys, ["i1", "i10", "i2"]);
    // Any other prefix filters the table by key.
    let keys: Vec<String> = s
        .list(Table::Instances, "i1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(keys, ["i1", "i10"]);
    assert_eq!(s.list(Table::Bindings, "i1\0b2").await.unwrap().len(), 1);
    assert!(s.list(Table::Bindings, "i3\0").await.unwrap().is_empty());

    // Unrelated Secrets in the namespace, and ones that only look like
    // records, are not listed.
    k.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "unrelated", "namespace": NS},
        "data": {"value": B64.encode("x")}}));
    k.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "lookalike", "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "chartbroker",
                       "chartbroker.io/table": "instances"},
            "annotations": {"chartbroker.io/key": B64.encode("i1x"),
                            "chartbroker.io/version": "7"}},
        "data": {"value": B64.encode("x")}}));
    assert_eq!(s.list(Table::Instances, "").await.unwrap().len(), 3);
}

#[tokio::test]
async fn records_are_sealed_secrets_with_the_documented_shape() {
    let (k, _dir, s, _) = cluster_and_replicas().await;
    let key = "inst-1\0bind-1";
    let plain = b"{\"password\":\"hunter2-hunter2\"}".to_vec();
    let v = s
        .put(Table::Bindings, key, plain.clone(), Expect::Absent)
        .await
        .unwrap();
    let obj = stored(&k, Table::Bindings, key).unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cbs-bindings-"), "{name}");
    assert_eq!(name.len(), "cbs-bindings-".len() + 40);
    assert_eq!(obj["type"], "chartbroker.io/state");
    let labels = &obj["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "chartbroker");
    assert_eq!(labels["chartbroker.io/table"], "bindings");
    assert_eq!(
        labels["chartbroker.io/instance"].as_str().unwrap().len(),
        40
    );
    let ann = &obj["metadata"]["annotations"];
    assert_eq!(
        B64.decode(ann["chartbroker.io/key"].as_str().unwrap())
            .unwrap(),
        key.as_bytes()
    );
    assert_eq!(ann["chartbroker.io/version"], v.to_string());
    // Only ciphertext reaches the API server.
    let sealed = B64.decode(obj["data"]["value"].as_str().unwrap()).unwrap();
    assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
    assert!(obj.get("stringData").is_none());
    assert!(!obj.to_string().contains("hunter2"));
    assert_eq!(read(&s, Table::Bindings, key).await, Some((plain, v)));
    // An instance record has no instance label.
    insert(&s, Table::Instances, "inst-1", b"x").await;
    let obj = stored(&k, Table::Instances, "inst-1").unwrap();
    assert!(obj["metadata"]["labels"]["chartbroker.io/instance"].is_null());
}

#[tokio::test]
async fn a_sealed_value_only_opens_with_its_key_and_under_its_name() {
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = k.kubeconfig(dir.path());
    let right = store_at(&kc, &Sealer::generate_base64()).await;
    let wrong = store_at(&kc, &Sealer::generate_base64()).await;
    insert(&right, Table::Instances, "i1", b"secret-value").await;
    match wrong.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => {
            assert!(!msg.contains("secret-value"), "{msg}");
            assert!(msg.contains("which this broker was not given"), "{msg}");
        }
        other => panic!("expected an unreadable record, got {other:?}"),
    }
    // list skips records that don't open.
    assert!(wrong.list(Table::Instances, "").await.unwrap().is_empty());
    assert_eq!(right.list(Table::Instances, "").await.unwrap().len(), 1);

    // A record's ciphertext copied under another key does not open there.
    insert(&right, Table::Instances, "i2", b"other").await;
    let from = stored(&k, Table::Instances, "i1").unwrap();
    let mut to = stored(&k, Table::Instances, "i2").unwrap();
    to["data"]["value"] = from["data"]["value"].clone();
    k.put(to);
    assert!(matches!(
        right.get(Table::Instances, "i2").await,
        Err(StoreError::Unreadable(_))
    ));
}

#[tokio::test]
async fn a_second_replica_sees_and_continues_the_same_records() {
    let (_k, _dir, a, b) = cluster_and_replicas().await;
    let v1 = insert(&a, Table::Instances, "i1", b"from-a").await;
    assert_reads(&b, (Table::Instances, "i1"), b"from-a", v1).await;
    conflict(put_instance(&b, "i1", b"x", Expect::Absent).await);
    let v2 = put_instance(&b, "i1", b"from-b", Expect::Version(v1))
        .await
        .unwrap();
    assert_reads(&a, (Table::Instances, "i1"), b"from-b", v2).await;
    assert_eq!(a.list(Table::Instances, "").await.unwrap().len(), 1);
    a.remove(Table::Instances, "i1", v2).await.unwrap();
    assert!(read(&b, Table::Instances, "i1").await.is_none());
}

#[tokio::test]
async fn api_failures_are_backend_errors() {
    let (k, _dir, s, _) = cluster_and_replicas().await;
    k.fail_next("POST", SECRETS, 500);
    backend(put_instance(&s, "i1", b"v", Expect::Absent).await);
    let v = insert(&s, Table::Instances, "i1", b"v").await;
    k.fail_next("GET", SECRETS, 500);
    backend(s.get(Table::Instances, "i1").await);
    // (kube-rs itself retries 429, 503 and 504.)
    k.fail_next("PUT", SECRETS, 500);
    backend(put_instance(&s, "i1", b"w", Expect::Version(v)).await);
    k.fail_next("DELETE", SECRETS, 500);
    backend(s.remove(Table::Instances, "i1", v).await);
    k.fail_next("GET", SECRETS, 500);
    backend(s.list(Table::Instances, "").await);
    // Nothing changed.
    assert_reads(&s, (Table::Instances, "i1"), b"v", v).await;
}

#[tokio::test]
async fn a_replica_with_another_store_key_is_refused_at_start() {
    let (_dir, c, ka, kb) = keyed_cluster().await;
    let (a, _) = c.store(sealer(&ka)).await;
    a.check_key().await.unwrap();
    a.check_key().await.unwrap();
    // Another replica, another key: refused before it touches a record.
    let (b, _) = c.store(sealer(&kb)).await;
    let msg = refused(b.check_key().await, &sealer(&ka).key_id());
    assert!(
        !msg.contains(&ka) && !msg.contains(&kb),
        "no key material: {msg}"
    );
    // The same key: accepted, also by a replica started later.
    let (a2, _) = c.store(sealer(&ka)).await;
    a2.check_key().await.unwrap();
    // The check record holds only ciphertext.
    let check = c.secrets().await.get(KEY_CHECK_SECRET).await.unwrap();
    assert_eq!(check.type_.as_deref(), Some("chartbroker.io/state"));
    let sealed = &check.data.unwrap()["value"].0;
    assert_eq!(&sealed[..2], b"s2");
    assert!(!sealed.windows(8).any(|w| w == b"key chec"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_agree_on_one_key() {
    let (_dir, c, ka, kb) = keyed_cluster().await;
    let ((a, _), (b, _)) = (c.store(sealer(&ka)).await, c.store(sealer(&kb)).await);
    let (ra, rb) = tokio::join!(a.check_key(), b.check_key());
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one key wins: {ra:?} / {rb:?}"
    );
}
