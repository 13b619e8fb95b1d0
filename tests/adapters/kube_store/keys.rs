use super::*;

#[tokio::test]
async fn a_rotation_reads_old_records_and_then_refuses_the_old_key_alone() {
    let (_dir, c, old, new) = keyed_cluster().await;
    let (before, _) = c.store(sealer(&old)).await;
    before.check_key().await.unwrap();
    let v = insert(&before, Table::Instances, "i1", b"sealed-old").await;
    let (rotated, health) = c.store(sealer(&new).with_old_base64(&old).unwrap()).await;
    rotated.check_key().await.unwrap();
    assert_reads(&rotated, (Table::Instances, "i1"), b"sealed-old", v).await;
    // Rewritten with the new key, which the old key alone cannot open.
    let v2 = put_instance(&rotated, "i1", b"sealed-new", Expect::Version(v))
        .await
        .unwrap();
    assert!(health.problem().is_none());
    let (old_only, old_health) = c.store(sealer(&old)).await;
    refused(old_only.check_key().await, &sealer(&new).key_id());
    assert!(matches!(
        old_only.get(Table::Instances, "i1").await,
        Err(StoreError::Unreadable(_))
    ));
    assert!(old_health.problem().is_some());
    // A replica given both keys the other way round still reads everything.
    let (both, _) = c.store(sealer(&old).with_old_base64(&new).unwrap()).await;
    assert_reads(&both, (Table::Instances, "i1"), b"sealed-new", v2).await;
}

#[tokio::test]
async fn records_sealed_with_an_unknown_key_fail_readiness_until_they_open() {
    let (_dir, c, ka, kb) = keyed_cluster().await;
    let (a, _) = c.store(sealer(&ka)).await;
    insert(&a, Table::Instances, "i1", b"x").await;
    insert(&a, Table::Bindings, "i1\0b1", b"y").await;
    let (b, health) = c.store(sealer(&kb)).await;
    // A list skips what it cannot open, but the replica knows.
    assert!(b.list(Table::Bindings, "i1\0").await.unwrap().is_empty());
    let problem = health.problem().expect("flagged");
    assert!(problem.contains("bindings/i1/b1"), "{problem}");
    assert!(problem.contains(&sealer(&ka).key_id()), "{problem}");
    match b.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => {
            assert!(msg.contains("instances/i1"), "{msg}");
            assert!(msg.contains(&secret_name(Table::Instances, "i1")), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(health.unreadable_count(), 2);
    // The records themselves are untouched: the right key still reads them.
    assert_eq!(read(&a, Table::Instances, "i1").await.unwrap().0, b"x");
    // Once the records are gone (or open), the replica is healthy again.
    let (v_i, v_b) = (
        read(&a, Table::Instances, "i1").await.unwrap().1,
        read(&a, Table::Bindings, "i1\0b1").await.unwrap().1,
    );
    b.remove(Table::Instances, "i1", v_i).await.unwrap();
    assert_eq!(health.unreadable_count(), 1);
    // Removed by the replica that can read it: B's next listing forgets it.
    a.remove(Table::Bindings, "i1\0b1", v_b).await.unwrap();
    assert_eq!(health.unreadable_count(), 1);
    assert!(b.list(Table::Bindings, "").await.unwrap().is_empty());
    assert!(health.problem().is_none());
}

#[tokio::test]
async fn swapped_or_relabelled_record_secrets_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let c = test_cluster(dir.path()).await;
    let (s, health) = c.store(sealer(&Sealer::generate_base64())).await;
    for (k, v) in [("i1", "secret-one"), ("i2", "secret-two")] {
        s.put(Table::Instances, k, v.as_bytes().to_vec(), Expect::Absent)
            .await
            .unwrap();
    }
    let api = c.secrets().await;
    let (n1, n2) = (
        secret_name(Table::Instances, "i1"),
        secret_name(Table::Instances, "i2"),
    );
    let (mut s1, mut s2) = (api.get(&n1).await.unwrap(), api.get(&n2).await.unwrap());
    std::mem::swap(&mut s1.data, &mut s2.data);
    api.replace(&n1, &PostParams::default(), &s1).await.unwrap();
    api.replace(&n2, &PostParams::default(), &s2).await.unwrap();
    for k in ["i1", "i2"] {
        match s.get(Table::Instances, k).await {
            Err(StoreError::Unreadable(msg)) => {
                assert!(msg.contains("failed authentication"), "{msg}");
                assert!(msg.contains(&format!("instances/{k}")), "{msg}");
                assert!(!msg.contains("secret-"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(health.unreadable_count(), 2);
    // The format bytes: "s2" rewritten to the first release's "s1".
    let mut s1 = api.get(&n1).await.unwrap();
    let value = &mut s1.data.as_mut().unwrap().get_mut("value").unwrap().0;
    value[1] = b'1';
    api.replace(&n1, &PostParams::default(), &s1).await.unwrap();
    match s.get(Table::Instances, "i1").await {
        Err(StoreError::Unreadable(msg)) => assert!(msg.contains("(s1)"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_store_key_comes_from_a_named_secret() {
    let (_dir, c, key, old) = keyed_cluster().await;
    let api = c.secrets().await;
    let create = async |name: &str, data: Value| {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        api.create(&PostParams::default(), &secret).await.unwrap();
    };
    create("store-key", json!({"store.key": key, "old-1": old})).await;
    let kube = c.kube().await;
    let s = key_from_secret(&kube, NS, "store-key").await.unwrap();
    assert_eq!(s.key_id(), sealer(&key).key_id());
    let from_old = sealer(&old).seal("instances/a", b"v");
    assert_eq!(s.open("instances/a", &from_old).unwrap(), b"v");
    // Missing Secret, missing entry, a bad key: errors name the Secret and
    // the entry, never a value.
    let refused = async |name: &str| {
        let e = key_from_secret(&kube, NS, name).await.unwrap_err();
        e.to_string()
    };
    let e = refused("nope").await;
    assert!(e.contains("Secret chartbroker-system/nope"), "{e}");
    create("no-entry", json!({"key": key})).await;
    let e = refused("no-entry").await;
    assert!(e.contains("no entry store.key"), "{e}");
    assert!(!e.contains(&key), "{e}");
    create("short", json!({"store.key": "c2hvcnQ=", "old-2": old})).await;
    let e = refused("short").await;
    assert!(
        e.contains("entry store.key") && e.contains("32 bytes"),
        "{e}"
    );
    assert!(!e.contains(&old), "{e}");
}
