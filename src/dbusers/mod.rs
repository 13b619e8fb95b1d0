//! Per-binding database users: the one module that talks to the databases
//! chart plans run (MySQL/MariaDB, PostgreSQL, Redis).
//!
//! A plan with `chart.binding_users` gives each binding a user of its own:
//! bind connects to the instance's database as its administrator (with the
//! secret the broker generated for the instance), creates the user with a
//! fresh password and only the privileges the engine's module grants; unbind
//! drops it and ends its sessions. Both are idempotent, and the user's name is
//! derived from the binding, so an operation resumed after a crash finds the
//! user it created before and ends with exactly one.
//!
//! # Layout
//! - `mod.rs`: the [`UserAdmin`] port, endpoint resolution, names.
//! - `steps.rs`: the bind and unbind steps chart plans call, and what a
//!   failed one leaves (nothing, or what a retry finishes).
//! - [`mysql`], [`postgres`], [`redis`]: one engine each (sqlx, redis-rs).

pub(crate) mod mysql;
pub(crate) mod postgres;
pub mod redis;
mod steps;

pub(crate) use steps::{Revoking, bind, unbind, unbind_with_instance, undo_after_bind};

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::catalog::{Alphabet, BindingUsers, DbEngine, SecretSpec};
use crate::template;

/// Where and as whom the broker connects to an instance's database.
#[derive(Clone)]
pub struct Target {
    /// Which server.
    pub(crate) engine: DbEngine,
    /// Host name or address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// The administrator.
    pub(crate) admin_user: String,
    /// Its password.
    pub(crate) admin_password: String,
    /// The database binding users are granted (SQL engines).
    pub(crate) database: Option<String>,
    /// How long connecting may take before the server counts as unreachable.
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_user", &self.admin_user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// `host:port`, for messages.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The database, which resolution guarantees for SQL engines.
    pub(crate) fn database(&self) -> Result<&str, DbError> {
        self.database
            .as_deref()
            .ok_or_else(|| DbError::Failed("no database configured".into()))
    }
}

/// A database user and its password.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password.
    pub(crate) password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a database operation failed. The variants say how far it got, which
/// decides what a failed bind may have left behind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// No session could be opened (DNS, refused, timeout): nothing ran. The
    /// plan may fall back to the shared user.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered but refused the administrator's session
    /// (authentication): nothing ran.
    #[error("{0}")]
    Refused(String),
    /// A statement failed, or the session broke after it opened: part of
    /// the work may have been done.
    #[error("{0}")]
    Failed(String),
}

/// An error while opening the session: nothing ran, whatever it was.
pub(crate) fn at_login(e: DbError) -> DbError {
    match e {
        DbError::Failed(m) => DbError::Refused(m),
        other => other,
    }
}

/// An error once the session was open: a broken connection is no proof
/// that the statement did not run.
pub(crate) fn midway(e: DbError) -> DbError {
    match e {
        DbError::Unreachable(m) => DbError::Failed(format!("the connection broke: {m}")),
        other => other,
    }
}

/// Creates and drops users in a database server. Both must be idempotent:
/// a resumed operation runs them again.
#[async_trait]
pub trait UserAdmin: Send + Sync + 'static {
    /// Creates `user` (or resets its password and privileges if it exists).
    async fn create(&self, target: &Target, user: &User) -> Result<(), DbError>;
    /// Ends the user's sessions and drops it; succeeds if it does not exist.
    async fn drop_user(&self, target: &Target, username: &str) -> Result<(), DbError>;
}

/// The real servers, one module per engine.
pub struct Servers;

#[async_trait]
impl UserAdmin for Servers {
    async fn create(&self, target: &Target, user: &User) -> Result<(), DbError> {
        match target.engine {
            DbEngine::Mysql => mysql::create(target, user).await,
            DbEngine::Postgresql => postgres::create(target, user).await,
            DbEngine::Redis => redis::create(target, user).await,
        }
    }

    async fn drop_user(&self, target: &Target, username: &str) -> Result<(), DbError> {
        match target.engine {
            DbEngine::Mysql => mysql::drop_user(target, username).await,
            DbEngine::Postgresql => postgres::drop_user(target, username).await,
            DbEngine::Redis => redis::drop_user(target, username).await,
        }
    }
}

/// The name of a binding's user: derived from the ids, so a resumed
/// operation finds the user it created before its crash. 27 characters of
/// `[a-z0-9_]`, within every engine's limit (MySQL 8: 32) and safe in any
/// quoting.
pub(crate) fn user_name(instance_id: &str, binding_id: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        // Length-prefixed: ids may contain the separator.
        format!("{}:{instance_id}/{binding_id}", instance_id.len()).as_bytes(),
    );
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("cb_{hex}")
}

/// A fresh password: 32 alphanumerics (about 190 bits), which no engine's
/// quoting or URI syntax needs to escape.
pub(crate) fn new_password() -> String {
    crate::broker::secrets::generate(&SecretSpec {
        length: 32,
        alphabet: Alphabet::Alphanumeric,
    })
}

/// Renders one template of the section over the instance's data.
fn render(what: &str, source: &str, data: &Value) -> Result<String, String> {
    let out = template::render_tree(&Value::String(source.to_string()), data)
        .map_err(|e| format!("binding_users.{what}: {e}"))?;
    let s = match out {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if s.is_empty() {
        return Err(format!("binding_users.{what} renders empty"));
    }
    Ok(s)
}

/// Where the plan's database is for this instance: the section's templates
/// rendered over `data` (what values templates see), defaulting to the
/// release's Service by cluster DNS and the engine's port and admin.
pub(crate) fn resolve(spec: &BindingUsers, data: &Value) -> Result<Target, String> {
    let host = match &spec.admin.host {
        Some(t) => render("admin.host", t, data)?,
        None => render(
            "admin.host",
            "{{instance.release}}.{{instance.namespace}}.svc.cluster.local",
            data,
        )?,
    };
    let port = match &spec.admin.port {
        None => spec.engine.default_port(),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("binding_users.admin.port: {n} is not a port"))?,
        Some(Value::String(t)) => {
            let s = render("admin.port", t, data)?;
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("binding_users.admin.port: {s:?} is not a port"))?
        }
        Some(other) => return Err(format!("binding_users.admin.port: {other} is not a port")),
    };
    let admin_user = match &spec.admin.username {
        Some(t) => render("admin.username", t, data)?,
        None => spec.engine.default_admin().to_string(),
    };
    let admin_password = render("admin.password", &spec.admin.password, data)?;
    let database = match (&spec.database, spec.engine.has_databases()) {
        (Some(t), true) => Some(render("database", t, data)?),
        (None, true) => return Err("binding_users.database is not set".into()),
        (_, false) => None,
    };
    Ok(Target {
        engine: spec.engine,
        host,
        port,
        admin_user,
        admin_password,
        database,
        connect_timeout: spec.connect_timeout_seconds.0,
    })
}

/// The plan's shared user, rendered.
fn shared_user(spec: &BindingUsers, data: &Value) -> Result<Option<User>, String> {
    spec.shared
        .as_ref()
        .map(|s| {
            Ok(User {
                username: render("shared.username", &s.username, data)?,
                password: render("shared.password", &s.password, data)?,
            })
        })
        .transpose()
}

fn secrets_of(target: &Target, user: Option<&User>, also: &[String]) -> Vec<String> {
    let mut out = also.to_vec();
    out.push(target.admin_password.clone());
    out.extend(user.map(|u| u.password.clone()));
    out
}

/// Whether any string in `tree` contains `needle`.
fn mentions(tree: &Value, needle: &str) -> bool {
    template::string_leaves(tree)
        .iter()
        .any(|(_, s)| s.contains(needle))
}

/// A connection attempt that outlived `connect_timeout_seconds`: the server
/// counts as unreachable (a silently dropped SYN never errors by itself).
pub(crate) fn timeout(target: &Target) -> DbError {
    DbError::Unreachable(format!(
        "no connection within {} s",
        target.connect_timeout.as_secs()
    ))
}

#[cfg(test)]
mod tests;
