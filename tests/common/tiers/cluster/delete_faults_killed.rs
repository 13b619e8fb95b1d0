//! Helpers of the tests in tests/cluster/delete_faults_killed.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;
use common::upstream as support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cluster::{BrokerIdentity, Cluster};
use common::cluster_calls::*;
use common::process::*;
use common::*;
use serde_json::{Value, json};

pub async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    http(method, url, body).await.unwrap()
}

/// Polls a `last_operation` URL until it leaves `in progress` (or a minute
/// passed, the lease being 2 s); returns the last body.
pub async fn poll(url: &str) -> Value {
    common::process::poll_last_operation(url, 600, Duration::from_millis(100)).await
}

/// The platform's delete of `target` (an instance or a binding) is
/// accepted; the broker is SIGKILLed once it polls the upstream's
/// asynchronous delete, and restarted on the same state (`setup`: catalog,
/// charts, data): the platform's poll sees `succeeded`, the upstream got
/// the DELETE once and no longer has `target`, and a repeat answers 410.
/// Returns the restarted broker.
pub async fn kill_mid_upstream_delete(
    cloud: &support::Cloud,
    mut first: Served,
    (catalog, charts, data): (&Path, &Path, &Path),
    target: &str,
    op: &str,
    query: &str,
) -> Served {
    use support::{MYSQL_PREMIUM, MYSQL_SERVICE};
    let lo = format!("{target}/last_operation");
    let polls_before = cloud.received("GET", &lo).len();
    cloud
        .wait_for("a poll of the upstream's delete", |rs| {
            rs.iter().filter(|r| r["path"] == lo.as_str()).count() > polls_before
        })
        .await;
    first.kill_9();

    let second = serve(catalog, charts, data, &helm_bin(), &[]).await;
    let last = poll(&format!("{}{lo}?operation={op}", second.url)).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        cloud.received("DELETE", target).len(),
        1,
        "the delete was sent once"
    );
    let q = format!("{target}?service_id={MYSQL_SERVICE}&plan_id={MYSQL_PREMIUM}");
    let (status, _) = cloud.direct(reqwest::Method::GET, &q, None).await;
    assert!(
        status == 404 || status == 410,
        "the upstream still has it ({status})"
    );
    let repeat = format!("{}{target}?{query}", second.url);
    let (s, r) = osb(reqwest::Method::DELETE, repeat, None).await;
    assert_eq!(s, 410, "{r}");
    second
}

/// An upstream broker answering asynchronously (10 polls) and the
/// broker process in front of it, on state of their own.
pub struct UpstreamBed {
    pub cloud: support::Cloud,
    pub _dir: tempfile::TempDir,
    pub catalog: std::path::PathBuf,
    pub charts: std::path::PathBuf,
    pub data: std::path::PathBuf,
}

impl UpstreamBed {
    /// The bed and its first broker.
    pub async fn start() -> (UpstreamBed, Served) {
        use support::{CatalogOpts, Cloud, write_catalog};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cloud = Cloud::start("async", 10, &[]);
        let dir = tempfile::tempdir().unwrap();
        let catalog = write_catalog(dir.path(), &CatalogOpts::new(&cloud.url));
        let data = dir.path().join("state");
        let charts = fixtures().join("charts");
        let first = serve(&catalog, &charts, &data, &helm_bin(), &[]).await;
        let bed = UpstreamBed {
            cloud,
            _dir: dir,
            catalog,
            charts,
            data,
        };
        (bed, first)
    }

    /// What a restarted broker is served from: catalog, charts, data.
    pub fn setup(&self) -> (&Path, &Path, &Path) {
        (&self.catalog, &self.charts, &self.data)
    }
}

/// Provisions `path` on an upstream plan and binds `ub1` to it, each
/// followed to its end; returns the binding's path.
pub async fn provision_and_bind(url: &str, path: &str) -> String {
    let body = support::provision_body("svc-db", "plan-premium", json!({}));
    let put = format!("{url}{path}?accepts_incomplete=true");
    let done = ran(reqwest::Method::PUT, &put, Some(body)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let bpath = format!("{path}/service_bindings/ub1");
    let bind = json!({"service_id": "svc-db", "plan_id": "plan-premium"});
    let (s, r) = osb(
        reqwest::Method::PUT,
        format!("{url}{bpath}?accepts_incomplete=true"),
        Some(bind),
    )
    .await;
    if s == 202 {
        let op = r["operation"].as_str().unwrap().to_string();
        let done = poll(&format!("{url}{bpath}/last_operation?operation={op}")).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    } else {
        assert_eq!(s, 201, "{r}");
    }
    bpath
}

/// Stands between the broker and MariaDB: forwards connections, except
/// while held, when it keeps them open without a byte (the broker waits
/// inside its statement) and counts them.
pub struct HoldingProxy {
    pub port: u16,
    pub held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HoldingProxy {
    pub async fn start(to: u16) -> HoldingProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (h, s) = (held.clone(), seen.clone());
        tokio::spawn(async move {
            let mut parked = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if h.load(Ordering::SeqCst) {
                    parked.push(inbound);
                    s.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                });
            }
        });
        HoldingProxy { port, held, seen }
    }

    pub fn hold(&self, on: bool) {
        self.held.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn held_connections(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub const ROOT: &str = "killed-root-pw";

/// MariaDB with the admin password of [`ROOT`] and the database `app`.
pub async fn mariadb() -> common::databases::Server {
    common::databases::mariadb_with_app(ROOT).await
}

pub async fn mysql_user_exists(port: u16, user: &str) -> bool {
    common::mariadb_admin::mariadb_user_exists(port, ROOT, user).await
}

/// The cluster catalog plus a plan of the tiny chart whose bindings are
/// users in a database outside the release, reached through `port`.
pub fn catalog_with_users(dir: &Path, port: u16) -> std::path::PathBuf {
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    common::deletes::copy_dir(&fixtures().join("catalog-cluster"), &catalog);
    let yaml = format!(
        r#"services:
  - id: svc-users
    name: users
    description: the tiny chart with a database user per binding
    bindable: true
    plans:
      - id: plan-users
        name: users
        description: a user per binding in an outside MariaDB
        chart:
          path: tiny
          namespace: context
          values: {{message: m, password: p}}
          binding_users:
            engine: mysql
            admin: {{host: 127.0.0.1, port: {port}, password: {ROOT}}}
            database: app
            connect_timeout_seconds: 30
            in_release: false
          credentials: {{username: "{{{{user.username}}}}", password: "{{{{user.password}}}}"}}
"#
    );
    std::fs::write(catalog.join("users.yaml"), yaml).unwrap();
    catalog
}

/// [`spawn`] with another catalog directory.
pub fn spawn_with(id: &BrokerIdentity, data: &Path, catalog: &Path, key: &str, port: u16) -> Proc {
    std::fs::create_dir_all(data).unwrap();
    let base = id.replica(broker_bin(), data, &helm_bin(), key, port, 2);
    let mut cmd = std::process::Command::new(base.get_program());
    let mut args = base.get_args();
    while let Some(a) = args.next() {
        cmd.arg(a);
        if a == "--catalog" {
            args.next();
            cmd.arg(catalog);
        }
    }
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let log: Stdio = std::fs::File::create(data.with_extension("log"))
        .unwrap()
        .into();
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("chartbroker starts"),
    )
}

/// What a cell of the helm unbind test shares: the database, the proxy in
/// front of it, the cluster, the replicas' setup and the survivor B.
pub struct UnbindBed {
    pub db: common::databases::Server,
    pub proxy: HoldingProxy,
    pub k: Cluster,
    pub id: BrokerIdentity,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub catalog: std::path::PathBuf,
    pub key: String,
    pub b_url: String,
}

pub const USERS_QUERY: &str = "service_id=svc-users&plan_id=plan-users";

impl UnbindBed {
    /// One cell: a fresh replica A binds `bid`, is killed inside its
    /// unbind, and B finishes it.
    pub async fn killed_unbind(&self, bid: &str, accepts_incomplete: bool) {
        let (db, proxy, k, b_url) = (&self.db, &self.proxy, &self.k, &self.b_url);
        let pa = free_port();
        let data = self.dir.path().join(format!("a-{bid}"));
        let mut a = spawn_with(&self.id, &data, &self.catalog, &self.key, pa);
        ready(pa).await;
        let a_url = format!("http://127.0.0.1:{pa}/v2/service_instances/u1");
        let bind = json!({"service_id": "svc-users", "plan_id": "plan-users"});
        let url = format!("{a_url}/service_bindings/{bid}");
        let (s, r) = call(reqwest::Method::PUT, url, Some(bind)).await;
        assert_eq!(s, 201, "{bid}: {r}");
        let user = r["credentials"]["username"].as_str().unwrap().to_string();
        assert!(mysql_user_exists(db.port, &user).await);
        let secret = format!("/api/v1/namespaces/{}/secrets/cb-bind-{bid}", self.ns);
        assert!(k.get(&secret).await.is_some());

        proxy.hold(true);
        let before = proxy.held_connections();
        let query = if accepts_incomplete {
            format!("{USERS_QUERY}&accepts_incomplete=true")
        } else {
            USERS_QUERY.to_string()
        };
        let unbind = format!("{a_url}/service_bindings/{bid}?{query}");
        let request = tokio::spawn(http(reqwest::Method::DELETE, unbind, None));
        for _ in 0..400 {
            if proxy.held_connections() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            proxy.held_connections() > before,
            "{bid}: A is inside the unbind"
        );
        assert!(
            mysql_user_exists(db.port, &user).await,
            "{bid}: killed before the user was dropped"
        );
        a.0.kill().unwrap(); // SIGKILL, mid-delete
        a.0.wait().unwrap();
        proxy.hold(false);
        let answer = request.await.unwrap();

        let b_unbind = format!("{b_url}/service_bindings/{bid}?{query}");
        if accepts_incomplete {
            let Some((202, r)) = answer else {
                panic!("{bid}: not accepted: {answer:?}")
            };
            let op = r["operation"].as_str().unwrap();
            let url = format!("{b_url}/service_bindings/{bid}/last_operation?operation={op}");
            assert_eq!(poll(&url).await["state"], "succeeded", "{bid}");
        } else {
            // The request died with A: the platform retries on B until B,
            // having taken the operation over, has finished it.
            assert!(
                answer.is_none(),
                "{bid}: a killed broker answered {answer:?}"
            );
            let mut last = (0, Value::Null);
            for _ in 0..600 {
                last = call(reqwest::Method::DELETE, b_unbind.clone(), None).await;
                if last.0 == 410 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(last.0, 410, "{bid}: {}", last.1);
        }
        let (s, r) = call(reqwest::Method::DELETE, b_unbind, None).await;
        assert_eq!(s, 410, "{bid}: {r}");
        assert!(
            k.get(&secret).await.is_none(),
            "{bid}: the binding Secret is left"
        );
        assert!(
            !mysql_user_exists(db.port, &user).await,
            "{bid}: the user is left"
        );
    }
}
