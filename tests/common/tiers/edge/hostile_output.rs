//! Helpers of the tests in tests/edge/hostile_output.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

use common::process::{Served, serve};
use common::{PASS, USER, fixtures, helm_bin};
use serde_json::{Value, json};

pub async fn start(data: &Path) -> Served {
    let abuse = fixtures().join("abuse");
    serve(
        &abuse.join("catalog"),
        &abuse.join("charts"),
        data,
        &helm_bin(),
        &[],
    )
    .await
}

pub fn osb(method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, url)
        .basic_auth(USER, Some(PASS))
        .header("X-Broker-API-Version", "2.17")
}

/// `VmHWM` (peak) and `VmRSS` of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

pub fn provision(lines: u64) -> Value {
    common::provision_body_of("svc-abuse", "plan-huge-capped", json!({"lines": lines}))
}

/// About 8 MB of YAML against a 1 MiB cap: enough to show the cap without
/// the minutes (and gigabytes inside helm) the full three million lines cost.
pub const LINES: u64 = 100_000;
