//! The resource types the fake serves, and the legacy discovery documents
//! (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`) describing them.
//!
//! Built-in types are a fixed table of what charts commonly contain. Custom
//! resources come from stored CustomResourceDefinitions: each served version
//! of a CRD appears in discovery and can be read and written like a built-in
//! type (without conversion between versions, or schema validation).

use serde_json::{Value, json};

/// One REST resource, e.g. `apps/v1 deployments`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Has a `/status` subresource: writes to the main resource keep the
    /// stored `status`, writes to `/status` change only `status`.
    pub status_subresource: bool,
    /// Only `create` (review-style resources such as SubjectAccessReview):
    /// nothing is stored.
    pub create_only: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How the real API server names the resource in error messages:
    /// `secrets`, `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// `(group/version, plural, kind, namespaced, status subresource, short names)`
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);
// One resource a line: the table reads as the API server's list.
#[rustfmt::skip]
const BUILTIN: &[Builtin] = &[
    ("v1", "namespaces", "Namespace", false, true, &["ns"]),
    ("v1", "secrets", "Secret", true, false, &[]),
    ("v1", "configmaps", "ConfigMap", true, false, &["cm"]),
    ("v1", "services", "Service", true, true, &["svc"]),
    ("v1", "serviceaccounts", "ServiceAccount", true, false, &["sa"]),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, true, &["pvc"]),
    ("v1", "persistentvolumes", "PersistentVolume", false, true, &["pv"]),
    ("v1", "pods", "Pod", true, true, &["po"]),
    ("v1", "endpoints", "Endpoints", true, false, &["ep"]),
    ("v1", "events", "Event", true, false, &["ev"]),
    ("v1", "resourcequotas", "ResourceQuota", true, true, &["quota"]),
    ("v1", "limitranges", "LimitRange", true, false, &["limits"]),
    ("apps/v1", "deployments", "Deployment", true, true, &["deploy"]),
    ("apps/v1", "statefulsets", "StatefulSet", true, true, &["sts"]),
    ("apps/v1", "replicasets", "ReplicaSet", true, true, &["rs"]),
    ("apps/v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
    ("batch/v1", "jobs", "Job", true, true, &[]),
    ("batch/v1", "cronjobs", "CronJob", true, true, &["cj"]),
    ("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, true, &["hpa"]),
    ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", true, false, &["netpol"]),
    ("networking.k8s.io/v1", "ingresses", "Ingress", true, true, &["ing"]),
    ("networking.k8s.io/v1", "ingressclasses", "IngressClass", false, false, &[]),
    ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", true, true, &["pdb"]),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", true, false, &[]),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", true, false, &[]),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", false, false, &[]),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", false, false, &[]),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", false, true, &["crd", "crds"]),
    ("storage.k8s.io/v1", "storageclasses", "StorageClass", false, false, &["sc"]),
];

/// Review resources: POST only, answered by the authorizer, never stored.
const REVIEWS: &[(&str, &str, bool)] = &[
    ("subjectaccessreviews", "SubjectAccessReview", false),
    ("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
    (
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
];
pub(crate) const AUTHZ_GROUP: &str = "authorization.k8s.io";

/// The built-in resource types.
pub fn builtin() -> Vec<ResourceType> {
    let mut out: Vec<ResourceType> = BUILTIN
        .iter()
        .map(|&(gv, plural, kind, namespaced, status, short)| {
            let (group, version) = crate::split_group_version(gv);
            ResourceType {
                group: group.into(),
                version: version.into(),
                plural: plural.into(),
                singular: kind.to_ascii_lowercase(),
                kind: kind.into(),
                namespaced,
                short_names: short.iter().map(|s| s.to_string()).collect(),
                status_subresource: status,
                create_only: false,
            }
        })
        .collect();
    out.extend(
        REVIEWS
            .iter()
            .map(|&(plural, kind, namespaced)| ResourceType {
                group: AUTHZ_GROUP.into(),
                version: "v1".into(),
                plural: plural.into(),
                singular: kind.to_ascii_lowercase(),
                kind: kind.into(),
                namespaced,
                short_names: vec![],
                status_subresource: false,
                create_only: true,
            }),
    );
    out
}

/// The resource types a stored CustomResourceDefinition defines, one per
/// served version. Malformed CRDs define nothing.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let (Some(group), Some(plural), Some(kind)) = (
        spec["group"].as_str(),
        spec["names"]["plural"].as_str(),
        spec["names"]["kind"].as_str(),
    ) else {
        return vec![];
    };
    let singular = spec["names"]["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let short_names: Vec<String> = spec["names"]["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            Some(ResourceType {
                group: group.into(),
                version: v["name"].as_str()?.into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                short_names: short_names.clone(),
                status_subresource: v["subresources"]["status"].is_object(),
                create_only: false,
            })
        })
        .collect()
}

/// `GET /api`
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// The non-core groups, each with its versions in order of first appearance
/// (the first is the preferred version).
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone())
            }
            Some(_) => {}
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// `GET /apis`
pub fn api_group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types).iter().map(|(g, v)| api_group(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`
pub fn api_group_doc(types: &[ResourceType], group: &str) -> Option<Value> {
    let (name, versions) = groups(types).into_iter().find(|(g, _)| g == group)?;
    let mut doc = api_group(&name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`
pub fn api_resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| t.discovery_entries())
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `GET /version`
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z",
        "goVersion": "go1.25.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
