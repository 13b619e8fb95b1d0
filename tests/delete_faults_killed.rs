//! The delete fault matrix's "broker killed mid-delete" cell on the helm
//! engine: two real broker processes (`--store kube`) on the real API
//! server; the one running a deprovision is SIGKILLed while `helm
//! uninstall` runs, and the survivor finishes it. The platform's poll sees
//! `succeeded`, and nothing of the instance is left: release records,
//! release objects, the binding Secret. The same for an upstream plan: the
//! broker killed while it polls the upstream's deprovision. The unbind
//! path likewise: a replica killed while its unbind drops the binding's
//! database user, and the broker killed while it polls the upstream's
//! unbind. (The render engine's cells are in tests/delete_faults.rs.)

mod common;
use common::upstream as support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cluster::{BrokerIdentity, Cluster, release_records};
use common::process::*;
use common::*;
use serde_json::{Value, json};

use chartbroker::store::seal::Sealer;

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    http(method, url, body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_uninstall_has_its_deprovision_finished() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let ns = k.namespace("apps").await;
    k.grant_target(&id, &ns);
    let dir = tempfile::tempdir().unwrap();
    let key = Sealer::generate_base64();
    // Replica A's helm says where it is, then hangs in uninstall.
    let (slow, pidfile) = helm_hanging_in(dir.path(), "uninstall");
    let (pa, pb) = (free_port(), free_port());
    let mut a = id.spawn_replica(&dir.path().join("a"), &slow, &key, pa);
    let _b = id.spawn_replica(&dir.path().join("b"), &helm_bin(), &key, pb);
    ready(pa).await;
    ready(pb).await;
    let (a_url, b_url) = (
        format!("http://127.0.0.1:{pa}/v2/service_instances/k1"),
        format!("http://127.0.0.1:{pb}/v2/service_instances/k1"),
    );

    let body = json!({
        "service_id": "svc-cluster", "plan_id": "plan-tiny",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": {"message": "m"},
    });
    let put = reqwest::Method::PUT;
    let (s, r) = call(
        put.clone(),
        format!("{a_url}?accepts_incomplete=true"),
        Some(body),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    assert_eq!(
        poll(&format!("{a_url}/last_operation?operation={op}")).await["state"],
        "succeeded"
    );
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-tiny"});
    let (s, r) = call(put, format!("{a_url}/service_bindings/b1"), Some(bind)).await;
    assert_eq!(s, 201, "{r}");
    let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-b1");
    assert!(k.get(&secret).await.is_some());

    let query = "service_id=svc-cluster&plan_id=plan-tiny&accepts_incomplete=true";
    let (s, r) = call(reqwest::Method::DELETE, format!("{a_url}?{query}"), None).await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let mut helm_pid = None;
    for _ in 0..400 {
        helm_pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if helm_pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let helm_pid = helm_pid.expect("A is inside helm uninstall");
    a.0.kill().unwrap(); // SIGKILL, mid-delete
    a.0.wait().unwrap();

    // The platform keeps polling (any replica answers): the survivor takes
    // the operation over and finishes it.
    let last = poll(&format!("{b_url}/last_operation?operation={op}")).await;
    if last["state"] != "succeeded" {
        let log = |r: &str| std::fs::read_to_string(dir.path().join(r).with_extension("log"));
        panic!(
            "not finished: {last}\n--- A ---\n{:?}\n--- B ---\n{:?}",
            log("a"),
            log("b")
        );
    }
    assert!(
        release_records(&k, &ns, "cb-k1").await.is_empty(),
        "release records left"
    );
    let cm = format!("/api/v1/namespaces/{ns}/configmaps/cb-k1");
    assert!(
        k.get(&cm).await.is_none(),
        "the release's ConfigMap is left"
    );
    assert!(k.get(&secret).await.is_none(), "the binding Secret is left");
    let (s, r) = call(reqwest::Method::DELETE, format!("{b_url}?{query}"), None).await;
    assert_eq!(s, 410, "{r}");
    // A's helm child must not outlive it (it would act later, behind B's back).
    let alive = std::fs::read_to_string(format!("/proc/{helm_pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    });
    assert!(!alive, "A's helm uninstall outlived A");
}

/// Polls a `last_operation` URL until it leaves `in progress` (or a minute
/// passed, the lease being 2 s); returns the last body.
async fn poll(url: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, body) = call(reqwest::Method::GET, url.to_string(), None).await;
        assert_eq!(status, 200, "{body}");
        last = body;
        if last["state"] != "in progress" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The upstream cell: the broker is SIGKILLed while it polls the upstream
/// broker's asynchronous deprovision; the restarted broker resumes polling
/// from its checkpoint (never sending the delete twice), the platform's
/// poll sees `succeeded`, and the upstream no longer has the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_upstream_deprovision_resumes_it() {
    use support::{CatalogOpts, Cloud, provision_body, write_catalog};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cloud = Cloud::start("async", 10, &[]);
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path(), &CatalogOpts::new(&cloud.url));
    let data = dir.path().join("state");
    let charts = fixtures().join("charts");
    let first = serve(&catalog, &charts, &data, &helm_bin(), &[]).await;
    let path = "/v2/service_instances/up-1";
    let (s, r) = osb(
        reqwest::Method::PUT,
        format!("{}{path}?accepts_incomplete=true", first.url),
        Some(provision_body("svc-db", "plan-premium", json!({}))),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let done = poll(&format!(
        "{}{path}/last_operation?operation={op}",
        first.url
    ))
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");

    let query = "service_id=svc-db&plan_id=plan-premium&accepts_incomplete=true";
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{path}?{query}", first.url),
        None,
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    kill_mid_upstream_delete(&cloud, first, (&catalog, &charts, &data), path, &op, query).await;
}

/// The unbind cell on an upstream plan: the broker is SIGKILLed while it
/// polls the upstream's asynchronous unbind; the restarted broker resumes
/// polling (never sending the unbind twice), the platform's poll sees
/// `succeeded`, the upstream no longer has the binding, and a repeat
/// answers 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_upstream_unbind_resumes_it() {
    use support::{CatalogOpts, Cloud, write_catalog};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cloud = Cloud::start("async", 10, &[]);
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path(), &CatalogOpts::new(&cloud.url));
    let data = dir.path().join("state");
    let charts = fixtures().join("charts");
    let first = serve(&catalog, &charts, &data, &helm_bin(), &[]).await;
    let path = "/v2/service_instances/up-u";
    let bpath = provision_and_bind(&first.url, path).await;

    let query = "service_id=svc-db&plan_id=plan-premium&accepts_incomplete=true";
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{bpath}?{query}", first.url),
        None,
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let second = kill_mid_upstream_delete(
        &cloud,
        first,
        (&catalog, &charts, &data),
        &bpath,
        &op,
        query,
    )
    .await;
    let (s, r) = osb(reqwest::Method::GET, format!("{}{bpath}", second.url), None).await;
    assert_eq!(s, 404, "the binding is gone: {r}");
    // The instance itself stays, and still deprovisions.
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{path}?{query}", second.url),
        None,
    )
    .await;
    assert_eq!(s, 202, "{r}");
}

/// The platform's delete of `target` (an instance or a binding) is
/// accepted; the broker is SIGKILLed once it polls the upstream's
/// asynchronous delete, and restarted on the same state (`setup`: catalog,
/// charts, data): the platform's poll sees `succeeded`, the upstream got
/// the DELETE once and no longer has `target`, and a repeat answers 410.
/// Returns the restarted broker.
async fn kill_mid_upstream_delete(
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
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{target}?{query}", second.url),
        None,
    )
    .await;
    assert_eq!(s, 410, "{r}");
    second
}

/// Provisions `path` on an upstream plan and binds `ub1` to it, each
/// followed to its end; returns the binding's path.
async fn provision_and_bind(url: &str, path: &str) -> String {
    let (s, r) = osb(
        reqwest::Method::PUT,
        format!("{url}{path}?accepts_incomplete=true"),
        Some(support::provision_body("svc-db", "plan-premium", json!({}))),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let done = poll(&format!("{url}{path}/last_operation?operation={op}")).await;
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
struct HoldingProxy {
    port: u16,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HoldingProxy {
    async fn start(to: u16) -> HoldingProxy {
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

    fn hold(&self, on: bool) {
        self.held.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn held_connections(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const ROOT: &str = "killed-root-pw";

/// MariaDB with the admin password of [`ROOT`] and the database `app`.
async fn mariadb() -> common::databases::Server {
    use sqlx::Connection;
    let server = common::databases::mariadb();
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

async fn mysql_user_exists(port: u16, user: &str) -> bool {
    use sqlx::Connection;
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("root")
        .password(ROOT);
    let mut con = sqlx::MySqlConnection::connect_with(&opts).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT CAST(User AS CHAR) FROM mysql.user WHERE User = ?")
            .bind(user)
            .fetch_all(&mut con)
            .await
            .unwrap();
    !rows.is_empty()
}

/// The cluster catalog plus a plan of the tiny chart whose bindings are
/// users in a database outside the release, reached through `port`.
fn catalog_with_users(dir: &Path, port: u16) -> std::path::PathBuf {
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
fn spawn_with(id: &BrokerIdentity, data: &Path, catalog: &Path, key: &str, port: u16) -> Proc {
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
struct UnbindBed {
    db: common::databases::Server,
    proxy: HoldingProxy,
    k: Cluster,
    id: BrokerIdentity,
    ns: String,
    dir: tempfile::TempDir,
    catalog: std::path::PathBuf,
    key: String,
    b_url: String,
}

const USERS_QUERY: &str = "service_id=svc-users&plan_id=plan-users";

/// The unbind cell on the helm engine, sync and async: a replica A is
/// SIGKILLed inside the unbind (while it waits on the database to drop the
/// binding's user); the survivor B finishes it once. An accepted (202)
/// unbind is polled on B to `succeeded`; a synchronous one dies with A and
/// the platform's retry on B gets 410 (done). The user, the binding Secret
/// and the binding are gone, and the instance still deprovisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_unbind_has_its_unbind_finished() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = mariadb().await;
    let proxy = HoldingProxy::start(db.port).await;
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let ns = k.namespace("apps").await;
    k.grant_target(&id, &ns);
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with_users(dir.path(), proxy.port);
    let key = Sealer::generate_base64();
    let pb = free_port();
    let _b = spawn_with(&id, &dir.path().join("b"), &catalog, &key, pb);
    ready(pb).await;
    let b_url = format!("http://127.0.0.1:{pb}/v2/service_instances/u1");
    let body = json!({
        "service_id": "svc-users", "plan_id": "plan-users",
        "context": {"platform": "kubernetes", "namespace": ns},
    });
    let put = reqwest::Method::PUT;
    let (s, r) = call(put, format!("{b_url}?accepts_incomplete=true"), Some(body)).await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let done = poll(&format!("{b_url}/last_operation?operation={op}")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let bed = UnbindBed {
        db,
        proxy,
        k,
        id,
        ns,
        dir,
        catalog,
        key,
        b_url,
    };
    bed.killed_unbind("b-async", true).await;
    bed.killed_unbind("b-sync", false).await;

    let b_url = &bed.b_url;
    let query = format!("{USERS_QUERY}&accepts_incomplete=true");
    let (s, r) = call(reqwest::Method::DELETE, format!("{b_url}?{query}"), None).await;
    assert_eq!(s, 202, "the instance still deprovisions: {r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let done = poll(&format!("{b_url}/last_operation?operation={op}")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(release_records(&bed.k, &bed.ns, "cb-u1").await.is_empty());
}

impl UnbindBed {
    /// One cell: a fresh replica A binds `bid`, is killed inside its
    /// unbind, and B finishes it.
    async fn killed_unbind(&self, bid: &str, accepts_incomplete: bool) {
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
