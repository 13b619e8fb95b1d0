//! Tenant isolation, attacked over HTTP the way a hostile tenant would: a
//! tenant is a namespace plus the identity the platform asserts, and
//! nothing one tenant sends may make the broker read, write or reveal
//! anything in another's namespace.
//!
//! Cluster tests get their cluster from [`cluster`]: the real control plane
//! (tests/testenv), whose RBAC authorizer answers the SubjectAccessReviews.

use crate::common;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

use crate::helpers::tenant_isolation::*;
// The confused-deputy cases on the real API server (issue 20), the
// platform trust cases, and this file's own cases split by topic.

mod namespaces_and_uses;
mod operations_and_takeover;
mod platform_trust;
mod release_identity;
mod secrets_and_squats;
