use super::*;

pub fn hostile_charts() -> PathBuf {
    fixtures().join("hostile-charts")
}

/// A catalog with a `hostile-<chart>` plan (default policy) for every case
/// and an `allowed-<chart>` plan for those with an allowance.
pub fn hostile_catalog(dir: &Path) {
    let mut plans = String::new();
    for c in CASES {
        plans += &format!(
            "      - {{id: hostile-{0}, name: hostile-{0}, description: {0}, chart: {{path: {0}}}}}\n",
            c.chart
        );
        if let Some(allow) = c.allow {
            plans += &format!(
                "      - {{id: allowed-{0}, name: allowed-{0}, description: {0}, \
                 chart: {{path: {0}, policy: {allow}}}}}\n",
                c.chart
            );
        }
    }
    let yaml = format!(
        "services:\n  - id: svc-hostile\n    name: hostile\n    description: Hostile charts\n    \
         bindable: false\n    plans:\n{plans}"
    );
    std::fs::write(dir.join("hostile.yaml"), yaml).unwrap();
}

pub async fn hostile_broker() -> TestBroker {
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = hostile_charts();
    TestBroker::with_config(data, cfg).await
}

pub fn body(service: &str, plan: &str) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": "apps"},
    })
}

/// Every file under `dir`, recursively (none if it doesn't exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { files_under(&p) } else { vec![p] }
        })
        .collect()
}

/// The rules named in a policy error's description, in order, once each.
pub fn rules_named(description: &str) -> Vec<String> {
    let mut rules: Vec<String> = description
        .split("(rule: ")
        .skip(1)
        .filter_map(|s| s.split_once(')').map(|(r, _)| r.to_owned()))
        .collect();
    rules.dedup();
    rules
}

/// The workload kinds that carry a pod, with their `apiVersion`.
pub const WORKLOADS: &[(&str, &str)] = &[
    ("Pod", "v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("ReplicationController", "v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
];

/// One hostile pod per Pod Security rule: (rule, patch on a restricted pod
/// spec, patch on its container `app`, where the container goes). Each
/// breaks exactly one rule, so the privileged container keeps
/// `allowPrivilegeEscalation: false` (which the API server would refuse
/// beside `privileged`; the policy runs first).
pub fn pod_cases() -> Vec<(&'static str, Value, Value, &'static str)> {
    let sc = |v: Value| json!({"securityContext": v});
    let none = Value::Null;
    vec![
        (
            "privileged-container",
            none.clone(),
            sc(json!({"privileged": true})),
            "containers",
        ),
        (
            "privilege-escalation",
            none.clone(),
            sc(json!({"allowPrivilegeEscalation": true})),
            "initContainers",
        ),
        (
            "unmasked-proc-mount",
            none.clone(),
            sc(json!({"procMount": "Unmasked"})),
            "containers",
        ),
        (
            "host-namespace",
            json!({"hostPID": true}),
            none.clone(),
            "containers",
        ),
        (
            "host-port",
            none.clone(),
            json!({"ports": [{"containerPort": 80, "hostPort": 80}]}),
            "containers",
        ),
        (
            "host-path",
            json!({"volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]}),
            none.clone(),
            "containers",
        ),
        (
            "volume-type",
            json!({"volumes": [{"name": "n", "nfs": {"server": "10.0.0.1", "path": "/"}}]}),
            none.clone(),
            "containers",
        ),
        (
            "run-as-root",
            none.clone(),
            sc(json!({"runAsUser": 0})),
            "initContainers",
        ),
        (
            "seccomp",
            none.clone(),
            sc(json!({"seccompProfile": {"type": "Unconfined"}})),
            "initContainers",
        ),
        (
            "apparmor",
            none.clone(),
            sc(json!({"appArmorProfile": {"type": "Unconfined"}})),
            "containers",
        ),
        (
            "selinux",
            sc(json!({"seLinuxOptions": {"type": "spc_t"}})),
            none.clone(),
            "containers",
        ),
        (
            "sysctls",
            sc(json!({"sysctls": [{"name": "kernel.core_pattern", "value": "|/bin/sh"}]})),
            none.clone(),
            "containers",
        ),
        (
            "capabilities-drop-all",
            none.clone(),
            sc(json!({"capabilities": {"drop": ["NET_RAW"]}})),
            "initContainers",
        ),
        (
            "capability-not-allowed",
            none.clone(),
            sc(json!({"capabilities": {"add": ["SYS_PTRACE"]}})),
            "containers",
        ),
        (
            "probe-host",
            none.clone(),
            json!({"readinessProbe": {"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}}),
            "containers",
        ),
    ]
}

/// JSON merge patch (RFC 7386) of `patch` into `v`; a null `patch` is no
/// change.
pub fn merge(v: &mut Value, patch: &Value) {
    match (v, patch) {
        (_, Value::Null) => {}
        (Value::Object(map), Value::Object(p)) => {
            for (k, pv) in p {
                match pv {
                    Value::Null => drop(map.remove(k)),
                    _ => merge(map.entry(k.clone()).or_insert(Value::Null), pv),
                }
            }
        }
        (v, Value::Object(_)) => {
            *v = json!({});
            merge(v, patch);
        }
        (v, other) => *v = other.clone(),
    }
}

/// A chart with one `kind` object whose pod passes "restricted" except for
/// the patches; `list` is the container list that holds `app`.
pub fn write_pod_chart(
    dir: &Path,
    kind: &str,
    api: &str,
    pod: &Value,
    container: &Value,
    list: &str,
) {
    let mut app = json!({
        "name": "app",
        "image": "busybox:1.36",
        "command": ["sleep", "infinity"],
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    });
    merge(&mut app, container);
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [app.clone()],
    });
    if list != "containers" {
        spec[list] = json!([app]);
        spec["containers"][0]["name"] = json!("main");
        spec["containers"][0]["securityContext"] =
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    }
    merge(&mut spec, pod);
    if kind == "Job" || kind == "CronJob" {
        spec["restartPolicy"] = json!("Never");
    }
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": spec});
    let selector = json!({"matchLabels": {"app": "w"}});
    let body = match kind {
        "Pod" => json!({"spec": spec}),
        "ReplicationController" => {
            json!({"spec": {"selector": {"app": "w"}, "template": template}})
        }
        "Job" => json!({"spec": {"template": template}}),
        "CronJob" => {
            json!({"spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        _ => json!({"spec": {"selector": selector, "template": template}}),
    };
    let mut doc =
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": "{{ .Release.Name }}-w"}});
    merge(&mut doc, &body);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {}\nversion: 0.1.0\n",
            dir.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("templates/workload.yaml"), doc.to_string()).unwrap();
}

/// Chart `name` (version 0.1.0) under `charts` whose one template,
/// `templates/cm.yaml`, is `template`: its folder.
pub fn cm_chart(charts: &Path, name: &str, template: &str) -> PathBuf {
    let chart = charts.join(name);
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    let meta = format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n");
    std::fs::write(chart.join("Chart.yaml"), meta).unwrap();
    std::fs::write(chart.join("templates/cm.yaml"), template).unwrap();
    chart
}

/// A chart whose ConfigMap carries `files/key` (`.Files.Get`), under a
/// catalog with one plan `leak`.
pub fn leaking_chart(charts: &Path, catalog: &Path) {
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata:\n  key: {{ .Files.Get \"files/key\" | quote }}\n";
    let chart = cm_chart(charts, "leak", template);
    std::fs::create_dir_all(chart.join("files")).unwrap();
    std::fs::write(chart.join("files/key"), "harmless").unwrap();
    std::fs::write(
        catalog.join("leak.yaml"),
        "services:\n  - {id: svc-leak, name: leak, description: d, bindable: false, plans: [{id: leak, name: leak, description: d, chart: {path: leak}}]}\n",
    )
    .unwrap();
}

/// A chart that, asked to, fails with its generated password in every form
/// a template can give it, so helm quotes them all in its error.
pub fn encoding_chart(charts: &Path, catalog: &Path) {
    cm_chart(
        charts,
        "encoder",
        r#"{{- $p := .Values.password }}
{{- if eq .Values.message "fail" }}
{{- fail (printf "std=%s nopad=%s url=%s inner1=%s inner2=%s inner5=%s hex=%x HEX=%X quoted=%q json=%s query=%s" (b64enc $p) (b64enc $p | trimSuffix "=" | trimSuffix "=") (b64enc $p | replace "+" "-" | replace "/" "_" | trimAll "=") (b64enc (printf "u%s" $p)) (b64enc (printf "us%s" $p)) (b64enc (printf "user:%s" $p)) $p $p $p (toJson (dict "p" $p)) (urlquery (printf "p=%s&x" $p))) }}
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}}
data: {ok: "yes"}
"#,
    );
    std::fs::write(
        catalog.join("encoder.yaml"),
        r#"services:
  - id: svc-enc
    name: enc
    description: d
    bindable: true
    plans:
      - id: enc
        name: enc
        description: d
        chart:
          path: encoder
          values: {message: "{{parameters.message}}", password: "{{secrets.password}}"}
          secrets: {password: {length: 25}}
          credentials: {password: "{{secrets.password}}"}
"#,
    )
    .unwrap();
}

/// Lists whose items a hostile chart could have created in its namespace.
pub const NAMESPACED_LISTS: &[&str] = &[
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/secrets",
    "/api/v1/namespaces/{ns}/serviceaccounts",
    "/api/v1/namespaces/{ns}/services",
    "/api/v1/namespaces/{ns}/pods",
    "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
];
