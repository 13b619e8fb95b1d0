//! Per-binding database users against real MariaDB, PostgreSQL and Redis
//! servers on loopback (render engine, no cluster): each binding logs in
//! with its own user, unbinding revokes exactly that user and ends its
//! sessions, rotation keeps both users valid until the predecessor is
//! unbound, a crash between creating the user and recording the binding
//! ends with exactly one user, and an unreachable database fails the bind
//! (or, where the plan says so, falls back to the shared user).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use sqlx::Connection;

use chartbroker::dbusers::{DbError, Servers, Target, User, UserAdmin};
use common::databases::{self, Server};
use common::{Resp, TestBroker, config, repo};

const SERVICE: &str = "svc-db";

/// A catalog with one service on the repository's real chart for `engine`
/// and plans: `rot` (rotatable), `norot`, `down` (a closed port),
/// `down-shared` (a closed port, falls back to the shared user) and `inrel`
/// (`in_release: true`: the database goes away with the release).
fn write_catalog(dir: &std::path::Path, engine: &str, port: u16) {
    let closed = databases::free_port();
    let (chart, values, admin_secret, database, credentials, shared, params) = match engine {
        "mysql" => (
            "mysql",
            r#"{auth: {rootPassword: "{{secrets.root_password}}", username: "{{parameters.username}}", password: "{{secrets.user_password}}", database: "{{parameters.database}}"}}"#,
            "root_password",
            "database: \"{{parameters.database}}\"",
            r#"{host: 127.0.0.1, port: PORT, database: "{{parameters.database}}", username: "{{user.username}}", password: "{{user.password}}"}"#,
            r#"{username: "{{parameters.username}}", password: "{{secrets.user_password}}"}"#,
            "{database: {type: string, default: a_b}, username: {type: string, default: app}}",
        ),
        "postgresql" => (
            "postgresql",
            r#"{auth: {postgresPassword: "{{secrets.root_password}}", username: "{{parameters.username}}", password: "{{secrets.user_password}}", database: "{{parameters.database}}"}}"#,
            "root_password",
            "database: \"{{parameters.database}}\"",
            r#"{host: 127.0.0.1, port: PORT, database: "{{parameters.database}}", username: "{{user.username}}", password: "{{user.password}}"}"#,
            r#"{username: "{{parameters.username}}", password: "{{secrets.user_password}}"}"#,
            "{database: {type: string, default: shop}, username: {type: string, default: app}}",
        ),
        _ => (
            "redis",
            r#"{auth: {password: "{{secrets.root_password}}"}}"#,
            "root_password",
            "",
            r#"{host: 127.0.0.1, port: PORT, username: "{{user.username}}", password: "{{user.password}}"}"#,
            r#"{username: default, password: "{{secrets.root_password}}"}"#,
            "{}",
        ),
    };
    let plan = |id: &str, rotatable: bool, port: u16, fallback: bool, in_release: bool| {
        format!(
            r#"
      - id: {id}
        name: {id}
        description: {id}
        bindable: true
        binding_rotatable: {rotatable}
        schemas:
          service_instance:
            create:
              parameters: {{type: object, additionalProperties: false, properties: {params}}}
        chart:
          path: {chart}
          namespace: context
          values: {values}
          secrets:
            root_password: {{length: 24, alphabet: alphanumeric}}
            user_password: {{length: 24, alphabet: alphanumeric}}
          binding_users:
            engine: {engine}
            admin: {{host: 127.0.0.1, port: {port}, password: "{{{{secrets.{admin_secret}}}}}"}}
            {database}
            shared: {shared}
            fallback_to_shared: {fallback}
            connect_timeout_seconds: 2
            in_release: {in_release}
          credentials: {creds}
"#,
            creds = credentials.replace("PORT", &port.to_string()),
        )
    };
    let yaml = format!(
        "services:\n  - id: {SERVICE}\n    name: db\n    description: a database\n    bindable: true\n    plans:{}{}{}{}{}",
        plan("rot", true, port, false, false),
        plan("norot", false, port, false, false),
        plan("down", true, closed, false, false),
        plan("down-shared", true, closed, true, false),
        // The database as the chart's own (the example catalog's plans):
        // deleting the release deletes it with its users.
        plan("inrel", false, port, false, true),
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("db.yaml"), yaml).unwrap();
    if engine == "mysql" {
        // The example WordPress plan, depending on this catalog's service.
        let wordpress = std::fs::read_to_string(repo().join("catalog/wordpress.yaml")).unwrap();
        let wordpress = wordpress.replace("{service: mysql,", "{service: db,");
        assert!(wordpress.contains("{service: db,"));
        std::fs::write(dir.join("wordpress.yaml"), wordpress).unwrap();
    }
}

const WORDPRESS: &str = "c461081c-edf4-464d-a97a-c6bc513221d8";
const WORDPRESS_STANDARD: &str = "5d07b801-7bd4-41e1-b993-f981678db0af";

async fn broker_with(engine: &str, port: u16, users: Arc<dyn UserAdmin>) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = repo().join("charts");
    write_catalog(&cfg.catalog_dir, engine, port);
    let runtime = chartbroker::runtime::Runtime::start_with(&cfg, users)
        .await
        .expect("broker starts");
    TestBroker {
        app: runtime.app(),
        runtime,
        data,
    }
}

async fn broker(engine: &str, port: u16) -> TestBroker {
    broker_with(engine, port, Arc::new(Servers)).await
}

async fn provision(b: &TestBroker, instance: &str, plan: &str) {
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{instance}"),
            Some(json!({
                "service_id": SERVICE, "plan_id": plan,
                "organization_guid": "org", "space_guid": "space",
                "context": {"platform": "kubernetes", "namespace": "apps"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn bind(b: &TestBroker, instance: &str, binding: &str, plan: &str, extra: Value) -> Resp {
    let mut body =
        json!({"service_id": SERVICE, "plan_id": plan, "bind_resource": {"app_guid": "app-1"}});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b.call(
        Method::PUT,
        &format!("/v2/service_instances/{instance}/service_bindings/{binding}"),
        Some(body),
    )
    .await
}

async fn bound(b: &TestBroker, instance: &str, binding: &str, plan: &str, extra: Value) -> Value {
    let r = bind(b, instance, binding, plan, extra).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["credentials"].clone()
}

async fn unbind(b: &TestBroker, instance: &str, binding: &str, plan: &str) -> Resp {
    b.call(
        Method::DELETE,
        &format!("/v2/service_instances/{instance}/service_bindings/{binding}?service_id={SERVICE}&plan_id={plan}"),
        None,
    )
    .await
}

/// The admin password the broker generated for the instance, read from the
/// Secret the chart rendered (what the database container would get).
fn rendered_secret(b: &TestBroker, instance: &str, key: &str) -> String {
    let path = b
        .data
        .path()
        .join(format!("render/apps/cb-{instance}/manifests.yaml"));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let encoded = docs
        .iter()
        .find_map(|d| {
            (d["kind"] == "Secret")
                .then(|| d["data"][key].as_str())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no Secret with {key} in {}", path.display()));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

fn binding_secret_text(b: &TestBroker, instance: &str, binding: &str) -> String {
    let dir = b
        .data
        .path()
        .join(format!("render/apps/cb-{instance}/bindings"));
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|t| t.contains(binding))
        .unwrap_or_else(|| panic!("no binding Secret for {binding} in {}", dir.display()))
}

// === MariaDB ===

async fn mysql_login(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username(user)
        .database(db);
    // sqlx answers the handshake with a scramble for any password it is
    // given, even an empty one, which the server's empty password rejects.
    if !password.is_empty() {
        opts = opts.password(password);
    }
    sqlx::MySqlConnection::connect_with(&opts).await
}

async fn sql(con: &mut sqlx::MySqlConnection, q: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut *con, q).await.map(|_| ())
}

/// What the chart's container would do with the generated secret: set the
/// root password and create the instance's database (plus a neighbour whose
/// name `a_b` would match as a GRANT wildcard).
async fn mariadb_as_chart(server: &Server, root_password: &str) {
    let mut con = mysql_login(server.port, "root", "", "mysql").await.unwrap();
    for q in [
        "CREATE DATABASE a_b".to_string(),
        "CREATE DATABASE axb".to_string(),
        "CREATE TABLE axb.secret (x INT)".to_string(),
        format!("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{root_password}'"),
    ] {
        sql(&mut con, &q).await.unwrap();
    }
}

async fn mysql_users(server: &Server, root_password: &str) -> Vec<String> {
    let mut con = mysql_login(server.port, "root", root_password, "mysql")
        .await
        .unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT CAST(User AS CHAR) FROM mysql.user WHERE User LIKE 'cb\\_%'")
            .fetch_all(&mut con)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_each_binding_its_own_user_revoked_on_unbind_and_rotated() {
    let server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "m1", "rot").await;
    let root = rendered_secret(&b, "m1", "root-password");
    mariadb_as_chart(&server, &root).await;

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

    let mut c1 = mysql_login(server.port, s(&one["username"]), s(&one["password"]), "a_b")
        .await
        .unwrap();
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
    let mut c2 = mysql_login(server.port, s(&two["username"]), s(&two["password"]), "a_b")
        .await
        .unwrap();
    sql(&mut c2, "INSERT INTO t VALUES (2)").await.unwrap();

    // A repeated bind answers 200 with the same credentials and no new user.
    let again = bind(&b, "m1", "b1", "rot", json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["credentials"], one);
    assert_eq!(mysql_users(&server, &root).await.len(), 2);

    let r = unbind(&b, "m1", "b1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        mysql_login(server.port, s(&one["username"]), s(&one["password"]), "a_b")
            .await
            .is_err(),
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
    let three = bound(
        &b,
        "m1",
        "b3",
        "rot",
        json!({"predecessor_binding_id": "b2"}),
    )
    .await;
    assert_ne!(three["username"], two["username"]);
    assert_ne!(three["password"], two["password"]);
    let mut c3 = mysql_login(
        server.port,
        s(&three["username"]),
        s(&three["password"]),
        "a_b",
    )
    .await
    .unwrap();
    sql(&mut c3, "SELECT * FROM t").await.unwrap();
    mysql_login(server.port, s(&two["username"]), s(&two["password"]), "a_b")
        .await
        .expect("predecessor still valid");
    assert_eq!(unbind(&b, "m1", "b2", "rot").await.status, StatusCode::OK);
    assert!(
        mysql_login(server.port, s(&two["username"]), s(&two["password"]), "a_b")
            .await
            .is_err()
    );
    sql(&mut c3, "INSERT INTO t VALUES (3)")
        .await
        .expect("the successor survives its predecessor");

    // Deprovision drops the users of bindings the platform left behind.
    let r = b
        .call(
            Method::DELETE,
            &format!("/v2/service_instances/m1?service_id={SERVICE}&plan_id=rot"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(mysql_users(&server, &root).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dependent_chart_gets_a_user_of_its_own() {
    let server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "m1", "rot").await;
    let root = rendered_secret(&b, "m1", "root-password");
    mariadb_as_chart(&server, &root).await;
    let app = bound(&b, "m1", "app", "rot", json!({})).await;

    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/wp-1",
            Some(json!({
                "service_id": WORDPRESS, "plan_id": WORDPRESS_STANDARD,
                "context": {"platform": "kubernetes", "namespace": "apps"},
                "parameters": {"mysql_instance": "m1"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
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
    mysql_login(server.port, s(&wp["username"]), s(&wp["password"]), "a_b")
        .await
        .expect("WordPress's credentials work");
    assert_eq!(mysql_users(&server, &root).await.len(), 2);

    // Deprovisioning WordPress revokes its user only.
    let r = b
        .call(
            Method::DELETE,
            &format!(
                "/v2/service_instances/wp-1?service_id={WORDPRESS}&plan_id={WORDPRESS_STANDARD}"
            ),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap().to_string();
        b.wait_instance("wp-1", &op).await;
    }
    assert!(
        mysql_login(server.port, s(&wp["username"]), s(&wp["password"]), "a_b")
            .await
            .is_err()
    );
    mysql_login(server.port, s(&app["username"]), s(&app["password"]), "a_b")
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
    let r = bind(
        &b,
        "r1",
        "x",
        "norot",
        json!({"predecessor_binding_id": "anything"}),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
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
        let r = bind(
            &b,
            "r2",
            "y",
            "down",
            json!({"predecessor_binding_id": pred}),
        )
        .await;
        common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
        assert!(
            r.json["description"].as_str().unwrap().contains(pred),
            "{why}: {}",
            r.text
        );
    }
    // Nothing was recorded for the refused ids: they are still free.
    let r = b
        .call(
            Method::GET,
            "/v2/service_instances/r2/service_bindings/y",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_predecessor_of_another_instance_is_refused() {
    let server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "p1", "rot").await;
    mariadb_as_chart(&server, &rendered_secret(&b, "p1", "root-password")).await;
    bound(&b, "p1", "own", "rot", json!({})).await;
    provision(&b, "p2", "rot").await;
    let r = bind(
        &b,
        "p2",
        "thief",
        "rot",
        json!({"predecessor_binding_id": "own"}),
    )
    .await;
    common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    assert!(r.json["credentials"].is_null());
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

async fn deprovision(b: &TestBroker, instance: &str, plan: &str) -> Resp {
    b.call(
        Method::DELETE,
        &format!("/v2/service_instances/{instance}?service_id={SERVICE}&plan_id={plan}"),
        None,
    )
    .await
}

fn no_binding_secrets(b: &TestBroker, instance: &str) -> bool {
    let dir = b
        .data
        .path()
        .join(format!("render/apps/cb-{instance}/bindings"));
    std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_database_fails_the_bind_leaving_nothing_and_the_instance_still_goes() {
    let mut server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "s1", "rot").await;
    let root = rendered_secret(&b, "s1", "root-password");
    mariadb_as_chart(&server, &root).await;
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
        .call(
            Method::DELETE,
            &format!("/v2/service_instances/s1/service_bindings/b2?service_id={SERVICE}&plan_id=rot&accepts_incomplete=true"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    // The failed bind's own operation still answers its poll.
    let r = b
        .call(
            Method::GET,
            "/v2/service_instances/s1/service_bindings/b2/last_operation",
            None,
        )
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
    let mut server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "u1", "rot").await;
    let root = rendered_secret(&b, "u1", "root-password");
    mariadb_as_chart(&server, &root).await;
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
    let lo = b
        .call(Method::GET, "/v2/service_instances/i1/last_operation", None)
        .await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_bind_failing_after_its_user_was_created_drops_the_user_before_answering() {
    let server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, "a1", "rot").await;
    let root = rendered_secret(&b, "a1", "root-password");
    mariadb_as_chart(&server, &root).await;
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

/// Creates the user, then dies like a killed process: the operation task
/// ends without recording anything.
struct CrashAfterCreate {
    armed: AtomicBool,
}

#[async_trait]
impl UserAdmin for CrashAfterCreate {
    async fn create(&self, target: &Target, user: &User) -> Result<(), DbError> {
        Servers.create(target, user).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!(
                "failpoint: the broker dies after creating {}",
                user.username
            );
        }
        Ok(())
    }

    async fn drop_user(&self, target: &Target, username: &str) -> Result<(), DbError> {
        Servers.drop_user(target, username).await
    }
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
        let r = b
            .call(
                Method::GET,
                "/v2/service_instances/c1/service_bindings/b1",
                None,
            )
            .await;
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
    mysql_login(
        server.port,
        s(&creds["username"]),
        s(&creds["password"]),
        "a_b",
    )
    .await
    .expect("the recorded password is the user's password");
}

// === PostgreSQL ===

async fn pg_login(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<sqlx::PgConnection, sqlx::Error> {
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username(user)
        .password(password)
        .database(db);
    sqlx::PgConnection::connect_with(&opts).await
}

async fn pg(con: &mut sqlx::PgConnection, q: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut *con, q).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_each_binding_its_own_role_revoked_on_unbind_and_rotated() {
    let server = databases::postgresql();
    let b = broker("postgresql", server.port).await;
    provision(&b, "g1", "rot").await;
    let root = rendered_secret(&b, "g1", "postgres-password");
    let mut admin = pg_login(server.port, "postgres", &server.admin_password, "postgres")
        .await
        .unwrap();
    pg(&mut admin, "CREATE DATABASE shop").await.unwrap();
    pg(&mut admin, "CREATE DATABASE other").await.unwrap();
    pg(
        &mut admin,
        &format!("ALTER ROLE postgres PASSWORD '{root}'"),
    )
    .await
    .unwrap();

    let one = bound(&b, "g1", "b1", "rot", json!({})).await;
    let two = bound(&b, "g1", "b2", "rot", json!({})).await;
    assert_ne!(one["username"], two["username"]);
    let mut c1 = pg_login(
        server.port,
        s(&one["username"]),
        s(&one["password"]),
        "shop",
    )
    .await
    .unwrap();
    pg(&mut c1, "CREATE TABLE t (x int)").await.unwrap();
    pg(&mut c1, "INSERT INTO t VALUES (1)").await.unwrap();
    assert!(pg(&mut c1, "CREATE ROLE intruder").await.is_err());
    assert!(
        pg(&mut c1, "ALTER ROLE postgres PASSWORD 'x'")
            .await
            .is_err()
    );
    let mut other = pg_login(
        server.port,
        s(&one["username"]),
        s(&one["password"]),
        "other",
    )
    .await;
    if let Ok(o) = other.as_mut() {
        assert!(
            pg(o, "CREATE TABLE public.x (y int)").await.is_err(),
            "nothing in another database"
        );
    }
    let mut c2 = pg_login(
        server.port,
        s(&two["username"]),
        s(&two["password"]),
        "shop",
    )
    .await
    .unwrap();
    pg(&mut c2, "INSERT INTO t VALUES (2)")
        .await
        .expect("what one binding creates, the others may use");

    assert_eq!(unbind(&b, "g1", "b1", "rot").await.status, StatusCode::OK);
    assert!(
        pg_login(
            server.port,
            s(&one["username"]),
            s(&one["password"]),
            "shop"
        )
        .await
        .is_err()
    );
    assert!(
        pg(&mut c1, "SELECT 1").await.is_err(),
        "its session was terminated"
    );
    pg(&mut c2, "SELECT * FROM t")
        .await
        .expect("the table outlives its creator's role");

    let three = bound(
        &b,
        "g1",
        "b3",
        "rot",
        json!({"predecessor_binding_id": "b2"}),
    )
    .await;
    let mut c3 = pg_login(
        server.port,
        s(&three["username"]),
        s(&three["password"]),
        "shop",
    )
    .await
    .unwrap();
    pg(&mut c3, "INSERT INTO t VALUES (3)").await.unwrap();
    pg_login(
        server.port,
        s(&two["username"]),
        s(&two["password"]),
        "shop",
    )
    .await
    .expect("both valid");
    assert_eq!(unbind(&b, "g1", "b2", "rot").await.status, StatusCode::OK);
    assert!(
        pg_login(
            server.port,
            s(&two["username"]),
            s(&two["password"]),
            "shop"
        )
        .await
        .is_err()
    );
    pg(&mut c3, "SELECT * FROM t").await.unwrap();
}

// === Redis ===

async fn redis_login(
    port: u16,
    user: &str,
    password: &str,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    chartbroker::dbusers::redis::connect(
        "127.0.0.1",
        port,
        user,
        password,
        std::time::Duration::from_secs(5),
    )
    .await
}

async fn redis_set(con: &mut redis::aio::MultiplexedConnection, k: &str) -> redis::RedisResult<()> {
    redis::cmd("SET").arg(k).arg("v").query_async(con).await
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_each_binding_its_own_acl_user_revoked_on_unbind_and_rotated() {
    let server = databases::redis();
    let b = broker("redis", server.port).await;
    provision(&b, "r1", "rot").await;
    let root = rendered_secret(&b, "r1", "password");
    let mut admin = redis_login(server.port, "default", &server.admin_password)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(&root)
        .query_async(&mut admin)
        .await
        .unwrap();

    let one = bound(&b, "r1", "b1", "rot", json!({})).await;
    let two = bound(&b, "r1", "b2", "rot", json!({})).await;
    assert_ne!(one["username"], two["username"]);
    let mut c1 = redis_login(server.port, s(&one["username"]), s(&one["password"]))
        .await
        .unwrap();
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
    let mut c2 = redis_login(server.port, s(&two["username"]), s(&two["password"]))
        .await
        .unwrap();

    assert_eq!(unbind(&b, "r1", "b1", "rot").await.status, StatusCode::OK);
    assert!(
        redis_login(server.port, s(&one["username"]), s(&one["password"]))
            .await
            .is_err()
    );
    assert!(
        redis_set(&mut c1, "k2").await.is_err(),
        "its connection was closed"
    );
    redis_set(&mut c2, "k3")
        .await
        .expect("the other binding is untouched");

    let three = bound(
        &b,
        "r1",
        "b3",
        "rot",
        json!({"predecessor_binding_id": "b2"}),
    )
    .await;
    let mut c3 = redis_login(server.port, s(&three["username"]), s(&three["password"]))
        .await
        .unwrap();
    redis_set(&mut c3, "k4").await.unwrap();
    redis_login(server.port, s(&two["username"]), s(&two["password"]))
        .await
        .expect("both valid");
    assert_eq!(unbind(&b, "r1", "b2", "rot").await.status, StatusCode::OK);
    assert!(
        redis_login(server.port, s(&two["username"]), s(&two["password"]))
            .await
            .is_err()
    );
    redis_set(&mut c3, "k5").await.unwrap();
}

/// The outage rules hold for every engine: with the server stopped a bind
/// creates nothing (its unbind answers 410) and an unbind of a real user
/// fails naming it; once the server is back the retry drops it.
async fn outage(b: &TestBroker, server: &mut Server, instance: &str) -> Value {
    let creds = bound(b, instance, "b1", "rot", json!({})).await;
    server.stop();
    let r = bind(b, instance, "b2", "rot", json!({})).await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    assert!(
        s(&r.json["description"]).contains("no user was created"),
        "{}",
        r.text
    );
    assert_eq!(
        unbind(b, instance, "b2", "rot").await.status,
        StatusCode::GONE
    );
    let r = unbind(b, instance, "b1", "rot").await;
    common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = s(&r.json["description"]);
    assert!(
        d.contains(s(&creds["username"])) && d.contains("is still there"),
        "{d}"
    );
    server.start();
    let r = unbind(b, instance, "b1", "rot").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    creds
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_and_redis_outages_leave_nothing_and_unbind_once_back() {
    let mut server = databases::postgresql();
    let b = broker("postgresql", server.port).await;
    provision(&b, "g1", "rot").await;
    let root = rendered_secret(&b, "g1", "postgres-password");
    let mut admin = pg_login(server.port, "postgres", &server.admin_password, "postgres")
        .await
        .unwrap();
    pg(&mut admin, "CREATE DATABASE shop").await.unwrap();
    pg(
        &mut admin,
        &format!("ALTER ROLE postgres PASSWORD '{root}'"),
    )
    .await
    .unwrap();
    drop(admin);
    let creds = outage(&b, &mut server, "g1").await;
    assert!(
        pg_login(
            server.port,
            s(&creds["username"]),
            s(&creds["password"]),
            "shop"
        )
        .await
        .is_err(),
        "the role is gone"
    );

    let mut server = databases::redis();
    let b = broker("redis", server.port).await;
    provision(&b, "r1", "rot").await;
    let root = rendered_secret(&b, "r1", "password");
    let mut admin = redis_login(server.port, "default", &server.admin_password)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(&root)
        .query_async(&mut admin)
        .await
        .unwrap();
    // Kept across the restart, with the ACL users the broker writes.
    let _: () = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    drop(admin);
    let creds = outage(&b, &mut server, "r1").await;
    assert!(
        redis_login(server.port, s(&creds["username"]), s(&creds["password"]))
            .await
            .is_err(),
        "the ACL user is gone"
    );
}
