//! Charts from remote sources, pulled by the real helm: an HTTPS Helm
//! repository and a minimal OCI registry served by the test itself (TLS with
//! an rcgen CA), digests, provenance signed with a throwaway gpg key, the
//! cache, and every fetch failure ending in a failed operation. The render
//! engine needs no cluster; the helm engine installs a fetched chart into
//! the real API server of tests/testenv. Private sources: parts of the
//! test's repository demand Basic or Bearer credentials (401 with a
//! `WWW-Authenticate` challenge otherwise), and the private OCI registry is
//! the real CNCF distribution registry with htpasswd auth and TLS.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::chart_sources::*;
use common::cluster::Cluster;
use common::{assert_delete_done, provision_body, provision_body_in};

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_chart_is_fetched_once_then_cached() {
    let env = Env::start().await;
    let manifests = env.provision("r1", "repo").await;
    assert!(manifests.contains(MARK), "{manifests}");
    assert!(manifests.contains(r#""name":"cb-r1""#), "{manifests}");
    env.provision("r2", "repo").await;
    assert_eq!(env.server.hits("/stable/tiny-0.1.0.tgz"), 1);

    // Concurrent provisions of one chart download it once.
    let uris: Vec<String> = (0..4)
        .map(|i| format!("/v2/service_instances/c{i}"))
        .collect();
    let calls = uris.iter().map(|uri| {
        let body = provision_body("concurrent", json!({}));
        env.broker.call(Method::PUT, uri, Some(body))
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    assert_eq!(env.server.hits("/concurrent/tiny-0.1.0.tgz"), 1);
    assert_eq!(env.server.hits("/concurrent/index.yaml"), 1);

    let records = env.cache();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().any(|r| r["digest"] == sha256(&env.tgz)));

    // An update renders from the cache too.
    let r = env
        .broker
        .call(
            Method::PATCH,
            "/v2/service_instances/r1",
            Some(json!({"service_id": "svc-tiny", "parameters": {"message": "updated"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = env.broker.release_dir("r1").join("manifests.yaml");
    assert!(std::fs::read_to_string(path).unwrap().contains("updated"));
    assert_eq!(env.server.hits("/stable/tiny-0.1.0.tgz"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_fetch_failures_fail_the_operation() {
    let env = Env::start().await;
    let want: [&str; 1] = [r#"chart "tiny" version "9.9.9" not found"#];
    env.fails_naming("f1", "wrong-version", &want).await;

    let d = env.fails("f2", "bad-digest").await;
    let zeros = format!("sha256:{}", "0".repeat(64));
    assert!(d.contains("digest mismatch"), "{d}");
    assert!(d.contains(&zeros) && d.contains(&sha256(&env.tgz)), "{d}");

    let started = Instant::now();
    let d = env.fails("f3", "unreachable").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        d.contains("cannot be reached") && d.contains("connection refused"),
        "{d}"
    );

    let want: [&str; 1] = ["certificate signed by unknown authority"];
    env.fails_naming("f4", "no-ca", &want).await;

    // Nothing a failed fetch brought is kept; a plan pinned right still works.
    assert_eq!(env.cache(), Vec::<Value>::new());
    assert!(env.provision("ok", "repo").await.contains(MARK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_is_verified() {
    let env = Env::start().await;
    if env.keys.is_none() {
        return;
    }
    let manifests = env.provision("s1", "signed").await;
    assert!(manifests.contains(MARK), "{manifests}");
    assert_eq!(env.server.hits("/signed/tiny-0.1.0.tgz.prov"), 1);
    assert_eq!(env.cache()[0]["verified"], true);

    let want: [&str; 1] = ["signature made by unknown entity"];
    env.fails_naming("s2", "stranger", &want).await;
    let want: [&str; 1] = ["sha256 sum does not match"];
    env.fails_naming("s3", "tampered", &want).await;
    let want: [&str; 1] = ["tiny-0.1.0.tgz.prov"];
    env.fails_naming("s4", "unsigned", &want).await;
    assert_eq!(env.cache().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_registry_chart() {
    let env = Env::start().await;
    let manifests = env.provision("o1", "oci").await;
    assert!(manifests.contains(MARK), "{manifests}");
    env.provision("o2", "oci").await;
    let blob = format!("/v2/charts/tiny/blobs/{}", sha256(&env.tgz));
    assert_eq!(env.server.hits(&blob), 1);

    let want: [&str; 2] = ["charts/tiny:0.2.0", "not found"];
    env.fails_naming("o3", "oci-wrong-version", &want).await;
    let want: [&str; 2] = ["digest mismatch", &sha256(&env.tgz)];
    env.fails_naming("o4", "oci-bad-digest", &want).await;

    if env.keys.is_some() {
        assert!(env.provision("o5", "oci-signed").await.contains(MARK));
        let want: [&str; 1] = ["signature made by unknown entity"];
        let d = env.fails_naming("o6", "oci-stranger", &want).await;
        assert!(!d.contains("Pulled:"), "only helm's error: {d}");
        let want: [&str; 1] = ["provenance"];
        env.fails_naming("o7", "oci-unsigned", &want).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_command_fetches_remote_charts() {
    let env = Env::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["render", "--service", "tiny", "--plan", "repo"])
        .args(env.broker_args())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(MARK), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_engine_installs_a_remote_chart() {
    let k = Cluster::admin().await;
    let (id, ns) = k.broker_and_target("apps").await;
    let env = Env::start_with(Some(&id)).await;
    let b = &env.broker;
    let done = b
        .run(
            Method::PUT,
            "/v2/service_instances/h1?accepts_incomplete=true",
            Some(provision_body_in("repo", &ns, json!({}))),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/cb-h1");
    let cm = k
        .get(&cm_path)
        .await
        .expect("the release's ConfigMap exists");
    assert_eq!(cm["data"]["message"], MARK);

    // Uninstalling needs no chart: the source gone, the cache emptied.
    env.server.files.lock().unwrap().clear();
    std::fs::remove_dir_all(b.data.path().join("charts")).unwrap();
    let r = b
        .run(
            Method::DELETE,
            "/v2/service_instances/h1?accepts_incomplete=true&service_id=svc-tiny&plan_id=repo",
            None,
        )
        .await;
    assert_delete_done(&r);
    assert!(k.get(&cm_path).await.is_none());
    assert_eq!(env.server.hits("/stable/tiny-0.1.0.tgz"), 1);
}

/// A row of the delete fault matrix (README "Deleting whatever broke"):
/// the chart source can't deliver the chart any more (the repository
/// answers 404 for everything, the broker's cache is emptied). Unbind and
/// deprovision, sync and async, succeed without asking it, and leave
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_need_no_chart_source() {
    let env = Env::start().await;
    env.bound_instances("gone", "repo-bound").await;
    let hits = env.server.hits("/stable/tiny-0.1.0.tgz") + env.server.hits("/stable/index.yaml");
    env.server.files.lock().unwrap().clear();
    std::fs::remove_dir_all(env.broker.data.path().join("charts")).unwrap();
    env.deletes_succeed("gone", "repo-bound", "source gone")
        .await;
    assert_eq!(
        env.server.hits("/stable/tiny-0.1.0.tgz") + env.server.hits("/stable/index.yaml"),
        hits,
        "no delete asked the chart source"
    );
}

/// The same for a plan whose chart is in the real OCI registry: the
/// registry is stopped (its port refuses connections) and the cache
/// emptied; unbind and deprovision, sync and async, still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_need_no_oci_registry() {
    let mut env = Env::start().await;
    env.bound_instances("oci-gone", "oci-private-bound").await;
    let blob = format!("GET /v2/private/tiny/blobs/{}", sha256(&env.tgz));
    assert_eq!(
        env.registry.log().matches(&blob).count(),
        1,
        "pulled once, then cached: {}",
        env.registry.log()
    );
    env.registry._proc.0.kill().unwrap();
    env.registry._proc.0.wait().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", env.registry.port)).is_err(),
        "the registry still listens"
    );
    std::fs::remove_dir_all(env.broker.data.path().join("charts")).unwrap();
    env.deletes_succeed("oci-gone", "oci-private-bound", "registry gone")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repository_needs_its_credentials() {
    let env = Env::start().await;
    // Basic from a file (its trailing newline trimmed), then Bearer.
    assert!(env.provision("p1", "private").await.contains(MARK));
    assert_eq!(env.server.hits("/private/tiny-0.1.0.tgz"), 1);
    assert!(env.provision("p2", "private-token").await.contains(MARK));
    assert_eq!(env.server.hits("/private-token/tiny-0.1.0.tgz"), 1);
    // Cached: the second provision asks the repository nothing.
    env.provision("p3", "private").await;
    assert_eq!(env.server.hits("/private/index.yaml"), 1);
    if env.keys.is_some() {
        assert!(env.provision("p4", "private-signed").await.contains(MARK));
        assert_eq!(env.server.hits("/private-signed/tiny-0.1.0.tgz.prov"), 1);
    }
    let before = env.cache().len();

    let port = env.server_port();
    let want: [&str; 3] = [
        &format!(
            "authentication failed at https://localhost:{port}/private/index.yaml (401 Unauthorized)"
        ),
        "password_file",
        "secrets/wrong",
    ];
    let d = env.fails_naming("f1", "private-wrong", &want).await;
    assert_no_secret(&d, "a refused fetch's description");
    let want: [&str; 2] = ["authentication failed", "token_file"];
    let d = env.fails_naming("f2", "private-wrong-token", &want).await;
    assert_no_secret(&d, "a refused fetch's description");
    // No credentials at all: helm asked, and the message says what to set.
    let want: [&str; 2] = ["authentication failed (401 Unauthorized)", "chart.auth"];
    env.fails_naming("f3", "private-no-auth", &want).await;
    let want: [&str; 2] = ["reading the credentials", "secrets/absent"];
    env.fails_naming("f4", "private-no-file", &want).await;
    // The variable is set only for the broker process of another test.
    let want: [&str; 1] = [&format!("environment variable {PASSWORD_ENV} is not set")];
    env.fails_naming("f5", "private-env", &want).await;
    assert!(
        env.server.refused() >= 3,
        "the wrong credentials reached the server"
    );
    assert_eq!(env.cache().len(), before, "nothing refused is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_oci_registry_needs_its_credentials() {
    let env = Env::start().await;
    let blob = format!("GET /v2/private/tiny/blobs/{}", sha256(&env.tgz));
    let pulls = |log: &str| log.matches(&blob).count();
    assert!(env.provision("o1", "oci-private").await.contains(MARK));
    assert_eq!(pulls(&env.registry.log()), 1, "{}", env.registry.log());
    assert!(
        env.provision("o2", "oci-docker-config")
            .await
            .contains(MARK)
    );
    assert_eq!(pulls(&env.registry.log()), 2);

    let want: [&str; 2] = [
        "authentication failed (401 Unauthorized)",
        "refused the credentials of chart.auth (password_file",
    ];
    let d = env.fails_naming("o3", "oci-private-wrong", &want).await;
    assert_no_secret(&d, "a refused pull's description");
    let want: [&str; 2] = [
        "authentication failed (401 Unauthorized)",
        "set the plan's chart.auth",
    ];
    env.fails_naming("o4", "oci-private-no-auth", &want).await;
    // The registry configs helm was handed are gone; none ever held more
    // than the one registry.
    let auth_dir = env.broker.data.path().join("helm/registry-auth");
    let left: Vec<_> = std::fs::read_dir(&auth_dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&auth_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

/// The broker as an operator runs it (its own process, debug logging, the
/// password in an environment variable): nothing it logs, answers or
/// stores in last_operation shows a credential, whether the source took
/// it or refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_log() {
    use common::process::{Proc, free_port, http, ready};
    let env = Env::start().await;
    let root = env.dir.path();
    let port = free_port();
    let log = root.join("broker.log");
    let out = std::fs::File::create(&log).unwrap();
    let _broker = Proc(
        Command::new(common::process::broker_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(env.broker_args())
            .arg("--data-dir")
            .arg(root.join("data"))
            .env("CHARTBROKER_USERNAME", common::USER)
            .env("CHARTBROKER_PASSWORD", common::PASS)
            .env(PASSWORD_ENV, PASSWORD)
            .env("RUST_LOG", "debug")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    ready(port).await;
    let base = format!("http://127.0.0.1:{port}/v2/service_instances");
    let mut descriptions = Vec::new();
    for (instance, plan, state) in [
        ("l1", "private-env", "succeeded"),
        ("l2", "private-wrong", "failed"),
        ("l3", "private-wrong-token", "failed"),
        ("l4", "oci-private", "succeeded"),
        ("l5", "oci-private-wrong", "failed"),
    ] {
        let url = format!("{base}/{instance}?accepts_incomplete=true");
        let body = provision_body(plan, json!({}));
        let (status, r) = http(reqwest::Method::PUT, url, Some(body)).await.unwrap();
        assert_eq!(status, 202, "{plan}: {r}");
        let op = r["operation"].as_str().unwrap().to_string();
        let poll = format!("{base}/{instance}/last_operation?operation={op}");
        let last = loop {
            let (_, r) = http(reqwest::Method::GET, poll.clone(), None)
                .await
                .unwrap();
            if r["state"] != "in progress" {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(last["state"], state, "{plan}: {last}");
        descriptions.push(last.to_string());
    }
    let all = descriptions.join("\n");
    assert!(all.contains("authentication failed"), "{all}");
    assert_no_secret(&all, "last_operation");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("fetched chart"), "debug log: {text}");
    assert!(
        text.contains("authentication failed"),
        "the failures are logged: {text}"
    );
    assert_no_secret(&text, "the broker's log");
}

/// The paths where helm handles credentials (the registry config of an OCI
/// pull, `helm verify` of a private repository's chart) with Helm 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_sources_with_helm3() {
    let env = Env::start_full(None, common::helm3_bin()).await;
    assert!(env.provision("h1", "oci-private").await.contains(MARK));
    assert!(
        env.provision("h2", "oci-docker-config")
            .await
            .contains(MARK)
    );
    let want: [&str; 1] = ["authentication failed (401 Unauthorized)"];
    let d = env.fails_naming("h3", "oci-private-wrong", &want).await;
    assert_no_secret(&d, "a refused pull's description");
    let want: [&str; 1] = ["set the plan's chart.auth"];
    env.fails_naming("h4", "oci-private-no-auth", &want).await;
    if env.keys.is_some() {
        assert!(env.provision("h5", "private-signed").await.contains(MARK));
    }
}
