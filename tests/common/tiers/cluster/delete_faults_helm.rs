//! Helpers of the tests in tests/cluster/delete_faults_helm.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::json;

use common::cluster::{BrokerIdentity, Cluster, release_records, suffix};
use common::databases::Server;
use common::deletes::Delete;
use common::{TestBroker, fixtures};

pub const SVC: &str = "svc-hdel";
/// The columns this engine serves.
pub const PATHS: [Delete; 3] = [
    Delete::UnbindSync,
    Delete::UnbindAsync,
    Delete::DeprovisionAsync,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    ReleaseGone,
    ReleaseFailed,
    PendingInstall,
    PendingUpgrade,
    NamespaceGone,
    ChartRemoved,
    PlanRemoved,
}

/// One row's world: the broker's identity, the platform's namespace, a
/// catalog and charts of the row's own, a broker.
pub struct Env {
    pub k: Cluster,
    pub _id: BrokerIdentity,
    pub apps: String,
    pub dir: tempfile::TempDir,
    pub b: TestBroker,
}

/// `plan-ctx`: the tiny chart in the platform's namespace; `plan-own`: in a
/// namespace of its own; `plan-db`: bindings get users in the MariaDB at
/// `db_port` (the database counted as the release's).
pub fn write_catalog(dir: &Path, db_port: u16, without: Option<&str>) {
    let chart = |id: &str, ns: &str, extra: &str| {
        format!(
            r#"
      - id: {id}
        name: {id}
        description: {id}
        chart:
          path: tiny
          namespace: {ns}
          values: {{message: hi, password: "{{{{secrets.password}}}}"}}
          secrets: {{password: {{length: 24}}}}
{extra}"#
        )
    };
    let plain = "          credentials: {password: \"{{secrets.password}}\"}\n";
    let users = format!(
        "          binding_users:\n            engine: mysql\n            admin: {{host: 127.0.0.1, port: {db_port}, password: matrix-root-pw}}\n            database: app\n            connect_timeout_seconds: 2\n            in_release: true\n          credentials: {{username: \"{{{{user.username}}}}\", password: \"{{{{user.password}}}}\"}}\n"
    );
    let plans: String = [
        ("plan-ctx", "context", plain.to_string()),
        ("plan-own", "instance", plain.to_string()),
        ("plan-db", "context", users),
        ("plan-keep", "context", plain.to_string()),
    ]
    .iter()
    .filter(|(id, ..)| Some(*id) != without)
    .map(|(id, ns, extra)| chart(id, ns, extra))
    .collect();
    let yaml = format!(
        "services:\n  - id: {SVC}\n    name: hdel\n    description: d\n    bindable: true\n    plans:{plans}"
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("c.yaml"), yaml).unwrap();
}

pub async fn env(db_port: u16) -> Env {
    let k = Cluster::admin().await;
    let id = k.install_broker(true).await;
    let apps = k.namespace("apps").await;
    k.grant_target(&id, &apps);
    let dir = tempfile::tempdir().unwrap();
    write_catalog(&dir.path().join("catalog"), db_port, None);
    common::deletes::copy_dir(
        &fixtures().join("charts/tiny"),
        &dir.path().join("charts/tiny"),
    );
    let (catalog, charts_dir) = (dir.path().join("catalog"), dir.path().join("charts"));
    let b = TestBroker::on_cluster(&id, |_, cfg| {
        cfg.subject_access_review = false;
        cfg.catalog_dir = catalog;
        cfg.charts_dir = charts_dir;
    })
    .await;
    Env {
        k,
        _id: id,
        apps,
        dir,
        b,
    }
}

impl Env {
    pub fn charts(&self) -> PathBuf {
        self.dir.path().join("charts")
    }

    /// Provisions `id` on `plan` (async) and binds `b1` (sync).
    pub async fn instance(&self, id: &str, plan: &str) -> String {
        let r = self
            .b
            .run(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(json!({
                    "service_id": SVC, "plan_id": plan,
                    "context": {"platform": "kubernetes", "namespace": self.apps},
                })),
            )
            .await;
        assert_eq!(r.json["state"], "succeeded", "{}", r.text);
        let r = self
            .b
            .put(
                &format!("/v2/service_instances/{id}/service_bindings/b1"),
                json!({"service_id": SVC, "plan_id": plan}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["credentials"]["username"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Where the release of `id` lives.
    pub fn namespace_of(&self, id: &str, plan: &str) -> String {
        if plan == "plan-own" {
            format!("cb-{id}")
        } else {
            self.apps.clone()
        }
    }

    /// Nothing of what `how` deleted is left in the cluster or the broker.
    pub async fn assert_nothing_left(&self, how: Delete, id: &str, plan: &str, cell: &str) {
        let ns = self.namespace_of(id, plan);
        let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-b1");
        assert!(
            self.k.get(&secret).await.is_none(),
            "{cell}: the binding Secret is left"
        );
        let again = self.b.delete(how, (SVC, plan), id, "b1").await;
        assert_eq!(
            again.answer.status,
            StatusCode::GONE,
            "{cell}: {}",
            again.answer.text
        );
        if how.unbinds() {
            return;
        }
        let release = format!("cb-{id}");
        assert!(
            release_records(&self.k, &ns, &release).await.is_empty(),
            "{cell}: release records left"
        );
        let cm = format!("/api/v1/namespaces/{ns}/configmaps/{release}");
        assert!(
            self.k.get(&cm).await.is_none(),
            "{cell}: the release's ConfigMap is left"
        );
        if plan == "plan-own" {
            self.k
                .wait_gone(
                    &format!("/api/v1/namespaces/{ns}"),
                    Duration::from_secs(120),
                )
                .await;
        }
    }

    /// Writes release record `version` of `id`'s release in `status`, as
    /// a helm killed (or failing) mid-operation leaves it: about to apply
    /// the chart's manifest. Plain base64 JSON, which helm reads like its
    /// gzipped form.
    pub async fn seed_record(&self, id: &str, version: u64, status: &str) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let release = format!("cb-{id}");
        let chart = self.charts().join("tiny");
        let out = self.k.helm(&[
            "template",
            &release,
            chart.to_str().unwrap(),
            "-n",
            &self.apps,
        ]);
        assert!(out.status.success(), "{out:?}");
        let manifest = String::from_utf8(out.stdout).unwrap();
        let record = json!({
            "name": release, "namespace": self.apps, "version": version,
            "info": {"first_deployed": "2025-01-01T00:00:00Z", "last_deployed": "2025-01-01T00:00:00Z",
                     "deleted": "", "description": "helm was killed", "status": status},
            "chart": {"metadata": {"apiVersion": "v2", "name": "tiny", "version": "0.1.0"},
                      "templates": [], "values": {}},
            "config": {}, "manifest": manifest,
        });
        let inner = b64.encode(serde_json::to_vec(&record).unwrap());
        self.k
            .create(
                &format!("/api/v1/namespaces/{}/secrets", self.apps),
                json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("sh.helm.release.v1.{release}.v{version}"),
                        "labels": {"name": release, "owner": "helm", "status": status, "version": version.to_string()}},
                    "type": "helm.sh/release.v1", "data": {"release": b64.encode(inner)}}),
            )
            .await;
    }

    pub async fn arrange(&self, fault: Fault, id: &str, plan: &str) {
        let ns = self.namespace_of(id, plan);
        let release = format!("cb-{id}");
        match fault {
            Fault::ReleaseGone => self.helm_ok(&["uninstall", &release, "-n", &ns]),
            Fault::ReleaseFailed => self.seed_record(id, 2, "failed").await,
            Fault::PendingUpgrade => self.seed_record(id, 2, "pending-upgrade").await,
            Fault::PendingInstall => {
                self.helm_ok(&["uninstall", &release, "-n", &ns]);
                self.seed_record(id, 1, "pending-install").await;
            }
            Fault::NamespaceGone => {
                self.k.delete(&format!("/api/v1/namespaces/{ns}")).await;
                self.k
                    .wait_gone(
                        &format!("/api/v1/namespaces/{ns}"),
                        Duration::from_secs(120),
                    )
                    .await;
            }
            Fault::ChartRemoved => std::fs::remove_dir_all(self.charts().join("tiny")).unwrap(),
            Fault::PlanRemoved => {
                write_catalog(&self.dir.path().join("catalog"), 1, Some(plan));
                let reloader = self.b.runtime.reloader(None);
                assert!(reloader.reload(chartbroker::reload::What::Catalog).await);
            }
        }
    }

    pub fn helm_ok(&self, args: &[&str]) {
        let out = self.k.helm(args);
        assert!(out.status.success(), "helm {args:?}: {out:?}");
    }
}

/// One row: `fault` on each delete path, each on an instance of its own.
/// A row that removes something shared (chart, plan) gets a fresh world
/// per cell.
pub async fn row(fault: Fault, plan: &str) {
    for how in PATHS {
        let cell = format!("{fault:?} × {how:?}");
        let e = env(1).await;
        let id = format!("hd-{}", suffix());
        e.instance(&id, plan).await;
        e.arrange(fault, &id, plan).await;
        let seen = e.b.delete(how, (SVC, plan), &id, "b1").await;
        seen.assert_succeeded(&cell);
        e.assert_nothing_left(how, &id, plan, &cell).await;
        // The instance of an unbind cell goes too, fault or not.
        if how.unbinds() {
            let seen =
                e.b.delete(Delete::DeprovisionAsync, (SVC, plan), &id, "b1")
                    .await;
            seen.assert_succeeded(&cell);
            e.assert_nothing_left(Delete::DeprovisionAsync, &id, plan, &cell)
                .await;
        }
    }
}

/// The catalog's admin password of the per-binding-user plan.
pub const ROOT: &str = "matrix-root-pw";

/// MariaDB with the catalog's admin password and database.
pub async fn mariadb() -> Server {
    common::databases::mariadb_with_app(ROOT).await
}

pub async fn user_exists(server: &Server, user: &str) -> bool {
    common::mariadb_admin::mariadb_user_exists(server.port, ROOT, user).await
}
