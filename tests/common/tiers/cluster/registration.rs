//! Helpers of the tests in tests/cluster/registration.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::cluster::{Cluster, kubectl};
use serde_json::{Value, json};

/// The provider-osb config CRDs, cluster-wide and namespaced, with the
/// fields the registration uses (the provider's own schema has more:
/// `credentials.env`/`fs` and a status).
pub fn crds() -> String {
    let schema = r#"
        openAPIV3Schema:
          type: object
          required: [spec, disable_async]
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            disable_async: {type: boolean}
            spec:
              type: object
              required: [brokerUrl]
              properties:
                brokerUrl: {type: string, pattern: "^https?://.+"}
                osbVersion: {type: string, pattern: "^2\\.\\d{1,2}$"}
                timeout: {type: integer, minimum: 0}
                credentials:
                  type: object
                  required: [source]
                  properties:
                    source: {type: string, enum: [None, Secret, InjectedIdentity, Environment, Filesystem]}
                    secretRef:
                      type: object
                      required: [key, name, namespace]
                      properties:
                        key: {type: string}
                        name: {type: string}
                        namespace: {type: string}"#;
    let crd = |kind: &str, plural: &str, scope: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.osb.m.crossplane.io\n\
             spec:\n  group: osb.m.crossplane.io\n  scope: {scope}\n  names:\n    kind: {kind}\n    listKind: {kind}List\n    \
             plural: {plural}\n    singular: {}\n  versions:\n    - name: v1alpha1\n      served: true\n      storage: true\n      \
             schema:{schema}\n",
            kind.to_lowercase()
        )
    };
    format!(
        "{}---\n{}",
        crd("ClusterProviderConfig", "clusterproviderconfigs", "Cluster"),
        crd("ProviderConfig", "providerconfigs", "Namespaced")
    )
}

/// Applies the CRDs and waits until they serve.
pub fn install_crds(k: &Cluster) {
    k.kubectl_apply(&crds());
    for name in ["clusterproviderconfigs", "providerconfigs"] {
        let (ok, out) = kubectl(
            &k.kubeconfig,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{name}.osb.m.crossplane.io"),
            ],
            "",
        );
        assert!(ok, "{out}");
    }
}

/// Server-side apply with strict field validation: (ok, kubectl's words).
pub fn apply_strict(k: &Cluster, yaml: &str) -> (bool, String) {
    kubectl(
        &k.kubeconfig,
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        yaml,
    )
}

pub fn rename(yaml: &str, name: &str) -> String {
    let mut v: Value = serde_saphyr::from_str(yaml).unwrap();
    v["metadata"]["name"] = json!(name);
    serde_json::to_string(&v).unwrap()
}
