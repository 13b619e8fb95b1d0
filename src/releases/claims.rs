//! Who owns what in the render tree: one name, one owner, per namespace.
//!
//! Manifests of different instances live in different folders, but
//! applying the tree puts every object of one namespace in one place, so
//! whichever file comes last would win a name two folders declare. The
//! render engine therefore records, per namespace
//! `<root>/<namespace>/`:
//!
//! - `.owner`: the instance whose `namespace: instance` plan owns the
//!   namespace; nobody else renders or binds into it;
//! - `.claims/<name>`: the (instance, binding) whose binding Secret has
//!   that name;
//! - `.objects/<release>`: the instance and the (kind, name) of every
//!   object a release renders.
//!
//! A binding Secret never takes the name of any object of any release, a
//! release never renders an object named like a binding Secret or like
//! another release's object of the same kind, and a `namespace: instance`
//! plan only takes a namespace nobody else has put anything in (nor, when
//! the broker has a cluster, one that exists there and isn't its own).
//! kubectl skips these files: they have no manifest extension.
//!
//! Checks and claims run under one lock, so two operations of one broker
//! can't both pass the check before either claims.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::broker::model::SecretRef;
use crate::broker::ports::BackendError;
use crate::cluster::Kube;
use crate::names::is_dns_label;

/// An object's identity in its namespace: (kind, name).
pub(crate) type ObjectId = (String, String);

/// The (kind, name) of every document that has both.
pub(crate) fn object_ids<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<ObjectId> {
    docs.into_iter()
        .filter_map(|d| {
            let kind = d.get("kind")?.as_str()?;
            let name = d.get("metadata")?.get("name")?.as_str()?;
            Some((kind.to_string(), name.to_string()))
        })
        .collect()
}

/// A release asking for its names.
pub(crate) struct ReleaseOwner<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) release: &'a str,
    pub(crate) instance: &'a str,
    /// A `namespace: instance` plan: the release owns its namespace.
    pub(crate) own_namespace: bool,
}

/// A binding asking for its Secret's name.
pub(crate) struct BindingOwner<'a> {
    pub(crate) instance: &'a str,
    pub(crate) binding: &'a str,
    /// The instance whose folder the Secret goes to, for a dependency.
    pub(crate) dependent: Option<&'a str>,
}

/// The ownership records of one render tree.
pub(crate) struct Claims {
    root: PathBuf,
    lock: Mutex<()>,
    cluster: Option<Kube>,
    /// Each namespace's object records, kept while `.objects` is unchanged.
    recorded: super::recorded::Cache<Recorded>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackendError + '_ {
    move |e| BackendError::new(format!("claiming {}: {e}", path.display()))
}

/// A file's text, `None` if it does not exist.
///
/// Read on the calling task, not the blocking pool: these records are a
/// few hundred bytes in the page cache (a few microseconds), less than the
/// thread hand-off and wake-up `tokio::fs` costs each call (see
/// `recorded::stamp`). Writes, syncs and removals (which may wait for the
/// disk) stay on the blocking pool.
fn read(path: &Path) -> Result<Option<String>, BackendError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Creates `path` with `bytes` unless it exists; whether `path` holds
/// `bytes` now (made here, or already). Either way the name is synced
/// into its folder before this says yes: a claim the broker relies on
/// survives a power loss, also one an earlier attempt made and was killed
/// before syncing.
async fn hold(path: &Path, bytes: &[u8]) -> Result<bool, BackendError> {
    let (p, b) = (path.to_path_buf(), bytes.to_vec());
    tokio::task::spawn_blocking(move || hold_now(&p, &b))
        .await
        .map_err(|e| io(path)(std::io::Error::other(e)))?
        .map_err(io(path))
}

fn hold_now(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use crate::store::seal::{create_dirs, folder_of, sync_dir};
    use std::io::Write as _;
    let folder = folder_of(path);
    create_dirs(folder)?;
    let held = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f.write_all(bytes).and(f.sync_data()).map(|()| true)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path)? == bytes,
        Err(e) => return Err(e),
    };
    if held {
        sync_dir(folder)?;
    }
    Ok(held)
}

/// One release's recorded objects.
#[derive(Clone)]
struct Recorded {
    release: String,
    objects: Vec<ObjectId>,
}

impl Claims {
    /// The records of the tree under `root`.
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Claims {
            root: root.into(),
            lock: Mutex::new(()),
            cluster: None,
            recorded: Default::default(),
        }
    }

    /// Also checks `namespace: instance` namespaces against a cluster.
    pub(crate) fn with_cluster(mut self, kube: Kube) -> Self {
        self.cluster = Some(kube);
        self
    }

    fn ns_dir(&self, namespace: &str) -> PathBuf {
        self.root.join(namespace)
    }

    fn binding_path(&self, secret: &SecretRef) -> PathBuf {
        self.ns_dir(&secret.namespace)
            .join(".claims")
            .join(&secret.name)
    }

    fn owner_path(&self, namespace: &str) -> PathBuf {
        self.ns_dir(namespace).join(".owner")
    }

    fn objects_path(&self, namespace: &str, release: &str) -> PathBuf {
        self.ns_dir(namespace).join(".objects").join(release)
    }

    /// Claims the namespace (for `namespace: instance` plans) and the
    /// names of `objects`, or says who holds them. Nothing is recorded
    /// when the answer is no.
    pub(crate) async fn claim_release(
        &self,
        r: &ReleaseOwner<'_>,
        objects: &[ObjectId],
    ) -> Result<(), BackendError> {
        let _held = self.lock.lock().await;
        self.check_namespace(r).await?;
        let others = self.recorded(r.namespace)?;
        for (kind, name) in objects {
            if is_dns_label(name, 63)
                && read(&self.binding_path(&secret_ref(r.namespace, name)))?.is_some()
            {
                return Err(BackendError::new(format!(
                    "the chart renders {kind} {}/{name}, the name of a binding Secret there; \
                     rename the object or unbind first",
                    r.namespace
                )));
            }
            let taken = others
                .iter()
                .filter(|o| o.release != r.release)
                .any(|o| o.objects.iter().any(|(k, n)| k == kind && n == name));
            if taken {
                return Err(BackendError::new(format!(
                    "{kind} {}/{name} already belongs to another release; \
                     two releases can't render objects of one kind and name in one namespace",
                    r.namespace
                )));
            }
        }
        if r.own_namespace {
            let owner = self.owner_path(r.namespace);
            if !hold(&owner, r.instance.as_bytes()).await? {
                return Err(not_yours(r.namespace));
            }
        }
        let record = json!({"instance": r.instance, "objects": objects});
        let path = self.objects_path(r.namespace, r.release);
        super::atomic::write_atomic(
            path.parent().expect("has a folder"),
            r.release,
            record.to_string().as_bytes(),
        )
        .await
        .map_err(io(&path))?;
        let objects_dir = path.parent().expect("has a folder");
        let stamp = super::recorded::stamp(objects_dir);
        self.recorded.update(r.namespace, stamp, |all| {
            all.retain(|o| o.release != r.release);
            all.push(Recorded {
                release: r.release.to_string(),
                objects: objects.to_vec(),
            });
        });
        Ok(())
    }

    /// Whether `r` may render into its namespace: a namespace another
    /// instance owns is refused; a `namespace: instance` plan claiming its
    /// namespace the first time needs it empty of anyone else's objects
    /// (in the tree, and in the cluster when there is one).
    async fn check_namespace(&self, r: &ReleaseOwner<'_>) -> Result<(), BackendError> {
        match read(&self.owner_path(r.namespace))? {
            Some(o) if o == r.instance => return Ok(()),
            Some(_) => return Err(not_yours(r.namespace)),
            None if !r.own_namespace => return Ok(()),
            None => {}
        }
        if self.squatted(r)? {
            return Err(BackendError::new(format!(
                "namespace {} already holds objects of another service instance; \
                 a plan with its own namespace only takes a namespace nobody else uses",
                r.namespace
            )));
        }
        match &self.cluster {
            Some(kube) => self.check_cluster(kube, r).await,
            None => Ok(()),
        }
    }

    /// Whether the namespace folder holds anything of another instance.
    fn squatted(&self, r: &ReleaseOwner<'_>) -> Result<bool, BackendError> {
        let dir = self.ns_dir(r.namespace);
        for entry in list(&dir)? {
            match entry.as_str() {
                e if e == r.release => {}
                ".owner" => {}
                ".objects" => {
                    let records = list(&dir.join(".objects"))?;
                    if records.iter().any(|rel| rel != r.release) {
                        return Ok(true);
                    }
                }
                ".claims" => {
                    for name in list(&dir.join(".claims"))? {
                        let claim = read(&dir.join(".claims").join(&name))?;
                        let mine = claim
                            .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                            .is_some_and(|c| c[0] == r.instance);
                        // A dependency's Secret, placed in this release's folder.
                        let ours = dir
                            .join(r.release)
                            .join("bindings")
                            .join(format!("{name}.yaml"))
                            .try_exists()
                            .unwrap_or(false);
                        if !mine && !ours {
                            return Ok(true);
                        }
                    }
                }
                _ => return Ok(true),
            }
        }
        Ok(false)
    }

    async fn check_cluster(&self, kube: &Kube, r: &ReleaseOwner<'_>) -> Result<(), BackendError> {
        use k8s_openapi::api::core::v1::Namespace;
        let api: kube::Api<Namespace> = kube::Api::all(kube.client());
        let ns = api.get_opt(r.namespace).await.map_err(|e| {
            BackendError::new(format!(
                "reading Namespace {} in the cluster: {e}",
                r.namespace
            ))
        })?;
        let Some(ns) = ns else { return Ok(()) };
        let meta = &ns.metadata;
        let managed = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/managed-by"))
            .is_some_and(|v| v == "chartbroker");
        let instance = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get("chartbroker.io/instance-id"))
            .is_some_and(|v| v == r.instance);
        if managed && instance {
            return Ok(());
        }
        Err(BackendError::new(format!(
            "namespace {} already exists in the cluster and does not belong to this service instance",
            r.namespace
        )))
    }

    /// Every release's recorded objects in `namespace` (read once, then
    /// kept while `.objects` is unchanged: [`super::recorded`]).
    fn recorded(&self, namespace: &str) -> Result<Arc<Vec<Recorded>>, BackendError> {
        let stamp = super::recorded::stamp(&self.ns_dir(namespace).join(".objects"));
        if let Some(kept) = self.recorded.get(namespace, stamp) {
            return Ok(kept);
        }
        let read = Arc::new(self.read_recorded(namespace)?);
        self.recorded.put(namespace, stamp, read.clone());
        Ok(read)
    }

    /// Every release's recorded objects in `namespace`, from disk; a release
    /// folder rendered before records existed is read from its manifests.
    fn read_recorded(&self, namespace: &str) -> Result<Vec<Recorded>, BackendError> {
        let dir = self.ns_dir(namespace);
        let mut out = Vec::new();
        for release in list(&dir.join(".objects"))? {
            let Some(text) = read(&dir.join(".objects").join(&release))? else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            let objects = serde_json::from_value(v["objects"].clone()).unwrap_or_default();
            out.push(Recorded { release, objects });
        }
        for release in list(&dir)? {
            if release.starts_with('.') || out.iter().any(|r| r.release == release) {
                continue;
            }
            let manifests = dir.join(&release).join("manifests.yaml");
            let Some(text) = read(&manifests)? else {
                continue;
            };
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_default();
            out.push(Recorded {
                release,
                objects: object_ids(&docs),
            });
        }
        Ok(out)
    }

    /// Forgets a release's objects and, for a `namespace: instance` plan,
    /// its namespace: only what it owns.
    pub(crate) async fn drop_release(&self, r: &ReleaseOwner<'_>) -> Result<(), BackendError> {
        let _held = self.lock.lock().await;
        let dir = self.ns_dir(r.namespace);
        let record = self.objects_path(r.namespace, r.release);
        let theirs = read(&record)?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["instance"] != r.instance);
        let owner = self.owner_path(r.namespace);
        let mut files = Vec::new();
        if !theirs {
            files.push(record.clone());
        }
        if r.own_namespace && read(&owner)?.as_deref() == Some(r.instance) {
            files.push(owner);
        }
        // Empty folders go; anything someone else still has there stays.
        let dirs = vec![dir.join(".objects"), dir.join(".claims"), dir];
        super::atomic::remove_files(files, dirs).await?;
        if !theirs {
            // `.objects` is gone if this was its last record: no stamp, so
            // the kept copy is read again next time (an empty folder).
            let stamp = super::recorded::stamp(record.parent().expect("has a folder"));
            self.recorded.update(r.namespace, stamp, |all| {
                all.retain(|o| o.release != r.release)
            });
        }
        Ok(())
    }

    /// Claims a binding Secret's name, or says why it can't be had: the
    /// namespace is another instance's, a release's object has the name,
    /// or another binding has it.
    pub(crate) async fn claim_binding(
        &self,
        secret: &SecretRef,
        owner: &BindingOwner<'_>,
    ) -> Result<(), BackendError> {
        let _held = self.lock.lock().await;
        if let Some(o) = read(&self.owner_path(&secret.namespace))?
            && o != owner.instance
            && Some(o.as_str()) != owner.dependent
        {
            return Err(not_yours(&secret.namespace));
        }
        let taken = self
            .recorded(&secret.namespace)?
            .iter()
            .any(|r| r.objects.iter().any(|(_, n)| *n == secret.name));
        if taken {
            return Err(BackendError::new(format!(
                "{}/{} is the name of an object a release renders; choose another secret_name",
                secret.namespace, secret.name
            )));
        }
        let path = self.binding_path(secret);
        let mine = claim_of(owner);
        if hold(&path, &mine).await? {
            return Ok(());
        }
        Err(BackendError::new(format!(
            "Secret {}/{} already belongs to another binding; choose another secret_name",
            secret.namespace, secret.name
        )))
    }

    /// Whether `owner` may remove the Secret: its claim is its own, or gone.
    pub(crate) async fn holds_binding(
        &self,
        secret: &SecretRef,
        owner: &BindingOwner<'_>,
    ) -> Result<bool, BackendError> {
        let claim = read(&self.binding_path(secret))?;
        Ok(claim.is_none_or(|c| c.into_bytes() == claim_of(owner)))
    }

    /// Forgets a binding Secret's claim (after its manifest is gone).
    pub(crate) async fn drop_binding(&self, secret: &SecretRef) -> Result<(), BackendError> {
        let _held = self.lock.lock().await;
        super::atomic::remove_files(vec![self.binding_path(secret)], Vec::new()).await
    }
}

fn secret_ref(namespace: &str, name: &str) -> SecretRef {
    SecretRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

fn claim_of(owner: &BindingOwner<'_>) -> Vec<u8> {
    json!([owner.instance, owner.binding])
        .to_string()
        .into_bytes()
}

fn not_yours(namespace: &str) -> BackendError {
    BackendError::new(format!(
        "namespace {namespace} belongs to another service instance"
    ))
}

/// The names in a folder (none if it does not exist), read on the calling
/// task like [`read`].
fn list(dir: &Path) -> Result<Vec<String>, BackendError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in entries {
        out.push(
            e.map_err(io(dir))?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    Ok(out)
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
