//! The broker as a separate process: its binary, a port, plain HTTP to it.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use super::{PASS, USER};

/// The chartbroker binary cargo built for this test run.
pub fn broker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_chartbroker")
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves no broker behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An authenticated OSB request over HTTP; None when the connection fails.
pub async fn http(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Bounded, so a request that never completes fails the test instead of
    // hanging it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client");
    let mut r = client
        .request(method, url)
        .basic_auth(USER, Some(PASS))
        .header("X-Broker-API-Version", "2.17");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.unwrap_or(Value::Null)))
}

/// The broker binary on `port`, spoken to as a platform would (through
/// [`http`]); a request that gets no answer fails the test.
pub struct Remote {
    base: String,
}

impl Remote {
    /// The broker listening on `127.0.0.1:port`.
    pub fn on(port: u16) -> Remote {
        Remote {
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `method path` with an optional JSON body: status and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        http(method.clone(), format!("{}{path}", self.base), body)
            .await
            .unwrap_or_else(|| panic!("{method} {path}: no answer"))
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// Waits until the broker on `port` answers `/readyz` with 200.
pub async fn ready(port: u16) {
    for _ in 0..400 {
        let url = format!("http://127.0.0.1:{port}/readyz");
        if let Some((200, _)) = http(reqwest::Method::GET, url, None).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker on {port} did not become ready");
}

/// `chartbroker serve` as a child process on a free port, with the test
/// credentials; killed and reaped when dropped.
pub struct Served {
    /// The child process.
    pub proc: Proc,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
}

impl Served {
    /// Kills the broker with SIGKILL and reaps it: a crash, not a shutdown.
    pub fn kill_9(&mut self) {
        self.proc.0.kill().expect("SIGKILL");
        self.proc.0.wait().expect("reaped");
    }
}

/// Starts `chartbroker serve` over `catalog` and `charts` on `data` with
/// `helm` (and `extra` arguments), then waits until it is ready.
pub async fn serve(
    catalog: &std::path::Path,
    charts: &std::path::Path,
    data: &std::path::Path,
    helm: &std::path::Path,
    extra: &[&str],
) -> Served {
    let port = free_port();
    let served = Served {
        proc: spawn_serve(port, catalog, charts, data, helm, extra),
        url: format!("http://127.0.0.1:{port}"),
        port,
    };
    ready(port).await;
    served
}

/// `chartbroker serve` on `port`, not waited for: for restarts on the same
/// port. Its log goes to `<data>/broker.log` (appended across restarts): a
/// file, never a pipe nobody reads, which would stall a broker that logs a
/// line per request.
pub fn spawn_serve(
    port: u16,
    catalog: &std::path::Path,
    charts: &std::path::Path,
    data: &std::path::Path,
    helm: &std::path::Path,
    extra: &[&str],
) -> Proc {
    Proc(
        serve_cmd(port, catalog, charts, data, helm)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(log_file(data))
            .spawn()
            .expect("the chartbroker binary starts"),
    )
}

/// [`spawn_serve`] over the repository's example catalog and charts, with
/// the real helm.
pub fn spawn_example(port: u16, data: &std::path::Path, extra: &[&str]) -> Proc {
    let repo = super::repo();
    let (catalog, charts) = (repo.join("catalog"), repo.join("charts"));
    spawn_serve(port, &catalog, &charts, data, &super::helm_bin(), extra)
}

/// The command line of `chartbroker serve` on `port` over `catalog`,
/// `charts`, `data` and `helm`, the test credentials in its environment;
/// the caller adds arguments and its output, then spawns it.
pub fn serve_cmd(port: u16, catalog: &Path, charts: &Path, data: &Path, helm: &Path) -> Command {
    let mut c = serve_base(port, catalog, charts, data);
    c.arg("--helm")
        .arg(helm)
        .env("CHARTBROKER_USERNAME", USER)
        .env("CHARTBROKER_PASSWORD", PASS);
    c
}

/// `chartbroker serve --listen 127.0.0.1:<port>` over `catalog`, `charts`
/// and `data`, and nothing else.
pub fn serve_base(port: u16, catalog: &Path, charts: &Path, data: &Path) -> Command {
    let mut c = Command::new(broker_bin());
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--catalog")
        .arg(catalog)
        .arg("--charts")
        .arg(charts)
        .arg("--data-dir")
        .arg(data);
    c
}

/// `PUT url` with a JSON body that must reach the broker.
pub async fn osb_put(url: &str, body: Value) -> (u16, Value) {
    osb(reqwest::Method::PUT, url.to_string(), Some(body)).await
}

/// `GET url` that must reach the broker.
pub async fn osb_get(url: &str) -> (u16, Value) {
    osb(reqwest::Method::GET, url.to_string(), None).await
}

/// [`http`] that must reach the broker.
pub async fn osb(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    http(method, url, body)
        .await
        .expect("the broker answers HTTP")
}

/// Polls a `last_operation` URL, every answer 200, until it leaves
/// `in progress` (at most `tries` times, `pause` apart): the last body.
pub async fn poll_last_operation(url: &str, tries: usize, pause: Duration) -> Value {
    let mut last = Value::Null;
    for _ in 0..tries {
        let (status, body) = osb(reqwest::Method::GET, url.to_string(), None).await;
        assert_eq!(status, 200, "{body}");
        last = body;
        if last["state"] != "in progress" {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    last
}

/// `<data>/broker.log`, opened for appending.
fn log_file(data: &std::path::Path) -> std::fs::File {
    std::fs::create_dir_all(data).expect("data directory");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("broker.log"))
        .expect("broker log")
}
