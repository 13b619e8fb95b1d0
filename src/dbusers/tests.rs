use serde_json::json;

use super::*;

fn spec(yaml: &str) -> BindingUsers {
    serde_saphyr::from_str(yaml).unwrap()
}

fn data() -> Value {
    json!({
        "instance": {"id": "i-1", "release": "cb-db1", "namespace": "apps"},
        "parameters": {"database": "shop", "port": 13306},
        "secrets": {"root_password": "r00t-Secret"},
    })
}

#[test]
fn user_names_are_derived_from_the_binding_and_safe_everywhere() {
    let a = user_name("i-1", "b-1");
    assert_eq!(
        a,
        user_name("i-1", "b-1"),
        "a resumed bind finds the same user"
    );
    assert_ne!(a, user_name("i-1", "b-2"));
    // The same binding id under another instance is another user.
    assert_ne!(a, user_name("i-2", "b-1"));
    // "i-1/b" + "-1" must not collide with "i-1" + "/b-1" style splits.
    assert_ne!(user_name("i-1/b", "1"), user_name("i-1", "b/1"));
    assert_eq!(a.len(), 27);
    assert!(a.len() <= 32, "MySQL 8 limits user names to 32 characters");
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    );
}

#[test]
fn passwords_are_fresh_and_need_no_escaping() {
    let (a, b) = (new_password(), new_password());
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn the_default_endpoint_is_the_release_service_by_cluster_dns() {
    let t = resolve(
        &spec("engine: mysql\nadmin: {password: \"{{secrets.root_password}}\"}\ndatabase: \"{{parameters.database}}\"\n"),
        &data(),
    )
    .unwrap();
    assert_eq!(t.host, "cb-db1.apps.svc.cluster.local");
    assert_eq!(t.port, 3306);
    assert_eq!(t.admin_user, "root");
    assert_eq!(t.admin_password, "r00t-Secret");
    assert_eq!(t.database.as_deref(), Some("shop"));
    assert_eq!(t.connect_timeout, Duration::from_secs(5));
    let pg = resolve(
        &spec("engine: postgresql\nadmin: {password: x}\ndatabase: d\n"),
        &data(),
    )
    .unwrap();
    assert_eq!((pg.port, pg.admin_user.as_str()), (5432, "postgres"));
    let r = resolve(&spec("engine: redis\nadmin: {password: x}\n"), &data()).unwrap();
    assert_eq!(
        (r.port, r.admin_user.as_str(), r.database),
        (6379, "default", None)
    );
}

#[test]
fn a_template_points_the_endpoint_elsewhere() {
    let t = resolve(
        &spec(
            "engine: mysql\nadmin: {host: 127.0.0.1, port: \"{{parameters.port}}\", username: \"admin_{{instance.id}}\", password: p}\ndatabase: d\nconnect_timeout_seconds: 2\n",
        ),
        &data(),
    )
    .unwrap();
    assert_eq!(t.address(), "127.0.0.1:13306");
    assert_eq!(t.admin_user, "admin_i-1");
    assert_eq!(t.connect_timeout, Duration::from_secs(2));
    let v6 = resolve(
        &spec("engine: redis\nadmin: {host: \"::1\", port: 7000, password: p}\n"),
        &data(),
    )
    .unwrap();
    assert_eq!(v6.address(), "[::1]:7000");
}

#[test]
fn a_bad_endpoint_is_a_clear_error() {
    let e = resolve(
        &spec(
            "engine: mysql\nadmin: {port: \"{{parameters.database}}\", password: p}\ndatabase: d\n",
        ),
        &data(),
    )
    .unwrap_err();
    assert!(e.contains("admin.port") && e.contains("shop"), "{e}");
    let e = resolve(
        &spec("engine: mysql\nadmin: {password: \"{{secrets.missing}}\"}\ndatabase: d\n"),
        &data(),
    )
    .unwrap_err();
    assert!(e.contains("admin.password"), "{e}");
}

#[test]
fn debug_output_never_shows_passwords() {
    let t = resolve(
        &spec("engine: mysql\nadmin: {password: \"{{secrets.root_password}}\"}\ndatabase: d\n"),
        &data(),
    )
    .unwrap();
    let user = User {
        username: "u".into(),
        password: "hunter2-pass".into(),
    };
    let shown = format!("{t:?} {user:?}");
    assert!(
        !shown.contains("r00t-Secret") && !shown.contains("hunter2-pass"),
        "{shown}"
    );
    let s = spec(
        "engine: redis\nadmin: {password: literal-admin-pw}\nshared: {username: u, password: literal-shared-pw}\n",
    );
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("literal-admin-pw") && !shown.contains("literal-shared-pw"),
        "{shown}"
    );
}

#[test]
fn sql_quoting_survives_hostile_names() {
    assert_eq!(mysql::literal("it's").unwrap(), "'it''s'");
    assert!(mysql::literal("a\\' OR 1=1 -- ").is_err());
    assert!(mysql::literal("nul\0").is_err());
    assert_eq!(mysql::identifier("we`ird").unwrap(), "`we``ird`");
    assert!(mysql::identifier("").is_err());
    // GRANT treats `_` and `%` as wildcards: escaped, a_b grants only a_b.
    assert_eq!(mysql::grant_pattern("a_b%").unwrap(), "`a\\_b\\%`");
    assert_eq!(
        postgres::identifier("x\"; DROP ROLE postgres; --").unwrap(),
        "\"x\"\"; DROP ROLE postgres; --\""
    );
    assert_eq!(postgres::literal("o'k").unwrap(), "'o''k'");
    assert!(postgres::literal("\\").is_err());
    assert_ne!(postgres::group_name("a"), postgres::group_name("b"));
    assert!(postgres::group_name("a").len() <= 63);
}

/// A server that fails every call with an error quoting its secrets: the
/// admin password whole, in base64 and reversed, and the new user's.
struct Leaky(fn(String) -> DbError);

#[async_trait]
impl UserAdmin for Leaky {
    async fn create(&self, target: &Target, user: &User) -> Result<(), DbError> {
        use base64::Engine as _;
        let pw = &target.admin_password;
        let b64 = base64::engine::general_purpose::STANDARD.encode(pw);
        let reversed: String = pw.chars().rev().collect();
        Err((self.0)(format!(
            "login {pw} ({b64}, {reversed}) for [{}] refused",
            user.password
        )))
    }
    async fn drop_user(&self, target: &Target, _username: &str) -> Result<(), DbError> {
        Err((self.0)(format!("no: {}", target.admin_password)))
    }
}

#[tokio::test]
async fn a_database_error_quoting_a_secret_reaches_no_message() {
    let spec =
        spec("engine: mysql\nadmin: {password: \"{{secrets.root_password}}\"}\ndatabase: d\n");
    let also = vec!["r00t-Secret".to_string()];
    for (fail, server) in [
        (DbError::Unreachable as fn(String) -> DbError, false),
        (DbError::Refused, true),
        (DbError::Failed, true),
    ] {
        let e = bind(&Leaky(fail), &spec, &data(), ("i-1", "b-1"), &also)
            .await
            .unwrap_err();
        let m = &e.message;
        assert!(m.contains("login <redacted> (<redacted>,"), "{m}");
        assert!(
            m.contains("for [<redacted>]"),
            "the new user's password: {m}"
        );
        assert!(
            !m.contains("r00t-Secret") && !m.contains("cjAwdC1TZWNyZXQ="),
            "{m}"
        );
        // The server's own words may rearrange what it was sent: they get
        // the chart-text redactor (a local network error can't).
        if server {
            assert!(!m.contains("terceS-t00r"), "{m}");
        }
    }
}
