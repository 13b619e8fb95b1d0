//! Helpers of the tests in tests/cluster/deploy_chart.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::cluster::{Cluster, kubectl, write_token_kubeconfig};
use common::{b64_encode, helm_bin, repo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

mod kubelet;
mod render;

pub use kubelet::*;
pub use render::*;
