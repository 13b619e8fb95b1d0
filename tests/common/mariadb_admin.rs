//! The one question the delete suites ask of a MariaDB started by
//! [`super::databases::mariadb_with_app`]: is a binding's user still there?

use sqlx::Connection as _;

/// A root connection to the MariaDB on `port` (`password`: None before
/// one is set).
async fn root(port: u16, password: Option<&str>) -> sqlx::MySqlConnection {
    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("root");
    if let Some(p) = password {
        opts = opts.password(p);
    }
    sqlx::MySqlConnection::connect_with(&opts).await.unwrap()
}

/// Whether `user` exists on the MariaDB at `port`, asked as root.
pub async fn mariadb_user_exists(port: u16, root_password: &str, user: &str) -> bool {
    let mut con = root(port, Some(root_password)).await;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT CAST(User AS CHAR) FROM mysql.user WHERE User = ?")
            .bind(user)
            .fetch_all(&mut con)
            .await
            .unwrap();
    !rows.is_empty()
}
