//! Catalog tests: `mk_*` builders here, one file per concern.

mod binding_type;
mod binding_users;
mod chart_sources;
mod lint;
mod model;
mod schema;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Catalog, LintIssue};

/// The path of the first plan, as lint issues name it.
const PLAN0: &str = "services[0].plans[0]";

/// A valid catalog: one service with a chart plan and an upstream plan.
/// JSON is YAML, so tests mutate this tree and write it out as-is.
fn mk_catalog() -> Value {
    json!({
        "upstreams": [{"name": "managed-mysql", "url": "https://upstream.example"}],
        "services": [{
            "id": "svc-mysql",
            "name": "mysql",
            "description": "MySQL database server",
            "tags": ["mysql", "relational"],
            "bindable": true,
            "instances_retrievable": true,
            "plan_updateable": true,
            "metadata": {"displayName": "MySQL"},
            "plans": [mk_chart_plan("plan-basic", "basic"), {
                "id": "plan-premium",
                "name": "premium",
                "description": "Managed MySQL",
                "free": false,
                "async_required": true,
                "upstream": {"broker": "managed-mysql", "service_id": "up-svc", "plan_id": "up-plan"}
            }]
        }]
    })
}

fn mk_chart_plan(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "description": "Single MySQL server",
        "free": true,
        "maximum_polling_duration": 900,
        "maintenance_info": {"version": "1.0.0", "description": "MySQL 8.4"},
        "metadata": {"bullets": ["1 GiB storage"]},
        "schemas": {
            "service_instance": {
                "create": {"parameters": {"type": "object", "properties": {
                    "database": {"type": "string", "pattern": "^[a-z]+$", "default": "app"},
                    "replicas": {"type": "integer", "default": 1}
                }}},
                "update": {"parameters": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}
            },
            "service_binding": {"create": {"parameters": {"type": "object", "properties": {"readonly": {"type": "boolean"}}}}}
        },
        "chart": {
            "path": "mysql",
            "values": {
                "auth": {"rootPassword": "{{secrets.root_password}}", "database": "{{parameters.database}}"},
                "replicaCount": "{{parameters.replicas}}",
                "primary": {"persistence": {"size": "1Gi"}}
            },
            "secrets": {"root_password": {"length": 24}, "user_password": {"alphabet": "hex"}},
            "credentials": {
                "host": "{{instance.release}}.{{instance.namespace}}.svc.cluster.local",
                "port": 3306,
                "password": "{{secrets.root_password}}",
                "readonly": "{{binding.parameters.readonly}}",
                "uri": "mysql://root:{{secrets.root_password}}@{{instance.release}}:3306/{{parameters.database}}"
            }
        }
    })
}

/// A catalog directory and a charts directory holding a `mysql` chart.
struct Fixture {
    _dir: TempDir,
    catalog: PathBuf,
    charts: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog");
        let charts = dir.path().join("charts");
        std::fs::create_dir_all(&catalog).unwrap();
        std::fs::create_dir_all(charts.join("mysql")).unwrap();
        std::fs::write(
            charts.join("mysql/Chart.yaml"),
            "name: mysql\nversion: 0.1.0\n",
        )
        .unwrap();
        Fixture {
            _dir: dir,
            catalog,
            charts,
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.catalog.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn lint(&self) -> Vec<LintIssue> {
        super::lint(&self.catalog, &self.charts)
    }

    fn load(&self) -> Catalog {
        Catalog::load(&self.catalog, &self.charts).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Lints `catalog` written as a single file; issues as `path: message`.
fn lint_value(catalog: &Value) -> Vec<String> {
    let fx = Fixture::new();
    fx.write(
        "catalog.yaml",
        &serde_json::to_string_pretty(catalog).unwrap(),
    );
    issues(&fx.lint())
}

/// The catalog's lint issues are at `paths`, in order, and nowhere else.
fn assert_issues_at(catalog: &Value, paths: &[&str]) {
    let found = lint_value(catalog);
    let at: Vec<&str> = found
        .iter()
        .map(|f| f.split_once(": ").unwrap().0)
        .collect();
    assert_eq!(at, paths, "{found:#?}");
}

fn issues(issues: &[LintIssue]) -> Vec<String> {
    issues
        .iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect()
}

/// Loads `catalog` written as a single file.
fn load_value(catalog: &Value) -> Catalog {
    let fx = Fixture::new();
    fx.write(
        "catalog.yaml",
        &serde_json::to_string_pretty(catalog).unwrap(),
    );
    fx.load()
}

/// Asserts exactly one issue, at `path`, whose message contains `needle`.
#[track_caller]
fn assert_one_issue(catalog: &Value, path: &str, needle: &str) {
    let found = lint_value(catalog);
    assert_eq!(found.len(), 1, "expected one issue, got {found:#?}");
    let (at, msg) = found[0].split_once(": ").unwrap();
    assert_eq!(at, path, "{found:?}");
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

/// The catalog shipped in this repository must lint clean and load.
#[test]
fn repository_catalog_lints_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (catalog_dir, charts_dir) = (root.join("catalog"), root.join("charts"));
    let found = super::lint(&catalog_dir, &charts_dir);
    assert!(
        found.is_empty(),
        "{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let catalog = Catalog::load(&catalog_dir, &charts_dir).unwrap();
    assert!(!catalog.services().is_empty());
}
