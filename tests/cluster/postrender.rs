//! The policy judges exactly what helm applies (tests/testenv, real helm 4
//! and 3). Charts here look harmless to an offline `helm template` and turn
//! hostile once they meet a cluster (`lookup`), on upgrade
//! (`.Release.IsUpgrade`), in hooks, or in `crds/`. The broker runs as
//! cluster admin and helm as each namespace's release identity, whose rights
//! cover what these charts write there: each test proves the broker's policy,
//! not RBAC, stopped the chart.

use crate::common;

use axum::http::StatusCode;
use common::cluster_calls::*;
use common::*;

use crate::helpers::postrender::*;

crate::helm4_and_3_tests!(
    a_chart_hostile_only_against_a_cluster_is_refused_on_helm4,
    a_chart_hostile_only_against_a_cluster_is_refused_on_helm3,
    |helm, v| async move { lookup_switch_is_refused(helm, &format!("lk-{v}")).await }
);

crate::helm4_and_3_tests!(
    a_chart_hostile_only_on_upgrade_is_refused_on_helm4,
    a_chart_hostile_only_on_upgrade_is_refused_on_helm3,
    |helm, v| async move { upgrade_switch_is_refused(helm, &format!("up-{v}")).await }
);

#[tokio::test(flavor = "multi_thread")]
async fn helm4_shows_hooks_to_the_policy() {
    let (k, ns, b) = bed(helm_bin(), "pr").await;
    let done = provisioned(&b, "hk-4", "plan-hook-switch", &ns).await;
    let d = done.assert_state("failed");
    assert!(d.contains("kube-system"), "{d}");
    assert!(!in_kube_system(&k, "cb-hk-4-hook").await);
    // A harmless hook runs.
    let done = provisioned(&b, "ok-4", "plan-plain-hook", &ns).await;
    done.assert_state("succeeded");
    assert!(
        k.has(&format!("/api/v1/namespaces/{ns}/configmaps/cb-ok-4-hook"))
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn helm3_runs_no_hook_the_policy_could_not_see() {
    let (k, ns, b) = bed(helm3_bin(), "pr").await;
    // A chart with hooks is refused up front, with the reason.
    let done = provisioned(&b, "ok-3", "plan-plain-hook", &ns).await;
    let d = done.assert_state("failed");
    assert!(d.contains("hooks") && d.contains("Helm 4"), "{d}");
    // A hook that only appears against the cluster slips past that check,
    // but helm 3 runs with --no-hooks: it is never created.
    let done = provisioned(&b, "hk-3", "plan-hidden-hook", &ns).await;
    done.assert_state("succeeded");
    let configmaps = format!("/api/v1/namespaces/{ns}/configmaps");
    assert!(k.has(&format!("{configmaps}/cb-hk-3")).await);
    assert!(
        !k.has(&format!("{configmaps}/cb-hk-3-hook")).await,
        "helm 3 ran a hook the policy never saw"
    );
}

crate::helm4_and_3_tests!(
    crds_are_never_installed_by_helm4,
    crds_are_never_installed_by_helm3,
    |helm, v| async move { crds_are_never_installed(helm, &format!("crd-{v}")).await }
);

#[test]
fn the_render_command_runs_the_same_policy_as_serve() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["render", "--service", "hostile", "--plan", "privileged"])
        .arg("--catalog")
        .arg(fixtures().join("catalog-helm/hostile"))
        .arg("--charts")
        .arg(fixtures().join("hostile-charts"))
        .arg("--helm")
        .arg(helm_bin())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("policy rejected the chart") && stderr.contains("privileged-container"),
        "{stderr}"
    );
    // The preview still shows what was refused.
    assert!(String::from_utf8_lossy(&out.stdout).contains("privileged: true"));
}

crate::helm4_and_3_tests!(
    yaml_go_reads_differently_is_refused_on_helm4,
    yaml_go_reads_differently_is_refused_on_helm3,
    ambiguous_yaml_is_refused
);

#[tokio::test]
async fn yaml_go_reads_differently_is_refused_on_the_render_engine() {
    let b = render_broker_on(
        &fixtures().join("catalog-postrender"),
        &fixtures().join("switch-charts"),
    )
    .await;
    for (n, (plan, says)) in AMBIGUOUS.iter().enumerate() {
        let id = format!("amb-r{n}");
        let r = b
            .put(
                &format!("/v2/service_instances/{id}"),
                provision(plan, "apps"),
            )
            .await;
        assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
        let d = r.json["description"].as_str().unwrap();
        assert!(
            d.starts_with("policy rejected the chart: manifests: ")
                && d.contains("(rule: ambiguous-yaml)")
                && d.contains("line-separator/templates/pod.yaml") == (n == 1)
                && d.contains(says),
            "{plan}: {d}"
        );
        assert!(!b.release_dir(&id).exists(), "{plan} wrote manifests");
    }
}
