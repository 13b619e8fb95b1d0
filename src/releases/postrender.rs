//! The policy at the last step before the cluster: helm's post-renderer.
//!
//! An offline `helm template` is not what helm applies: there `lookup`
//! returns nothing and `.Release.IsUpgrade` is false, so a chart can render
//! something harmless for the check and something else for the install.
//! Helm hands the manifests it is about to apply to a post-renderer, and the
//! broker is its own: `chartbroker post-render --call FILE` reads exactly
//! those bytes ([`crate::manifest::read`]), checks the plan's policy on the
//! documents read, and hands helm back those documents in the broker's one
//! canonical form ([`crate::manifest::emit`]), never helm's own bytes, so
//! helm applies what was judged; or it refuses and helm applies nothing.
//!
//! What reaches a post-renderer differs by helm version (measured with the
//! real binaries, see tests/postrender.rs):
//! - Helm 4 (a `postrenderer/v1` plugin, installed in the broker's private
//!   plugin directory): the release's manifests **and its hooks**.
//! - Helm 3 (an executable): the manifests only. Hooks would bypass the
//!   check, so on Helm 3 the broker runs helm with `--no-hooks` (install,
//!   upgrade, rollback, uninstall) and refuses charts that have hooks.
//! - Neither sees `crds/`: the broker always passes `--skip-crds`.
//!
//! The verdict goes back through a file beside the call file: Helm 4 drops
//! a plugin's stderr and reports only "exited with error".

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::Policy;

/// The plugin's name in the broker's helm plugin directory.
pub(crate) const PLUGIN: &str = "chartbroker-policy";

/// What one post-render call checks: written by the broker before helm runs.
#[derive(Debug, Serialize, Deserialize)]
struct CallSpec {
    namespace: String,
    policy: Policy,
    /// The plan's cap on rendered manifests (`chart.limits`), the same one
    /// `helm template` is held to.
    max_manifest_bytes: u64,
}

/// The broker's post-renderer, set up for one helm home.
#[derive(Debug, Clone)]
pub(crate) struct PostRenderer {
    exe: PathBuf,
    calls: PathBuf,
    major: u32,
}

impl PostRenderer {
    /// Sets up the post-renderer under `helm_home` (helm's data home is
    /// `helm_home/data`, as [`crate::helm::Helm`] runs it): for Helm 4 a
    /// plugin whose command is `exe post-render`.
    pub(crate) fn install(helm_home: &Path, exe: &Path, major: u32) -> std::io::Result<Self> {
        let calls = helm_home.join("post-render");
        std::fs::create_dir_all(&calls)?;
        if major >= 4 {
            let dir = helm_home.join("data/plugins").join(PLUGIN);
            std::fs::create_dir_all(&dir)?;
            let exe_str = exe.to_str().ok_or_else(|| {
                std::io::Error::other(format!("{} is not valid UTF-8", exe.display()))
            })?;
            // JSON is YAML: no quoting rules to get wrong for odd paths.
            let manifest = serde_json::json!({
                "apiVersion": "v1",
                "type": "postrenderer/v1",
                "name": PLUGIN,
                "version": env!("CARGO_PKG_VERSION"),
                "runtime": "subprocess",
                "runtimeConfig": {"platformCommand": [
                    {"command": exe_str, "args": ["post-render"]}
                ]},
            });
            std::fs::write(dir.join("plugin.yaml"), manifest.to_string())?;
        }
        Ok(PostRenderer {
            exe: exe.to_path_buf(),
            calls,
            major,
        })
    }

    /// Helm 3 can't show hooks to a post-renderer: they must not run.
    pub(crate) fn hooks_bypass(&self) -> bool {
        self.major < 4
    }

    /// A call for one helm command: the policy and namespace to check, and
    /// the most manifest bytes to read.
    pub(crate) fn call(
        &self,
        namespace: &str,
        policy: &Policy,
        max_manifest_bytes: usize,
    ) -> std::io::Result<Call> {
        let path = self
            .calls
            .join(format!("{}.json", uuid::Uuid::new_v4().simple()));
        let spec = CallSpec {
            namespace: namespace.to_string(),
            policy: policy.clone(),
            max_manifest_bytes: max_manifest_bytes as u64,
        };
        std::fs::write(&path, serde_json::to_vec(&spec).expect("a call serializes"))?;
        let call_arg: OsString = {
            let mut a = OsString::from("--call=");
            a.push(&path);
            a
        };
        let args = if self.major >= 4 {
            vec![
                "--post-renderer".into(),
                PLUGIN.into(),
                "--post-renderer-args".into(),
                call_arg,
            ]
        } else {
            vec![
                "--post-renderer".into(),
                self.exe.clone().into(),
                "--post-renderer-args".into(),
                "post-render".into(),
                "--post-renderer-args".into(),
                call_arg,
            ]
        };
        Ok(Call {
            verdict: verdict_path(&path),
            path,
            args,
        })
    }
}

/// One helm command's post-render: its arguments, and the verdict after.
#[derive(Debug)]
pub(crate) struct Call {
    path: PathBuf,
    verdict: PathBuf,
    args: Vec<OsString>,
}

impl Call {
    /// The arguments that make helm use the post-renderer.
    pub(crate) fn args(&self) -> &[OsString] {
        &self.args
    }

    /// Why the post-renderer refused the manifests, if it did.
    pub(crate) fn refusal(&self) -> Option<String> {
        std::fs::read_to_string(&self.verdict).ok()
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.verdict);
    }
}

fn verdict_path(call: &Path) -> PathBuf {
    call.with_extension("verdict")
}

/// `chartbroker post-render --call FILE`: helm's manifests on stdin, the
/// judged documents, emitted, on stdout if the policy allows them;
/// otherwise the reason in the verdict file (and on stderr) and a failure
/// exit.
pub fn run(call: &Path, input: impl Read, mut output: impl Write) -> Result<(), String> {
    let verdict = verdict_path(call);
    let refuse = |why: String| {
        // Best effort: if even this fails, helm still sees the exit status.
        let _ = std::fs::write(&verdict, &why);
        Err(why)
    };
    let spec: CallSpec = match std::fs::read(call)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return refuse(format!("post-render call {}: {e}", call.display())),
    };
    let mut manifests = String::new();
    let cap = spec.max_manifest_bytes;
    let mut limited = input.take(cap + 1);
    if let Err(e) = limited.read_to_string(&mut manifests) {
        return refuse(format!("reading helm's manifests: {e}"));
    }
    if manifests.len() as u64 > cap {
        return refuse(format!(
            "the chart renders more than the limit of {cap} bytes of manifests \
             (the plan's chart.limits.max_manifest_bytes)"
        ));
    }
    let docs = match super::pipeline::judge(manifests, &spec.namespace, &spec.policy) {
        Ok(docs) => docs,
        Err(e) => {
            let why = match e {
                super::pipeline::RenderError::Refused { violations, .. } => violations.to_string(),
                other => other.to_string(),
            };
            return refuse(format!(
                "policy rejected the manifests helm would apply: {why}"
            ));
        }
    };
    output
        .write_all(crate::manifest::emit(&docs).as_bytes())
        .and_then(|_| output.flush())
        .map_err(|e| format!("writing the manifests back to helm: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_manifests_go_back_as_the_judged_documents() {
        let dir = tempfile::tempdir().unwrap();
        let pr = PostRenderer::install(dir.path(), Path::new("/bin/chartbroker"), 4).unwrap();
        let call = pr.call("apps", &Policy::default(), 1 << 20).unwrap();
        let input = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n\
                     metadata:\n  name: a\n  namespace: apps\ndata:\n  mode: 0644\n";
        let mut out = Vec::new();
        let path = call.path.clone();
        run(&path, input.as_bytes(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "---\n# Source: c/templates/a.yaml\n{\"apiVersion\":\"v1\",\"data\":{\"mode\":420},\
             \"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"namespace\":\"apps\"}}\n"
        );
        assert_eq!(call.refusal(), None);
        let plugin = std::fs::read_to_string(
            dir.path()
                .join("data/plugins/chartbroker-policy/plugin.yaml"),
        )
        .unwrap();
        assert!(plugin.contains("postrenderer/v1") && plugin.contains("/bin/chartbroker"));
        drop(call);
        assert!(!path.exists(), "a call cleans up after itself");
    }

    #[test]
    fn refused_manifests_leave_a_verdict_and_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let pr = PostRenderer::install(dir.path(), Path::new("/bin/chartbroker"), 3).unwrap();
        let call = pr.call("apps", &Policy::default(), 1 << 20).unwrap();
        assert_eq!(call.args()[1], OsString::from("/bin/chartbroker"));
        let input =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: kube-system\n";
        let mut out = Vec::new();
        let err = run(&call.path, input.as_bytes(), &mut out).unwrap_err();
        assert!(out.is_empty());
        assert!(err.contains("kube-system"), "{err}");
        assert_eq!(call.refusal().as_deref(), Some(err.as_str()));
    }

    #[test]
    fn manifests_past_the_plans_cap_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let pr = PostRenderer::install(dir.path(), Path::new("/bin/chartbroker"), 4).unwrap();
        let call = pr.call("apps", &Policy::default(), 64).unwrap();
        let input = format!("# {}\n", "x".repeat(100));
        let mut out = Vec::new();
        let err = run(&call.path, input.as_bytes(), &mut out).unwrap_err();
        assert!(out.is_empty());
        assert!(err.contains("limit of 64 bytes"), "{err}");
    }
}
