//! Per-binding database users against real MariaDB, PostgreSQL and Redis
//! servers on loopback (render engine, no cluster): each binding logs in
//! with its own user, unbinding revokes exactly that user and ends its
//! sessions, rotation keeps both users valid until the predecessor is
//! unbound, a crash between creating the user and recording the binding
//! ends with exactly one user, and an unreachable database fails the bind
//! (or, where the plan says so, falls back to the shared user).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::dbusers::*;
use common::databases::{self};
use common::{TestBroker, config, repo};

mod mariadb_and_outages;
mod users_postgres_redis;
