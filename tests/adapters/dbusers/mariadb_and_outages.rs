use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_each_binding_its_own_user_revoked_on_unbind_and_rotated() {
    let (server, b, root) = mariadb_instance("m1").await;

    let one = bound(&b, "m1", "b1", "rot", json!({})).await;
    let two = bound(&b, "m1", "b2", "rot", json!({})).await;
    assert_ne!(one["username"], two["username"]);
    assert_ne!(one["password"], two["password"]);
    assert_ne!(
        s(&one["password"]),
        root,
        "a binding never gets the admin password"
    );
    // The binding Secret carries that binding's own user.
    let secret = binding_secret_text(&b, "m1", "b1");
    assert!(
        secret.contains(s(&one["username"])) && secret.contains(s(&one["password"])),
        "{secret}"
    );
    assert!(!secret.contains(s(&two["username"])));

    let mut c1 = mysql_as(server.port, &one, "a_b").await.unwrap();
    sql(&mut c1, "CREATE TABLE t (x INT)").await.unwrap();
    sql(&mut c1, "INSERT INTO t VALUES (1)").await.unwrap();
    // Only the instance's database: not its GRANT-wildcard neighbour, not mysql.*.
    assert!(
        sql(&mut c1, "SELECT * FROM axb.secret").await.is_err(),
        "a_b must not grant axb"
    );
    assert!(sql(&mut c1, "SELECT * FROM mysql.user").await.is_err());
    assert!(
        sql(&mut c1, "CREATE USER intruder IDENTIFIED BY 'x'")
            .await
            .is_err()
    );
    let mut c2 = mysql_as(server.port, &two, "a_b").await.unwrap();
    sql(&mut c2, "INSERT INTO t VALUES (2)").await.unwrap();

    // A repeated bind answers 200 with the same credentials and no new user.
    let again = bind(&b, "m1", "b1", "rot", json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["credentials"], one);
    assert_eq!(mysql_users(&server, &root).await.len(), 2);

    let r = unbind(&b, "m1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        mysql_as(server.port, &one, "a_b").await.is_err(),
        "the unbound user can no longer log in"
    );
    assert!(
        sql(&mut c1, "SELECT 1").await.is_err(),
        "its open session was ended"
    );
    sql(&mut c2, "SELECT * FROM t")
        .await
        .expect("the other binding is untouched");
    assert_eq!(
        mysql_users(&server, &root).await,
        vec![s(&two["username"]).to_string()]
    );

    // Rotation: a fresh user; both valid until the predecessor is unbound.
    let three = rotate(&b, "m1", "b3", "rot", "b2").await;
    assert_ne!(three["username"], two["username"]);
    assert_ne!(three["password"], two["password"]);
    let mut c3 = mysql_as(server.port, &three, "a_b").await.unwrap();
    sql(&mut c3, "SELECT * FROM t").await.unwrap();
    mysql_as(server.port, &two, "a_b")
        .await
        .expect("predecessor still valid");
    assert_eq!(unbind(&b, "m1", "b2", "rot").await.status, StatusCode::OK);
    assert!(mysql_as(server.port, &two, "a_b").await.is_err());
    sql(&mut c3, "INSERT INTO t VALUES (3)")
        .await
        .expect("the successor survives its predecessor");

    // Deprovision drops the users of bindings the platform left behind.
    let r = b
        .del(&format!(
            "/v2/service_instances/m1?service_id={SERVICE}&plan_id=rot"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(mysql_users(&server, &root).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dependent_chart_gets_a_user_of_its_own() {
    let (server, b, root) = mariadb_instance("m1").await;
    let app = bound(&b, "m1", "app", "rot", json!({})).await;

    let wp = json!({
        "service_id": WORDPRESS, "plan_id": WORDPRESS_STANDARD,
        "context": {"platform": "kubernetes", "namespace": "apps"},
        "parameters": {"mysql_instance": "m1"},
    });
    b.put_created("/v2/service_instances/wp-1", wp).await;
    let file = b
        .data
        .path()
        .join("render/apps/cb-wp-1/bindings/cb-wp-1-database.yaml");
    let secret: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let wp = &secret["stringData"];
    assert!(s(&wp["username"]).starts_with("cb_"), "{secret}");
    assert_ne!(
        wp["username"], app["username"],
        "WordPress has a user of its own"
    );
    mysql_as(server.port, wp, "a_b")
        .await
        .expect("WordPress's credentials work");
    assert_eq!(mysql_users(&server, &root).await.len(), 2);

    // Deprovisioning WordPress revokes its user only.
    let r = b
        .del(&format!(
            "/v2/service_instances/wp-1?service_id={WORDPRESS}&plan_id={WORDPRESS_STANDARD}"
        ))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap().to_string();
        b.wait_instance("wp-1", &op).await;
    }
    assert!(mysql_as(server.port, wp, "a_b").await.is_err());
    mysql_as(server.port, &app, "a_b")
        .await
        .expect("the app's own binding is untouched");
    assert_eq!(
        mysql_users(&server, &root).await,
        vec![s(&app["username"]).to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_refuses_what_the_spec_forbids() {
    // No server: every refusal happens before any database is touched.
    let b = broker("mysql", databases::free_port()).await;
    provision(&b, "r1", "norot").await;
    provision(&b, "r2", "down").await;
    provision(&b, "r3", "down").await;
    let r = rotation_refused(&b, ("r1", "x", "norot"), "anything").await;
    assert!(
        r.json["description"].as_str().unwrap().contains("rotation"),
        "{}",
        r.text
    );
    // A failed binding is no predecessor either (it holds no credentials).
    let r = bind(&b, "r2", "failed", "down", json!({})).await;
    assert!(!r.status.is_success(), "{}", r.text);
    for (pred, why) in [
        ("nope", "unknown predecessor"),
        ("failed", "failed predecessor"),
    ] {
        let r = rotation_refused(&b, ("r2", "y", "down"), pred).await;
        assert!(
            r.json["description"].as_str().unwrap().contains(pred),
            "{why}: {}",
            r.text
        );
    }
    // Nothing was recorded for the refused ids: they are still free.
    let r = b.get("/v2/service_instances/r2/service_bindings/y").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_predecessor_of_another_instance_is_refused() {
    let (_server, b, _) = mariadb_instance("p1").await;
    bound(&b, "p1", "own", "rot", json!({})).await;
    provision(&b, "p2", "rot").await;
    let r = rotation_refused(&b, ("p2", "thief", "rot"), "own").await;
    assert!(r.json["credentials"].is_null(), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_fails_the_bind_or_falls_back_to_the_shared_user() {
    let b = broker("mysql", databases::free_port()).await;
    provision(&b, "d1", "down").await;
    let r = bind(&b, "d1", "b1", "down", json!({})).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.text
    );
    let d = r.json["description"].as_str().unwrap_or_default();
    assert!(
        d.contains("could not reach the MySQL database") && d.contains("127.0.0.1:"),
        "{}",
        r.text
    );
    assert!(
        r.json["credentials"].is_null(),
        "never credentials that don't work"
    );
    assert!(
        !d.contains(&rendered_secret(&b, "d1", "root-password")),
        "no admin password in errors"
    );
    assert!(
        !b.data.path().join("render/apps/cb-d1/bindings").exists()
            || std::fs::read_dir(b.data.path().join("render/apps/cb-d1/bindings"))
                .unwrap()
                .next()
                .is_none(),
        "no binding Secret for a failed bind"
    );
    // The failed bind left nothing: its unbind answers as for a binding
    // that does not exist.
    let r = unbind(&b, "d1", "b1", "down").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    // A plan that says so falls back to the shared user.
    provision(&b, "d2", "down-shared").await;
    let creds = bound(&b, "d2", "b1", "down-shared", json!({})).await;
    assert_eq!(creds["username"], "app");
    assert_eq!(s(&creds["password"]), rendered_secret(&b, "d2", "password"));
    assert_eq!(
        unbind(&b, "d2", "b1", "down-shared").await.status,
        StatusCode::OK,
        "a shared-user binding unbinds while the database is still down"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_database_fails_the_bind_leaving_nothing_and_the_instance_still_goes() {
    let (mut server, b, root) = mariadb_instance("s1").await;
    server.stop();

    // Synchronous bind: 500 naming the database, no credentials, no Secret.
    let r = bind(&b, "s1", "b1", "rot", json!({})).await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("could not reach the MySQL database") && d.contains("no user was created"),
        "{d}"
    );
    assert!(r.json["credentials"].is_null());
    // Asynchronous bind: the operation fails the same way.
    let uri = "/v2/service_instances/s1/service_bindings/b2?accepts_incomplete=true";
    let body = json!({"service_id": SERVICE, "plan_id": "rot"});
    let lo = b.run(Method::PUT, uri, Some(body)).await;
    assert_eq!(lo.json["state"], "failed", "{}", lo.text);
    assert!(
        s(&lo.json["description"]).contains("no user was created"),
        "{}",
        lo.text
    );
    assert!(
        no_binding_secrets(&b, "s1"),
        "a failed bind writes no Secret"
    );

    // Nothing to revoke: both unbinds answer 410 Gone (sync and async).
    let r = unbind(&b, "s1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    let r = b
        .del(&format!("/v2/service_instances/s1/service_bindings/b2?service_id={SERVICE}&plan_id=rot&accepts_incomplete=true"))
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    // The failed bind's own operation still answers its poll.
    let r = b
        .get("/v2/service_instances/s1/service_bindings/b2/last_operation")
        .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);

    // The instance goes, database or not.
    let r = deprovision(&b, "s1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!b.data.path().join("render/apps/cb-s1").exists());
    server.start();
    assert!(
        mysql_users(&server, &root).await.is_empty(),
        "no user was ever created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unbind_that_cannot_reach_the_database_fails_until_it_is_back() {
    let (mut server, b, root) = mariadb_instance("u1").await;
    let creds = bound(&b, "u1", "b1", "rot", json!({})).await;
    let user = s(&creds["username"]).to_string();
    server.stop();

    let r = unbind(&b, "u1", "b1", "rot").await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains(&user) && d.contains("is still there") && d.contains("a retry finishes it"),
        "says what is left and what to do: {d}"
    );
    assert!(
        !d.contains(&root) && !d.contains(s(&creds["password"])),
        "{d}"
    );
    // A retry while it is still down fails the same way.
    let r = unbind(&b, "u1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);

    server.start();
    assert_eq!(mysql_users(&server, &root).await, vec![user.clone()]);
    let r = unbind(&b, "u1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        mysql_users(&server, &root).await.is_empty(),
        "the user is gone"
    );
    assert!(
        mysql_login(server.port, &user, s(&creds["password"]), "a_b")
            .await
            .is_err()
    );
    assert!(no_binding_secrets(&b, "u1"));
    let r = unbind(&b, "u1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deprovision_with_the_database_down_succeeds_when_the_database_goes_with_the_release() {
    let mut server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "i1", "inrel").await;
    provision(&b, "x1", "rot").await;
    let root = rendered_secret(&b, "i1", "root-password");
    mariadb_as_chart(&server, &root).await;
    // Both instances share the test's one server: the same root password.
    let mut admin = mysql_login(server.port, "root", &root, "mysql")
        .await
        .unwrap();
    let x_root = rendered_secret(&b, "x1", "root-password");
    bound(&b, "i1", "b1", "inrel", json!({})).await;
    let x_creds = {
        sql(
            &mut admin,
            &format!("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{x_root}'"),
        )
        .await
        .unwrap();
        bound(&b, "x1", "b2", "rot", json!({})).await
    };
    server.stop();

    // The database is the release's own: its users go with it.
    let r = deprovision(&b, "i1", "inrel").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let lo = b.get("/v2/service_instances/i1/last_operation").await;
    assert_eq!(lo.json["state"], "succeeded", "{}", lo.text);
    assert!(
        s(&lo.json["description"]).contains("need no dropping"),
        "the description says why no user was dropped: {}",
        lo.text
    );
    assert!(!b.data.path().join("render/apps/cb-i1").exists());

    // A database the release does not own keeps its users: the deprovision
    // fails, saying which, until it can drop them.
    let r = deprovision(&b, "x1", "rot").await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    assert!(
        s(&r.json["description"]).contains(s(&x_creds["username"])),
        "{}",
        r.text
    );
    assert!(b.data.path().join("render/apps/cb-x1").exists());
    server.start();
    let r = deprovision(&b, "x1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let left = mysql_users(&server, &x_root).await;
    assert!(
        !left.contains(&s(&x_creds["username"]).to_string()),
        "{left:?}"
    );
    assert!(!b.data.path().join("render/apps/cb-x1").exists());
}
