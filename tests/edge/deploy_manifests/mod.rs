//! Checks `deploy/`: every YAML document under `deploy/kubernetes/` and
//! `deploy/registration/` parses as a known kind (built-in kinds as typed
//! k8s-openapi objects, with a round trip that catches misspelt or misplaced
//! fields), and the security properties the README promises hold: a locked
//! down broker pod, RBAC without wildcards and with the narrow grants
//! documented, placeholder-only Secrets, a Service and NetworkPolicy that match
//! the pod, and a Dockerfile that pins helm and runs as non-root.
//!
//! The manifests are generated from the chart (`scripts/gen-deploy.sh`;
//! `tests/cluster/deploy_chart.rs` checks they are in sync), so this also checks the
//! chart's default rendering. No cluster and no Docker engine are needed;
//! this is a static check.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::deploy_manifests::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

mod documents_and_pod;
mod image_and_registration;
mod rbac;
