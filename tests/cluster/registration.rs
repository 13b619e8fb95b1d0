//! The provider-osb registration (the chart's `registration.providerOsb`
//! and its copy in `deploy/registration/`) is what provider-osb's CRDs
//! accept: server-side apply with strict field validation on the real API
//! server, against CRDs written here from the provider's published shape
//! (github.com/orange-cloudfoundry/provider-osb, package/crds at 071ec47),
//! with only the fields the registration uses and nothing that would let an
//! unknown field through.
//!
//! The Service Catalog registration is not tested here: its API is served
//! by its own aggregated API server, not by CRDs (see deploy/README.md).

use crate::common;

use crate::helpers::registration::*;
use common::cluster::{Cluster, chart_template};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_provider_osb_registration_applies_strictly_to_its_crds() {
    let k = Cluster::admin().await;
    install_crds(&k);
    let sfx = common::cluster::suffix();

    // The chart's rendering, and the copy deploy/ carries.
    let values = json!({"registration": {"providerOsb": {"enabled": true}}});
    let rendered = chart_template(
        "chartbroker-system",
        &values,
        &["registration-provider-osb.yaml"],
    );
    let deploy =
        std::fs::read_to_string(repo().join("deploy/registration/crossplane-provider-osb.yaml"))
            .unwrap();
    for (what, yaml) in [("chart", &rendered), ("deploy", &deploy)] {
        let v: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(v["apiVersion"], "osb.m.crossplane.io/v1alpha1", "{what}");
        assert_eq!(v["kind"], "ClusterProviderConfig", "{what}");
        assert_eq!(v["spec"]["credentials"]["source"], "Secret", "{what}");
        let name = format!("reg-{what}-{sfx}");
        let (ok, out) = apply_strict(&k, &rename(yaml, &name));
        assert!(ok, "{what}: {out}\n{yaml}");
        let stored = k
            .get(&format!(
                "/apis/osb.m.crossplane.io/v1alpha1/clusterproviderconfigs/{name}"
            ))
            .await
            .unwrap();
        assert_eq!(stored["spec"]["osbVersion"], "2.17");
        assert_eq!(stored["spec"]["timeout"], 60);
        assert_eq!(stored["disable_async"], false);
        assert!(
            stored["spec"]["brokerUrl"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }

    // The checks bite: the old field names, a missing disable_async, and the
    // old group are refused.
    let mut v: Value = serde_saphyr::from_str(&rendered).unwrap();
    v["metadata"]["name"] = json!(format!("reg-bad-{sfx}"));
    let spec = v["spec"].as_object_mut().unwrap();
    let url = spec.remove("brokerUrl").unwrap();
    spec.insert("broker_url".into(), url.clone());
    spec.insert("brokerUrl".into(), url);
    let (ok, out) = apply_strict(&k, &v.to_string());
    assert!(!ok && out.contains("broker_url"), "{out}");
    v["spec"].as_object_mut().unwrap().remove("broker_url");
    v.as_object_mut().unwrap().remove("disable_async");
    let (ok, out) = apply_strict(&k, &v.to_string());
    assert!(!ok && out.contains("disable_async"), "{out}");
    v["disable_async"] = json!(false);
    v["apiVersion"] = json!("osb.crossplane.io/v1alpha1");
    let (ok, out) = apply_strict(&k, &v.to_string());
    assert!(!ok, "{out}");
}

#[test]
fn the_chart_sets_up_the_trust_of_provider_osbs_credential() {
    let values = json!({
        "targetNamespaces": ["apps", "shop"],
        "registration": {"providerOsb": {"enabled": true, "username": "xp"}},
        "platforms": [{"name": "cf", "namespaces": ["team-*"]}],
    });
    let cm = chart_template("chartbroker-system", &values, &["platforms.yaml"]);
    let cm: Value = serde_saphyr::from_str(&cm).unwrap();
    let file: Value =
        serde_saphyr::from_str(cm["data"]["platforms.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        file,
        json!({"platforms": [
            {"name": "cf", "namespaces": ["team-*"]},
            {"name": "xp", "identity": "platform", "deprovision_poll": "gone",
             "namespaces": ["apps", "shop"]},
        ]})
    );
    let dep = chart_template("chartbroker-system", &values, &["deployment.yaml"]);
    assert!(dep.contains("CHARTBROKER_PLATFORMS_FILE"), "{dep}");
    // Off, nothing is rendered and the broker reads no platforms file.
    let off = json!({"targetNamespaces": ["apps"]});
    let dep = chart_template("chartbroker-system", &off, &["deployment.yaml"]);
    assert!(!dep.contains("CHARTBROKER_PLATFORMS_FILE"), "{dep}");
}
