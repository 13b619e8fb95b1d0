//! Pod Security "restricted", rule by rule, on every workload kind and
//! every container list.

use serde_json::{Value, json};

use super::{merge, pod, policy, run, workload};
use crate::policy::{Policy, check};

const NS: &str = super::NS;

/// Every kind that carries a pod, with the plan policy that allows the kind.
const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "PodTemplate",
];

const KIND_POLICY: &str = "extra_kinds: [DaemonSet, ReplicationController, PodTemplate]";

/// One way to break one rule: a patch on the pod spec and one on its first
/// container (`null` for none).
struct Case {
    rule: &'static str,
    pod: Value,
    container: Value,
}

fn cases() -> Vec<Case> {
    let c = |rule, pod: Value, container: Value| Case {
        rule,
        pod,
        container,
    };
    let sc = |v: Value| json!({"securityContext": v});
    vec![
        c(
            "privileged-container",
            json!(null),
            sc(json!({"privileged": true})),
        ),
        c(
            "privileged-container",
            json!(null),
            sc(json!({"privileged": "yes"})),
        ),
        c(
            "privileged-container",
            sc(json!({"windowsOptions": {"hostProcess": true}})),
            json!(null),
        ),
        c(
            "privilege-escalation",
            json!(null),
            sc(json!({"allowPrivilegeEscalation": true})),
        ),
        c(
            "privilege-escalation",
            json!(null),
            sc(json!({"allowPrivilegeEscalation": null})),
        ),
        // Another spelling than the one the API server reads is not "set".
        c(
            "privilege-escalation",
            json!(null),
            sc(json!({"allowPrivilegeEscalation": null, "AllowPrivilegeEscalation": false})),
        ),
        c(
            "unmasked-proc-mount",
            json!(null),
            sc(json!({"procMount": "Unmasked"})),
        ),
        c("host-namespace", json!({"hostNetwork": true}), json!(null)),
        c("host-namespace", json!({"hostPID": true}), json!(null)),
        c("host-namespace", json!({"hostIPC": "on"}), json!(null)),
        c(
            "host-port",
            json!(null),
            json!({"ports": [{"containerPort": 80, "hostPort": 80}]}),
        ),
        c(
            "host-path",
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            json!(null),
        ),
        c(
            "host-path",
            json!({"volumes": [{"name": "root", "HostPath": {"path": "/"}}]}),
            json!(null),
        ),
        c(
            "volume-type",
            json!({"volumes": [{"name": "n", "nfs": {"server": "x", "path": "/"}}]}),
            json!(null),
        ),
        c(
            "volume-type",
            json!({"volumes": [{"name": "g", "gitRepo": {"repository": "x"}}]}),
            json!(null),
        ),
        c(
            "run-as-root",
            sc(json!({"runAsNonRoot": null})),
            json!(null),
        ),
        c(
            "run-as-root",
            sc(json!({"runAsNonRoot": false})),
            json!(null),
        ),
        c(
            "run-as-root",
            json!(null),
            sc(json!({"runAsNonRoot": false})),
        ),
        c("run-as-root", sc(json!({"runAsUser": 0})), json!(null)),
        c("run-as-root", json!(null), sc(json!({"runAsUser": 0}))),
        c("seccomp", sc(json!({"seccompProfile": null})), json!(null)),
        c(
            "seccomp",
            json!(null),
            sc(json!({"seccompProfile": {"type": "Unconfined"}})),
        ),
        c(
            "seccomp",
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
            json!(null),
        ),
        c(
            "apparmor",
            json!(null),
            sc(json!({"appArmorProfile": {"type": "Unconfined"}})),
        ),
        c(
            "apparmor",
            sc(json!({"appArmorProfile": {"type": "Unconfined"}})),
            json!(null),
        ),
        c(
            "selinux",
            sc(json!({"seLinuxOptions": {"type": "spc_t"}})),
            json!(null),
        ),
        c(
            "selinux",
            json!(null),
            sc(json!({"seLinuxOptions": {"user": "system_u"}})),
        ),
        c(
            "sysctls",
            sc(json!({"sysctls": [{"name": "kernel.msgmax", "value": "1"}]})),
            json!(null),
        ),
        c(
            "capabilities-drop-all",
            json!(null),
            sc(json!({"capabilities": {"drop": ["NET_RAW"]}})),
        ),
        c(
            "capabilities-drop-all",
            json!(null),
            sc(json!({"capabilities": {"drop": ["all"]}})),
        ),
        c(
            "capability-not-allowed",
            json!(null),
            sc(json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
        ),
        c(
            "probe-host",
            json!(null),
            json!({"livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}),
        ),
        c(
            "probe-host",
            json!(null),
            json!({"lifecycle": {"preStop": {"tcpSocket": {"host": "metadata", "port": 80}}}}),
        ),
    ]
}

#[test]
fn a_restricted_pod_passes_in_every_kind() {
    let p = policy(KIND_POLICY);
    for kind in KINDS {
        let yaml = workload(kind, &pod(&json!(null), &json!(null)));
        assert_eq!(run(&yaml, &p), vec![], "{kind}");
    }
}

#[test]
fn each_rule_is_enforced_in_every_kind_and_container_list() {
    // Miscased keys and ephemeralContainers also break `pod-field`, which
    // has its own table (allowlist.rs).
    let mut kinds = policy(KIND_POLICY);
    kinds.allow.push("pod-field".to_owned());
    for case in cases() {
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            let mut spec = pod(&case.pod, &case.container);
            if list != "containers" {
                let c = spec["containers"][0].clone();
                spec[list] = json!([c]);
                spec["containers"][0] = pod(&json!(null), &json!(null))["containers"][0].clone();
                if case.container.is_null() {
                    continue;
                }
            }
            for kind in KINDS {
                let yaml = workload(kind, &spec);
                let mut found: Vec<&str> = run(&yaml, &kinds).into_iter().map(|(_, r)| r).collect();
                found.dedup();
                assert_eq!(found, vec![case.rule], "{kind} {list}: {yaml}");
                let mut allowed = kinds.clone();
                allowed.allow.push(case.rule.to_owned());
                assert_eq!(
                    run(&yaml, &allowed),
                    vec![],
                    "allowed {kind} {list}: {yaml}"
                );
            }
        }
    }
}

#[test]
fn container_settings_override_the_pod() {
    // The pod says non-root and RuntimeDefault; one container says otherwise.
    let spec = pod(
        &json!(null),
        &json!({"securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}}}),
    );
    let found = run(&workload("Pod", &spec), &Policy::default());
    let rules: Vec<&str> = found.iter().map(|(_, r)| *r).collect();
    assert!(
        rules.contains(&"run-as-root") && rules.contains(&"seccomp"),
        "{rules:?}"
    );
    // The pod says nothing; every container says it itself.
    let mut spec = pod(
        &json!(null),
        &json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}),
    );
    spec["securityContext"] = json!(null);
    assert_eq!(run(&workload("Pod", &spec), &Policy::default()), vec![]);
}

#[test]
fn user_namespaces_and_windows_relax_what_pod_security_relaxes() {
    let root =
        json!({"hostUsers": false, "securityContext": {"runAsNonRoot": false, "runAsUser": 0}});
    assert_eq!(
        run(
            &workload("Pod", &pod(&root, &json!(null))),
            &Policy::default()
        ),
        vec![]
    );
    // Only the exact field, with a real boolean, counts.
    let fake = json!({"hostUsers": "false", "securityContext": {"runAsNonRoot": false}});
    assert_eq!(
        run(
            &workload("Pod", &pod(&fake, &json!(null))),
            &Policy::default()
        ),
        vec![
            ("Pod/w".to_owned(), "run-as-root"),
            ("Pod/w".to_owned(), "run-as-root")
        ]
    );
    let windows = json!({"os": {"name": "windows"}, "securityContext": {"seccompProfile": null}});
    let bare = json!({"securityContext": {"allowPrivilegeEscalation": null, "capabilities": null}});
    assert_eq!(
        run(&workload("Pod", &pod(&windows, &bare)), &Policy::default()),
        vec![]
    );
}

#[test]
fn legacy_annotations() {
    for (key, value, rule) in [
        (
            "container.apparmor.security.beta.kubernetes.io/app",
            "unconfined",
            "apparmor",
        ),
        (
            "seccomp.security.alpha.kubernetes.io/pod",
            "unconfined",
            "seccomp",
        ),
        (
            "container.seccomp.security.alpha.kubernetes.io/app",
            "unconfined",
            "seccomp",
        ),
    ] {
        for kind in ["Pod", "Deployment", "CronJob"] {
            let mut doc: Value =
                serde_json::from_str(&workload(kind, &pod(&json!(null), &json!(null)))).unwrap();
            let meta = match kind {
                "Pod" => &mut doc["metadata"],
                "CronJob" => &mut doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
                _ => &mut doc["spec"]["template"]["metadata"],
            };
            merge(meta, &json!({"annotations": {key: value}}));
            let found = run(&doc.to_string(), &Policy::default());
            assert_eq!(
                found.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
                vec![rule],
                "{kind} {key}"
            );
        }
    }
    let fine = json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "localhost/mine"}});
    let mut doc: Value =
        serde_json::from_str(&workload("Pod", &pod(&json!(null), &json!(null)))).unwrap();
    merge(&mut doc["metadata"], &fine);
    assert_eq!(run(&doc.to_string(), &Policy::default()), vec![]);
}

#[test]
fn net_bind_service_is_allowed_and_others_by_name() {
    let add = |caps: Value| {
        workload(
            "Deployment",
            &pod(
                &json!(null),
                &json!({"securityContext": {"capabilities": {"add": caps, "drop": ["ALL"]}}}),
            ),
        )
    };
    assert_eq!(
        run(&add(json!(["NET_BIND_SERVICE"])), &Policy::default()),
        vec![]
    );
    let p = policy("allow_capabilities: [sys_time]");
    assert_eq!(run(&add(json!(["CAP_SYS_TIME"])), &p), vec![]);
    let err = check(&add(json!(["NET_BIND_SERVICE", "SYS_ADMIN"])), NS, &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/w: container \"app\" adds capability SYS_ADMIN (rule: capability-not-allowed)"
    );
}

#[test]
fn shorthands_loosen_their_rules() {
    let esc = workload(
        "Deployment",
        &pod(
            &json!(null),
            &json!({"securityContext": {"privileged": true, "allowPrivilegeEscalation": true}}),
        ),
    );
    assert_eq!(run(&esc, &policy("allow_privileged: true")), vec![]);
    let host = workload(
        "Deployment",
        &pod(
            &json!({"hostNetwork": true, "volumes": [{"name": "r", "hostPath": {"path": "/"}}]}),
            &json!({"ports": [{"containerPort": 1, "hostPort": 1}]}),
        ),
    );
    assert_eq!(
        run(
            &host,
            &policy("{allow_host_network: true, allow_host_path: true}")
        ),
        vec![]
    );
    assert_eq!(
        run(
            &host,
            &policy("allow: [host-namespace, host-port, host-path]")
        ),
        vec![]
    );
    let found: Vec<&str> = run(&host, &policy("allow: [host-path]"))
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(found, vec!["host-namespace", "host-port"]);
}
