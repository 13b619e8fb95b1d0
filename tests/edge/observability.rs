//! Logs and metrics of the real binary: an access line for every request
//! (401 and 404 included) with the route template, status, duration,
//! request identity and the originating user's name but never credentials;
//! start and end lines of every operation with its id; plain text when
//! stderr is not a terminal; and a `/metrics` exposition that Prometheus's
//! own linter, `promtool check metrics`, accepts after real traffic.

use crate::common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::helpers::observability::*;
use common::process::{free_port, ready};
use common::{PASS, USER};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_and_operation_logs_and_a_promtool_clean_exposition() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = start(dir.path(), port);
    // Drained from the start: a full pipe would stall the broker.
    let mut stderr = broker.0.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    ready(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let inst = "/v2/service_instances/obs-1";
    let bind = "/v2/service_instances/obs-1/service_bindings/obs-b";

    let (s, body) = send(
        Method::PUT,
        format!("{base}{inst}?accepts_incomplete=true"),
        Some((USER, PASS)),
        "req-provision",
        Some(common::provision_body(
            "plan-small",
            json!({"message": "hi"}),
        )),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    let op = body["operation"].as_str().unwrap().to_string();
    wait_done(&base, inst, &op).await;
    let (s, body) = send(
        Method::PUT,
        format!("{base}{bind}"),
        Some((USER, PASS)),
        "req-bind",
        Some(json!({"service_id": "svc-tiny", "plan_id": "plan-small"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    // A wrong password (401), an unknown route (404), a bad body (400).
    for (method, path, password, id, body, want) in [
        (
            Method::GET,
            "/v2/catalog",
            "not-the-password",
            "req-401",
            None,
            401,
        ),
        (Method::GET, "/v2/nothing/here", PASS, "req-404", None, 404),
        (
            Method::PUT,
            "/v2/service_instances/obs-2",
            PASS,
            "req-400",
            Some(json!({"service_id": "svc-tiny"})),
            400,
        ),
    ] {
        let (s, _) = send(
            method,
            format!("{base}{path}"),
            Some((USER, password)),
            id,
            body,
        )
        .await;
        assert_eq!(s, want, "{id}");
    }

    // The exposition after that traffic, linted by Prometheus's own tool:
    // the classic text format, which clients get unless they ask for
    // OpenMetrics as Prometheus does.
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = resp.text().await.unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let open = resp.text().await.unwrap();
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# TYPE chartbroker_http_requests counter\n"),
        "{open}"
    );
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n--- exposition ---\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        r#"chartbroker_http_request_duration_seconds_count{route="/v2/service_instances/{instance_id}",method="PUT",status_class="2xx"} 1"#,
        r#"chartbroker_http_request_duration_seconds_count{route="/v2/catalog",method="GET",status_class="4xx"} 1"#,
        r#"chartbroker_http_request_duration_seconds_count{route="unmatched",method="GET",status_class="4xx"} 1"#,
        r#"chartbroker_operations_in_progress{kind="provision"} 0"#,
        r#"chartbroker_operations_total{kind="provision",state="in_progress"} 1"#,
        r#"chartbroker_operations_total{kind="provision",state="succeeded"} 1"#,
        &format!(
            r#"chartbroker_build_info{{version="{}",os="linux",arch="{}"}} 1"#,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == expected),
            "no {expected}:\n{metrics}"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("no {name}:\n{metrics}"));
        let v: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(v > 0.0 || name == "process_cpu_seconds_total", "{line}");
    }

    // Unbind and deprovision, then stop the broker and read everything it logged.
    for (path, id) in [(bind, "req-unbind"), (inst, "req-deprovision")] {
        let (s, body) = send(
            Method::DELETE,
            format!("{base}{path}?service_id=svc-tiny&plan_id=plan-small"),
            Some((USER, PASS)),
            id,
            None,
        )
        .await;
        assert_eq!(s, 200, "{id}: {body}");
    }
    // SIGTERM: the broker drains and exits, closing its end of the pipe.
    let pid = i32::try_from(broker.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let log = tokio::task::spawn_blocking(move || drain.join().unwrap())
        .await
        .unwrap();

    assert!(!log.contains("\x1b["), "ANSI colours on a pipe:\n{log}");
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO chartbroker::access: "))
        .collect();
    let line = |rid: &str| {
        access
            .iter()
            .find(|l| l.contains(&format!("request_identity=\"{rid}\"")))
            .unwrap_or_else(|| panic!("no access line for {rid}:\n{log}"))
            .to_string()
    };
    let l = line("req-provision");
    for part in [
        "method=PUT",
        "route=/v2/service_instances/{instance_id}",
        "status=202",
        "instance_id=obs-1",
        "user=\"alice\"",
        // The platform credential's name: here the test user.
        "platform=\"platform\"",
        "duration_ms=",
    ] {
        assert!(l.contains(part), "{part} in {l}");
    }
    assert!(line("req-bind").contains("binding_id=obs-b"));
    assert!(line("req-bind").contains("status=201"));
    assert!(line("req-401").contains("status=401"));
    assert!(line("req-401").contains("route=/v2/catalog"));
    assert!(!line("req-401").contains("platform="));
    assert!(line("req-404").contains("status=404"));
    assert!(line("req-404").contains("route=unmatched"));
    assert!(line("req-400").contains("status=400"));
    assert!(line("req-unbind").contains("status=200"));
    for secret in [
        PASS,
        "not-the-password",
        "identity-extra-token",
        "secret-group",
        "Basic ",
        "authorization",
    ] {
        assert!(!log.contains(secret), "logs show {secret:?}:\n{log}");
    }

    // Every operation: a start and an end line in its span.
    for kind in ["provision", "bind", "unbind", "deprovision"] {
        let ops: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("kind=\"{kind}\"")) && l.contains("op_id="))
            .collect();
        let started = ops.iter().find(|l| l.contains("operation started"));
        let finished = ops.iter().find(|l| l.contains("operation finished"));
        let (Some(started), Some(finished)) = (started, finished) else {
            panic!("{kind}: no start and end lines:\n{log}");
        };
        assert!(started.contains(" INFO "), "{started}");
        assert!(started.contains("instance_id=obs-1"), "{started}");
        assert!(finished.contains("outcome=\"succeeded\""), "{finished}");
        assert!(finished.contains("duration_ms="), "{finished}");
        if kind.ends_with("bind") {
            assert!(finished.contains("binding_id=obs-b"), "{finished}");
        }
    }
}
