//! The production release engine: real Helm releases in a cluster, and
//! binding Secrets applied into the app's namespace.
//!
//! Each install or upgrade renders the chart first (`helm template`, same
//! values) and runs the plan's policy on the result, to fail fast. Then
//! `helm upgrade --install` applies it (server-side apply on Helm 4) through
//! the broker's post-renderer ([`super::postrender`]), which checks the same
//! policy on exactly the bytes helm is about to send, hooks included on
//! Helm 4; `crds/` are never installed and Helm 3 runs no hooks. A failed upgrade is rolled back to the
//! last good revision. A release left `pending-*` by a killed helm (a broker
//! crash) is repaired before the next attempt, so resumed operations are not
//! refused with "another operation is in progress".

use std::collections::BTreeMap;
use std::ffi::OsString;

use async_trait::async_trait;
use serde_json::Value;

use super::chart::{Release, ReleaseEngine};
use super::postrender::PostRenderer;
use super::render::{OWNER_KEYS, binding_annotations, string_data};
use crate::broker::model::{SecretRef, Secrets};
use crate::broker::ports::{BackendError, BindingCtx, Checkpoint, SecretSink};
use crate::catalog::LookupKind;
use crate::cluster::{CallKubeconfig, IdentityNames, Kube, KubeError, MANAGED_BY};
use crate::helm::{Capture, Helm, HelmError, redact};
use crate::names::label_value;

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

/// How often the release's workloads are read while helm waits for them.
const READINESS_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// Workloads named in one description before "and N more".
const MAX_UNREADY_NAMED: usize = 5;

/// `waiting for deployment/x: 0 of 1 replicas ready; …`.
fn waiting_for(unready: &[String]) -> String {
    let mut named: Vec<&str> = unready
        .iter()
        .take(MAX_UNREADY_NAMED)
        .map(String::as_str)
        .collect();
    let more = unready.len().saturating_sub(MAX_UNREADY_NAMED);
    let tail = format!("and {more} more");
    if more > 0 {
        named.push(&tail);
    }
    format!("waiting for {}", named.join("; "))
}

fn kube_err(e: KubeError) -> BackendError {
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

    /// `helm status -o json`: the release's status, or None if there is none.
    async fn status(&self, r: &Release) -> Result<Option<String>, BackendError> {
        let mut args: Vec<OsString> = vec!["status".into()];
        args.extend(Self::ns_args(r));
        args.extend(["-o".into(), "json".into()]);
        // The status holds the rendered manifest, which the plan may allow
        // to be larger than the default cap.
        let cap = 2 * r
            .max_manifest_bytes
            .max(crate::helm::DEFAULT_MAX_MANIFEST_BYTES);
        let release = self.as_release(r).await?;
        match release
            .helm
            .run_with("status", &args, None, Capture::Upto(cap))
            .await
        {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                Ok(v["info"]["status"].as_str().map(str::to_string))
            }
            Err(HelmError::Failed { stderr, .. }) if stderr.contains("not found") => Ok(None),
            Err(e) => Err(Self::fail(r, e)),
        }
    }

    /// The newest revision whose status shows it was deployed successfully.
    async fn last_good_revision(&self, r: &Release) -> Result<Option<u64>, BackendError> {
        let mut args: Vec<OsString> = vec!["history".into()];
        args.extend(Self::ns_args(r));
        args.extend(["-o".into(), "json".into(), "--max".into(), "64".into()]);
        let out = self
            .as_release(r)
            .await?
            .helm
            .run("history", &args, None)
            .await
            .map_err(|e| Self::fail(r, e))?;
        let revisions: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        Ok(revisions
            .iter()
            .filter(|h| matches!(h["status"].as_str(), Some("deployed" | "superseded")))
            .filter_map(|h| h["revision"].as_u64())
            .max())
    }

    async fn rollback_to(&self, r: &Release, revision: u64) -> Result<(), BackendError> {
        let mut args: Vec<OsString> = vec!["rollback".into()];
        args.extend(Self::ns_args(r));
        args.push(revision.to_string().into());
        args.extend(self.no_hooks());
        self.as_release(r)
            .await?
            .helm
            .run("rollback", &args, None)
            .await
            .map(|_| ())
            .map_err(|e| Self::fail(r, e))
    }

    /// Brings a release a killed helm left `pending-*` back to a state helm
    /// accepts: a pending first install is removed, a pending upgrade or
    /// rollback is rolled back to the last good revision.
    async fn repair(&self, r: &Release) -> Result<(), BackendError> {
        match self.status(r).await?.as_deref() {
            Some("pending-install") | Some("failed")
                if self.last_good_revision(r).await?.is_none() =>
            {
                tracing::warn!(release = %r.name, namespace = %r.namespace,
                    "removing a release that never installed before installing again");
                self.uninstall_release(r).await
            }
            Some("pending-upgrade") | Some("pending-rollback") => {
                if let Some(rev) = self.last_good_revision(r).await? {
                    tracing::warn!(release = %r.name, revision = rev,
                        "rolling back a release an interrupted helm left pending");
                    self.rollback_to(r, rev).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The namespace of a `namespace: instance` plan: created for this
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

    /// Runs `helm` (an upgrade with `--wait`) while reading the release's
    /// workloads every few seconds, telling `progress` what is not ready
    /// whenever that changes; returns helm's outcome and, if it failed,
    /// what was not ready then. Reading is best effort: a failed read only
    /// leaves the description as it was.
    async fn watch_readiness<F>(
        &self,
        r: &Release,
        helm: F,
        progress: &dyn Checkpoint,
    ) -> (Result<String, HelmError>, Option<String>)
    where
        F: std::future::Future<Output = Result<String, HelmError>>,
    {
        tokio::pin!(helm);
        let mut shown: Option<String> = None;
        let mut tick = tokio::time::interval(READINESS_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once, before helm has created anything.
        tick.tick().await;
        let outcome = loop {
            tokio::select! {
                out = &mut helm => break out,
                _ = tick.tick() => {
                    let note = match self.kube.unready_workloads(&r.namespace, &r.name).await {
                        Ok(u) if u.is_empty() => continue,
                        Ok(u) => waiting_for(&u),
                        Err(e) => {
                            tracing::debug!(release = %r.name, error = %e, "reading readiness");
                            continue;
                        }
                    };
                    if shown.as_ref() != Some(&note) {
                        if let Err(e) = progress.note(&note).await {
                            tracing::debug!(release = %r.name, error = %e.message, "saving progress");
                        }
                        shown = Some(note);
                    }
                }
            }
        };
        if outcome.is_ok() {
            return (outcome, None);
        }
        // Read once more: helm gave up just now, that is the state to name.
        let unready = match self.kube.unready_workloads(&r.namespace, &r.name).await {
            Ok(u) if u.is_empty() => None,
            Ok(u) => Some(waiting_for(&u)),
            Err(_) => shown,
        };
        (outcome, unready)
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

    /// A helm failure, plus what it was still waiting for (Helm 3 says only
    /// "context deadline exceeded").
    fn fail_waiting(r: &Release, e: HelmError, unready: Option<String>) -> BackendError {
        let mut err = Self::fail(r, e);
        if let Some(u) = unready {
            err.message = format!("{} (gave up {u})", err.message);
        }
        err
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

/// Binding Secrets applied into the target namespace.
pub(crate) struct KubeSink {
    kube: Kube,
}

impl KubeSink {
    /// A sink over `kube`.
    pub(crate) fn new(kube: Kube) -> Self {
        KubeSink { kube }
    }
}

/// Whether a Secret's annotations say it is this binding's: a binding is
/// the pair (instance, binding), as both sinks write them.
fn owned_by(annotations: &BTreeMap<String, String>, ctx: &BindingCtx<'_>) -> bool {
    binding_annotations(ctx)
        .iter()
        .filter(|(k, _)| OWNER_KEYS.contains(&k.as_str()))
        .all(|(k, v)| annotations.get(k) == Some(v))
}

#[async_trait]
impl SecretSink for KubeSink {
    async fn put(
        &self,
        ctx: BindingCtx<'_>,
        credentials: &Secrets,
    ) -> Result<SecretRef, BackendError> {
        let inst = ctx.instance.instance;
        let secret = ctx.binding.secret_ref(inst);
        // Never take over a Secret someone else owns: a platform user could
        // otherwise name an app's own Secret, or another instance's binding
        // Secret (binding ids are chosen by platforms and need not be
        // unique across instances), and overwrite it.
        if let Some((annotations, _)) = self
            .kube
            .secret_owner_info(&secret.namespace, &secret.name)
            .await
            .map_err(kube_err)?
        {
            if !owned_by(&annotations, &ctx) {
                return Err(BackendError::new(format!(
                    "Secret {}/{} already exists and does not belong to this binding; choose another secret_name",
                    secret.namespace, secret.name
                )));
            }
        }
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            ("chartbroker.io/instance".to_string(), label_value(&inst.id)),
            (
                "chartbroker.io/binding".to_string(),
                label_value(&ctx.binding.id),
            ),
        ]);
        let annotations = binding_annotations(&ctx);
        let data = string_data(ctx.instance.service, credentials)
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        let type_ = crate::catalog::binding_secret_type(ctx.instance.service);
        self.kube
            .apply_secret(
                &secret.namespace,
                &secret.name,
                &type_,
                labels,
                annotations,
                data,
            )
            .await
            .map_err(kube_err)?;
        Ok(secret)
    }

    async fn delete(&self, ctx: BindingCtx<'_>, secret: &SecretRef) -> Result<(), BackendError> {
        let info = match self
            .kube
            .secret_owner_info(&secret.namespace, &secret.name)
            .await
        {
            Ok(info) => info,
            // A namespace that is gone took its Secrets with it, and the
            // broker's RoleBinding there too, hence the 403.
            Err(e)
                if e.is_forbidden()
                    && matches!(
                        self.kube.namespace_labels(&secret.namespace).await,
                        Ok(None)
                    ) =>
            {
                None
            }
            Err(e) => return Err(kube_err(e)),
        };
        let Some((annotations, uid)) = info else {
            return Ok(());
        };
        if !owned_by(&annotations, &ctx) {
            tracing::warn!(namespace = %secret.namespace, secret = %secret.name,
                "not deleting a binding Secret that belongs to another binding");
            return Ok(());
        }
        match uid {
            Some(uid) => self
                .kube
                .delete_secret_with_uid(&secret.namespace, &secret.name, &uid)
                .await
                .map_err(kube_err),
            None => self
                .kube
                .delete_secret(&secret.namespace, &secret.name)
                .await
                .map_err(kube_err),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn waiting_names_five_workloads_then_counts() {
        let one = vec!["deployment/a: 0 of 1 replicas ready".to_owned()];
        assert_eq!(
            super::waiting_for(&one),
            "waiting for deployment/a: 0 of 1 replicas ready"
        );
        let seven: Vec<String> = (0..7)
            .map(|i| format!("statefulset/s{i}: 0 of 1 replicas ready"))
            .collect();
        let d = super::waiting_for(&seven);
        assert!(
            d.starts_with("waiting for statefulset/s0: 0 of 1 replicas ready; statefulset/s1"),
            "{d}"
        );
        assert!(
            d.ends_with("statefulset/s4: 0 of 1 replicas ready; and 2 more"),
            "{d}"
        );
    }
}
