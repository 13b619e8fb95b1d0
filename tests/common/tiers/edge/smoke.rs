//! Helpers of the tests in tests/edge/smoke.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

/// `chartbroker serve <args>` run in `dir` with only `path` on PATH and no
/// other environment, which must exit 1: its stderr.
pub fn serve_refused(dir: &Path, path: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(common::process::broker_bin())
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}
