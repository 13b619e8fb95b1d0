//! The production release engine: real Helm releases in a cluster (the
//! binding Secrets beside them: [`super::secret_sink`]).
//!
//! Each install or upgrade renders the chart first (`helm template`, same
//! values) and runs the plan's policy on the result, to fail fast. Then
//! `helm upgrade --install` applies it (server-side apply on Helm 4) through
//! the broker's post-renderer ([`super::postrender`]), which checks the same
//! policy on exactly the bytes helm is about to send, hooks included on
//! Helm 4; `crds/` are never installed and Helm 3 runs no hooks. A failed
//! upgrade is rolled back to the last good revision. A release left
//! `pending-*` by a killed helm (a broker crash) is repaired before the next
//! attempt, so resumed operations are not refused with "another operation is
//! in progress" ([`repair`]). While helm waits, what is not ready yet is
//! shown as progress ([`readiness`]).

use std::collections::BTreeMap;
use std::ffi::OsString;

use async_trait::async_trait;
use serde_json::Value;

use super::chart::{Release, ReleaseEngine};
use super::postrender::PostRenderer;
use crate::broker::ports::{BackendError, Checkpoint};
use crate::catalog::LookupKind;
use crate::cluster::{CallKubeconfig, IdentityNames, Kube, KubeError};
use crate::helm::{Capture, Helm, HelmError, redact};

mod readiness;
mod repair;

/// Releases installed by the real helm.
pub(crate) struct HelmEngine {
    helm: Helm,
    kube: Kube,
    major: u32,
    post_renderer: PostRenderer,
    identity: IdentityNames,
}

/// A helm driver for one call, as the release identity of one namespace;
/// its kubeconfig file is removed when this is dropped, after the call.
struct ReleaseHelm {
    helm: Helm,
    _kubeconfig: CallKubeconfig,
}

/// Why `helm upgrade --install` applied nothing.
enum ApplyError {
    /// No release identity to run helm as.
    Identity(BackendError),
    /// The post-renderer refused what helm would have applied.
    Refused(String),
    /// Helm itself failed; with `--wait`, what was still not ready then.
    Helm(HelmError, Option<String>),
}

pub(super) fn kube_err(e: KubeError) -> BackendError {
    BackendError::new(e.to_string())
}

impl HelmEngine {
    /// An engine driving `helm` (its major version is asked once) and
    /// `kube`; `exe` is the chartbroker binary helm runs as post-renderer.
    pub(crate) async fn new(
        helm: Helm,
        kube: Kube,
        exe: &std::path::Path,
    ) -> Result<Self, HelmError> {
        let v = helm
            .run(
                "version",
                &["version".into(), "--template".into(), "{{.Version}}".into()],
                None,
            )
            .await?;
        let major = v
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(3);
        let post_renderer =
            PostRenderer::install(helm.home(), exe, major).map_err(|source| HelmError::Spawn {
                path: helm.home().join("post-render").display().to_string(),
                source,
            })?;
        Ok(HelmEngine {
            helm,
            kube,
            major,
            post_renderer,
            identity: IdentityNames::default(),
        })
    }

    /// Runs helm as the release identity named so (default:
    /// [`IdentityNames::default`]).
    pub(crate) fn with_identity(mut self, identity: IdentityNames) -> Self {
        self.identity = identity;
        self
    }

    /// Helm for one call as the release identity of `r`'s namespace: a
    /// fresh TokenRequest token in a private kubeconfig, valid a little
    /// longer than one call may run. Never the broker's own credentials.
    async fn as_release(&self, r: &Release) -> Result<ReleaseHelm, BackendError> {
        self.as_release_if_any(r)
            .await?
            .ok_or_else(|| BackendError::new(format!("namespace {} does not exist", r.namespace)))
    }

    /// [`Self::as_release`], or `None` when the namespace does not exist.
    async fn as_release_if_any(&self, r: &Release) -> Result<Option<ReleaseHelm>, BackendError> {
        let lifetime = self.helm.timeout() + std::time::Duration::from_secs(60);
        let kubeconfig = self
            .kube
            .release_kubeconfig(
                &r.namespace,
                &self.identity,
                &self.helm.home().join("kube"),
                lifetime,
            )
            .await
            .map_err(kube_err)?;
        Ok(kubeconfig.map(|kubeconfig| ReleaseHelm {
            helm: self
                .helm
                .clone()
                .with_kubeconfig(Some(kubeconfig.path().to_path_buf())),
            _kubeconfig: kubeconfig,
        }))
    }

    /// Helm's major version (3 or 4).
    pub(crate) fn major(&self) -> u32 {
        self.major
    }

    fn fail(r: &Release, e: HelmError) -> BackendError {
        BackendError::new(redact(&e.to_string(), &r.redact))
    }

    fn ns_args(r: &Release) -> Vec<OsString> {
        vec![
            r.name.clone().into(),
            "--namespace".into(),
            r.namespace.clone().into(),
        ]
    }

    /// instance (refused if a namespace of that name is anyone else's), with
    /// the release identity in it.
    async fn own_namespace(&self, r: &Release) -> Result<(), BackendError> {
        self.kube
            .ensure_namespace(&r.namespace, &r.instance_id)
            .await
            .map_err(kube_err)?;
        self.kube
            .ensure_release_identity(&r.namespace, &self.identity)
            .await
            .map_err(kube_err)
    }

    /// Renders with `helm template` and runs the plan's policy, to fail
    /// fast; the post-renderer judges again what helm really applies.
    async fn check_policy(&self, r: &Release) -> Result<(), BackendError> {
        let docs = super::pipeline::render_checked(&self.helm, r)
            .await
            .map_err(|e| e.backend(r))?;
        if self.post_renderer.hooks_bypass() {
            if let Some(hook) = first_hook(&docs) {
                return Err(BackendError::new(format!(
                    "the chart has hooks ({hook}); Helm 3 does not show hooks to the broker's \
                     policy check, so the broker runs Helm 3 without hooks and refuses charts \
                     that have them: use Helm 4"
                )));
            }
        }
        Ok(())
    }

    /// Helm 3 would run hooks the post-renderer never saw.
    fn no_hooks(&self) -> Option<OsString> {
        self.post_renderer
            .hooks_bypass()
            .then(|| "--no-hooks".into())
    }

    async fn upgrade_install(
        &self,
        r: &Release,
        progress: &dyn Checkpoint,
    ) -> Result<(), ApplyError> {
        let mut args: Vec<OsString> = vec!["upgrade".into(), "--install".into()];
        args.extend(Self::ns_args(r));
        args.push(r.chart.clone().into());
        args.extend(["--values".into(), "-".into(), "-o".into(), "json".into()]);
        // crds/ bypass every post-renderer: never install them.
        args.push("--skip-crds".into());
        args.extend(self.no_hooks());
        let call = self
            .post_renderer
            .call(&r.namespace, &r.policy, r.max_manifest_bytes)
            .map_err(|source| {
                ApplyError::Helm(
                    HelmError::Spawn {
                        path: "a post-render call file".into(),
                        source,
                    },
                    None,
                )
            })?;
        args.extend(call.args().iter().cloned());
        if self.major >= 4 {
            args.push("--server-side=true".into());
            args.push("--force-conflicts".into());
        }
        if r.wait {
            args.push(
                if self.major >= 4 {
                    "--wait=watcher"
                } else {
                    "--wait"
                }
                .into(),
            );
            // Helm's own limit ends before ours kills it, so its message wins.
            let ms = (self.helm.timeout().as_millis() * 9 / 10).max(1000);
            args.extend(["--timeout".into(), format!("{ms}ms").into()]);
        }
        let values = serde_json::to_vec(&r.values).expect("values serialize");
        let release = self.as_release(r).await.map_err(ApplyError::Identity)?;
        // The output holds the values (passwords) and the whole release:
        // parse nothing, log nothing, keep nothing.
        let run = release
            .helm
            .run_with("upgrade", &args, Some(values), Capture::Discard);
        let (outcome, unready) = if r.wait {
            self.watch_readiness(r, run, progress).await
        } else {
            (run.await, None)
        };
        match outcome {
            Ok(_) => Ok(()),
            Err(e) => Err(match call.refusal() {
                Some(why) => ApplyError::Refused(why),
                None => ApplyError::Helm(e, unready),
            }),
        }
    }

    /// An apply error as the operation reports it.
    fn apply_fail(r: &Release, e: ApplyError) -> BackendError {
        match e {
            ApplyError::Identity(e) => e,
            ApplyError::Refused(why) => {
                let mut err = BackendError::new(redact(&why, &r.redact));
                // Nothing was applied: the release is as it was.
                err.instance_usable = Some(true);
                err
            }
            ApplyError::Helm(e, unready) => Self::fail_waiting(r, e, unready),
        }
    }

    async fn uninstall_release(&self, r: &Release) -> Result<(), BackendError> {
        let mut args: Vec<OsString> = vec!["uninstall".into()];
        args.extend(Self::ns_args(r));
        args.extend(self.no_hooks());
        // A namespace that is gone holds no release to uninstall.
        let Some(release) = self.as_release_if_any(r).await? else {
            return Ok(());
        };
        match release.helm.run("uninstall", &args, None).await {
            Ok(_) => Ok(()),
            Err(HelmError::Failed { stderr, .. }) if stderr.contains("not found") => Ok(()),
            Err(e) => Err(Self::fail(r, e)),
        }
    }
}

#[async_trait]
impl ReleaseEngine for HelmEngine {
    fn synchronous(&self) -> bool {
        // Installs take seconds to minutes: platforms must poll.
        false
    }

    async fn install(&self, r: &Release, progress: &dyn Checkpoint) -> Result<(), BackendError> {
        self.check_policy(r).await?;
        if r.own_namespace {
            self.own_namespace(r).await?;
        }
        self.repair(r).await?;
        self.upgrade_install(r, progress)
            .await
            .map_err(|e| Self::apply_fail(r, e))
    }

    async fn upgrade(&self, r: &Release, progress: &dyn Checkpoint) -> Result<(), BackendError> {
        self.check_policy(r).await?;
        if r.own_namespace {
            self.own_namespace(r).await?;
        }
        self.repair(r).await?;
        let good = self.last_good_revision(r).await?;
        match self.upgrade_install(r, progress).await {
            Ok(()) => Ok(()),
            Err(ApplyError::Identity(e)) => Err(e),
            Err(e @ ApplyError::Refused(_)) => {
                let mut err = Self::apply_fail(r, e);
                err.update_repeatable = Some(true);
                Err(err)
            }
            Err(ApplyError::Helm(e, unready)) => {
                let mut err = Self::fail_waiting(r, e, unready);
                match good {
                    Some(rev) => match self.rollback_to(r, rev).await {
                        Ok(()) => {
                            err.message = format!("{}; rolled back to revision {rev}", err.message);
                            err.instance_usable = Some(true);
                        }
                        Err(rb) => {
                            err.message = format!(
                                "{}; rollback to revision {rev} failed too: {}",
                                err.message, rb.message
                            );
                            err.instance_usable = Some(false);
                        }
                    },
                    None => err.instance_usable = Some(false),
                }
                err.update_repeatable = Some(true);
                Err(err)
            }
        }
    }

    async fn uninstall(&self, r: &Release) -> Result<(), BackendError> {
        if r.own_namespace {
            // Missing, being deleted, or someone else's (the install was
            // refused): nothing of this instance is there to uninstall, and
            // nothing there is to be touched.
            let owned = self
                .kube
                .namespace_owned_by(&r.namespace, &r.instance_id)
                .await
                .map_err(kube_err)?;
            if owned != Some(true) {
                return Ok(());
            }
            // A namespace made before releases had an identity gets one now.
            self.kube
                .ensure_release_identity(&r.namespace, &self.identity)
                .await
                .map_err(kube_err)?;
        }
        self.uninstall_release(r).await?;
        if r.delete_pvcs {
            let n = self
                .kube
                .delete_release_pvcs(&r.namespace, &r.name)
                .await
                .map_err(kube_err)?;
            tracing::info!(release = %r.name, deleted = n, "deleted the release's PVCs");
        }
        if r.own_namespace {
            self.kube
                .delete_owned_namespace(&r.namespace, &r.instance_id)
                .await
                .map_err(kube_err)?;
        }
        Ok(())
    }

    async fn lookup(
        &self,
        r: &Release,
        kind: LookupKind,
        name: &str,
    ) -> Result<Option<Value>, BackendError> {
        let to_value = |m: Option<BTreeMap<String, String>>| {
            m.map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
        };
        match kind {
            LookupKind::Secret => self
                .kube
                .secret_data(&r.namespace, name)
                .await
                .map(to_value),
            LookupKind::ConfigMap => self
                .kube
                .configmap_data(&r.namespace, name)
                .await
                .map(to_value),
            LookupKind::Service => self.kube.service_endpoint(&r.namespace, name).await,
        }
        .map_err(kube_err)
    }
}

/// The first hook among judged documents, as `Kind/name`.
fn first_hook(docs: &[crate::manifest::Doc]) -> Option<String> {
    docs.iter()
        .map(|d| &d.value)
        .find(|d| !d["metadata"]["annotations"]["helm.sh/hook"].is_null())
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
}
