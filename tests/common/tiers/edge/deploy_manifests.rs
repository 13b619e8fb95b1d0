//! Helpers of the tests in tests/edge/deploy_manifests/
//! (helpers live under tests/common: tests/README.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, Namespace, PersistentVolumeClaim, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const NS: &str = "chartbroker-system";
pub const SA: &str = "chartbroker";
pub const RELEASE_ROLE: &str = "chartbroker-release";
pub const HELM_SHA256: &str = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9";

pub use crate::common::repo;

/// One YAML document and where it came from.
#[derive(Clone)]
pub struct Doc {
    /// Path relative to `deploy/`, e.g. `kubernetes/40-deployment.yaml`.
    pub file: String,
    /// Position in its file (0-based).
    pub index: usize,
    pub value: Value,
}

impl Doc {
    pub fn origin(&self) -> String {
        format!("deploy/{} (document {})", self.file, self.index + 1)
    }
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    /// Applied by `kubectl apply -f deploy/kubernetes/` (not recursive).
    pub fn top_level_kubernetes(&self) -> bool {
        self.file.starts_with("kubernetes/") && self.file.matches('/').count() == 1
    }
}

pub fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// Every document of every YAML file under deploy/kubernetes and deploy/registration.
pub fn docs() -> Vec<Doc> {
    let deploy = repo().join("deploy");
    let mut files = Vec::new();
    for sub in ["kubernetes", "registration"] {
        yaml_files(&deploy.join(sub), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no YAML under deploy/");
    let mut docs = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&deploy)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("deploy/{rel}: invalid YAML: {e}"));
        assert!(!values.is_empty(), "deploy/{rel}: no YAML document");
        for (index, value) in values.into_iter().enumerate() {
            assert!(
                value.is_object(),
                "deploy/{rel} (document {}): not a mapping",
                index + 1
            );
            docs.push(Doc {
                file: rel.clone(),
                index,
                value,
            });
        }
    }
    docs
}

/// Where two JSON trees differ (`a` is the manifest, `b` the typed round trip).
pub fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => diff(&p, va, vb, out),
                    None => out.push(format!("{p}: unknown field (dropped by the typed object)")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: added by the typed object"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} became {b}")),
    }
}

/// The document as a typed k8s-openapi object. k8s-openapi ignores unknown
/// fields, so the object is serialized again and compared with the manifest:
/// a misspelt or misplaced field shows up as a difference.
pub fn typed<T: DeserializeOwned + Serialize>(doc: &Doc) -> T {
    let t: T = serde_json::from_value(doc.value.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: not a valid {} {}: {e}",
            doc.origin(),
            doc.api_version(),
            doc.kind()
        )
    });
    let back = serde_json::to_value(&t).unwrap();
    let mut diffs = Vec::new();
    diff("", &doc.value, &back, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{}: {} {} does not round-trip through k8s-openapi (misspelt or misplaced field?):\n  {}",
        doc.origin(),
        doc.kind(),
        doc.name(),
        diffs.join("\n  ")
    );
    t
}

/// Every document, typed.
#[derive(Default)]
pub struct Manifests {
    pub namespaces: Vec<(Doc, Namespace)>,
    pub service_accounts: Vec<(Doc, ServiceAccount)>,
    pub roles: Vec<(Doc, Role)>,
    pub cluster_roles: Vec<(Doc, ClusterRole)>,
    pub role_bindings: Vec<(Doc, RoleBinding)>,
    pub cluster_role_bindings: Vec<(Doc, ClusterRoleBinding)>,
    pub deployments: Vec<(Doc, Deployment)>,
    pub services: Vec<(Doc, Service)>,
    pub network_policies: Vec<(Doc, NetworkPolicy)>,
    pub secrets: Vec<(Doc, Secret)>,
    pub pvcs: Vec<(Doc, PersistentVolumeClaim)>,
    /// Custom resources we know: registration objects and cert-manager.
    pub custom: Vec<Doc>,
}

/// Custom resources allowed, and where: platform registration objects under
/// registration/, cert-manager and Prometheus Operator objects under
/// kubernetes/optional/.
pub fn allowed_custom(doc: &Doc) -> bool {
    match (doc.api_version(), doc.kind()) {
        ("servicecatalog.k8s.io/v1beta1", "ClusterServiceBroker" | "ServiceBroker")
        | ("osb.m.crossplane.io/v1alpha1", "ClusterProviderConfig") => {
            doc.file.starts_with("registration/")
        }
        // The trust of each platform credential (--platforms-file), not secret.
        ("v1", "ConfigMap") => doc.file == "kubernetes/35-platforms.yaml",
        ("cert-manager.io/v1", "Issuer" | "Certificate")
        | ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            doc.file.starts_with("kubernetes/optional/")
        }
        _ => false,
    }
}

pub fn load() -> Manifests {
    let mut m = Manifests::default();
    for doc in docs() {
        match (doc.api_version(), doc.kind()) {
            ("v1", "Namespace") => m.namespaces.push((doc.clone(), typed(&doc))),
            ("v1", "ServiceAccount") => m.service_accounts.push((doc.clone(), typed(&doc))),
            ("v1", "Secret") => m.secrets.push((doc.clone(), typed(&doc))),
            ("v1", "Service") => m.services.push((doc.clone(), typed(&doc))),
            ("v1", "PersistentVolumeClaim") => m.pvcs.push((doc.clone(), typed(&doc))),
            ("apps/v1", "Deployment") => m.deployments.push((doc.clone(), typed(&doc))),
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                m.network_policies.push((doc.clone(), typed(&doc)))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => m.roles.push((doc.clone(), typed(&doc))),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                m.cluster_roles.push((doc.clone(), typed(&doc)))
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                m.role_bindings.push((doc.clone(), typed(&doc)))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                m.cluster_role_bindings.push((doc.clone(), typed(&doc)))
            }
            // No pod runs as the release identity (23-release-admission).
            ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => {
                let _: k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy =
                    typed(&doc);
                m.custom.push(doc)
            }
            ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => {
                let _: k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding =
                    typed(&doc);
                m.custom.push(doc)
            }
            _ if allowed_custom(&doc) => {
                assert!(!doc.name().is_empty(), "{}: no metadata.name", doc.origin());
                m.custom.push(doc)
            }
            (api, kind) => panic!(
                "{}: unexpected kind {api} {kind}: add it to this test (typed) if it belongs in deploy/",
                doc.origin()
            ),
        }
    }
    m
}

pub fn the_deployment(m: &Manifests) -> (&Doc, &Deployment) {
    assert_eq!(
        m.deployments.len(),
        1,
        "expected exactly one Deployment under deploy/"
    );
    let (d, dep) = &m.deployments[0];
    (d, dep)
}

pub fn pod_spec(dep: &Deployment) -> &PodSpec {
    dep.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("Deployment has a pod spec")
}

pub fn broker_container(dep: &Deployment) -> &Container {
    let pod = pod_spec(dep);
    assert_eq!(pod.containers.len(), 1, "one container: the broker");
    &pod.containers[0]
}

/// The `spec` of the platform registration `d`: its `url_key` is an HTTPS
/// URL of `host`, and it has no key outside `known`.
pub fn registration_spec<'a>(d: &'a Doc, url_key: &str, host: &str, known: &[&str]) -> &'a Value {
    let spec = &d.value["spec"];
    let url = spec[url_key].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("https://{host}")),
        "{}: {url_key} {url}",
        d.origin()
    );
    for k in spec.as_object().unwrap().keys() {
        assert!(
            known.contains(&k.as_str()),
            "{}: unknown spec.{k}",
            d.origin()
        );
    }
    spec
}

/// The container's ports: name and number.
pub fn container_ports(c: &Container) -> Vec<(Option<&str>, i32)> {
    c.ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect()
}

/// Every `k=v` of a non-empty `selector` is a label of the pod;
/// `what` names the selector in the messages.
pub fn assert_selects_pod(
    selector: &std::collections::BTreeMap<String, String>,
    pod_labels: &std::collections::BTreeMap<String, String>,
    what: &str,
) {
    assert!(!selector.is_empty(), "{what}: selects the broker pod");
    for (k, v) in selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "{what} {k}={v} does not match the pod"
        );
    }
}

pub fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

pub fn all_rules(m: &Manifests) -> Vec<(String, &PolicyRule)> {
    let mut out = Vec::new();
    for (d, r) in &m.roles {
        for rule in r.rules.iter().flatten() {
            out.push((format!("{} Role {}", d.origin(), d.name()), rule));
        }
    }
    for (d, r) in &m.cluster_roles {
        for rule in r.rules.iter().flatten() {
            out.push((format!("{} ClusterRole {}", d.origin(), d.name()), rule));
        }
    }
    out
}

pub fn strs(v: &Option<Vec<String>>) -> Vec<&str> {
    v.iter().flatten().map(String::as_str).collect()
}

pub fn binds_broker(subjects: &Option<Vec<Subject>>) -> bool {
    subjects
        .iter()
        .flatten()
        .any(|s| s.kind == "ServiceAccount" && s.name == SA && s.namespace.as_deref() == Some(NS))
}

pub fn port_matches(port: &IntOrString, container_ports: &[(Option<&str>, i32)]) -> bool {
    match port {
        IntOrString::Int(n) => container_ports.iter().any(|(_, p)| p == n),
        IntOrString::String(s) => container_ports.iter().any(|(n, _)| *n == Some(s.as_str())),
    }
}

/// A Secret value that is obviously not real: empty, or a REPLACE_ME marker.
pub fn placeholder(v: &str) -> bool {
    v.is_empty() || v.contains("REPLACE_ME")
}

/// (apiVersion, kind) of every object the example charts create.
pub fn chart_kinds() -> BTreeSet<(String, String)> {
    let mut kinds = BTreeSet::new();
    let charts = repo().join("charts");
    for chart in std::fs::read_dir(&charts).unwrap() {
        let templates = chart.unwrap().path().join("templates");
        if !templates.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(templates).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            let mut api = None;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("apiVersion:") {
                    api = Some(v.trim().to_string());
                } else if let Some(k) = line.strip_prefix("kind:") {
                    let api = api
                        .take()
                        .expect("apiVersion before kind in chart templates");
                    kinds.insert((api, k.trim().to_string()));
                }
            }
        }
    }
    assert!(!kinds.is_empty(), "no kinds found in charts/*/templates");
    kinds
}

pub fn resource_of(api: &str, kind: &str) -> (&'static str, &'static str) {
    match (api, kind) {
        ("v1", "Secret") => ("", "secrets"),
        ("v1", "ConfigMap") => ("", "configmaps"),
        ("v1", "Service") => ("", "services"),
        ("v1", "PersistentVolumeClaim") => ("", "persistentvolumeclaims"),
        ("apps/v1", "StatefulSet") => ("apps", "statefulsets"),
        ("apps/v1", "Deployment") => ("apps", "deployments"),
        _ => panic!(
            "charts create {api} {kind}: grant it in deploy/kubernetes/22-rbac-release-clusterrole.yaml \
             and add it to this table"
        ),
    }
}

/// The kinds the default policy admits (src/policy/kinds.rs
/// `DEFAULT_ALLOWED`), as RBAC names them: what a release may write.
pub const DEFAULT_POLICY_RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "services"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "persistentvolumeclaims"),
    ("", "serviceaccounts"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingresses"),
    ("policy", "poddisruptionbudgets"),
    ("autoscaling", "horizontalpodautoscalers"),
];
