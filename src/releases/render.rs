//! The embedded release engine: renders each release with the real
//! `helm template` into `<root>/<namespace>/<release>/`, ready for
//! `kubectl apply -f` or a GitOps controller. No cluster needed.
//!
//! The manifests pass the plan's policy ([`super::pipeline::render_checked`])
//! before anything is written, and every file is written in the one
//! canonical form of [`crate::manifest::emit`]: the tree the policy judged,
//! never helm's bytes. Files are replaced atomically (write a temporary file, then rename), so a
//! reader never sees half a manifest.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::atomic::write_atomic;
use super::chart::{Release, ReleaseEngine};
use super::claims::{self, BindingOwner, Claims, ReleaseOwner};
use crate::broker::model::{SecretRef, Secrets};
use crate::broker::ports::{BackendError, BindingCtx, Checkpoint, SecretSink};
use crate::catalog::{LookupKind, Service};
use crate::helm::{Helm, redact};
use crate::names::release_name;

/// Renders releases and binding Secrets to files.
pub(crate) struct RenderEngine {
    helm: Helm,
    root: PathBuf,
    claims: Claims,
}

impl RenderEngine {
    /// An engine writing under `root`.
    pub(crate) fn new(helm: Helm, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        RenderEngine {
            helm,
            claims: Claims::new(&root),
            root,
        }
    }

    /// Checks `namespace: instance` namespaces against this cluster too.
    pub(crate) fn with_cluster(mut self, kube: crate::cluster::Kube) -> Self {
        self.claims = self.claims.with_cluster(kube);
        self
    }

    /// The folder of one release.
    pub(crate) fn release_dir(&self, namespace: &str, release: &str) -> PathBuf {
        self.root.join(namespace).join(release)
    }

    async fn render(&self, r: &Release) -> Result<(), BackendError> {
        // Nothing is written unless every manifest passes the plan's policy,
        // and what is written is the judged tree, never helm's bytes.
        let docs = super::pipeline::render_checked(&self.helm, r)
            .await
            .map_err(|e| e.backend(r))?;
        self.claims
            .claim_release(
                &release_owner(r),
                &claims::object_ids(docs.iter().map(|d| &d.value)),
            )
            .await?;
        let dir = self.release_dir(&r.namespace, &r.name);
        let mut files = vec![("manifests.yaml", crate::manifest::emit(&docs))];
        if r.own_namespace {
            files.push((
                "namespace.yaml",
                namespace_manifest(&r.namespace, &r.instance_id)?,
            ));
        }
        for (name, content) in files {
            write_atomic(&dir, name, content.as_bytes())
                .await
                .map_err(|e| {
                    BackendError::new(format!("writing {}: {e}", dir.join(name).display()))
                })?;
        }
        Ok(())
    }
}

#[async_trait]
impl ReleaseEngine for RenderEngine {
    fn synchronous(&self) -> bool {
        true
    }

    async fn install(
        &self,
        release: &Release,
        _progress: &dyn Checkpoint,
    ) -> Result<(), BackendError> {
        self.render(release).await
    }

    async fn upgrade(
        &self,
        release: &Release,
        _progress: &dyn Checkpoint,
    ) -> Result<(), BackendError> {
        self.render(release).await
    }

    async fn uninstall(&self, release: &Release) -> Result<(), BackendError> {
        let dir = self.release_dir(&release.namespace, &release.name);
        super::atomic::remove_tree(dir).await?;
        self.claims.drop_release(&release_owner(release)).await
    }

    /// Reads the object from the rendered manifests: without a cluster, what
    /// the chart renders is what the release contains.
    async fn lookup(
        &self,
        release: &Release,
        kind: LookupKind,
        name: &str,
    ) -> Result<Option<Value>, BackendError> {
        let path = self
            .release_dir(&release.namespace, &release.name)
            .join("manifests.yaml");
        // Read on the calling task: a page-cache read of one release's
        // manifests costs less than a blocking-pool hand-off.
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(BackendError::new(format!(
                    "reading {}: {e}",
                    path.display()
                )));
            }
        };
        // A reader's error may quote the document, which holds the secrets.
        let docs: Vec<Value> = crate::manifest::read(&text)
            .map_err(|e| {
                let message = format!("reading {}: {e}", path.display());
                BackendError::new(redact(&message, &release.redact))
            })?
            .into_iter()
            .map(|d| d.value)
            .collect();
        let want = match kind {
            LookupKind::Secret => "Secret",
            LookupKind::ConfigMap => "ConfigMap",
            LookupKind::Service => "Service",
        };
        let Some(doc) = docs.into_iter().find(|d| {
            d["kind"] == want && d["metadata"]["name"] == name && d["apiVersion"] == "v1"
        }) else {
            return Ok(None);
        };
        Ok(Some(object_value(kind, &doc, name, &release.namespace)))
    }
}

/// A Secret's or ConfigMap's data as strings, or a Service as template data.
fn object_value(kind: LookupKind, doc: &Value, name: &str, namespace: &str) -> Value {
    use base64::Engine as _;
    let strings = |v: &Value| -> serde_json::Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Value::String(
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        LookupKind::ConfigMap => Value::Object(strings(&doc["data"])),
        LookupKind::Secret => {
            let mut out: serde_json::Map<String, Value> = doc["data"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(v.as_str()?.trim())
                                .ok()?;
                            Some((
                                k.clone(),
                                Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.extend(strings(&doc["stringData"]));
            Value::Object(out)
        }
        LookupKind::Service => {
            let ports = doc["spec"]["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap_or_default().to_string(),
                                p["port"].as_i64().unwrap_or_default() as i32,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            crate::cluster::service_value(name, namespace, ports)
        }
    }
}

/// Where a binding Secret's manifest goes. A binding the broker made for a
/// dependent instance lives in the dependent's folder, beside the release
/// that reads it, so applying that folder brings its credentials along.
/// Others live under the bound instance's folder: by name in its namespace,
/// with the namespace in front when the platform asked for another one.
fn secret_path(engine: &RenderEngine, ctx: &BindingCtx<'_>, secret: &SecretRef) -> PathBuf {
    let inst = ctx.instance.instance;
    match &ctx.binding.dependent {
        Some(dependent) => engine
            .release_dir(&secret.namespace, &release_name(dependent))
            .join("bindings")
            .join(format!("{}.yaml", secret.name)),
        None => {
            let file = if secret.namespace == inst.namespace {
                format!("{}.yaml", secret.name)
            } else {
                format!("{}.{}.yaml", secret.namespace, secret.name)
            };
            engine
                .release_dir(&inst.namespace, &inst.release)
                .join("bindings")
                .join(file)
        }
    }
}

/// The annotations that name a binding Secret's owner: the pair (instance,
/// binding), since platforms choose binding ids and two instances' bindings
/// may share one.
pub(crate) const OWNER_KEYS: [&str; 2] =
    ["chartbroker.io/instance-id", "chartbroker.io/binding-id"];

fn release_owner(r: &Release) -> ReleaseOwner<'_> {
    ReleaseOwner {
        namespace: &r.namespace,
        release: &r.name,
        instance: &r.instance_id,
        own_namespace: r.own_namespace,
    }
}

fn binding_owner<'a>(ctx: &'a BindingCtx<'_>) -> BindingOwner<'a> {
    BindingOwner {
        instance: &ctx.instance.instance.id,
        binding: &ctx.binding.id,
        dependent: ctx.binding.dependent.as_deref(),
    }
}

#[async_trait]
impl SecretSink for RenderEngine {
    async fn put(
        &self,
        ctx: BindingCtx<'_>,
        credentials: &Secrets,
    ) -> Result<SecretRef, BackendError> {
        let secret = ctx.binding.secret_ref(ctx.instance.instance);
        self.claims
            .claim_binding(&secret, &binding_owner(&ctx))
            .await?;
        let manifest = secret_manifest(&secret, credentials, &ctx)?;
        let path = secret_path(self, &ctx, &secret);
        let (dir, file) = (
            path.parent().expect("has a folder"),
            path.file_name().expect("has a name"),
        );
        write_atomic(dir, &file.to_string_lossy(), manifest.as_bytes())
            .await
            .map_err(|e| BackendError::new(format!("writing {}: {e}", path.display())))?;
        Ok(secret)
    }

    async fn delete(&self, ctx: BindingCtx<'_>, secret: &SecretRef) -> Result<(), BackendError> {
        if !self
            .claims
            .holds_binding(secret, &binding_owner(&ctx))
            .await?
        {
            tracing::warn!(namespace = %secret.namespace, secret = %secret.name,
                "not deleting a binding Secret that belongs to another binding");
            return Ok(());
        }
        let path = secret_path(self, &ctx, secret);
        super::atomic::remove_files(vec![path], Vec::new()).await?;
        self.claims.drop_binding(secret).await
    }
}

/// Credentials as Secret `stringData`: strings as they are, anything else as
/// JSON text (Secret data is always strings). A service with `binding:`
/// adds the Service Binding for Kubernetes entries `type` and `provider`;
/// they win over credentials of those names (lint keeps chart plans free of
/// them, so only an upstream broker's credentials can collide), as the
/// spec's own ServiceBinding `.spec.type` overrides the Secret's entry.
pub(crate) fn string_data(
    service: &Service,
    credentials: &Secrets,
) -> serde_json::Map<String, Value> {
    let mut data: serde_json::Map<String, Value> = credentials
        .0
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect();
    if let Some(b) = &service.binding {
        for (key, value) in [("type", &b.kind), ("provider", &b.provider)] {
            if data
                .insert(key.into(), Value::String(value.clone()))
                .is_some()
            {
                tracing::warn!(service = %service.name, entry = key,
                    "credentials carry an entry the service's binding type replaces in the Secret");
            }
        }
    }
    data
}

/// The annotations every binding Secret carries, whichever sink writes it:
/// the full ids (labels can't hold every id) and what it was bound to.
pub(crate) fn binding_annotations(
    ctx: &BindingCtx<'_>,
) -> std::collections::BTreeMap<String, String> {
    [
        ("chartbroker.io/instance-id", &ctx.instance.instance.id),
        ("chartbroker.io/binding-id", &ctx.binding.id),
        ("chartbroker.io/service", &ctx.instance.service.name),
        ("chartbroker.io/plan", &ctx.instance.plan.name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

fn secret_manifest(
    secret: &SecretRef,
    credentials: &Secrets,
    ctx: &BindingCtx<'_>,
) -> Result<String, BackendError> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret.name,
            "namespace": secret.namespace,
            "labels": {"app.kubernetes.io/managed-by": "chartbroker"},
            "annotations": binding_annotations(ctx),
        },
        "type": crate::catalog::binding_secret_type(ctx.instance.service),
        "stringData": string_data(ctx.instance.service, credentials),
    });
    // The same canonical form as the release's manifests. Never name what
    // failed: the object holds credentials.
    crate::manifest::emit_object(doc).map_err(|_| {
        BackendError::new(format!(
            "the binding Secret {}/{} can't be written: a credential name is too long",
            secret.namespace, secret.name
        ))
    })
}

fn namespace_manifest(namespace: &str, instance_id: &str) -> Result<String, BackendError> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {"app.kubernetes.io/managed-by": "chartbroker"},
            "annotations": {"chartbroker.io/instance-id": instance_id},
        },
    });
    crate::manifest::emit_object(doc)
        .map_err(|e| BackendError::new(format!("the Namespace {namespace}: {e}")))
}
