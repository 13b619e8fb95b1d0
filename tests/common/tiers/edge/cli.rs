//! Helpers of the tests in tests/edge/cli.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::process::{Command, Stdio};

use common::process::broker_bin;
use common::*;

/// `serve` on the test catalog and charts, render engine, plus `args`.
pub fn serve(data: &std::path::Path, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(broker_bin());
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--catalog")
        .arg(fixtures().join("catalog"))
        .arg("--charts")
        .arg(fixtures().join("charts"))
        .arg("--data-dir")
        .arg(data)
        .args(["--username", USER])
        .env("CHARTBROKER_PASSWORD", PASS)
        .args(args)
        .stdin(Stdio::null());
    c
}
