//! Pod Security Standards "restricted" (as of Kubernetes 1.35) on every pod
//! spec of every object: Pods, the templates of Deployments, StatefulSets,
//! DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and
//! PodTemplates, each with its containers, init and ephemeral containers.
//!
//! Pods are looked for at every place a built-in kind keeps one, on every
//! object, so renaming or re-grouping a kind doesn't hide its pods.

use serde_json::Value;

use super::Report;
use super::kinds::normalize_capability;
use super::lookup::{descend, exact, fields, is_zero, list, name_of, show, truthy};

/// Where pods live, as the object holding `metadata` and `spec`.
const POD_PATHS: &[&[&str]] = &[
    &[],
    &["spec", "template"],
    &["spec", "jobTemplate", "spec", "template"],
    &["template"],
];

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

const HOST_NAMESPACES: &[&str] = &["hostNetwork", "hostPID", "hostIPC"];

/// Volume sources "restricted" allows (the `image` source since 1.33).
const VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls isolated per pod (the 1.32 list).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

const PROFILE_TYPES: &[&str] = &["RuntimeDefault", "Localhost"];

const PROBES: &[&str] = &["livenessProbe", "readinessProbe", "startupProbe"];

/// Capabilities any container may add.
const DEFAULT_CAPABILITIES: &[&str] = &["NET_BIND_SERVICE"];

/// Checks every pod found in `obj`.
pub(super) fn check(obj: &Value, report: &mut Report<'_>) {
    for path in POD_PATHS {
        for pod in descend(obj, path) {
            let meta = fields(pod, "metadata").collect::<Vec<_>>();
            for spec in fields(pod, "spec").filter(|s| s.is_object()) {
                pod_spec(&meta, spec, report);
            }
        }
    }
}

/// What the pod says that changes the container rules.
struct Pod<'a> {
    spec: &'a Value,
    /// `os.name: windows`: the runtime ignores Linux-only settings, which
    /// Pod Security therefore doesn't require (kubelets refuse a pod whose
    /// OS isn't theirs).
    windows: bool,
    /// `hostUsers: false`: root in the pod is not root on the node.
    user_namespace: bool,
}

fn pod_spec(meta: &[&Value], spec: &Value, report: &mut Report<'_>) {
    let pod = Pod {
        spec,
        windows: exact(spec, &["os", "name"]).and_then(Value::as_str) == Some("windows"),
        user_namespace: exact(spec, &["hostUsers"]) == Some(&Value::Bool(false)),
    };
    super::placement::check(spec, report);
    for field in HOST_NAMESPACES {
        if fields(spec, field).any(truthy) {
            report.add("host-namespace", format!("pod uses {field}"));
        }
    }
    if host_process(spec) {
        report.add(
            "privileged-container",
            "pod is a Windows HostProcess pod".to_owned(),
        );
    }
    for (i, volume) in list(spec, "volumes").enumerate() {
        self::volume(volume, i, report);
    }
    for sc in fields(spec, "securityContext") {
        for sysctl in list(sc, "sysctls") {
            let name = fields(sysctl, "name")
                .find_map(Value::as_str)
                .unwrap_or("?");
            if !SAFE_SYSCTLS.contains(&name) {
                report.add("sysctls", format!("pod sets sysctl {name}"));
            }
        }
        if !pod.user_namespace {
            if fields(sc, "runAsNonRoot").any(|v| !v.is_null() && !truthy(v)) {
                report.add("run-as-root", "pod sets runAsNonRoot false".to_owned());
            }
            if fields(sc, "runAsUser").any(is_zero) {
                report.add("run-as-root", "pod sets runAsUser 0".to_owned());
            }
        }
        profiles(sc, "pod", report);
    }
    annotations(meta, report);
    for which in CONTAINER_LISTS {
        for (i, c) in list(spec, which).enumerate() {
            container(c, &format!("container {}", name_of(c, i)), &pod, report);
        }
    }
}

fn volume(volume: &Value, i: usize, report: &mut Report<'_>) {
    let name = name_of(volume, i);
    let Some(map) = volume.as_object() else {
        return;
    };
    for (key, source) in map {
        if key == "name" || source.is_null() || VOLUME_TYPES.contains(&key.as_str()) {
            continue;
        }
        if key.eq_ignore_ascii_case("hostPath") {
            let path = fields(source, "path")
                .find_map(Value::as_str)
                .unwrap_or("?");
            report.add("host-path", format!("volume {name} mounts hostPath {path}"));
        } else {
            report.add("volume-type", format!("volume {name} is of type {key}"));
        }
    }
}

/// seccomp, AppArmor and SELinux values that are refused wherever they are
/// set (`who` is `pod` or `container "x"`).
fn profiles(sc: &Value, who: &str, report: &mut Report<'_>) {
    for t in descend(sc, &["seccompProfile", "type"]) {
        if !t.is_null() && !PROFILE_TYPES.contains(&show(t).as_str()) {
            report.add("seccomp", format!("{who} sets seccomp profile {}", show(t)));
        }
    }
    for t in descend(sc, &["appArmorProfile", "type"]) {
        if !t.is_null() && !PROFILE_TYPES.contains(&show(t).as_str()) {
            report.add(
                "apparmor",
                format!("{who} sets AppArmor profile {}", show(t)),
            );
        }
    }
    for options in fields(sc, "seLinuxOptions") {
        for t in fields(options, "type").filter(|t| !t.is_null()) {
            if !SELINUX_TYPES.contains(&show(t).as_str()) {
                report.add("selinux", format!("{who} sets SELinux type {}", show(t)));
            }
        }
        for field in ["user", "role"] {
            for v in fields(options, field) {
                if !v.is_null() && v.as_str() != Some("") {
                    report.add("selinux", format!("{who} sets SELinux {field} {}", show(v)));
                }
            }
        }
    }
}

/// The pod annotations that predate the securityContext fields.
fn annotations(meta: &[&Value], report: &mut Report<'_>) {
    let all = meta
        .iter()
        .flat_map(|m| fields(m, "annotations"))
        .filter_map(Value::as_object)
        .flatten();
    for (key, value) in all {
        let key = key.to_ascii_lowercase();
        let value = show(value);
        if key.starts_with("container.apparmor.security.beta.kubernetes.io/")
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
        {
            report.add(
                "apparmor",
                format!("annotation {key} sets AppArmor profile {value}"),
            );
        }
        if (key == "seccomp.security.alpha.kubernetes.io/pod"
            || key.starts_with("container.seccomp.security.alpha.kubernetes.io/"))
            && !(value == "runtime/default"
                || value == "docker/default"
                || value.starts_with("localhost/"))
        {
            report.add(
                "seccomp",
                format!("annotation {key} sets seccomp profile {value}"),
            );
        }
    }
}

fn container(c: &Value, who: &str, pod: &Pod<'_>, report: &mut Report<'_>) {
    let scs: Vec<&Value> = fields(c, "securityContext").collect();
    let any = |field: &'static str| scs.iter().flat_map(move |sc| fields(sc, field));
    if any("privileged").any(truthy) {
        report.add("privileged-container", format!("{who} is privileged"));
    }
    if host_process(c) {
        report.add(
            "privileged-container",
            format!("{who} is a Windows HostProcess container"),
        );
    }
    let escalation_off =
        exact(c, &["securityContext", "allowPrivilegeEscalation"]) == Some(&Value::Bool(false));
    if any("allowPrivilegeEscalation").any(truthy) || (!pod.windows && !escalation_off) {
        report.add(
            "privilege-escalation",
            format!("{who} must set allowPrivilegeEscalation: false"),
        );
    }
    for mount in any("procMount").filter(|m| !m.is_null()) {
        if mount.as_str() != Some("Default") {
            report.add(
                "unmasked-proc-mount",
                format!("{who} sets procMount {}", show(mount)),
            );
        }
    }
    capabilities(c, who, pod, report);
    run_as_root(c, who, pod, report);
    for sc in &scs {
        profiles(sc, who, report);
    }
    // A container that sets no profile runs under the pod's.
    let seccomp = exact(c, &["securityContext", "seccompProfile"])
        .or_else(|| exact(pod.spec, &["securityContext", "seccompProfile"]))
        .and_then(|p| exact(p, &["type"]))
        .and_then(Value::as_str);
    if !pod.windows && !seccomp.is_some_and(|t| PROFILE_TYPES.contains(&t)) {
        report.add(
            "seccomp",
            format!("{who} must run under seccomp profile RuntimeDefault or Localhost (pod or container)"),
        );
    }
    for port in list(c, "ports") {
        for hp in fields(port, "hostPort") {
            if !matches!(hp, Value::Null | Value::Bool(false)) && !is_zero(hp) {
                report.add("host-port", format!("{who} binds hostPort {}", show(hp)));
            }
        }
    }
    probe_hosts(c, who, report);
}

fn capabilities(c: &Value, who: &str, pod: &Pod<'_>, report: &mut Report<'_>) {
    for caps in descend(c, &["securityContext", "capabilities"]) {
        for cap in list(caps, "add") {
            let allowed = cap.as_str().is_some_and(|s| {
                let s = normalize_capability(s);
                DEFAULT_CAPABILITIES.contains(&s.as_str())
                    || report
                        .policy
                        .allow_capabilities
                        .iter()
                        .any(|a| normalize_capability(a) == s)
            });
            if !allowed {
                report.add(
                    "capability-not-allowed",
                    format!("{who} adds capability {}", show(cap)),
                );
            }
        }
    }
    let drops_all = exact(c, &["securityContext", "capabilities", "drop"])
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|c| c.as_str() == Some("ALL")));
    if !pod.windows && !drops_all {
        report.add(
            "capabilities-drop-all",
            format!("{who} must drop ALL capabilities"),
        );
    }
}

fn run_as_root(c: &Value, who: &str, pod: &Pod<'_>, report: &mut Report<'_>) {
    if pod.user_namespace {
        return;
    }
    if descend(c, &["securityContext", "runAsUser"])
        .into_iter()
        .any(is_zero)
    {
        report.add("run-as-root", format!("{who} sets runAsUser 0"));
    }
    // The container's own setting wins over the pod's.
    let non_root = exact(c, &["securityContext", "runAsNonRoot"])
        .or_else(|| exact(pod.spec, &["securityContext", "runAsNonRoot"]));
    let explicit_false = descend(c, &["securityContext", "runAsNonRoot"])
        .into_iter()
        .any(|v| !v.is_null() && !truthy(v));
    if explicit_false || !non_root.is_some_and(truthy) {
        report.add(
            "run-as-root",
            format!("{who} must set runAsNonRoot: true (pod or container)"),
        );
    }
}

/// A probe or hook aimed at another host turns the kubelet into a proxy.
fn probe_hosts(c: &Value, who: &str, report: &mut Report<'_>) {
    let mut handlers: Vec<(String, &Value)> = Vec::new();
    for probe in PROBES {
        for p in fields(c, probe) {
            handlers.push((probe.to_string(), p));
        }
    }
    for hook in ["postStart", "preStop"] {
        for h in descend(c, &["lifecycle", hook]) {
            handlers.push((format!("lifecycle.{hook}"), h));
        }
    }
    for (at, handler) in handlers {
        for kind in ["httpGet", "tcpSocket"] {
            for host in descend(handler, &[kind, "host"]) {
                if !host.is_null() && host.as_str() != Some("") {
                    report.add(
                        "probe-host",
                        format!("{who} {at}.{kind} targets host {}", show(host)),
                    );
                }
            }
        }
    }
}

/// `securityContext.windowsOptions.hostProcess` of a pod or container.
fn host_process(v: &Value) -> bool {
    descend(v, &["securityContext", "windowsOptions", "hostProcess"])
        .into_iter()
        .any(truthy)
}
