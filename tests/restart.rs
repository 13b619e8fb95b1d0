//! Crash safety with the real binary: kill -9 right after a 202, start again
//! on the same data directory, and the operation settles.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PASS, USER, fixtures, helm_bin};
use serde_json::{Value, json};

struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data: &Path, helm: &Path) -> Broker {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--catalog")
        .arg(fixtures().join("catalog"))
        .arg("--charts")
        .arg(fixtures().join("charts"))
        .arg("--data-dir")
        .arg(data)
        .arg("--helm")
        .arg(helm)
        .env("CHARTBROKER_USERNAME", USER)
        .env("CHARTBROKER_PASSWORD", PASS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the chartbroker binary starts");
    // Owned by the guard at once, so a panic below still reaps the process.
    let broker = Broker {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{}/readyz", broker.url)).send().await {
            if r.status() == 200 {
                return broker;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("broker did not become ready");
}

async fn osb(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .basic_auth(USER, Some(PASS))
        .header("X-Broker-API-Version", "2.17");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn kill_9_after_202_then_restart_settles_the_operation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    // A helm that takes a while to render, so the kill lands mid-operation.
    let slow = data.path().join("slow-helm");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \"$1\" in template) sleep 5;; esac\nexec {} \"$@\"\n",
            helm_bin().display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let state = data.path().join("state");
    let mut first = start(&state, &slow).await;
    let (status, body) = osb(
        reqwest::Method::PUT,
        format!(
            "{}/v2/service_instances/crash-1?accepts_incomplete=true",
            first.url
        ),
        Some(json!({"service_id": "svc-tiny", "plan_id": "plan-small",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"message": "survives"}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let operation = body["operation"].as_str().unwrap().to_string();
    first.child.kill().unwrap(); // SIGKILL: no chance to clean up
    first.child.wait().unwrap();

    let second = start(&state, &helm_bin()).await;
    let url = format!(
        "{}/v2/service_instances/crash-1/last_operation?operation={operation}",
        second.url
    );
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, body) = osb(reqwest::Method::GET, url.clone(), None).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] != "in progress" {
            last = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    let manifests =
        std::fs::read_to_string(state.join("render/apps/cb-crash-1/manifests.yaml")).unwrap();
    assert!(manifests.contains("survives"));
    let (status, body) = osb(
        reqwest::Method::GET,
        format!("{}/v2/service_instances/crash-1", second.url),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["parameters"]["message"], "survives");
}
