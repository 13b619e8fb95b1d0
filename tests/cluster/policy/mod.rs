//! Policy on rendered manifests, end to end: hostile charts (one per rule,
//! under `tests/fixtures/hostile-charts/`) provisioned through the HTTP API
//! are refused with the object and rule named, nothing is written, and the
//! matching `chart.policy` allowance lets the same chart through. The
//! repository's own charts pass the default policy.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use common::cluster_calls::*;
use common::*;
use serde_json::{Value, json};

use crate::helpers::policy::*;
use chartbroker::catalog::Catalog;
use chartbroker::helm::Helm;
use chartbroker::policy::{self, Policy};

mod helm_and_redaction;
mod render;
