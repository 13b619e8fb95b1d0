//! MySQL 8 / MariaDB users. Account names and passwords are SQL string
//! literals and the database an identifier: both quoted here, never spliced
//! raw, and refused when they hold characters quoting can't make safe in
//! every SQL mode.
//!
//! Privileges: `ALL PRIVILEGES` on the instance's database (its `_` and `%`
//! escaped, so `a_b` does not also grant `axb`), no `GRANT OPTION`, nothing
//! global.

use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Row};

use super::{DbError, Target, User, at_login, midway, timeout};

/// Opens a session, mapping connection failures to [`DbError::Unreachable`].
pub(crate) async fn connect(target: &Target) -> Result<MySqlConnection, DbError> {
    let opts = MySqlConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.admin_user)
        .password(&target.admin_password);
    match tokio::time::timeout(target.connect_timeout, MySqlConnection::connect_with(&opts)).await {
        Ok(r) => r.map_err(|e| at_login(classify(e))),
        Err(_) => Err(timeout(target)),
    }
}

/// Network-level failures mean the server was not reached.
pub(crate) fn classify(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            DbError::Unreachable(e.to_string())
        }
        other => DbError::Failed(other.to_string()),
    }
}

/// `'text'`: quotes doubled. Backslashes and NULs are refused: whether a
/// backslash escapes depends on the server's `NO_BACKSLASH_ESCAPES` mode.
pub(crate) fn literal(s: &str) -> Result<String, DbError> {
    if s.contains(['\\', '\0']) {
        return Err(DbError::Failed(
            "a user name or password contains a backslash or NUL".into(),
        ));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// `` `name` ``: backticks doubled; NULs refused.
pub(crate) fn identifier(s: &str) -> Result<String, DbError> {
    if s.is_empty() || s.contains('\0') {
        return Err(DbError::Failed(
            "an empty or NUL-containing identifier".into(),
        ));
    }
    Ok(format!("`{}`", s.replace('`', "``")))
}

/// A database name as a GRANT pattern: `_` and `%` are wildcards there.
pub(crate) fn grant_pattern(database: &str) -> Result<String, DbError> {
    if database.contains('\\') {
        return Err(DbError::Failed(
            "the database name contains a backslash".into(),
        ));
    }
    identifier(&database.replace('_', "\\_").replace('%', "\\%"))
}

fn account(username: &str) -> Result<String, DbError> {
    Ok(format!("{}@'%'", literal(username)?))
}

/// Runs one statement over the text protocol. Boxed: sqlx's generic
/// executor futures otherwise fail rustc's higher-ranked `Send` check.
fn exec(con: &mut MySqlConnection, sql: String) -> BoxFuture<'_, Result<(), DbError>> {
    Box::pin(async move {
        sqlx::Executor::execute(con, sql.as_str())
            .await
            .map_err(classify)?;
        Ok(())
    })
}

fn session_ids<'c>(
    con: &'c mut MySqlConnection,
    username: &'c str,
) -> BoxFuture<'c, Result<Vec<u64>, DbError>> {
    Box::pin(async move {
        let rows = sqlx::query(
            "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?",
        )
        .bind(username)
        .fetch_all(con)
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|r| r.try_get::<u64, _>(0).map_err(classify))
            .collect()
    })
}

/// Creates the account, or resets its password and grants if it exists.
pub(crate) async fn create(target: &Target, user: &User) -> Result<(), DbError> {
    let database = grant_pattern(target.database()?)?;
    let account = account(&user.username)?;
    let password = literal(&user.password)?;
    let mut con = connect(target).await?;
    async {
        exec(
            &mut con,
            format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password}"),
        )
        .await?;
        // A user left by a crashed attempt had a password nobody kept.
        exec(
            &mut con,
            format!("ALTER USER {account} IDENTIFIED BY {password}"),
        )
        .await?;
        exec(
            &mut con,
            format!("GRANT ALL PRIVILEGES ON {database}.* TO {account}"),
        )
        .await
    }
    .await
    .map_err(midway)?;
    con.close().await.ok();
    Ok(())
}

/// Drops the account, then ends its sessions (dropping first, so none can
/// start in between).
pub(crate) async fn drop_user(target: &Target, username: &str) -> Result<(), DbError> {
    let account = account(username)?;
    let mut con = connect(target).await?;
    exec(&mut con, format!("DROP USER IF EXISTS {account}"))
        .await
        .map_err(midway)?;
    for id in session_ids(&mut con, username).await.map_err(midway)? {
        // The session may have ended on its own meanwhile.
        if let Err(e) = exec(&mut con, format!("KILL {id}")).await {
            tracing::debug!(error = %e, "ending a dropped user's session");
        }
    }
    con.close().await.ok();
    Ok(())
}
