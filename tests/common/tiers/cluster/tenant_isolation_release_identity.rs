//! Helpers of the tests in tests/cluster/tenant_isolation/release_identity.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::PathBuf;

use common::cluster::{BrokerIdentity, Cluster, suffix};
use common::cluster_calls::*;
use common::*;
use serde_json::json;

pub async fn broker(id: &BrokerIdentity, helm: PathBuf) -> TestBroker {
    TestBroker::on_cluster(id, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-cluster");
        cfg.helm = helm;
    })
    .await
}

/// The user Kubernetes sees when helm acts in `ns` for broker `id`.
pub fn release_user(id: &BrokerIdentity, ns: &str) -> String {
    id.release_user(ns)
}

pub async fn lookup_of_another_tenants_secret_gets_nothing(helm: PathBuf) {
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    // Both are target namespaces of the same broker: the broker's own
    // rights reach both, the release identity of each only its own.
    let victim = k.tenant(&id, "bob").await;
    let attacker = k.tenant(&id, "mallory").await;
    let password = format!("victim-{}", suffix());
    for ns in [&victim, &attacker] {
        k.create(
            &format!("/api/v1/namespaces/{ns}/secrets"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                   "stringData": {"password": format!("{password}-{ns}")}}),
        )
        .await;
    }
    let b = broker(&id, helm).await;

    let mallory = b.by("mallory");
    let params = json!({"namespace": victim, "name": "db", "key": "password"});
    let done = mallory
        .provision("steal", cluster_provision("plan-lookup", &attacker, params))
        .await;
    let d = done.assert_state("failed");
    // Kubernetes' own refusal of helm's read, naming who asked.
    assert!(d.contains("forbidden"), "{d}");
    assert!(d.contains(&release_user(&id, &attacker)), "{d}");
    assert!(d.contains(&victim), "{d}");
    assert!(!done.text.contains(&password), "{}", done.text);
    let cm = k
        .get(&format!(
            "/api/v1/namespaces/{attacker}/configmaps/cb-steal"
        ))
        .await;
    assert!(cm.is_none(), "nothing was installed: {cm:?}");

    // Nor the broker's own state namespace (its records and store key).
    let params = json!({"namespace": id.state_namespace, "name": "chartbroker-store-key",
                        "key": "store.key"});
    let body = cluster_provision("plan-lookup", &attacker, params);
    let d = mallory.provision_fails("steal-state", body).await;
    assert!(
        d.contains("forbidden") && d.contains(&release_user(&id, &attacker)),
        "{d}"
    );

    // The same chart looking up its own namespace's Secret works.
    let params = json!({"namespace": attacker, "name": "db", "key": "password"});
    let body = cluster_provision("plan-lookup", &attacker, params);
    mallory.provisioned("own", body).await;
    let cm = k
        .get(&format!("/api/v1/namespaces/{attacker}/configmaps/cb-own"))
        .await
        .expect("the release's ConfigMap");
    assert_eq!(cm["data"]["stolen"], format!("{password}-{attacker}"));
    assert_eq!(cm["data"]["found"], "true");

    // The API server's audit log: helm's writes (the chart's ConfigMap, the
    // release record) are the release identity's; the binding Secret is
    // the broker's own work.
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-lookup"});
    mallory.bound("own", "own-b", bind).await;
    let broker_user = format!("system:serviceaccount:{}:chartbroker", id.state_namespace);
    for (resource, name, user) in [
        ("configmaps", "cb-own", release_user(&id, &attacker)),
        (
            "secrets",
            "sh.helm.release.v1.cb-own.v1",
            release_user(&id, &attacker),
        ),
        ("secrets", "cb-bind-own-b", broker_user),
    ] {
        let writes = k.audited_writes(&attacker, resource, name);
        assert!(!writes.is_empty(), "no audited write of {resource}/{name}");
        assert!(
            writes.iter().all(|(_, u)| *u == user),
            "{resource}/{name}: {writes:?}, expected {user}"
        );
    }
}

pub async fn a_chart_role_beyond_the_release_rights_is_refused_by_kubernetes(helm: PathBuf) {
    let (k, id, ns) = Cluster::with_tenant("erin", false).await;
    let b = broker(&id, helm).await;
    let erin = b.by("erin");

    // DaemonSets: the default policy doesn't judge a Role by the kinds it
    // names, and the release ClusterRole holds no right on them.
    let params = json!({"group": "apps", "resource": "daemonsets"});
    let d = erin
        .provision_fails("esc", cluster_provision("plan-escalate", &ns, params))
        .await;
    assert!(
        d.contains("attempting to grant RBAC permissions not currently held"),
        "{d}"
    );
    // The writer Kubernetes judged is the release identity, not the broker.
    assert!(d.contains(&release_user(&id, &ns)), "{d}");
    assert!(
        !d.contains(&format!("{}:chartbroker\"", id.state_namespace)),
        "{d}"
    );
    let role = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/cb-esc");
    assert!(k.get(&role).await.is_none());

    // Within the release rights, the same chart installs.
    let params = json!({"group": "", "resource": "configmaps"});
    erin.provisioned("ok", cluster_provision("plan-escalate", &ns, params))
        .await;
    let role = k
        .get(&format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/cb-ok"
        ))
        .await
        .expect("the chart's Role");
    assert_eq!(role["rules"][0]["resources"][0], "configmaps");
}
