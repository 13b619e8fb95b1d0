use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_bind_failing_after_its_user_was_created_drops_the_user_before_answering() {
    let (server, b, root) = mariadb_instance("a1").await;
    let first = bound(
        &b,
        "a1",
        "first",
        "rot",
        json!({"parameters": {"secret_name": "taken"}}),
    )
    .await;
    // The second binding's user is created, then its Secret can't be
    // written (the name is the first binding's).
    let r = bind(
        &b,
        "a1",
        "second",
        "rot",
        json!({"parameters": {"secret_name": "taken"}}),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = s(&r.json["description"]);
    assert!(
        d.contains("already belongs to another binding") && d.contains("nothing is left"),
        "{d}"
    );
    assert_eq!(
        mysql_users(&server, &root).await,
        vec![s(&first["username"]).to_string()],
        "the second binding's user was dropped again"
    );
    assert!(binding_secret_text(&b, "a1", "first").contains(s(&first["password"])));
    let r = unbind(&b, "a1", "second", "rot").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert!(binding_secret_text(&b, "a1", "first").contains(s(&first["password"])));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_creating_the_user_and_recording_the_binding_ends_with_one_user() {
    let server = databases::mariadb();
    let b = broker_with(
        "mysql",
        server.port,
        Arc::new(CrashAfterCreate {
            armed: AtomicBool::new(true),
        }),
    )
    .await;
    provision(&b, "c1", "rot").await;
    let root = rendered_secret(&b, "c1", "root-password");
    mariadb_as_chart(&server, &root).await;
    let r = bind(&b, "c1", "b1", "rot", json!({})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(
        mysql_users(&server, &root).await.len(),
        1,
        "the user exists, the binding is unrecorded"
    );

    // Restart on the same data directory: the bind resumes.
    let TestBroker { data, runtime, app } = b;
    drop(app);
    drop(runtime);
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = repo().join("charts");
    let b = TestBroker::with_config(data, cfg).await;
    let mut creds = Value::Null;
    for _ in 0..200 {
        let r = b.get("/v2/service_instances/c1/service_bindings/b1").await;
        if r.status == StatusCode::OK {
            creds = r.json["credentials"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!creds.is_null(), "the resumed bind finished");
    assert_eq!(
        mysql_users(&server, &root).await,
        vec![s(&creds["username"]).to_string()],
        "exactly one user, the recorded one"
    );
    mysql_as(server.port, &creds, "a_b")
        .await
        .expect("the recorded password is the user's password");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_each_binding_its_own_role_revoked_on_unbind_and_rotated() {
    let server = databases::postgresql();
    let b = broker("postgresql", server.port).await;
    provision(&b, "g1", "rot").await;
    postgres_as_chart(&b, &server, "g1", &["shop", "other"]).await;

    let one = bound(&b, "g1", "b1", "rot", json!({})).await;
    let two = bound(&b, "g1", "b2", "rot", json!({})).await;
    assert_ne!(one["username"], two["username"]);
    let mut c1 = pg_as(server.port, &one, "shop").await.unwrap();
    pg(&mut c1, "CREATE TABLE t (x int)").await.unwrap();
    pg(&mut c1, "INSERT INTO t VALUES (1)").await.unwrap();
    assert!(pg(&mut c1, "CREATE ROLE intruder").await.is_err());
    assert!(
        pg(&mut c1, "ALTER ROLE postgres PASSWORD 'x'")
            .await
            .is_err()
    );
    let mut other = pg_as(server.port, &one, "other").await;
    if let Ok(o) = other.as_mut() {
        assert!(
            pg(o, "CREATE TABLE public.x (y int)").await.is_err(),
            "nothing in another database"
        );
    }
    let mut c2 = pg_as(server.port, &two, "shop").await.unwrap();
    pg(&mut c2, "INSERT INTO t VALUES (2)")
        .await
        .expect("what one binding creates, the others may use");

    assert_eq!(unbind(&b, "g1", "b1", "rot").await.status, StatusCode::OK);
    assert!(pg_as(server.port, &one, "shop").await.is_err());
    assert!(
        pg(&mut c1, "SELECT 1").await.is_err(),
        "its session was terminated"
    );
    pg(&mut c2, "SELECT * FROM t")
        .await
        .expect("the table outlives its creator's role");

    let three = rotate(&b, "g1", "b3", "rot", "b2").await;
    let mut c3 = pg_as(server.port, &three, "shop").await.unwrap();
    pg(&mut c3, "INSERT INTO t VALUES (3)").await.unwrap();
    pg_as(server.port, &two, "shop").await.expect("both valid");
    assert_eq!(unbind(&b, "g1", "b2", "rot").await.status, StatusCode::OK);
    assert!(pg_as(server.port, &two, "shop").await.is_err());
    pg(&mut c3, "SELECT * FROM t").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_each_binding_its_own_acl_user_revoked_on_unbind_and_rotated() {
    let server = databases::redis();
    let b = broker("redis", server.port).await;
    provision(&b, "r1", "rot").await;
    let _admin = redis_as_chart(&b, &server, "r1").await;

    let one = bound(&b, "r1", "b1", "rot", json!({})).await;
    let two = bound(&b, "r1", "b2", "rot", json!({})).await;
    assert_ne!(one["username"], two["username"]);
    let mut c1 = redis_as(server.port, &one).await.unwrap();
    redis_set(&mut c1, "k1").await.unwrap();
    let denied: redis::RedisResult<()> = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("intruder")
        .query_async(&mut c1)
        .await;
    assert!(denied.is_err(), "no admin commands");
    let denied: redis::RedisResult<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("requirepass")
        .query_async(&mut c1)
        .await;
    assert!(denied.is_err());
    let mut c2 = redis_as(server.port, &two).await.unwrap();

    assert_eq!(unbind(&b, "r1", "b1", "rot").await.status, StatusCode::OK);
    assert!(redis_as(server.port, &one).await.is_err());
    assert!(
        redis_set(&mut c1, "k2").await.is_err(),
        "its connection was closed"
    );
    redis_set(&mut c2, "k3")
        .await
        .expect("the other binding is untouched");

    let three = rotate(&b, "r1", "b3", "rot", "b2").await;
    let mut c3 = redis_as(server.port, &three).await.unwrap();
    redis_set(&mut c3, "k4").await.unwrap();
    redis_as(server.port, &two).await.expect("both valid");
    assert_eq!(unbind(&b, "r1", "b2", "rot").await.status, StatusCode::OK);
    assert!(redis_as(server.port, &two).await.is_err());
    redis_set(&mut c3, "k5").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_and_redis_outages_leave_nothing_and_unbind_once_back() {
    let mut server = databases::postgresql();
    let b = broker("postgresql", server.port).await;
    provision(&b, "g1", "rot").await;
    postgres_as_chart(&b, &server, "g1", &["shop"]).await;
    let creds = outage(&b, &mut server, "g1").await;
    assert!(
        pg_as(server.port, &creds, "shop").await.is_err(),
        "the role is gone"
    );

    let mut server = databases::redis();
    let b = broker("redis", server.port).await;
    provision(&b, "r1", "rot").await;
    let mut admin = redis_as_chart(&b, &server, "r1").await;
    // Kept across the restart, with the ACL users the broker writes.
    let _: () = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    drop(admin);
    let creds = outage(&b, &mut server, "r1").await;
    assert!(
        redis_as(server.port, &creds).await.is_err(),
        "the ACL user is gone"
    );
}
