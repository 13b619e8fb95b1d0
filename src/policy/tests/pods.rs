//! Pod spec rules.

use super::{APP, deployment, policy, rules, run};
use crate::policy::{Policy, check};

const NS: &str = super::NS;

#[test]
fn privileged_containers_everywhere() {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let spec = format!("{list}:\n- name: c\n  securityContext: {{privileged: true}}\n");
        assert_eq!(
            rules(&deployment(&spec)),
            vec!["privileged-container"],
            "{list}"
        );
    }
    // YAML 1.1 booleans are true to Kubernetes.
    let yes = deployment(&format!("{APP}  securityContext: {{privileged: yes}}"));
    assert_eq!(rules(&yes), vec!["privileged-container"]);
    assert_eq!(run(&yes, &policy("allow_privileged: true")), vec![]);
}

#[test]
fn pod_specs_of_every_workload() {
    let bad = "securityContext: {privileged: true}";
    let docs = [
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, {bad}}}]\n"
        ),
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: p}}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{{name: c, {bad}}}]\n"
        ),
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: p}}\nspec:\n  template:\n    spec:\n      containers: [{{name: c, {bad}}}]\n"
        ),
    ];
    for doc in docs {
        assert_eq!(rules(&doc), vec!["privileged-container"], "{doc}");
    }
}

#[test]
fn privilege_escalation_and_proc_mount() {
    let esc = deployment(&format!(
        "{APP}  securityContext: {{allowPrivilegeEscalation: true}}"
    ));
    assert_eq!(rules(&esc), vec!["privilege-escalation"]);
    let proc = deployment(&format!("{APP}  securityContext: {{procMount: Unmasked}}"));
    assert_eq!(rules(&proc), vec!["unmasked-proc-mount"]);
    assert_eq!(run(&proc, &policy("allow_privileged: true")), vec![]);
}

#[test]
fn host_path_volumes() {
    let spec = format!(
        "{APP}volumes:\n- name: root\n  hostPath: {{path: /}}\n- name: tmp\n  emptyDir: {{}}\n"
    );
    let err = check(&deployment(&spec), NS, &Policy::default()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].rule, "host-path");
    assert!(err.0[0].message.contains("\"root\""), "{err}");
    assert_eq!(
        run(&deployment(&spec), &policy("allow_host_path: true")),
        vec![]
    );
}

#[test]
fn host_namespaces_and_ports() {
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        let spec = format!("{field}: true\n{APP}");
        assert_eq!(rules(&deployment(&spec)), vec!["host-namespace"], "{field}");
        assert_eq!(
            run(&deployment(&spec), &policy("allow_host_network: true")),
            vec![]
        );
    }
    let port = deployment(&format!(
        "{APP}  ports: [{{containerPort: 80, hostPort: 80}}]"
    ));
    assert_eq!(rules(&port), vec!["host-port"]);
    assert_eq!(run(&port, &policy("allow_host_network: true")), vec![]);
    let no_host = deployment(&format!(
        "{APP}  ports: [{{containerPort: 80}}]\nhostNetwork: false"
    ));
    assert_eq!(rules(&no_host), Vec::<&str>::new());
}

#[test]
fn added_capabilities() {
    let spec = |caps: &str| {
        deployment(&format!(
            "{APP}  securityContext: {{capabilities: {{add: [{caps}], drop: [ALL]}}}}"
        ))
    };
    assert_eq!(
        rules(&spec("NET_BIND_SERVICE")),
        vec!["capability-not-allowed"]
    );
    let p = policy("allow_capabilities: [NET_BIND_SERVICE]");
    assert_eq!(run(&spec("NET_BIND_SERVICE"), &p), vec![]);
    assert_eq!(run(&spec("CAP_NET_BIND_SERVICE"), &p), vec![]);
    let err = check(&spec("NET_BIND_SERVICE, SYS_ADMIN"), NS, &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/web: container \"app\" adds capability SYS_ADMIN (rule: capability-not-allowed)"
    );
}
