//! What only a real API server can prove about RBAC, authorization and the
//! objects the broker writes (tests/testenv): `deploy/` passes the server's
//! own schema validation; the deploy/ ServiceAccount gets Kubernetes' own
//! Forbidden for a kind it was not granted; SubjectAccessReview answers from
//! the real authorizer; a failed upgrade rolls back in helm's history;
//! `namespace: instance` namespaces terminate; binding Secrets carry the
//! broker's field manager and unbind deletes only what the broker owns.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::cluster_rbac::*;
use axum::http::{Method, StatusCode};
use common::cluster::{Cluster, kubectl};
use common::cluster_calls::*;
use common::*;
use serde_json::json;

mod binding_secrets;
mod rbac;
