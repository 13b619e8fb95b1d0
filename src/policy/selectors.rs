//! Objects that point at other objects: Services, NetworkPolicies and
//! PodDisruptionBudgets select pods, HPAs scale a workload, PVCs bind a
//! volume or copy one, Endpoints and EndpointSlices feed a Service. Each
//! may only reach the release's own objects: a selector must pin a label
//! value and match a pod template of the release; a reference must name an
//! object the release creates.

use serde_json::Value;

use super::Report;
use super::kinds::group_of;
use super::lookup::{descend, exact, fields, list, show};
use super::release::{Selector, string_map};

/// Runs the rules of this module that apply to `group`/`kind`.
pub(super) fn check(obj: &Value, group: &str, kind: &str, report: &mut Report<'_>) {
    match (group, kind) {
        ("", "Service") => service(obj, report),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj, report),
        ("policy", "PodDisruptionBudget") => selectors(obj, "selector", report),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj, report),
        ("", "PersistentVolumeClaim") => {
            for spec in fields(obj, "spec") {
                claim(spec, "", report);
            }
        }
        ("apps", "StatefulSet") => {
            for (i, t) in descend(obj, &["spec", "volumeClaimTemplates"])
                .into_iter()
                .flat_map(|l| l.as_array().into_iter().flatten())
                .enumerate()
            {
                for spec in fields(t, "spec") {
                    claim(spec, &format!("volumeClaimTemplates[{i}] "), report);
                }
            }
        }
        ("", "Endpoints") => endpoints_of(obj.pointer("/metadata/name"), report),
        ("discovery.k8s.io", "EndpointSlice") => {
            endpoints_of(
                obj.pointer("/metadata/labels/kubernetes.io~1service-name"),
                report,
            );
        }
        _ => {}
    }
}

/// A Service without a selector gets its endpoints written by hand, which
/// can point anywhere; one whose selector matches none of the release's
/// pods takes over another release's.
fn service(obj: &Value, report: &mut Report<'_>) {
    let external = descend(obj, &["spec", "type"])
        .into_iter()
        .any(|t| show(t) == "ExternalName");
    if external {
        return; // refused by service-type, and has no pods
    }
    let spellings = descend(obj, &["spec", "selector"]);
    let exact_one = exact(obj, &["spec", "selector"]);
    if exact_one.is_none_or(|s| s.as_object().is_some_and(|m| m.is_empty())) {
        report.add(
            "release-selector",
            "has no selector: its endpoints would be written by hand and may point anywhere"
                .to_owned(),
        );
        return;
    }
    for selector in spellings {
        match string_map(selector) {
            Err(e) => report.add("release-selector", format!("selector: {e}")),
            Ok(labels) if labels.is_empty() || !report.release.has_pods_labelled(&labels) => {
                report.add(
                    "release-selector",
                    format!(
                        "selector {} matches no pod template of the release",
                        show(selector)
                    ),
                );
            }
            Ok(_) => {}
        }
    }
}

/// `spec.<field>`: the exact key must be there, and every spelling must
/// pass (an API server that read another spelling would select with it).
fn selectors(obj: &Value, field: &str, report: &mut Report<'_>) {
    if exact(obj, &["spec", field]).is_none() {
        label_selector(None, field, report);
    }
    for selector in descend(obj, &["spec", field])
        .into_iter()
        .filter(|s| !s.is_null())
    {
        label_selector(Some(selector), field, report);
    }
}

/// A `metav1.LabelSelector` that must pin a value and select the release's
/// pods (`None`: missing).
fn label_selector(selector: Option<&Value>, at: &str, report: &mut Report<'_>) {
    let problem = match selector.map(Selector::parse) {
        None => Some("is missing".to_owned()),
        Some(Err(e)) => Some(e),
        Some(Ok(s)) if !s.pins_a_value() => Some(
            "pins no label value (matchLabels or an In expression), so it reaches pods of \
             other releases"
                .to_owned(),
        ),
        Some(Ok(s)) if !report.release.has_pods_selected(&s) => {
            Some("matches no pod template of the release".to_owned())
        }
        Some(Ok(_)) => None,
    };
    if let Some(p) = problem {
        report.add("release-selector", format!("{at} {p}"));
    }
}

/// A NetworkPolicy may only narrow: it selects the release's pods, and
/// every rule names its peers, none of which is "everything".
fn network_policy(obj: &Value, report: &mut Report<'_>) {
    selectors(obj, "podSelector", report);
    for (dir, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in descend(obj, &["spec", dir])
            .into_iter()
            .flat_map(|l| l.as_array().into_iter().flatten())
            .enumerate()
        {
            let peers: Vec<&Value> = list(rule, peers_key).collect();
            if peers.is_empty() {
                report.add(
                    "networkpolicy-open",
                    format!("{dir}[{i}] has no {peers_key}, which admits every peer"),
                );
            }
            for (j, peer) in peers.iter().enumerate() {
                if let Some(why) = open_peer(peer) {
                    report.add(
                        "networkpolicy-open",
                        format!("{dir}[{i}].{peers_key}[{j}] {why}"),
                    );
                }
            }
        }
    }
}

/// Why a NetworkPolicy peer admits everything, if it does.
fn open_peer(peer: &Value) -> Option<String> {
    let map = peer.as_object()?;
    if map.values().all(Value::is_null) {
        return Some("is empty".into());
    }
    for ns in fields(peer, "namespaceSelector").filter(|n| !n.is_null()) {
        // Only NotIn / DoesNotExist terms reach nearly every namespace.
        if !Selector::parse(ns).is_ok_and(|s| s.pins_a_value()) {
            return Some(format!(
                "selects every namespace, or nearly (namespaceSelector {})",
                show(ns)
            ));
        }
    }
    for cidr in descend(peer, &["ipBlock", "cidr"]) {
        let cidr = show(cidr);
        let prefix = cidr
            .rsplit_once('/')
            .and_then(|(_, p)| p.trim().parse::<u8>().ok());
        let min = if cidr.contains(':') { 16 } else { 8 };
        if prefix.is_none_or(|p| p < min) {
            return Some(format!(
                "admits the address block {cidr} (wider than /{min})"
            ));
        }
    }
    None
}

fn hpa(obj: &Value, report: &mut Report<'_>) {
    for target in descend(obj, &["spec", "scaleTargetRef"]) {
        let text = |k: &str| fields(target, k).map(show).next().unwrap_or_default();
        let (api, kind, name) = (text("apiVersion"), text("kind"), text("name"));
        if !report
            .release
            .creates_workload(group_of(&api), &kind, &name)
        {
            report.add(
                "release-target",
                format!("scales {kind} {name:?} ({api}), which is not a workload of the release"),
            );
        }
    }
}

/// A claim must not bind an existing volume (by name or by label) nor copy
/// data from anything but the release's own objects.
pub(super) fn claim(spec: &Value, at: &str, report: &mut Report<'_>) {
    for name in fields(spec, "volumeName") {
        if !name.is_null() && name.as_str() != Some("") {
            report.add(
                "pvc-binding",
                format!("{at}binds the existing volume {} (volumeName)", show(name)),
            );
        }
    }
    for sel in fields(spec, "selector") {
        if !sel.is_null() && sel.as_object().is_none_or(|m| !m.is_empty()) {
            report.add(
                "pvc-binding",
                format!("{at}selects existing volumes by label (selector)"),
            );
        }
    }
    // The empty class means "no provisioning": bind a volume that exists.
    if fields(spec, "storageClassName").any(|c| c.as_str() == Some("")) {
        report.add(
            "pvc-binding",
            format!("{at}asks for an existing volume (storageClassName \"\")"),
        );
    }
    for field in ["dataSource", "dataSourceRef"] {
        for source in fields(spec, field).filter(|s| !s.is_null()) {
            let text = |k: &str| fields(source, k).map(show).find(|v| v != "null");
            let group = text("apiGroup").unwrap_or_default();
            let kind = text("kind").unwrap_or_default();
            let name = text("name").unwrap_or_default();
            let ns = text("namespace").filter(|n| !n.is_empty());
            let own = ns.as_deref().is_none_or(|n| n == report.release.namespace)
                && report.release.creates(&group, &kind, &name);
            if !own {
                report.add(
                    "release-target",
                    format!(
                        "{at}{field} copies {kind} {name:?}, which the release does not create"
                    ),
                );
            }
        }
    }
}

/// Hand-written endpoints may only feed a Service of the release.
fn endpoints_of(service: Option<&Value>, report: &mut Report<'_>) {
    let name = service.map(show).unwrap_or_default();
    if !report.release.creates("", "Service", &name) {
        report.add(
            "release-target",
            format!("feeds Service {name:?}, which the release does not create"),
        );
    }
}
