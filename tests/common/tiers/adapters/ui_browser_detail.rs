//! Helpers of adapters/ui_browser_detail.rs.

use crate::common;
pub use crate::common::dashboard::{UI_PASS, UI_USER};
use common::browser::{assert_absent, assert_quiet, element, open, open_manifest, shot, text_of};
use common::dashboard::{body, secret_values};
pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
use common::process::osb;
use common::*;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

/// The example catalog plus the test catalog, charts side by side.
pub fn catalogs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (catalog, charts) = (dir.join("catalog"), dir.join("charts"));
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::create_dir_all(&charts).unwrap();
    for f in std::fs::read_dir(repo().join("catalog")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, catalog.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        fixtures().join("catalog/test.yaml"),
        catalog.join("test.yaml"),
    )
    .unwrap();
    // Copies: a catalog's charts may not be symbolic links.
    let mut cp = std::process::Command::new("cp");
    cp.arg("-r");
    for name in ["mysql", "wordpress", "postgresql", "redis"] {
        cp.arg(repo().join("charts").join(name));
    }
    let copied = cp.arg(fixtures().join("charts/tiny")).arg(&charts).status();
    assert!(copied.unwrap().success());
    (catalog, charts)
}

pub const LONG_NAME_LEN: usize = 200;

pub const HOSTILE: &str = "<script>alert('m')</script><img src=x onerror=alert(1)>";

pub fn long_id() -> String {
    format!("long-{}", "x".repeat(LONG_NAME_LEN))
}

/// MySQL `db-1` used by WordPress `wp-1`, and a tiny instance with a very
/// long id whose manifest carries hostile text; every Secret value written.
pub async fn provision_all(base: &str, state: &std::path::Path) -> Vec<String> {
    let put = |id: String, b: Value| {
        let url = format!("{base}/v2/service_instances/{id}");
        osb(Method::PUT, url, Some(b))
    };
    let db = body(MYSQL, MYSQL_BASIC, "web", json!({"database": "blog"}));
    let wp = body(
        WORDPRESS,
        WORDPRESS_STANDARD,
        "web",
        json!({"mysql_instance": "db-1"}),
    );
    let tiny = provision_body_in("plan-small", "apps", json!({"message": HOSTILE}));
    for (id, b) in [
        ("db-1".to_owned(), db),
        ("wp-1".to_owned(), wp),
        (long_id(), tiny),
    ] {
        let (s, r) = put(id, b).await;
        assert_eq!(s, 201, "{r}");
    }
    let mut secrets = secret_values(&state.join("render/web/cb-db-1"));
    secrets.extend(secret_values(&state.join("render/web/cb-wp-1")));
    assert!(!secrets.is_empty());
    secrets
}

pub fn assert_no_secret(src: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(
            !src.contains(s.as_str()),
            "a Secret value in {what}'s source"
        );
    }
}

/// db-1: one revision, its Secret's values masked, wp-1 as its user; the
/// link leads to wp-1, which uses db-1.
pub async fn details(c: &Client, driver: &str, authed: &str, secrets: &[String]) {
    open(c, &format!("{authed}/ui/instances/db-1")).await;
    let revisions = c
        .find_all(Locator::Css("#revisions tbody tr"))
        .await
        .unwrap();
    assert_eq!(revisions.len(), 1);
    let manifests = c
        .find_all(Locator::Css("#manifests details"))
        .await
        .unwrap();
    assert!(manifests.len() >= 3, "{}", manifests.len());
    // Open a Secret's document, as a person would, and read it.
    let shown = open_manifest(c, "Secret").await;
    assert!(shown.contains("••••••"), "{shown}");
    assert_no_secret(&c.source().await.unwrap(), secrets, "db-1");
    let user = element(c, "#used-by a").await;
    assert_eq!(user.text().await.unwrap(), "wp-1");
    shot(c, "instance-detail").await;
    assert_quiet(c, driver, "db-1's page").await;
    user.click().await.unwrap();
    let h1 = text_of(c, "h1").await;
    assert_eq!(h1, "Instance wp-1");
    let uses = text_of(c, "#uses").await;
    assert!(uses.contains("db-1"), "{uses}");
    assert_no_secret(&c.source().await.unwrap(), secrets, "wp-1");
    assert_quiet(c, driver, "wp-1's page").await;
}

/// Hostile manifest text and a very long name stay text.
pub async fn hostile(c: &Client, driver: &str, base: &str) {
    open(c, &format!("{base}/ui/instances/{}", long_id())).await;
    let h1 = text_of(c, "h1").await;
    assert_eq!(h1, format!("Instance {}", long_id()));
    assert_absent(c, "main img, main script").await;
    let text = open_manifest(c, "ConfigMap").await;
    assert!(text.contains(HOSTILE), "{text}");
    assert_quiet(c, driver, "a hostile manifest").await;
}

/// Health: no replicas (redb), the example catalog's upstream with its
/// state, charts drawn as SVG.
pub async fn health(c: &Client, driver: &str, base: &str) {
    c.goto(&format!("{base}/ui/health")).await.unwrap();
    element(c, "#replicas-none").await;
    let ups = c
        .find_all(Locator::Css("#upstreams td.reach"))
        .await
        .unwrap();
    assert!(!ups.is_empty());
    let bars = c.find_all(Locator::Css("#charts svg rect")).await.unwrap();
    assert!(!bars.is_empty(), "no chart drew a bar");
    let svg = c.find(Locator::Css("#charts figure svg")).await.unwrap();
    assert_eq!(svg.attr("width").await.unwrap().as_deref(), Some("640"));
    shot(c, "health").await;
    assert_quiet(c, driver, "the health page").await;
    c.goto(&format!("{base}/ui/health#charts")).await.unwrap();
    shot(c, "health-charts").await;
    assert_quiet(c, driver, "the health page's charts").await;
}
