//! Helpers of the tests in tests/edge/cli.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::process::{Command, Stdio};

use common::process::serve_base;
use common::*;

/// `serve` on the test catalog and charts, render engine, plus `args`.
pub fn serve(data: &std::path::Path, port: u16, args: &[&str]) -> Command {
    let (catalog, charts) = (fixtures().join("catalog"), fixtures().join("charts"));
    let mut c = serve_base(port, &catalog, &charts, data);
    c.args(["--username", USER])
        .env("CHARTBROKER_PASSWORD", PASS)
        .args(args)
        .stdin(Stdio::null());
    c
}
