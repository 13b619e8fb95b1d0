//! Helpers of the tests in tests/adapters/dbusers/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};
use sqlx::Connection;

use chartbroker::dbusers::{DbError, Servers, Target, User, UserAdmin};
use common::databases::{self, Server};
pub use common::example_catalog::{WORDPRESS, WORDPRESS_STANDARD};
use common::{Resp, TestBroker, config, repo};

pub const SERVICE: &str = "svc-db";

/// A catalog with one service on the repository's real chart for `engine`
/// and plans: `rot` (rotatable), `norot`, `down` (a closed port),
/// `down-shared` (a closed port, falls back to the shared user) and `inrel`
/// (`in_release: true`: the database goes away with the release).
pub fn write_catalog(dir: &std::path::Path, engine: &str, port: u16) {
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
{chart}          credentials: {creds}
"#,
            chart = databases::binding_users_chart(
                (chart, values),
                (engine, port, &format!("{{{{secrets.{admin_secret}}}}}")),
                (
                    database,
                    &format!(
                        "            shared: {shared}\n            fallback_to_shared: {fallback}\n"
                    ),
                ),
                in_release,
            ),
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

pub async fn broker_with(engine: &str, port: u16, users: Arc<dyn UserAdmin>) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = repo().join("charts");
    write_catalog(&cfg.catalog_dir, engine, port);
    TestBroker::with_users(data, &cfg, users).await
}

pub async fn broker(engine: &str, port: u16) -> TestBroker {
    broker_with(engine, port, Arc::new(Servers)).await
}

pub async fn provision(b: &TestBroker, instance: &str, plan: &str) {
    let r = b
        .put(
            &format!("/v2/service_instances/{instance}"),
            json!({
                "service_id": SERVICE, "plan_id": plan,
                "organization_guid": "org", "space_guid": "space",
                "context": {"platform": "kubernetes", "namespace": "apps"},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

pub async fn bind(b: &TestBroker, instance: &str, binding: &str, plan: &str, extra: Value) -> Resp {
    let mut body =
        json!({"service_id": SERVICE, "plan_id": plan, "bind_resource": {"app_guid": "app-1"}});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b.put(
        &format!("/v2/service_instances/{instance}/service_bindings/{binding}"),
        body,
    )
    .await
}

pub async fn bound(
    b: &TestBroker,
    instance: &str,
    binding: &str,
    plan: &str,
    extra: Value,
) -> Value {
    let r = bind(b, instance, binding, plan, extra).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["credentials"].clone()
}

/// A binding rotated from `predecessor`: its credentials.
/// A rotating bind (`binding` of `instance` on `plan`, succeeding
/// `predecessor`) that must be refused with 400: the answer.
pub async fn rotation_refused(
    b: &TestBroker,
    (instance, binding, plan): (&str, &str, &str),
    predecessor: &str,
) -> Resp {
    let extra = json!({"predecessor_binding_id": predecessor});
    let r = bind(b, instance, binding, plan, extra).await;
    common::assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    r
}

pub async fn rotate(
    b: &TestBroker,
    instance: &str,
    binding: &str,
    plan: &str,
    predecessor: &str,
) -> Value {
    bound(
        b,
        instance,
        binding,
        plan,
        json!({"predecessor_binding_id": predecessor}),
    )
    .await
}

pub async fn unbind(b: &TestBroker, instance: &str, binding: &str, plan: &str) -> Resp {
    b.del(&format!("/v2/service_instances/{instance}/service_bindings/{binding}?service_id={SERVICE}&plan_id={plan}"))
    .await
}

/// The admin password the broker generated for the instance, read from the
/// Secret the chart rendered (what the database container would get).
pub fn rendered_secret(b: &TestBroker, instance: &str, key: &str) -> String {
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

pub fn binding_secret_text(b: &TestBroker, instance: &str, binding: &str) -> String {
    let dir = b
        .data
        .path()
        .join(format!("render/apps/cb-{instance}/bindings"));
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        // By its binding-id annotation: a bare `contains(binding)` also
        // matched another binding whose generated password held "b1".
        .find(|t| {
            let doc: Value = serde_saphyr::from_str(t).unwrap();
            doc["metadata"]["annotations"]["chartbroker.io/binding-id"] == binding
        })
        .unwrap_or_else(|| panic!("no binding Secret for {binding} in {}", dir.display()))
}

// === MariaDB ===

pub async fn mysql_login(
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

/// [`mysql_login`] with a binding's credentials.
pub async fn mysql_as(
    port: u16,
    creds: &Value,
    db: &str,
) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    mysql_login(port, s(&creds["username"]), s(&creds["password"]), db).await
}

pub async fn sql(con: &mut sqlx::MySqlConnection, q: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut *con, q).await.map(|_| ())
}

/// What the chart's container would do with the generated secret: set the
/// root password and create the instance's database (plus a neighbour whose
/// name `a_b` would match as a GRANT wildcard).
/// MariaDB set up as the mysql chart of instance `id` (plan `rot`) would
/// be, under a broker over it: the server, the broker and the root
/// password the chart was given.
pub async fn mariadb_instance(id: &str) -> (Server, TestBroker, String) {
    let server = databases::mariadb();
    let b = broker("mysql", server.port).await;
    provision(&b, id, "rot").await;
    let root = rendered_secret(&b, id, "root-password");
    mariadb_as_chart(&server, &root).await;
    (server, b, root)
}

pub async fn mariadb_as_chart(server: &Server, root_password: &str) {
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

pub async fn mysql_users(server: &Server, root_password: &str) -> Vec<String> {
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

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

pub async fn deprovision(b: &TestBroker, instance: &str, plan: &str) -> Resp {
    b.del(&format!(
        "/v2/service_instances/{instance}?service_id={SERVICE}&plan_id={plan}"
    ))
    .await
}

pub fn no_binding_secrets(b: &TestBroker, instance: &str) -> bool {
    let dir = b
        .data
        .path()
        .join(format!("render/apps/cb-{instance}/bindings"));
    std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none())
}

/// Creates the user, then dies like a killed process: the operation task
/// ends without recording anything.
pub struct CrashAfterCreate {
    pub armed: AtomicBool,
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

// === PostgreSQL ===

pub async fn pg_login(
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

/// [`pg_login`] with a binding's credentials.
pub async fn pg_as(port: u16, creds: &Value, db: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    pg_login(port, s(&creds["username"]), s(&creds["password"]), db).await
}

/// PostgreSQL as the chart leaves it: databases `dbs`, and the instance's
/// generated `postgres-password` as the admin's password.
pub async fn postgres_as_chart(b: &TestBroker, server: &Server, instance: &str, dbs: &[&str]) {
    let root = rendered_secret(b, instance, "postgres-password");
    let mut admin = pg_login(server.port, "postgres", &server.admin_password, "postgres")
        .await
        .unwrap();
    for db in dbs {
        pg(&mut admin, &format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }
    pg(
        &mut admin,
        &format!("ALTER ROLE postgres PASSWORD '{root}'"),
    )
    .await
    .unwrap();
}

pub async fn pg(con: &mut sqlx::PgConnection, q: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut *con, q).await.map(|_| ())
}

// === Redis ===

pub async fn redis_login(
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

/// [`redis_login`] with a binding's credentials.
pub async fn redis_as(
    port: u16,
    creds: &Value,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis_login(port, s(&creds["username"]), s(&creds["password"])).await
}

/// Redis as the chart leaves it: the instance's generated `password` as
/// `requirepass`; the admin connection.
pub async fn redis_as_chart(
    b: &TestBroker,
    server: &Server,
    instance: &str,
) -> redis::aio::MultiplexedConnection {
    let root = rendered_secret(b, instance, "password");
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
    admin
}

pub async fn redis_set(
    con: &mut redis::aio::MultiplexedConnection,
    k: &str,
) -> redis::RedisResult<()> {
    redis::cmd("SET").arg(k).arg("v").query_async(con).await
}

/// The outage rules hold for every engine: with the server stopped a bind
/// creates nothing (its unbind answers 410) and an unbind of a real user
/// fails naming it; once the server is back the retry drops it.
pub async fn outage(b: &TestBroker, server: &mut Server, instance: &str) -> Value {
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
