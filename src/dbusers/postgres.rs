//! PostgreSQL roles. Role and database names are quoted identifiers and the
//! password a quoted literal, never spliced raw.
//!
//! Privileges: each binding role is a member of one NOLOGIN group role per
//! database (`cb_db_<hash>`) that holds `ALL` on the database, its `public`
//! schema and the tables and sequences in it, and logs in with `role` set to
//! that group, so what one binding creates belongs to the group and its
//! successor (rotation) can use it. Nothing else is granted.

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use super::{DbError, Target, User, at_login, midway, timeout};

/// Opens a session on `database`.
pub(crate) async fn connect(target: &Target, database: &str) -> Result<PgConnection, DbError> {
    let opts = PgConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.admin_user)
        .password(&target.admin_password)
        .database(database);
    match tokio::time::timeout(target.connect_timeout, PgConnection::connect_with(&opts)).await {
        Ok(r) => r.map_err(|e| at_login(super::mysql::classify(e))),
        Err(_) => Err(timeout(target)),
    }
}

/// `"name"`: quotes doubled; NULs refused.
pub(crate) fn identifier(s: &str) -> Result<String, DbError> {
    if s.is_empty() || s.contains('\0') {
        return Err(DbError::Failed(
            "an empty or NUL-containing identifier".into(),
        ));
    }
    Ok(format!("\"{}\"", s.replace('"', "\"\"")))
}

/// `'text'`: quotes doubled (standard-conforming strings, the default since
/// 9.1); backslashes and NULs refused rather than trusted to that setting.
pub(crate) fn literal(s: &str) -> Result<String, DbError> {
    if s.contains(['\\', '\0']) {
        return Err(DbError::Failed(
            "a password contains a backslash or NUL".into(),
        ));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// The group role of a database's binding users.
pub(crate) fn group_name(database: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, database.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("cb_db_{hex}")
}

/// Runs one statement over the simple-query protocol. Boxed: sqlx's
/// generic executor futures otherwise fail rustc's higher-ranked `Send`
/// check.
fn raw(con: &mut PgConnection, sql: String) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::Executor::execute(con, sql.as_str()).await.map(|_| ()) })
}

async fn exec(con: &mut PgConnection, sql: String) -> Result<(), DbError> {
    raw(con, sql).await.map_err(super::mysql::classify)
}

/// Runs a query with one text parameter and returns the first column of
/// its first row as a count.
fn count<'c>(
    con: &'c mut PgConnection,
    sql: &'static str,
    arg: &'c str,
) -> BoxFuture<'c, Result<i64, DbError>> {
    Box::pin(async move {
        let row = sqlx::query(sql)
            .bind(arg)
            .fetch_one(con)
            .await
            .map_err(super::mysql::classify)?;
        row.try_get::<i64, _>(0).map_err(super::mysql::classify)
    })
}

async fn role_exists(con: &mut PgConnection, name: &str) -> Result<bool, DbError> {
    Ok(count(
        con,
        "SELECT count(*) FROM pg_roles WHERE rolname = $1",
        name,
    )
    .await?
        > 0)
}

/// `CREATE ROLE` that tolerates a concurrent creator (42710).
async fn create_role(con: &mut PgConnection, name: &str, options: &str) -> Result<(), DbError> {
    if role_exists(con, name).await? {
        return Ok(());
    }
    match raw(con, format!("CREATE ROLE {} {options}", identifier(name)?)).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42710") => Ok(()),
        Err(e) => Err(super::mysql::classify(e)),
    }
}

/// Creates the role, or resets its password and membership if it exists.
pub(crate) async fn create(target: &Target, user: &User) -> Result<(), DbError> {
    let database = target.database()?.to_string();
    let mut con = connect(target, &database).await?;
    create_in(&mut con, &database, user).await.map_err(midway)?;
    con.close().await.ok();
    Ok(())
}

async fn create_in(con: &mut PgConnection, database: &str, user: &User) -> Result<(), DbError> {
    let group = group_name(database);
    let (db, grp, role) = (
        identifier(database)?,
        identifier(&group)?,
        identifier(&user.username)?,
    );
    let password = literal(&user.password)?;
    create_role(con, &group, "NOLOGIN").await?;
    for grant in [
        format!("GRANT ALL PRIVILEGES ON DATABASE {db} TO {grp}"),
        format!("GRANT ALL ON SCHEMA public TO {grp}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {grp}"),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {grp}"),
    ] {
        exec(con, grant).await?;
    }
    create_role(con, &user.username, "NOLOGIN").await?;
    // A role left by a crashed attempt had a password nobody kept.
    exec(
        con,
        format!("ALTER ROLE {role} WITH LOGIN PASSWORD {password}"),
    )
    .await?;
    exec(con, format!("GRANT {grp} TO {role}")).await?;
    exec(
        con,
        format!("ALTER ROLE {role} SET role = {}", literal(&group)?),
    )
    .await
}

/// Refuses new logins, ends the role's sessions, hands what it owns to the
/// group and drops it.
pub(crate) async fn drop_user(target: &Target, username: &str) -> Result<(), DbError> {
    let database = target.database()?.to_string();
    identifier(username)?;
    let mut con = connect(target, &database).await?;
    drop_in(&mut con, &database, username)
        .await
        .map_err(midway)?;
    con.close().await.ok();
    Ok(())
}

async fn drop_in(con: &mut PgConnection, database: &str, username: &str) -> Result<(), DbError> {
    let group = group_name(database);
    let role = identifier(username)?;
    if !role_exists(con, username).await? {
        return Ok(());
    }
    exec(con, format!("ALTER ROLE {role} NOLOGIN")).await?;
    count(
        con,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
        username,
    )
    .await?;
    if role_exists(con, &group).await? {
        exec(
            con,
            format!("REASSIGN OWNED BY {role} TO {}", identifier(&group)?),
        )
        .await?;
    }
    exec(con, format!("DROP OWNED BY {role}")).await?;
    exec(con, format!("DROP ROLE IF EXISTS {role}")).await
}
