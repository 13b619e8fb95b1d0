//! Redis ACL users (Redis 6+). Commands go as separate arguments, so nothing
//! is ever parsed out of a spliced string.
//!
//! Privileges: every key and channel, every command except the `@admin`
//! category (ACL, CONFIG, SHUTDOWN, REPLICAOF, DEBUG, MONITOR, ...).

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError};

use super::{DbError, Target, User, at_login, midway, timeout};

/// The rules a binding user gets after `reset`.
const RULES: &[&str] = &["on", "~*", "&*", "+@all", "-@admin"];

/// Connects as `username` (no username: the `default` user).
pub async fn connect(
    host: &str,
    port: u16,
    username: &str,
    password: &str,
    limit: std::time::Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let info = ConnectionAddr::Tcp(host.to_string(), port)
        .into_connection_info()?
        .set_redis_settings(
            RedisConnectionInfo::default()
                .set_username(username)
                .set_password(password),
        );
    let client = redis::Client::open(info)?;
    match tokio::time::timeout(limit, client.get_multiplexed_async_connection()).await {
        Ok(r) => r,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ))),
    }
}

async fn admin(target: &Target) -> Result<MultiplexedConnection, DbError> {
    connect(
        &target.host,
        target.port,
        &target.admin_user,
        &target.admin_password,
        target.connect_timeout,
    )
    .await
    .map_err(|e| at_login(classify(target, e)))
}

fn classify(target: &Target, e: RedisError) -> DbError {
    if e.is_timeout() {
        timeout(target)
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        DbError::Unreachable(e.to_string())
    } else {
        DbError::Failed(e.to_string())
    }
}

/// `ACL SETUSER <name> reset on >password ...`: `reset` makes a repeat
/// leave exactly the rules below and only the new password.
pub(crate) async fn create(target: &Target, user: &User) -> Result<(), DbError> {
    let mut con = admin(target).await?;
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER")
        .arg(&user.username)
        .arg("reset")
        .arg(format!(">{}", user.password));
    for rule in RULES {
        cmd.arg(*rule);
    }
    cmd.query_async::<()>(&mut con)
        .await
        .map_err(|e| midway(classify(target, e)))?;
    persist(&mut con).await;
    Ok(())
}

/// `ACL DELUSER` disconnects the user's clients itself; `CLIENT KILL USER`
/// first covers servers that would not.
pub(crate) async fn drop_user(target: &Target, username: &str) -> Result<(), DbError> {
    let mut con = admin(target).await?;
    let _: Result<(), _> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(username)
        .query_async::<i64>(&mut con)
        .await
        .map(|_| ());
    redis::cmd("ACL")
        .arg("DELUSER")
        .arg(username)
        .query_async::<i64>(&mut con)
        .await
        .map_err(|e| midway(classify(target, e)))?;
    persist(&mut con).await;
    Ok(())
}

/// ACL users live in memory: write them where the server keeps its
/// configuration, an ACL file if it has one, else its config file. A server
/// with neither keeps them until it restarts (README, per-binding users).
async fn persist(con: &mut MultiplexedConnection) {
    if redis::cmd("ACL")
        .arg("SAVE")
        .query_async::<()>(con)
        .await
        .is_ok()
    {
        return;
    }
    if let Err(e) = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query_async::<()>(con)
        .await
    {
        tracing::debug!(error = %e, "redis keeps ACL users in memory only");
    }
}
