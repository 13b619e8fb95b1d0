//! The chartbroker binary as an operator types it: duration flags and
//! environment in every form helm takes, clear refusals, `catalog lint`.

use crate::common;

use std::process::{Command, Stdio};

use crate::helpers::cli::*;
use common::process::{Proc, broker_bin, free_port, http, ready};
use common::*;

#[tokio::test]
async fn duration_flags_and_environment_take_go_durations() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Proc(
        serve(
            data.path(),
            port,
            &[
                "--helm-timeout",
                "5m",
                "--operation-timeout",
                "1h30m",
                "--lease",
                "45s",
                "--header-read-timeout",
                "10",
            ],
        )
        .env("CHARTBROKER_SYNC_TIMEOUT", "1m30s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    ready(port).await;
    // It serves: a synchronous provision within the 1m30s sync timeout.
    let (status, body) = http(
        reqwest::Method::PUT,
        format!("http://127.0.0.1:{port}/v2/service_instances/cli-1"),
        Some(hi_body()),
    )
    .await
    .expect("the broker answers");
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_duration_that_is_not_one_stops_the_broker_with_the_accepted_forms() {
    let data = tempfile::tempdir().unwrap();
    for (flag, env, bad) in [
        (Some("--helm-timeout"), None, "5x"),
        (Some("--lease-seconds"), None, "-3s"),
        (None, Some("CHARTBROKER_SYNC_TIMEOUT"), "5 minutes"),
    ] {
        let mut c = serve(data.path(), free_port(), &[]);
        if let Some(flag) = flag {
            c.args([flag, bad]);
        }
        if let Some(env) = env {
            c.env(env, bad);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(&format!("invalid value '{bad}'")), "{err}");
        let why = if bad.starts_with('-') {
            "is negative: a duration is 0 or more".to_owned()
        } else {
            "is not a duration: write it like 300, 300s, 5m or 1h30m".to_owned()
        };
        assert!(err.contains(&why), "{err}");
    }
}

#[test]
fn catalog_lint_suggests_the_variable_meant() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("catalog/test.yaml")).unwrap();
    let typo = text.replacen(
        "message: \"{{parameters.message}}\"",
        "message: \"{{paramters.message}}\"",
        1,
    );
    assert_ne!(text, typo, "the fixture templates parameters.message");
    std::fs::write(dir.path().join("test.yaml"), typo).unwrap();
    let out = Command::new(broker_bin())
        .args(["catalog", "lint"])
        .arg(dir.path())
        .arg("--charts")
        .arg(fixtures().join("charts"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let file = dir.path().join("test.yaml");
    assert_eq!(
        err,
        format!(
            "{}: services[0].plans[0].chart.values.message: unknown variable `paramters.message`; \
             templates use instance.*, context.*, parameters.*, secrets.* — did you mean \
             `parameters.message`?\n1 problem(s)\n",
            file.display()
        )
    );
}
