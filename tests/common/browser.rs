//! A real browser for dashboard tests: Debian's chromium, headless, driven
//! over WebDriver (chromedriver) with fantoccini; its console log read
//! back, and screenshots saved under `target/ui-screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use super::process::{Proc, free_port, http};
use super::repo;

fn tool(var: &str, default: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        p.is_file(),
        "{} not found — run scripts/install-tools.sh (Debian's chromium and chromium-driver) or set {var}",
        p.display()
    );
    p
}

/// chromedriver on a free port, ready for sessions.
pub async fn chromedriver() -> (Proc, String) {
    let bin = tool("CHARTBROKER_CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = free_port();
    let proc = Proc(
        std::process::Command::new(bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Some((200, v)) = http(Method::GET, format!("{url}/status"), None).await {
            if v["value"]["ready"] == true {
                return (proc, url);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not become ready");
}

/// A headless session that keeps the browser's console log.
pub async fn browser(driver: &str) -> Client {
    let chromium = tool("CHARTBROKER_CHROMIUM", "/usr/bin/chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,900", "--no-first-run", "--disable-extensions"],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a chromium session")
}

/// The browser console since the last call (chromedriver's log endpoint).
pub async fn console(c: &Client, driver: &str) -> Vec<Value> {
    let sid = c.session_id().await.unwrap().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v: Value = reqwest::Client::new()
        .post(format!("{driver}/session/{sid}/se/log"))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("the log endpoint")
        .json()
        .await
        .unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

/// No error or warning in the console since the last read (CSP
/// violations are errors there).
pub async fn assert_quiet(c: &Client, driver: &str, what: &str) {
    let errors: Vec<Value> = console(c, driver)
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console errors on {what}: {errors:#?}");
}

/// Saves a screenshot of the page as `target/ui-screenshots/<name>.png`.
/// The text of the first element matching `css` (which must exist).
pub async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Loads `url` in the page.
pub async fn open(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("loading {url}: {e}"));
}

/// The first element matching `css` (which must exist).
pub async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Asserts nothing on the page matches `css` (what hostile text must not
/// become).
pub async fn assert_absent(c: &Client, css: &str) {
    let found = c.find_all(Locator::Css(css)).await.unwrap();
    assert!(found.is_empty(), "{} element(s) match {css}", found.len());
}

/// Opens the manifest document of `kind` (its `<details>`, as a person
/// would, by its summary) and returns the text it shows.
pub async fn open_manifest(c: &Client, kind: &str) -> String {
    let doc = c
        .find(Locator::XPath(&format!(
            "//details[summary[starts-with(., '{kind} ')]]"
        )))
        .await
        .unwrap_or_else(|e| panic!("no {kind} manifest: {e}"));
    doc.find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    doc.find(Locator::Css("pre"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn shot(c: &Client, name: &str) {
    let dir = repo().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}
