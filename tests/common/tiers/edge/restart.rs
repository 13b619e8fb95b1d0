//! Helpers of the tests in tests/edge/restart.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

use common::fixtures;
use common::process::{Served, serve};

pub async fn start(data: &Path, helm: &Path) -> Served {
    let f = fixtures();
    serve(&f.join("catalog"), &f.join("charts"), data, helm, &[]).await
}
