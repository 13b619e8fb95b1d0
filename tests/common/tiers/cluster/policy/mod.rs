//! Helpers of the tests in tests/cluster/policy/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

mod cases;
mod charts;
mod on_helm;

pub use cases::*;
pub use charts::*;
pub use on_helm::*;
