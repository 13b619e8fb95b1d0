//! Kubernetes' own YAML decoding, as a child process: `yamldiff`, built
//! from tests/testenv/yamldiff by scripts/install-tools.sh. It reads a
//! stream as kubectl and helm do (sigs.k8s.io/yaml over go-yaml v2, the
//! apimachinery YAML-or-JSON decoder, unstructured JSON).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use serde_json::Value;

/// The yamldiff binary. Tests fail loudly without it: run
/// `scripts/install-tools.sh` (CI does).
pub fn yamldiff_bin() -> PathBuf {
    let p = std::env::var_os("CHARTBROKER_YAMLDIFF")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo().join(".tools/bin/yamldiff"));
    assert!(
        p.is_file(),
        "Kubernetes' YAML decoder (yamldiff) not found at {}: run scripts/install-tools.sh \
         and source .tools/env.sh (or set CHARTBROKER_YAMLDIFF)",
        p.display()
    );
    p
}

/// One running decoder; streams go in one at a time.
pub struct GoYaml {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl GoYaml {
    pub fn start() -> GoYaml {
        let mut child = Command::new(yamldiff_bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("yamldiff starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        GoYaml {
            child,
            stdin,
            stdout,
        }
    }

    /// The documents Kubernetes reads from `stream` (empty and null ones
    /// left out), or Go's error. Panics if kubectl's decoder and plain
    /// YAMLToJSON disagree with each other.
    pub fn read(&mut self, stream: &[u8]) -> Result<Vec<Value>, String> {
        let line = base64::engine::general_purpose::STANDARD.encode(stream);
        writeln!(self.stdin, "{line}").expect("yamldiff takes input");
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .expect("yamldiff answers");
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("yamldiff said {answer:?}: {e}"));
        if let Some(e) = v["error"].as_str() {
            return Err(e.to_owned());
        }
        let docs = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        let (kubectl, plain) = (docs("kubectl"), docs("yamltojson"));
        assert!(
            same_list(&kubectl, &plain),
            "kubectl's decoder and YAMLToJSON disagree on {:?}: {kubectl:?} vs {plain:?}",
            String::from_utf8_lossy(stream)
        );
        Ok(kubectl)
    }
}

impl Drop for GoYaml {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON equality where numbers compare by value (Go prints 1.0 as 1).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => same_list(x, y),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

pub fn same_list(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}
