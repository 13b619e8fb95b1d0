//! Service instances over HTTP: provision, update, deprovision, fetch and
//! `last_operation`, each OSB rule with its status, body and headers, plus
//! hostile parameter values rendered through the real `helm template`.

use crate::common;

use crate::helpers::osb_instances::*;
use axum::http::{StatusCode, header};
use common::*;
use serde_json::{Value, json};

mod fetch_and_parameters;
mod provision;
mod update_and_deprovision;
