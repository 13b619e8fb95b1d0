//! Helpers of the tests in tests/adapters/delete_faults.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use chartbroker::dbusers::{DbError, Servers, Target, User, UserAdmin};
use chartbroker::runtime::ServeConfig;
use common::databases::{self, Server};
use common::deletes::{Delete, Seen};
use common::{TestBroker, config, repo};

mod bed;
mod checks;

pub use bed::*;
pub use checks::*;
