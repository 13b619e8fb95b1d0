use super::*;

#[async_trait]
impl AsyncCheck for Succeeds {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        bed.deletes_leaving_nothing(how, cell, server).await;
    }
}

/// Database down: a deprovision succeeds (the database goes with the
/// release) and says why no user was dropped; an unbind fails, naming the
/// user still there, until the database is back.
pub struct DownChecks;

#[async_trait]
impl AsyncCheck for DownChecks {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        let seen = bed.delete(how).await;
        if !how.unbinds() {
            let d = seen.assert_succeeded(cell);
            let lo = bed
                .b
                .call(Method::GET, "/v2/service_instances/i1/last_operation", None)
                .await;
            assert_eq!(lo.json["state"], "succeeded", "{cell}: {}", lo.text);
            let d = if d.is_empty() {
                lo.json["description"].as_str().unwrap().to_string()
            } else {
                d
            };
            assert!(
                d.contains("need no dropping") && d.contains("deleted with the release"),
                "{cell}: {d}"
            );
            bed.assert_nothing_left(how, cell).await;
            return;
        }
        let d = seen.assert_failed(cell);
        assert!(
            d.contains(&bed.user) && d.contains("is still there"),
            "{cell}: {d}"
        );
        assert!(d.contains("a retry finishes it"), "{cell}: {d}");
        assert!(!d.contains(ROOT), "{cell}: no admin password in {d}");
        server.start();
        bed.deletes_leaving_nothing(how, cell, server).await;
    }
}

/// Killed mid-delete: a synchronous request sees a 500 (its broker died),
/// an asynchronous one its 202. The restarted broker finishes an
/// asynchronous operation: the platform's poll sees it succeed. A
/// synchronous delete's accept was never written (`src/broker/pending.rs`:
/// one durable write per synchronous delete), so the restarted broker finds
/// the record as it was, and the platform's retry runs the delete again
/// (each step is idempotent) and sees 200.
pub struct KilledChecks;

#[async_trait]
impl AsyncCheck for KilledChecks {
    async fn run(&self, cell: &str, how: Delete, server: &mut Server, bed: Bed) {
        // Not followed: the broker that accepted it dies.
        let answer = bed.b.send_delete(how, (SERVICE, PLAN), "i1", "b1").await;
        let op = if how.is_async() {
            assert_eq!(
                answer.status,
                StatusCode::ACCEPTED,
                "{cell}: {}",
                answer.text
            );
            answer.json["operation"].as_str().map(str::to_string)
        } else {
            Seen {
                answer,
                polled: None,
            }
            .assert_failed(cell);
            None
        };
        let Bed { b, cfg, user } = bed;
        let b = b.restart(&cfg).await;
        let bed = Bed { b, cfg, user };
        match op {
            Some(op) => {
                let polled = if how.unbinds() {
                    bed.b.wait_binding("i1", "b1", &op).await
                } else {
                    bed.b.wait_instance("i1", &op).await
                };
                common::assert_delete_done(&polled);
            }
            None => {
                let answer = bed.delete(how).await.answer;
                assert_eq!(answer.status, StatusCode::OK, "{cell}: {}", answer.text);
            }
        }
        bed.assert_nothing_left(how, cell).await;
        assert!(
            !user_exists(server, &bed.user).await,
            "{cell}: the user is left"
        );
    }
}

/// The catalog of [`write_catalog`] on PostgreSQL or Redis: the chart's own
/// database with a user per binding, the test server as its admin endpoint.
pub fn write_engine_catalog(dir: &Path, engine: &str, server: &Server) {
    let (values, database) = match engine {
        "postgresql" => (
            r#"{auth: {postgresPassword: "{{secrets.root_password}}", username: app, password: "{{secrets.user_password}}", database: shop}}"#,
            "database: shop",
        ),
        _ => (r#"{auth: {password: "{{secrets.root_password}}"}}"#, ""),
    };
    let yaml = format!(
        r#"services:
  - id: {SERVICE}
    name: del
    description: d
    bindable: true
    plans:
      - id: {PLAN}
        name: users
        description: {engine} with a user per binding
        bindable: true
{chart}          credentials: {{username: "{{{{user.username}}}}", password: "{{{{user.password}}}}"}}
"#,
        chart = databases::binding_users_chart(
            (engine, values),
            (engine, server.port, &server.admin_password),
            (database, ""),
            true,
        ),
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("del.yaml"), yaml).unwrap();
}

/// Whether the binding's user can log in to `server` (so it exists).
pub async fn engine_login(engine: &str, server: &Server, user: &str, password: &str) -> bool {
    if engine == "postgresql" {
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(server.port)
            .username(user)
            .password(password)
            .database("shop");
        return sqlx::PgConnection::connect_with(&opts).await.is_ok();
    }
    let timeout = std::time::Duration::from_secs(5);
    chartbroker::dbusers::redis::connect("127.0.0.1", server.port, user, password, timeout)
        .await
        .is_ok()
}

/// A [`Bed`] on PostgreSQL or Redis: one instance, one binding whose user
/// was created (it logs in).
pub async fn engine_bed(engine: &str, server: &Server) -> Bed {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = data.path().join("catalog");
    cfg.charts_dir = repo().join("charts");
    write_engine_catalog(&cfg.catalog_dir, engine, server);
    let b = TestBroker::with_users(data, &cfg, Arc::new(Servers)).await;
    let r = instance_and_binding(&b, engine).await;
    let creds = &r.json["credentials"];
    let user = creds["username"].as_str().unwrap().to_string();
    let password = creds["password"].as_str().unwrap();
    assert!(
        engine_login(engine, server, &user, password).await,
        "{engine}: the binding's user logs in"
    );
    Bed { b, cfg, user }
}
