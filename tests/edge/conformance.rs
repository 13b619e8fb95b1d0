//! A public OSB test tool against the real binary: schemathesis (from PyPI,
//! installed by scripts/install-tools.sh) generates requests from the OSB
//! spec's own OpenAPI document (tests/fixtures/osb/openapi.yaml, a copy of
//! the v2.17 spec file) and checks every response.
//!
//! Excluded checks, and why:
//! - `positive_data_acceptance`: random service and plan ids are not in our
//!   catalog, so "valid" generated requests are rightly refused.
//! - `missing_required_header` and `status_code_conformance`: the OpenAPI
//!   file documents neither 412 (our answer to a missing or unsupported
//!   `X-Broker-API-Version`, as public conformance suites expect), nor 401 on
//!   the catalog, nor 404 for PATCH or bind on an unknown instance. Each of
//!   these statuses has its own test in tests/osb_*.rs instead.
//!
//! Everything else runs, `not_a_server_error` and
//! `response_schema_conformance` among them.

use crate::common;

use std::process::Command;

use common::process::{free_port, ready, spawn_example};
use common::{PASS, USER, fixtures, repo};

#[tokio::test]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let python = std::env::var_os("CHARTBROKER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/venv/bin/python"));
    assert!(
        python.is_file(),
        "python venv not found at {} — run scripts/install-tools.sh",
        python.display()
    );
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = spawn_example(port, data.path(), &[]);
    ready(port).await;
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::new(&python)
        .args(["-m", "schemathesis.cli", "run"])
        .arg(fixtures().join("osb/openapi.yaml"))
        .args(["--url", &url])
        .args(["-H", "X-Broker-API-Version: 2.17"])
        .args(["--auth", &format!("{USER}:{PASS}")])
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,missing_required_header,status_code_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "30",
            "--workers",
            "2",
            "--seed",
            "1",
            "--no-color",
        ])
        .current_dir(data.path())
        .output()
        .expect("schemathesis runs");
    drop(broker);
    let stderr = std::fs::read(data.path().join("broker.log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis reported failures:\n{stdout}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&stderr)
    );
    assert!(
        stdout.contains("Tested: 10"),
        "all 10 operations ran:\n{stdout}"
    );
}
