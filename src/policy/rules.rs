//! The rules inside one object: its pods ([`super::pods`],
//! [`super::placement`], [`super::fields`]), RBAC ([`super::rbac`]),
//! Services, Secrets, and what an object points at
//! ([`super::selectors`], [`super::exposure`]).

use serde_json::Value;

use super::Report;
use super::lookup::{descend, fields, list, show};
use super::{exposure, fields as pod_fields, placement, rbac, release, selectors};

/// Runs every content rule on one object of `kind` in API `group`.
pub(super) fn check_object(obj: &Value, group: &str, kind: &str, report: &mut Report<'_>) {
    super::pods::check(obj, report);
    if let Some(spec) = release::pod_template(obj).and_then(|t| t.get("spec")) {
        placement::service_account(spec, report);
        pod_fields::pod(spec, report);
        let claims = list(spec, "volumes")
            .flat_map(|v| descend(v, &["ephemeral", "volumeClaimTemplate", "spec"]));
        for claim in claims {
            selectors::claim(claim, "ephemeral volume ", report);
        }
    }
    let is = |k: &str| kind.eq_ignore_ascii_case(k);
    if is("RoleBinding") || is("ClusterRoleBinding") {
        rbac::role_binding(obj, report);
    }
    if is("Role") || is("ClusterRole") {
        rbac::role(obj, report);
    }
    if is("Service") {
        service(obj, report);
    }
    selectors::check(obj, group, kind, report);
    if exposure::applies(group, kind) {
        exposure::check(obj, group, kind, report);
    }
    for finalizers in descend(obj, &["metadata", "finalizers"]) {
        if !finalizers.is_null() && finalizers.as_array().is_none_or(|f| !f.is_empty()) {
            report.add(
                "finalizers",
                format!(
                    "sets finalizers {}: its deletion would wait on a controller, and \
                     uninstalling the release with it",
                    show(finalizers)
                ),
            );
        }
    }
    if is("Secret") {
        for t in fields(obj, "type").filter_map(Value::as_str) {
            if t.trim() == "kubernetes.io/service-account-token" {
                report.add(
                    "service-account-token",
                    "is a service-account token Secret: the cluster would fill it with a \
                     long-lived token for a service account"
                        .to_owned(),
                );
            }
        }
    }
}

/// Only in-cluster Services by default: NodePort and LoadBalancer open the
/// release to outside the cluster, ExternalName points cluster DNS at any
/// host, and externalIPs let a Service capture traffic meant for addresses
/// it doesn't own (CVE-2020-8554).
fn service(obj: &Value, report: &mut Report<'_>) {
    // external-dns publishes a Service's hostname annotation as DNS: the
    // same host claim an Ingress makes, under the same rule.
    let annotations = descend(obj, &["metadata", "annotations"]);
    for key in annotations
        .iter()
        .filter_map(|a| a.as_object())
        .flat_map(|m| m.keys())
    {
        if key.starts_with("external-dns.alpha.kubernetes.io/") {
            report.add(
                "ingress-host",
                format!("annotation {key} claims DNS names through external-dns"),
            );
        }
    }
    for t in descend(obj, &["spec", "type"]) {
        let t = show(t);
        if !t.is_empty() && t != "null" && t != "ClusterIP" {
            report.add("service-type", format!("is of type {t}"));
        }
    }
    for ips in descend(obj, &["spec", "externalIPs"]) {
        if !ips.is_null() && ips.as_array().is_none_or(|a| !a.is_empty()) {
            report.add(
                "service-external-ips",
                format!("sets externalIPs {}", show(ips)),
            );
        }
    }
}
