//! No confused deputy, on the real API server (tests/testenv), Helm 4 and
//! Helm 3: helm runs as the release identity of the target namespace (a
//! TokenRequest token of its ServiceAccount), never as the broker.
//!
//! - A chart's `lookup` of another tenant's Secret gets nothing (Kubernetes
//!   refuses the read, naming the release identity), while a lookup in its
//!   own namespace works: the refusal is about where, not about `lookup`.
//! - Helm's writes are made as the release identity: Kubernetes' own RBAC
//!   escalation prevention refuses a chart Role that grants more than the
//!   release ClusterRole holds, naming that identity as the writer, and
//!   accepts one within it.
//! - What helm is given: a private per-call kubeconfig holding one fresh
//!   token of the release identity, and nothing of the broker's.
//!
//! Namespace ownership (a squatted `namespace: instance` namespace) is a
//! hostile tenant's case: `tests/tenant_isolation.rs`.

use crate::common;

use crate::helpers::tenant_isolation_release_identity::*;
use common::cluster::Cluster;
use common::cluster_calls::*;
use common::*;
use serde_json::{Value, json};

crate::helm4_and_3_tests!(
    lookup_of_another_tenants_secret_gets_nothing_helm4,
    lookup_of_another_tenants_secret_gets_nothing_helm3,
    |helm, _| lookup_of_another_tenants_secret_gets_nothing(helm)
);

crate::helm4_and_3_tests!(
    a_chart_role_beyond_the_release_rights_is_refused_by_kubernetes_helm4,
    a_chart_role_beyond_the_release_rights_is_refused_by_kubernetes_helm3,
    |helm, _| a_chart_role_beyond_the_release_rights_is_refused_by_kubernetes(helm)
);

/// What helm itself is given, seen by a wrapper around the real binary:
/// every cluster call gets a private kubeconfig (0600 in a 0700 directory)
/// holding a token of the namespace's release identity and nothing else,
/// removed after the call; the token is never on argv; offline calls get
/// no cluster credentials; no in-cluster variables reach helm.
#[tokio::test(flavor = "multi_thread")]
async fn helm_gets_a_private_per_call_kubeconfig_of_the_release_identity() {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;
    let (_k, id, ns) = Cluster::with_tenant("ivan", false).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let wrapper = dir.path().join("helm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{{ echo \"CALL $1 ARGS $*\"\n  if [ -n \"$KUBECONFIG\" ]; then\n    \
             echo \"KC $KUBECONFIG $(stat -c %a \"$KUBECONFIG\") $(stat -c %a \"$(dirname \"$KUBECONFIG\")\")\"\n    \
             echo \"USERS $(grep -c 'token:' \"$KUBECONFIG\") $(grep -c -E 'client-key|password|exec:' \"$KUBECONFIG\")\"\n    \
             sed -n 's/^ *token: \"\\(.*\\)\"$/TOKEN \\1/p' \"$KUBECONFIG\"\n  fi\n  \
             echo \"KENV $(env | grep -c '^KUBERNETES_')\"\n}} >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            helm_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = broker(&id, wrapper).await;
    let ivan = b.by("ivan");
    let body = cluster_provision("plan-tiny", &ns, json!({"message": "x"}));
    ivan.provisioned("w", body).await;
    ivan.deprovisioned("w", "svc-cluster", "plan-tiny").await;

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut cluster_calls = Vec::new();
    let mut tokens = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(call) = line.strip_prefix("CALL ") else {
            continue;
        };
        let sub = call.split(' ').next().unwrap();
        let kc = lines.get(i + 1).filter(|l| l.starts_with("KC "));
        match sub {
            "status" | "history" | "upgrade" | "uninstall" | "rollback" => {
                let kc = kc.unwrap_or_else(|| panic!("{sub} ran without a kubeconfig: {text}"));
                let f: Vec<&str> = kc.split(' ').collect();
                assert_eq!((f[2], f[3]), ("600", "700"), "{kc}");
                assert!(!std::path::Path::new(f[1]).exists(), "{} left behind", f[1]);
                assert_eq!(lines[i + 2], "USERS 1 0", "one token, nothing else: {text}");
                let token = lines[i + 3].strip_prefix("TOKEN ").expect("a token");
                assert!(!call.contains(token), "the token is on argv");
                tokens.push(token.to_string());
                cluster_calls.push(sub);
            }
            _ => assert!(kc.is_none(), "{sub} got cluster credentials: {text}"),
        }
    }
    assert!(cluster_calls.contains(&"upgrade"), "{cluster_calls:?}");
    assert!(cluster_calls.contains(&"uninstall"), "{cluster_calls:?}");
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("KENV "))
            .all(|l| *l == "KENV 0"),
        "{text}"
    );
    // Each call its own token, each of the release identity of `ns`.
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a fresh token per call");
    for t in &tokens {
        let payload = t.split('.').nth(1).expect("a JWT");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], release_user(&id, &ns), "{claims}");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime <= 3600, "short-lived: {lifetime} s");
    }
}

/// The chart's ValidatingAdmissionPolicy: no pod, from anyone (the admin
/// here, a chart's workload controller in real life), runs as the release
/// identity, so its rights never outlive a helm call in a running pod.
#[tokio::test(flavor = "multi_thread")]
async fn no_pod_runs_as_the_release_identity() {
    let (k, id, ns) = Cluster::with_tenant("judy", false).await;
    let pod = |name: &str, sa: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"serviceAccountName": sa, "automountServiceAccountToken": true,
                        "containers": [{"name": "c", "image": "busybox"}]}})
    };
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let sa = id.identity_names().service_account;
    // A policy takes effect once the API server has loaded it: the control
    // pod (an account that isn't the release identity) is admitted first.
    k.create(&path, pod("ok", "default")).await;
    let req = axum::http::Request::post(&path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&pod("as-release", &sa)).unwrap())
        .unwrap();
    let mut refused = None;
    for _ in 0..100 {
        match k.client.request::<Value>(req.clone()).await {
            Err(kube::Error::Api(e)) => {
                refused = Some(e);
                break;
            }
            Ok(_) => {
                // Not loaded yet: remove it and ask again.
                k.delete(&format!("{path}/as-release")).await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let e = refused.expect("the API server refuses a pod running as the release identity");
    assert_eq!(e.code, 403, "{e:?}");
    assert!(
        e.message.contains("no pod may run as the release identity"),
        "{e:?}"
    );
    assert!(!k.has(&format!("{path}/as-release")).await);
}
