//! Helpers of the tests in tests/edge/observability.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use common::process::{Proc, serve_cmd};
use common::{PASS, USER, fixtures, helm_bin};
use serde_json::{Value, json};

/// `promtool`: on PATH, or Debian's /usr/bin/promtool. Fails loudly.
pub fn promtool() -> std::path::PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("promtool"))
        .chain([std::path::PathBuf::from("/usr/bin/promtool")])
        .find(|p| p.is_file());
    found.expect(
        "promtool not found: run scripts/install-tools.sh (Debian: apt-get install prometheus)",
    )
}

pub fn start(dir: &Path, port: u16) -> Proc {
    let (catalog, charts) = (fixtures().join("catalog"), fixtures().join("charts"));
    Proc(
        serve_cmd(port, &catalog, &charts, &dir.join("data"), &helm_bin())
            .env_remove("RUST_LOG")
            .env_remove("CHARTBROKER_LOG_FORMAT")
            .stdout(Stdio::null())
            // A pipe, not a terminal: no colours.
            .stderr(Stdio::piped())
            .spawn()
            .expect("chartbroker starts"),
    )
}

pub fn identity(username: &str) -> String {
    let v = json!({"username": username, "uid": "u-1", "groups": ["secret-group"],
        "extra": {"token": ["identity-extra-token"]}});
    format!(
        "kubernetes {}",
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    )
}

pub async fn send(
    method: reqwest::Method,
    url: String,
    auth: Option<(&str, &str)>,
    request_id: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .header("X-Broker-API-Version", "2.17")
        .header("X-Broker-API-Request-Identity", request_id)
        .header("X-Broker-API-Originating-Identity", identity("alice"));
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

pub async fn wait_done(base: &str, path: &str, op: &str) {
    for _ in 0..400 {
        let (s, body) = send(
            reqwest::Method::GET,
            format!("{base}{path}/last_operation?operation={op}"),
            Some((USER, PASS)),
            "poll",
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        if body["state"] == "succeeded" {
            return;
        }
        assert_eq!(body["state"], "in progress", "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} {op} never finished");
}
