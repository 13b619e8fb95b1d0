//! Allow-list discipline on pods (rule `pod-field`): every field of a pod
//! spec, a container and a security context must be one the policy knows,
//! under its exact name, and some known fields are refused because they
//! reach past the pod (what counts is listed here and in the README).
//!
//! A field the policy doesn't know may be one a newer Kubernetes gives a
//! meaning the rules never judged; a miscased spelling is one the API server
//! drops today and may not tomorrow. Either way: refused, not ignored.

use serde_json::Value;

use super::Report;
use super::lookup::list;

/// PodSpec fields (Kubernetes 1.35) the rules judge or that only affect
/// the pod itself.
const POD_SPEC: &[&str] = &[
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "containers",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "imagePullSecrets",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "readinessGates",
    "resources",
    "restartPolicy",
    "schedulingGates",
    "securityContext",
    "serviceAccount",
    "serviceAccountName",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
];

/// Known PodSpec fields refused by default, with why.
const POD_SPEC_REFUSED: &[(&str, &str)] = &[
    (
        "ephemeralContainers",
        "are added to running pods through their own subresource, never by a chart",
    ),
    (
        "priorityClassName",
        "may preempt (evict) other tenants' pods",
    ),
    ("priority", "may preempt (evict) other tenants' pods"),
    (
        "runtimeClassName",
        "picks a container runtime the operator may not isolate like the default",
    ),
    (
        "schedulerName",
        "hands the pod to a scheduler other than the cluster's",
    ),
    (
        "resourceClaims",
        "claims devices through objects the policy doesn't judge",
    ),
];

const CONTAINER: &[&str] = &[
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "name",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "restartPolicy",
    "restartPolicyRules",
    "securityContext",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
    "workingDir",
];

const POD_SECURITY_CONTEXT: &[&str] = &[
    "appArmorProfile",
    "fsGroup",
    "fsGroupChangePolicy",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxChangePolicy",
    "seLinuxOptions",
    "seccompProfile",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "sysctls",
    "windowsOptions",
];

const SECURITY_CONTEXT: &[&str] = &[
    "allowPrivilegeEscalation",
    "appArmorProfile",
    "capabilities",
    "privileged",
    "procMount",
    "readOnlyRootFilesystem",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile",
    "windowsOptions",
];

/// Checks the fields of one pod spec (a real pod template of a built-in
/// kind) and of its containers.
pub(super) fn pod(spec: &Value, report: &mut Report<'_>) {
    let Some(map) = spec.as_object() else { return };
    for (key, value) in map {
        if value.is_null() || POD_SPEC.contains(&key.as_str()) {
            continue;
        }
        let message = match POD_SPEC_REFUSED.iter().find(|(k, _)| k == key) {
            Some((_, why)) => format!("pod sets {key}, which {why}"),
            None => format!("pod spec field {key:?} is not one the policy understands"),
        };
        report.add("pod-field", message);
    }
    unknown(
        spec.get("securityContext"),
        POD_SECURITY_CONTEXT,
        "pod securityContext",
        report,
    );
    for which in ["containers", "initContainers"] {
        for (i, c) in list(spec, which).enumerate() {
            let who = match c.get("name").and_then(Value::as_str) {
                Some(n) => format!("container {n:?}"),
                None => format!("{which}[{i}]"),
            };
            unknown(Some(c), CONTAINER, &who, report);
            unknown(
                c.get("securityContext"),
                SECURITY_CONTEXT,
                &format!("{who} securityContext"),
                report,
            );
        }
    }
}

fn unknown(v: Option<&Value>, known: &[&str], who: &str, report: &mut Report<'_>) {
    let Some(map) = v.and_then(Value::as_object) else {
        return;
    };
    for (key, value) in map {
        if !value.is_null() && !known.contains(&key.as_str()) {
            report.add(
                "pod-field",
                format!("{who} field {key:?} is not one the policy understands"),
            );
        }
    }
}
