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
//! - `mod.rs`: the [`UserAdmin`] port, endpoint resolution, names, the
//!   bind/unbind steps chart plans call.
//! - [`mysql`], [`postgres`], [`redis`]: one engine each (sqlx, redis-rs).

pub mod mysql;
pub mod postgres;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::broker::model::Secrets;
use crate::broker::ports::BackendError;
use crate::catalog::{Alphabet, BindingUsers, DbEngine, SecretSpec};
use crate::helm::redact;
use crate::template;

/// Where and as whom the broker connects to an instance's database.
#[derive(Clone)]
pub struct Target {
    /// Which server.
    pub engine: DbEngine,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The administrator.
    pub admin_user: String,
    /// Its password.
    pub admin_password: String,
    /// The database binding users are granted (SQL engines).
    pub database: Option<String>,
    /// How long connecting may take before the server counts as unreachable.
    pub connect_timeout: Duration,
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
    pub fn address(&self) -> String {
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
    pub password: String,
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
pub fn user_name(instance_id: &str, binding_id: &str) -> String {
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
pub fn new_password() -> String {
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
pub fn resolve(spec: &BindingUsers, data: &Value) -> Result<Target, String> {
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

/// Bind: creates the binding's own user and returns it, or the shared user
/// when the database is unreachable and the plan falls back. `redact` lists
/// the instance's secrets, kept out of messages. A failure says whether it
/// left nothing behind ([`BackendError::left_nothing`]): true when no
/// statement ran, or when the broker dropped the partly created user again.
pub async fn bind(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    redact_also: &[String],
) -> Result<User, BackendError> {
    let target = resolve(spec, data).map_err(|e| BackendError::new(e).leaving_nothing())?;
    let user = User {
        username: user_name(ids.0, ids.1),
        password: new_password(),
    };
    let secrets = secrets_of(&target, Some(&user), redact_also);
    let what = format!(
        "the {} database at {}",
        target.engine.display_name(),
        target.address()
    );
    match admin.create(&target, &user).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %user.username,
                database = %target.address(), "created the binding's database user");
            Ok(user)
        }
        Err(DbError::Unreachable(e)) if spec.fallback_to_shared => {
            let shared = shared_user(spec, data)
                .map_err(BackendError::new)?
                .ok_or_else(|| BackendError::new("binding_users.shared is not set"))?;
            tracing::warn!(instance = %ids.0, binding = %ids.1, database = %target.address(),
                error = %redact(&e, &secrets),
                "the database is unreachable: this binding gets the shared user (fallback_to_shared)");
            Ok(shared)
        }
        Err(DbError::Unreachable(e)) => Err(BackendError::new(redact(
            &format!(
                "could not reach {what} to create this binding's user: {e}; no user was created"
            ),
            &secrets,
        ))
        .leaving_nothing()),
        Err(DbError::Refused(e)) => Err(BackendError::new(redact(
            &format!(
                "{what} refused the broker's administrator login to create this binding's user: {e}; no user was created"
            ),
            &secrets,
        ))
        .leaving_nothing()),
        Err(DbError::Failed(e)) => {
            let why = format!("creating this binding's user in {what}: {e}");
            Err(undo_bind(admin, &target, ids, BackendError::new(redact(&why, &secrets))).await)
        }
    }
}

/// Orphan mitigation on the broker's side: a bind that fails after its
/// user may have been created drops the user before it answers, so no user
/// stays that no binding accounts for. `why` is the bind's failure; the
/// answer says whether anything is left.
pub async fn undo_bind(
    admin: &dyn UserAdmin,
    target: &Target,
    ids: (&str, &str),
    why: BackendError,
) -> BackendError {
    let username = user_name(ids.0, ids.1);
    let secrets = secrets_of(target, None, &[]);
    match admin.drop_user(target, &username).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %username,
                "the bind failed: dropped the binding's database user again");
            BackendError::new(format!(
                "{}; the broker dropped the binding's user {username} again, so nothing is left",
                why.message
            ))
            .leaving_nothing()
        }
        Err(e) => BackendError::new(redact(
            &format!(
                "{}; the binding's user {username} may exist in the {} database at {} and could not be dropped ({e}): unbinding this binding drops it",
                why.message,
                target.engine.display_name(),
                target.address()
            ),
            &secrets,
        )),
    }
}

/// [`undo_bind`] for a bind that failed after [`bind`] returned the user
/// (its credentials could not be rendered or delivered).
pub async fn undo_after_bind(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    why: BackendError,
) -> BackendError {
    match resolve(spec, data) {
        Ok(target) => undo_bind(admin, &target, ids, why).await,
        Err(_) => why,
    }
}

/// Unbind: drops the binding's user. A binding that fell back to the shared
/// user (its credentials never named its own) needs nothing revoked when the
/// database is still unreachable. A failure says what is still there and
/// that a retry finishes it.
pub async fn unbind(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    credentials: &Secrets,
    redact_also: &[String],
) -> Result<(), BackendError> {
    let target = resolve(spec, data).map_err(BackendError::new)?;
    let username = user_name(ids.0, ids.1);
    let secrets = secrets_of(&target, None, redact_also);
    let named = mentions(&credentials.to_value(), &username);
    match admin.drop_user(&target, &username).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %username,
                "dropped the binding's database user");
            Ok(())
        }
        Err(DbError::Unreachable(_)) if spec.fallback_to_shared && !named => Ok(()),
        Err(e) => Err(BackendError::new(redact(
            &format!(
                "{}. The user {} there; a retry finishes it once the database answers again{}",
                drop_failed(&target, &username, &e),
                if named { "is still" } else { "may still be" },
                if spec.database_in_release() {
                    ", and deprovisioning the instance removes it with the database"
                } else {
                    ""
                },
            ),
            &secrets,
        ))),
    }
}

/// Drops a binding's user because its instance is being deprovisioned.
/// When the database runs inside the release ([`BindingUsers::database_in_release`]),
/// uninstalling the release deletes it with every user, so a user that
/// can't be dropped now needs no dropping: the answer is then a note for
/// the operation's description instead of a failure.
pub async fn unbind_with_instance(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    credentials: &Secrets,
    redact_also: &[String],
) -> Result<Option<String>, BackendError> {
    let Err(e) = unbind(admin, spec, data, ids, credentials, redact_also).await else {
        return Ok(None);
    };
    if !spec.database_in_release() {
        return Err(e);
    }
    let target = resolve(spec, data).map_err(BackendError::new)?;
    tracing::info!(instance = %ids.0, binding = %ids.1, error = %e.message,
        "the binding's user was not dropped: its database goes away with the release");
    Ok(Some(format!(
        "binding users were not dropped in the {} database at {} (it did not answer), and need no dropping: the database is deleted with the release",
        target.engine.display_name(),
        target.address()
    )))
}

fn drop_failed(target: &Target, username: &str, e: &DbError) -> String {
    let at = format!(
        "the {} database at {}",
        target.engine.display_name(),
        target.address()
    );
    match e {
        DbError::Unreachable(e) => {
            format!("could not reach {at} to drop this binding's user {username}: {e}")
        }
        DbError::Refused(e) => format!(
            "{at} refused the broker's administrator login to drop this binding's user {username}: {e}"
        ),
        DbError::Failed(e) => format!("dropping this binding's user {username} in {at}: {e}"),
    }
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
