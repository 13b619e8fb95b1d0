//! The HTTP edge: authentication, the OSB headers, request bodies, the shape
//! of every error, and what must never be shown (internal details, secrets in
//! responses, `Debug` output and logs).

use crate::common;

use crate::helpers::osb_edge::*;
use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use common::*;
use serde_json::json;

mod auth_and_headers;
mod bodies_and_errors;
