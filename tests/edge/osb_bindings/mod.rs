//! Service bindings over HTTP: bind, fetch, rotate, unbind and
//! `last_operation`, and the binding Secret manifests the render engine
//! writes under `<data>/render/apps/cb-<instance>/bindings/`.

use crate::common;

use crate::helpers::osb_bindings::*;
use axum::http::{StatusCode, header};
use common::*;
use serde_json::json;

mod bind;
mod unbind;
