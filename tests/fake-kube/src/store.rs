//! The object store: every object as JSON, keyed by (group, resource,
//! namespace, name), one global resourceVersion counter, and a bounded
//! history of watch events.
//!
//! Write semantics follow the documented API conventions: `uid`,
//! `creationTimestamp` and `resourceVersion` are the server's;
//! `metadata.resourceVersion` in an update is an optimistic-concurrency
//! precondition (409 Conflict when stale, unconditional when absent); an
//! update that changes nothing doesn't bump the resourceVersion;
//! `generation` starts at 1 and grows when anything but metadata and status
//! changes (for objects that have a `spec`); writes to a resource with a
//! `/status` subresource keep the stored `status`; a DELETE of an object with
//! finalizers only marks it (`deletionTimestamp`) until an update removes the
//! last finalizer. Namespaced writes need an existing namespace; deleting a
//! namespace deletes what is in it at once, and deleting an object deletes
//! its dependents (`ownerReferences`) at once (the real server does both
//! asynchronously, and honours `propagationPolicy: Orphan`, which this fake
//! ignores). Secrets get `stringData` folded into base64 `data`.

use std::collections::{BTreeMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::discovery::{self, ResourceType};
use crate::patch::{self, Stamp};
use crate::selector::{FieldSelector, LabelSelector};

/// Watch events kept for `watch` requests that resume from a
/// resourceVersion; older ones get 410 Gone, as after a real compaction.
const HISTORY: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

/// A change, as a watch stream reports it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`
    pub kind: &'static str,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
}

/// An error the API answers with, as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// The reason the real API server uses for an HTTP code.
    pub fn from_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Expired",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            504 => "Timeout",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        };
        ApiError::new(code, reason, message)
    }

    fn with_details(mut self, rt: &ResourceType, name: &str) -> Self {
        let mut d = json!({"name": name, "kind": rt.plural});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .with_details(rt, name)
    }

    fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .with_details(rt, name)
    }

    fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
        )
        .with_details(rt, name)
    }

    fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    fn invalid(rt: &ResourceType, name: &str, field: &str, why: &str) -> Self {
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {why}", rt.kind),
        )
        .with_details(rt, name);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = json!([{"reason": "FieldValueInvalid", "message": why, "field": field}]);
        }
        e
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

/// How a write was asked for (query parameters and the caller's identity).
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`, or what the real server derives from the User-Agent.
    pub manager: String,
    /// `force` (server-side apply only).
    pub force: bool,
}

/// A PATCH body, by content type.
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
}

pub struct Store {
    builtin: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<WatchEvent>,
    events: broadcast::Sender<WatchEvent>,
    next_cluster_ip: u32,
    /// See [`crate::FakeKube::set_workloads_ready`].
    pub workloads_ready: bool,
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Store {
            builtin: discovery::builtin(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            events,
            next_cluster_ip: 10,
            workloads_ready: false,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store
                .put_raw(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .expect("pre-created namespace");
        }
        store
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Built-in types plus those of the stored CustomResourceDefinitions.
    pub fn types(&self) -> Vec<ResourceType> {
        let mut types = self.builtin.clone();
        let crds = self
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == "apiextensions.k8s.io" && k.plural == "customresourcedefinitions"
            })
            .flat_map(|(_, crd)| discovery::from_crd(crd));
        for t in crds {
            if !types
                .iter()
                .any(|b| b.group == t.group && b.version == t.version && b.plural == t.plural)
            {
                types.push(t);
            }
        }
        types
    }

    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
        Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                ns.into()
            } else {
                String::new()
            },
            name: name.into(),
        }
    }

    /// The object as served in `rt`'s version (custom resources are stored
    /// as written, without conversion).
    fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut out = obj.clone();
        out["apiVersion"] = json!(rt.api_version());
        out["kind"] = json!(rt.kind);
        out
    }

    // ---- reads -------------------------------------------------------------

    /// The key of `name` and its object as stored (404 when there is none).
    fn stored(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<(Key, Value)> {
        let key = Self::key(rt, ns, name);
        match self.objects.get(&key) {
            Some(obj) => Ok((key, obj.clone())),
            None => Err(ApiError::not_found(rt, name)),
        }
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value> {
        self.objects
            .get(&Self::key(rt, ns, name))
            .map(|o| Self::present(rt, o))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// Objects of `rt` in `ns` (all namespaces for `None`), filtered.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| ns.is_none_or(|ns| !rt.namespaced || k.namespace == ns))
            .map(|(_, o)| Self::present(rt, o))
            .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
            .collect()
    }

    pub fn get_raw(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&Key {
                group: group.into(),
                plural: plural.into(),
                namespace: ns.into(),
                name: name.into(),
            })
            .cloned()
    }

    pub fn list_raw(&self, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.plural == plural && ns.is_none_or(|ns| k.namespace == ns))
            .map(|(_, o)| o.clone())
            .collect()
    }

    // ---- watch support -------------------------------------------------------

    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    /// Events after resourceVersion `rv`, or `None` if some were already
    /// dropped from the history (the client must list again).
    pub fn events_since(&self, rv: u64) -> Option<Vec<WatchEvent>> {
        if rv >= self.rv {
            return Some(vec![]);
        }
        let oldest = self.history.front().map_or(self.rv + 1, |e| e.rv);
        if rv + 1 < oldest {
            return None;
        }
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Every stored object as an ADDED event (for a watch's initial state).
    pub fn snapshot(&self) -> Vec<WatchEvent> {
        let types = self.types();
        self.objects
            .iter()
            .map(|(k, o)| {
                let object = types
                    .iter()
                    .find(|t| t.group == k.group && t.plural == k.plural)
                    .map_or_else(|| o.clone(), |t| Self::present(t, o));
                WatchEvent {
                    rv: self.rv,
                    kind: "ADDED",
                    group: k.group.clone(),
                    plural: k.plural.clone(),
                    namespace: k.namespace.clone(),
                    object,
                }
            })
            .collect()
    }

    fn emit(&mut self, kind: &'static str, key: &Key, object: Value) {
        let event = WatchEvent {
            rv: self.rv,
            kind,
            group: key.group.clone(),
            plural: key.plural.clone(),
            namespace: key.namespace.clone(),
            object,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        let _ = self.events.send(event); // no watchers is fine
    }

    /// Stores `obj` under `key` with a new resourceVersion.
    fn save(&mut self, key: Key, mut obj: Value) -> Value {
        if self.workloads_ready && !obj["metadata"]["deletionTimestamp"].is_string() {
            if let Some(status) = crate::controllers::ready_status(&key.group, &key.plural, &obj) {
                obj["status"] = status;
            }
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key.clone(), obj.clone());
        self.emit(kind, &key, obj.clone());
        if self.workloads_ready && key.group == "apps" && key.plural == "deployments" {
            self.sync_replica_sets(&obj);
        }
        obj
    }

    /// The simulated Deployment controller: the ReplicaSet of the current
    /// template runs all replicas, older ones of the Deployment none.
    fn sync_replica_sets(&mut self, deploy: &Value) {
        let uid = deploy["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (name, mut rs) = crate::controllers::replica_set_for(deploy);
        let ns = deploy["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let owned: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(k, o)| {
                k.group == "apps"
                    && k.plural == "replicasets"
                    && k.namespace == ns
                    && crate::controllers::controlled_by(o, &uid)
            })
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (key, mut old) in owned {
            if key.name != name && old["spec"]["replicas"] != 0 {
                old["spec"]["replicas"] = json!(0);
                self.save(key, old);
            }
        }
        let key = Key {
            group: "apps".into(),
            plural: "replicasets".into(),
            namespace: ns,
            name,
        };
        match self.objects.get(&key) {
            Some(current) if current["spec"] == rs["spec"] => {}
            Some(current) => {
                let mut updated = current.clone();
                updated["spec"] = rs["spec"].take();
                self.save(key, updated);
            }
            None => {
                rs["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                rs["metadata"]["creationTimestamp"] = json!(now());
                rs["metadata"]["generation"] = json!(1);
                self.save(key, rs);
            }
        }
    }

    /// Removes `key`; the DELETED event carries a new resourceVersion.
    fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit("DELETED", key, obj.clone());
        // Garbage collection: dependents whose owners are all gone follow
        // (the real collector does this in the background).
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let orphans: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                let refs = o["metadata"]["ownerReferences"].as_array();
                refs.is_some_and(|refs| {
                    refs.iter().any(|r| r["uid"] == uid.as_str())
                        && refs
                            .iter()
                            .all(|r| !self.uid_exists(r["uid"].as_str().unwrap_or_default()))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in orphans {
            self.remove(&k);
        }
        // What lived in a namespace or under a CRD goes with it.
        if key.group.is_empty() && key.plural == "namespaces" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.namespace == key.name)
                .cloned()
                .collect();
            for k in inside {
                self.remove(&k);
            }
        } else if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            let (group, plural) = (
                obj["spec"]["group"].as_str().unwrap_or_default(),
                obj["spec"]["names"]["plural"].as_str().unwrap_or_default(),
            );
            let instances: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.group == group && k.plural == plural)
                .cloned()
                .collect();
            for k in instances {
                self.remove(&k);
            }
        }
        Some(obj)
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects.values().any(|o| o["metadata"]["uid"] == uid)
    }

    // ---- writes --------------------------------------------------------------

    /// Checks the namespace a namespaced write goes to.
    fn check_namespace(&self, rt: &ResourceType, ns: &str) -> Result<()> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns_type = self
            .builtin
            .iter()
            .find(|t| t.plural == "namespaces")
            .unwrap();
        match self.objects.get(&Self::key(ns_type, "", ns)) {
            None => Err(ApiError::not_found(ns_type, ns)),
            Some(n) if n["metadata"]["deletionTimestamp"].is_string() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks `kind`/`apiVersion` (if given) and the name and namespace of
    /// a body against the request, and fills in the namespace.
    fn check_identity(
        rt: &ResourceType,
        ns: &str,
        url_name: Option<&str>,
        obj: &mut Value,
    ) -> Result<()> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(kind) = obj["kind"].as_str().filter(|k| !k.is_empty()) {
            if kind != rt.kind {
                return Err(ApiError::bad_request(format!(
                    "the body kind {kind} does not match the resource {}",
                    rt.qualified()
                )));
            }
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let meta = &mut obj["metadata"];
        if let (Some(url), Some(body)) = (url_name, meta["name"].as_str()) {
            if url != body {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body}) does not match the name on the URL ({url})"
                )));
            }
        }
        if let Some(url) = url_name {
            meta["name"] = json!(url);
        }
        if rt.namespaced {
            match meta["namespace"].as_str() {
                Some(body) if !body.is_empty() && body != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => meta["namespace"] = json!(ns),
            }
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        Ok(())
    }

    /// Type-specific defaults and conversions the real registry applies.
    fn normalize(&mut self, rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> Result<()> {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => {
                if let Some(Value::Object(sd)) =
                    obj.as_object_mut().and_then(|o| o.remove("stringData"))
                {
                    if !obj["data"].is_object() {
                        obj["data"] = json!({});
                    }
                    for (k, v) in sd {
                        let text = v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string());
                        obj["data"][k] = json!(B64.encode(text));
                    }
                }
                for (k, v) in obj["data"].as_object().into_iter().flatten() {
                    if v.as_str().is_none_or(|s| B64.decode(s).is_err()) {
                        return Err(ApiError::bad_request(format!(
                            "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k:?}]"
                        )));
                    }
                }
                if obj["type"].as_str().is_none_or(str::is_empty) {
                    obj["type"] = json!("Opaque");
                }
            }
            ("", "namespaces") => {
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
                let phase = if obj["metadata"]["deletionTimestamp"].is_string() {
                    "Terminating"
                } else {
                    "Active"
                };
                obj["status"] = json!({"phase": phase});
            }
            ("", "services") => {
                let spec = &mut obj["spec"];
                if !spec.is_object() {
                    *spec = json!({});
                }
                if spec["type"].as_str().is_none() {
                    spec["type"] = json!("ClusterIP");
                }
                if spec["type"] != "ExternalName" && spec["clusterIP"].as_str().is_none() {
                    let kept =
                        old.and_then(|o| o["spec"]["clusterIP"].as_str().map(str::to_string));
                    let ip = kept.unwrap_or_else(|| {
                        self.next_cluster_ip += 1;
                        let n = self.next_cluster_ip;
                        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
                    });
                    spec["clusterIP"] = json!(ip);
                    spec["clusterIPs"] = json!([ip]);
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                // No controller will establish it, so it is at once, as the
                // real server does within moments: helm waits for this.
                let stored: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect();
                let now = now();
                obj["status"] = json!({
                    "acceptedNames": obj["spec"]["names"].clone(),
                    "storedVersions": stored,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found", "lastTransitionTime": now},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted", "lastTransitionTime": now},
                    ],
                });
            }
            _ => {}
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Value> {
        Self::check_identity(rt, ns, None, &mut obj)?;
        self.check_namespace(rt, ns)?;
        let meta = obj["metadata"].as_object_mut().unwrap();
        let name = match (
            meta.get("name").and_then(Value::as_str),
            meta.get("generateName").and_then(Value::as_str),
        ) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", random_suffix()),
            _ => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        };
        meta.insert("name".into(), json!(name));
        if let Some(e) = invalid_name(&name) {
            return Err(ApiError::invalid(rt, &name, "metadata.name", &e));
        }
        let key = Self::key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        if obj.get("spec").is_some() {
            obj["metadata"]["generation"] = json!(1);
        }
        if rt.status_subresource {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        self.normalize(rt, &mut obj, None)?;
        if !opts.manager.is_empty() {
            patch::record_update(None, &mut obj, &self.stamp(rt, opts), rt.status_subresource);
        }
        if opts.dry_run {
            return Ok(obj);
        }
        Ok(self.save(key, obj))
    }

    fn stamp(&self, rt: &ResourceType, opts: &WriteOpts) -> Stamp {
        Stamp {
            manager: opts.manager.clone(),
            api_version: rt.api_version(),
            time: now(),
        }
    }

    /// PUT. `status_only` for the `/status` subresource.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<Value> {
        Self::check_identity(rt, ns, Some(name), &mut obj)?;
        let (key, old) = self.stored(rt, ns, name)?;
        self.check_resource_version(rt, name, &old, &obj)?;
        self.finish_update(rt, key, old, obj, opts, status_only)
    }

    fn check_resource_version(
        &self,
        rt: &ResourceType,
        name: &str,
        old: &Value,
        new: &Value,
    ) -> Result<()> {
        match new["metadata"]["resourceVersion"].as_str() {
            Some(rv)
                if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() =>
            {
                Err(ApiError::stale(rt, name))
            }
            _ => Ok(()),
        }
    }

    /// Common tail of PUT and PATCH: carry over what the server owns,
    /// normalize, track ownership and generation, then save (or not, for a
    /// no-op or a dry run).
    fn finish_update(
        &mut self,
        rt: &ResourceType,
        key: Key,
        old: Value,
        new: Value,
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<Value> {
        let mut obj = if status_only {
            let mut o = old.clone();
            o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if o["status"].is_null() {
                o.as_object_mut().unwrap().remove("status");
            }
            o
        } else {
            let mut o = new;
            if rt.status_subresource {
                match old.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        o.as_object_mut().unwrap().remove("status");
                    }
                }
            }
            o
        };
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old["metadata"].get(field) {
                Some(v) => obj["metadata"][field] = v.clone(),
                None => {
                    obj["metadata"].as_object_mut().unwrap().remove(field);
                }
            }
        }
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let name = key.name.clone();
        if old["metadata"]["deletionTimestamp"].is_string() {
            // Finalizers may only be removed from an object being deleted.
            let old_f = old["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let new_f = obj["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if new_f.iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        self.normalize(rt, &mut obj, Some(&old))?;
        if let Some(e) = immutable_violation(rt, &old, &obj) {
            return Err(ApiError::invalid(
                rt,
                &name,
                &e,
                "Invalid value: field is immutable",
            ));
        }
        if obj.get("spec").is_some() {
            let changed = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("metadata");
                    m.remove("status");
                }
                v
            };
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
            let generation = if changed(&old) != changed(&obj) || generation == 0 {
                generation + 1
            } else {
                generation
            };
            obj["metadata"]["generation"] = json!(generation);
        }
        // An empty manager means "ownership already handled" (apply) or
        // "not a client write" (FakeKube::put).
        if !status_only && !opts.manager.is_empty() {
            patch::record_update(
                Some(&old),
                &mut obj,
                &self.stamp(rt, opts),
                rt.status_subresource,
            );
        }
        self.save_update(key, old, obj, opts)
    }

    /// Saves an updated object unless nothing changed (then, as the real
    /// server, the stored object and its resourceVersion stay), and finishes
    /// a pending deletion once the last finalizer is gone.
    fn save_update(&mut self, key: Key, old: Value, obj: Value, opts: &WriteOpts) -> Result<Value> {
        let without_times = |v: &Value| {
            let mut v = v.clone();
            for m in v["metadata"]["managedFields"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if let Some(m) = m.as_object_mut() {
                    m.remove("time");
                }
            }
            v
        };
        if without_times(&old) == without_times(&obj) {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(obj);
        }
        let finalized = obj["metadata"]["deletionTimestamp"].is_string()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        let saved = self.save(key.clone(), obj);
        if finalized {
            return Ok(self.remove(&key).unwrap_or(saved));
        }
        Ok(saved)
    }

    /// PATCH. Returns the object and whether it was created (server-side
    /// apply of a missing object).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<(Value, bool)> {
        let key = Self::key(rt, ns, name);
        let old = self.objects.get(&key).cloned();
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the patch is not UTF-8"))?;
        if let PatchKind::Apply = kind {
            return self.apply(rt, ns, name, text, old, opts, status_only);
        }
        let patch: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut new = old.clone();
        let result = match kind {
            PatchKind::Merge => {
                patch::merge_patch(&mut new, &patch);
                Ok(())
            }
            PatchKind::Strategic => patch::strategic_merge_patch(&mut new, &patch),
            PatchKind::Json => patch::json_patch(&mut new, &patch),
            PatchKind::Apply => unreachable!("handled above"),
        };
        if let Err(e) = result {
            // What the real server answers a patch it can't apply with.
            return Err(match kind {
                PatchKind::Json => ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                ),
                _ => ApiError::bad_request(e),
            });
        }
        Self::check_identity(rt, ns, Some(name), &mut new)?;
        self.check_resource_version(rt, name, &old, &new)?;
        let obj = self.finish_update(rt, key, old, new, opts, status_only)?;
        Ok((obj, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        text: &str,
        old: Option<Value>,
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<(Value, bool)> {
        let mut config: Value = serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        for field in ["apiVersion", "kind"] {
            if config[field].as_str().is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(format!(
                    "invalid object type: {field} must be set in an apply configuration"
                )));
            }
        }
        Self::check_identity(rt, ns, Some(name), &mut config)?;
        if let Some(old) = &old {
            self.check_resource_version(rt, name, old, &config)?;
        }
        // Server-managed metadata in a configuration is not the applier's.
        if let Some(meta) = config["metadata"].as_object_mut() {
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
                "deletionTimestamp",
                "selfLink",
            ] {
                meta.remove(field);
            }
        }
        let stamp = self.stamp(rt, opts);
        let skip_status = rt.status_subresource && !status_only;
        let applied = patch::apply(old.as_ref(), &config, &stamp, opts.force, skip_status)
            .map_err(|conflicts| {
                let n = conflicts.len();
                let list: Vec<String> = conflicts
                    .iter()
                    .map(|(m, f)| format!("conflict with \"{m}\" using {}: {f}", rt.api_version()))
                    .collect();
                let mut e = ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Apply failed with {n} conflict{}: {}",
                        if n == 1 { "" } else { "s" },
                        list.join("\n")
                    ),
                )
                .with_details(rt, name);
                if let Some(d) = e.details.as_mut() {
                    d["causes"] = json!(conflicts.iter().map(|(m, f)| json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{m}\" using {}", rt.api_version()),
                    "field": f,
                })).collect::<Vec<_>>());
                }
                e
            })?;
        match old {
            None if status_only => Err(ApiError::not_found(rt, name)),
            None => {
                // Creating: like a POST, but ownership is already recorded.
                let mut obj = applied;
                if rt.status_subresource {
                    obj.as_object_mut().unwrap().remove("status");
                }
                self.check_namespace(rt, ns)?;
                if let Some(e) = invalid_name(name) {
                    return Err(ApiError::invalid(rt, name, "metadata.name", &e));
                }
                let meta = obj["metadata"].as_object_mut().unwrap();
                meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                meta.insert("creationTimestamp".into(), json!(now()));
                if obj.get("spec").is_some() {
                    obj["metadata"]["generation"] = json!(1);
                }
                obj["apiVersion"] = json!(rt.api_version());
                self.normalize(rt, &mut obj, None)?;
                if opts.dry_run {
                    return Ok((obj, true));
                }
                let key = Self::key(rt, ns, name);
                Ok((self.save(key, obj), true))
            }
            Some(old) => {
                let key = Self::key(rt, ns, name);
                // patch::apply recorded ownership already; an empty manager
                // makes finish_update leave it alone.
                let opts = WriteOpts {
                    manager: String::new(),
                    ..opts.clone()
                };
                let obj = self.finish_update(rt, key, old, applied, &opts, status_only)?;
                Ok((obj, false))
            }
        }
    }

    /// DELETE. Returns the deleted object (or, with finalizers, the object
    /// now marked for deletion).
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        let (key, obj) = self.stored(rt, ns, name)?;
        let pre = &options["preconditions"];
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(want) = pre[field].as_str() {
                let have = obj["metadata"][field].as_str().unwrap_or_default();
                if want != have {
                    return Err(ApiError::conflict(
                        rt,
                        name,
                        &format!(
                            "Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"
                        ),
                    ));
                }
            }
        }
        if dry_run {
            return Ok(Self::present(rt, &obj));
        }
        if obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
        {
            if obj["metadata"]["deletionTimestamp"].is_string() {
                return Ok(Self::present(rt, &obj));
            }
            let mut marked = obj;
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if rt.group.is_empty() && rt.plural == "namespaces" {
                marked["status"]["phase"] = json!("Terminating");
            }
            return Ok(Self::present(rt, &self.save(key, marked)));
        }
        let deleted = self.remove(&key).expect("present above");
        Ok(Self::present(rt, &deleted))
    }

    /// Stores an object as given (see [`crate::FakeKube::put`]).
    pub fn put_raw(&mut self, mut obj: Value) -> Result<Value> {
        let (group, version) =
            crate::split_group_version(obj["apiVersion"].as_str().unwrap_or_default());
        let (group, version) = (group.to_string(), version.to_string());
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let rt = self
            .types()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind && !t.create_only)
            .ok_or_else(|| {
                ApiError::bad_request(format!("no resource for {group}/{version} {kind}"))
            })?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        Self::check_identity(&rt, &ns, None, &mut obj)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = Self::key(&rt, &ns, &name);
        let status = obj.get("status").cloned();
        let opts = WriteOpts::default();
        let mut saved = match self.objects.get(&key).cloned() {
            None => self.create(&rt, &ns, obj, &opts)?,
            Some(old) => {
                obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                self.finish_update(&rt, key.clone(), old, obj, &opts, false)?
            }
        };
        if let (Some(status), true) = (status, rt.status_subresource) {
            let old = saved.clone();
            saved["status"] = status;
            saved = self.save_update(key, old, saved, &opts)?;
        }
        Ok(saved)
    }
}

/// A field whose change the real API rejects, for the common cases.
fn immutable_violation(rt: &ResourceType, old: &Value, new: &Value) -> Option<String> {
    if old["immutable"] == json!(true)
        && (old["data"] != new["data"] || old["binaryData"] != new["binaryData"])
    {
        return Some("data".into());
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") if old["type"] != new["type"] => Some("type".into()),
        ("apps", "deployments" | "statefulsets" | "daemonsets" | "replicasets")
            if old["spec"]["selector"] != new["spec"]["selector"] =>
        {
            Some("spec.selector".into())
        }
        _ => None,
    }
}

/// The DNS-1123 subdomain rule most resource names follow.
fn invalid_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!ok).then(|| {
        format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    })
}

/// generateName's 5 random characters (the real alphabet avoids vowels and
/// look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Current time, RFC 3339 in UTC with second precision, as the API writes.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `2026-01-02T03:04:05Z`.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Wraps objects in a `{Kind}List`.
pub fn list_object(rt: &ResourceType, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

/// The `Status` a successful DELETE of most resources returns.
pub fn deleted_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details = json!({
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"]["uid"],
    });
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045), "2026-01-02T03:04:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
