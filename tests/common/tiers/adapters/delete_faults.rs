//! Helpers of the tests in tests/adapters/delete_faults.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use chartbroker::dbusers::{DbError, Servers, Target, User, UserAdmin};
use chartbroker::runtime::ServeConfig;
use common::databases::{self, Server};
use common::deletes::{Delete, Seen};
use common::{TestBroker, config, repo};

pub const SERVICE: &str = "svc-del";
pub const PLAN: &str = "plan-users";
pub const ROOT: &str = "matrix-root-pw";

/// A fault of the matrix's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The database server is stopped.
    DatabaseDown,
    /// The release folder was removed behind the broker's back.
    ReleaseGone,
    /// The chart was removed from the charts directory.
    ChartRemoved,
    /// The plan was removed from the catalog, which was reloaded.
    PlanRemoved,
    /// The broker dies mid-delete (the operation's task ends unrecorded),
    /// and a new one starts on the same data.
    Killed,
}

/// Dies like a killed broker in the middle of the first drop of a user,
/// once armed: the operation task ends without recording anything.
pub struct DiesMidDelete {
    pub armed: AtomicBool,
}

#[async_trait]
impl UserAdmin for DiesMidDelete {
    async fn create(&self, target: &Target, user: &User) -> Result<(), DbError> {
        Servers.create(target, user).await
    }

    async fn drop_user(&self, target: &Target, username: &str) -> Result<(), DbError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("failpoint: the broker dies while deleting");
        }
        Servers.drop_user(target, username).await
    }
}

/// One cell's world: a MariaDB, a broker over a catalog and charts of its
/// own (so a cell may remove either), one instance with one bound binding.
pub struct Bed {
    pub b: TestBroker,
    pub cfg: ServeConfig,
    pub user: String,
}

pub fn write_catalog(dir: &Path, port: u16, with_plan: bool) {
    let plan = format!(
        r#"
      - id: {PLAN}
        name: users
        description: mysql with a user per binding
        bindable: true
        chart:
          path: mysql
          namespace: context
          values:
            auth: {{rootPassword: "{{{{secrets.root_password}}}}", username: app, password: "{{{{secrets.user_password}}}}", database: app}}
          secrets:
            root_password: {{length: 24, alphabet: alphanumeric}}
            user_password: {{length: 24, alphabet: alphanumeric}}
          binding_users:
            engine: mysql
            admin: {{host: 127.0.0.1, port: {port}, password: {ROOT}}}
            database: app
            connect_timeout_seconds: 2
            in_release: true
          credentials:
            host: "{{{{instance.release}}}}.{{{{instance.namespace}}}}.svc.cluster.local"
            username: "{{{{user.username}}}}"
            password: "{{{{user.password}}}}"
"#
    );
    // A service keeps one plan when its own is removed.
    let other = r#"
      - id: plan-other
        name: other
        description: stays in the catalog
        chart: {path: mysql, namespace: context, credentials: {x: y}}
"#;
    let yaml = format!(
        "services:\n  - id: {SERVICE}\n    name: del\n    description: d\n    bindable: true\n    plans:{}{other}",
        if with_plan { plan.as_str() } else { "" }
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("del.yaml"), yaml).unwrap();
}

pub async fn admin(server: &Server) -> sqlx::MySqlConnection {
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(server.port)
        .username("root")
        .password(ROOT);
    sqlx::MySqlConnection::connect_with(&opts).await.unwrap()
}

/// MariaDB with the catalog's admin password and database.
pub async fn database() -> Server {
    let server = databases::mariadb();
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(server.port)
        .username("root");
    let mut con = sqlx::MySqlConnection::connect_with(&opts).await.unwrap();
    for q in [
        "CREATE DATABASE app".to_string(),
        format!("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT}'"),
    ] {
        sqlx::Executor::execute(&mut con, q.as_str()).await.unwrap();
    }
    server
}

pub async fn user_exists(server: &Server, user: &str) -> bool {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT CAST(User AS CHAR) FROM mysql.user WHERE User = ?")
            .bind(user)
            .fetch_all(&mut admin(server).await)
            .await
            .unwrap();
    !rows.is_empty()
}

pub async fn bed(server: &Server, users: Arc<dyn UserAdmin>) -> Bed {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = data.path().join("chart-source");
    write_catalog(&cfg.catalog_dir, server.port, true);
    common::deletes::copy_dir(&repo().join("charts/mysql"), &cfg.charts_dir.join("mysql"));
    let runtime = chartbroker::runtime::Runtime::start_with(&cfg, users)
        .await
        .expect("broker starts");
    let b = TestBroker {
        app: runtime.app(),
        runtime,
        data,
    };
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/i1",
            Some(json!({
                "service_id": SERVICE, "plan_id": PLAN,
                "context": {"platform": "kubernetes", "namespace": "apps"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/i1/service_bindings/b1",
            Some(json!({"service_id": SERVICE, "plan_id": PLAN})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let user = r.json["credentials"]["username"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user_exists(server, &user).await);
    Bed { b, cfg, user }
}

impl Bed {
    pub fn release_dir(&self) -> PathBuf {
        self.b.release_dir("i1")
    }

    pub fn secret_files(&self) -> usize {
        std::fs::read_dir(self.release_dir().join("bindings")).map_or(0, |d| d.count())
    }

    pub async fn delete(&self, how: Delete) -> Seen {
        self.b.delete(how, (SERVICE, PLAN), "i1", "b1").await
    }

    /// What the broker still answers about the binding and instance.
    pub async fn status(&self, path: &str) -> StatusCode {
        self.b.call(Method::GET, path, None).await.status
    }

    /// Nothing of what `how` deleted is left: no binding Secret, no
    /// binding (a repeat answers 410), and for a deprovision no release.
    pub async fn assert_nothing_left(&self, how: Delete, cell: &str) {
        assert_eq!(self.secret_files(), 0, "{cell}: a binding Secret is left");
        let again = self.delete(how).await;
        assert_eq!(
            again.answer.status,
            StatusCode::GONE,
            "{cell}: {}",
            again.answer.text
        );
        let binding = self
            .status("/v2/service_instances/i1/service_bindings/b1")
            .await;
        assert_eq!(
            binding,
            StatusCode::NOT_FOUND,
            "{cell}: the binding is gone"
        );
        if !how.unbinds() {
            assert!(
                !self.release_dir().exists(),
                "{cell}: the release folder is left"
            );
        }
    }
}

/// Arranges `fault` on a fresh bed.
pub async fn arrange(fault: Fault, server: &mut Server, bed: &mut Bed) {
    match fault {
        Fault::DatabaseDown => server.stop(),
        Fault::ReleaseGone => std::fs::remove_dir_all(bed.release_dir()).unwrap(),
        Fault::ChartRemoved => std::fs::remove_dir_all(bed.cfg.charts_dir.join("mysql")).unwrap(),
        Fault::PlanRemoved => {
            write_catalog(&bed.cfg.catalog_dir, server.port, false);
            assert!(
                bed.b
                    .runtime
                    .reloader(None)
                    .reload(chartbroker::reload::What::Catalog)
                    .await
            );
            let cat = bed.b.call(Method::GET, "/v2/catalog", None).await;
            assert!(!cat.text.contains(PLAN), "{}", cat.text);
        }
        Fault::Killed => {}
    }
}

/// One row of the matrix: `fault` on each delete path, on a fresh bed.
pub async fn row(fault: Fault, check: impl AsyncCheck) {
    let mut server = database().await;
    for how in Delete::ALL {
        let cell = format!("{fault:?} × {how:?}");
        let users: Arc<dyn UserAdmin> = Arc::new(DiesMidDelete {
            armed: AtomicBool::new(fault == Fault::Killed),
        });
        let mut bed = bed(&server, users).await;
        arrange(fault, &mut server, &mut bed).await;
        check.run(&cell, how, &mut server, bed).await;
        if fault == Fault::DatabaseDown && !server_up(&server) {
            server.start();
        }
    }
}

pub fn server_up(server: &Server) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok()
}

/// A cell's expectations, run on its arranged bed.
#[async_trait]
pub trait AsyncCheck {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed);
}

/// The delete succeeds at once and the user is gone (the database is up).
pub struct Succeeds;

#[async_trait]
impl AsyncCheck for Succeeds {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        bed.delete(how).await.assert_succeeded(cell);
        bed.assert_nothing_left(how, cell).await;
        assert!(
            !user_exists(server, &bed.user).await,
            "{cell}: the user is left"
        );
    }
}

/// Database down: a deprovision succeeds (the database goes with the
/// release) and says why no user was dropped; an unbind fails, naming the
/// user still there, until the database is back.
pub struct DownChecks;

#[async_trait]
impl AsyncCheck for DownChecks {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        let seen = bed.delete(how).await;
        if !how.unbinds() {
            let d = seen.assert_succeeded(cell);
            let lo = bed
                .b
                .call(Method::GET, "/v2/service_instances/i1/last_operation", None)
                .await;
            assert_eq!(lo.json["state"], "succeeded", "{cell}: {}", lo.text);
            let d = if d.is_empty() {
                lo.json["description"].as_str().unwrap().to_string()
            } else {
                d
            };
            assert!(
                d.contains("need no dropping") && d.contains("deleted with the release"),
                "{cell}: {d}"
            );
            bed.assert_nothing_left(how, cell).await;
            return;
        }
        let d = seen.assert_failed(cell);
        assert!(
            d.contains(&bed.user) && d.contains("is still there"),
            "{cell}: {d}"
        );
        assert!(d.contains("a retry finishes it"), "{cell}: {d}");
        assert!(!d.contains(ROOT), "{cell}: no admin password in {d}");
        server.start();
        bed.delete(how).await.assert_succeeded(cell);
        bed.assert_nothing_left(how, cell).await;
        assert!(
            !user_exists(server, &bed.user).await,
            "{cell}: the user is left"
        );
    }
}

/// Killed mid-delete: a synchronous request sees a 500 (its broker died),
/// an asynchronous one its 202. The restarted broker finishes the
/// operation: the platform's poll sees it succeed, its retry of a
/// synchronous delete sees 410 Gone (done, for a delete).
pub struct KilledChecks;

#[async_trait]
impl AsyncCheck for KilledChecks {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        // Not followed: the broker that accepted it dies.
        let answer = bed.b.send_delete(how, (SERVICE, PLAN), "i1", "b1").await;
        let op = if how.is_async() {
            assert_eq!(
                answer.status,
                StatusCode::ACCEPTED,
                "{cell}: {}",
                answer.text
            );
            answer.json["operation"].as_str().map(str::to_string)
        } else {
            Seen {
                answer,
                polled: None,
            }
            .assert_failed(cell);
            None
        };
        let Bed { b, cfg, user } = bed;
        let b = b.restart(&cfg).await;
        let bed = Bed { b, cfg, user };
        match op {
            Some(op) => {
                let polled = if how.unbinds() {
                    bed.b.wait_binding("i1", "b1", &op).await
                } else {
                    bed.b.wait_instance("i1", &op).await
                };
                common::assert_delete_done(&polled);
            }
            None => {
                let mut answer = bed.delete(how).await.answer;
                for _ in 0..200 {
                    if answer.status != StatusCode::UNPROCESSABLE_ENTITY {
                        break;
                    }
                    // ConcurrencyError while the resumed operation runs.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    answer = bed.delete(how).await.answer;
                }
                assert_eq!(answer.status, StatusCode::GONE, "{cell}: {}", answer.text);
            }
        }
        bed.assert_nothing_left(how, cell).await;
        assert!(
            !user_exists(server, &bed.user).await,
            "{cell}: the user is left"
        );
    }
}

/// The catalog of [`write_catalog`] on PostgreSQL or Redis: the chart's own
/// database with a user per binding, the test server as its admin endpoint.
pub fn write_engine_catalog(dir: &Path, engine: &str, server: &Server) {
    let (values, database) = match engine {
        "postgresql" => (
            r#"{auth: {postgresPassword: "{{secrets.root_password}}", username: app, password: "{{secrets.user_password}}", database: shop}}"#,
            "database: shop",
        ),
        _ => (r#"{auth: {password: "{{secrets.root_password}}"}}"#, ""),
    };
    let yaml = format!(
        r#"services:
  - id: {SERVICE}
    name: del
    description: d
    bindable: true
    plans:
      - id: {PLAN}
        name: users
        description: {engine} with a user per binding
        bindable: true
        chart:
          path: {engine}
          namespace: context
          values: {values}
          secrets:
            root_password: {{length: 24, alphabet: alphanumeric}}
            user_password: {{length: 24, alphabet: alphanumeric}}
          binding_users:
            engine: {engine}
            admin: {{host: 127.0.0.1, port: {port}, password: "{password}"}}
            {database}
            connect_timeout_seconds: 2
            in_release: true
          credentials: {{username: "{{{{user.username}}}}", password: "{{{{user.password}}}}"}}
"#,
        port = server.port,
        password = server.admin_password,
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("del.yaml"), yaml).unwrap();
}

/// Whether the binding's user can log in to `server` (so it exists).
pub async fn engine_login(engine: &str, server: &Server, user: &str, password: &str) -> bool {
    if engine == "postgresql" {
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(server.port)
            .username(user)
            .password(password)
            .database("shop");
        return sqlx::PgConnection::connect_with(&opts).await.is_ok();
    }
    let timeout = std::time::Duration::from_secs(5);
    chartbroker::dbusers::redis::connect("127.0.0.1", server.port, user, password, timeout)
        .await
        .is_ok()
}

/// A [`Bed`] on PostgreSQL or Redis: one instance, one binding whose user
/// was created (it logs in).
pub async fn engine_bed(engine: &str, server: &Server) -> Bed {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = repo().join("charts");
    write_engine_catalog(&cfg.catalog_dir, engine, server);
    let runtime = chartbroker::runtime::Runtime::start_with(&cfg, Arc::new(Servers))
        .await
        .expect("broker starts");
    let b = TestBroker {
        app: runtime.app(),
        runtime,
        data,
    };
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/i1",
            Some(json!({
                "service_id": SERVICE, "plan_id": PLAN,
                "context": {"platform": "kubernetes", "namespace": "apps"},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/i1/service_bindings/b1",
            Some(json!({"service_id": SERVICE, "plan_id": PLAN})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{engine}: {}", r.text);
    let creds = &r.json["credentials"];
    let user = creds["username"].as_str().unwrap().to_string();
    let password = creds["password"].as_str().unwrap();
    assert!(
        engine_login(engine, server, &user, password).await,
        "{engine}: the binding's user logs in"
    );
    Bed { b, cfg, user }
}
