use super::*;

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
    databases::mariadb_with_app(ROOT).await
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
    let b = TestBroker::with_users(data, &cfg, users).await;
    let r = instance_and_binding(&b, "mysql").await;
    let user = r.json["credentials"]["username"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user_exists(server, &user).await);
    Bed { b, cfg, user }
}

/// Instance `i1` and its binding `b1`, each answered 201: the bind's answer.
pub async fn instance_and_binding(b: &TestBroker, engine: &str) -> common::Resp {
    let r = b
        .put(
            "/v2/service_instances/i1",
            json!({
                "service_id": SERVICE, "plan_id": PLAN,
                "context": {"platform": "kubernetes", "namespace": "apps"},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{engine}: {}", r.text);
    let r = b
        .put(
            "/v2/service_instances/i1/service_bindings/b1",
            json!({"service_id": SERVICE, "plan_id": PLAN}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{engine}: {}", r.text);
    r
}

impl Bed {
    /// Deletes `how`, which must succeed, leaving nothing: no release
    /// folder, Secret or record, and no database user on `server`.
    pub async fn deletes_leaving_nothing(&self, how: Delete, cell: &str, server: &Server) {
        self.delete(how).await.assert_succeeded(cell);
        self.assert_nothing_left(how, cell).await;
        assert!(
            !user_exists(server, &self.user).await,
            "{cell}: the user is left"
        );
    }

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
/// One row of the matrix, `case` naming it in every cell's messages.
pub async fn row(case: &str, fault: Fault, check: &impl AsyncCheck) {
    let mut server = database().await;
    for how in Delete::ALL {
        let cell = format!("{case}: {fault:?} × {how:?}");
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
