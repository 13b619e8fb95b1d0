//! Helpers of the tests in tests/cluster/chart_sources.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

use common::cluster::BrokerIdentity;
use common::{TestBroker, helm_bin};

mod env;
mod fixtures;
mod server;

pub use env::*;
pub use fixtures::*;
pub use server::*;
