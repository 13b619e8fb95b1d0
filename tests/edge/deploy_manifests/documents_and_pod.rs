use super::*;

#[test]
fn every_document_is_a_known_kind_and_round_trips() {
    let m = load();
    // The pieces the README promises are all there.
    assert_eq!(m.namespaces.len(), 1, "one Namespace");
    // The broker's, and one release identity per target namespace.
    assert_eq!(m.service_accounts.len(), 2, "two ServiceAccounts");
    assert_eq!(m.services.len(), 1, "one Service");
    assert_eq!(m.network_policies.len(), 1, "one NetworkPolicy");
    the_deployment(&m);
    for (api, kind) in [
        ("servicecatalog.k8s.io/v1beta1", "ClusterServiceBroker"),
        ("osb.m.crossplane.io/v1alpha1", "ClusterProviderConfig"),
    ] {
        assert!(
            m.custom
                .iter()
                .any(|d| d.api_version() == api && d.kind() == kind),
            "no {api} {kind} registration example under deploy/registration/"
        );
    }
    for name in ["chartbroker-credentials", "chartbroker-store-key"] {
        assert!(
            m.secrets.iter().any(|(d, _)| d.name() == name),
            "no template for Secret {name}"
        );
    }
}

#[test]
fn namespaces_and_placement() {
    let m = load();
    let (d, ns) = &m.namespaces[0];
    assert_eq!(d.name(), NS);
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "{}: Pod Security Admission must enforce `restricted`",
        d.origin()
    );
    // Cluster-scoped kinds carry no namespace; everything else in
    // deploy/kubernetes lives in the broker's namespace, except the per-target
    // release identity and RoleBindings under targets/.
    let cluster_scoped = [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterServiceBroker",
        "ClusterProviderConfig",
    ];
    for d in docs() {
        if cluster_scoped.contains(&d.kind()) {
            assert_eq!(d.namespace(), None, "{}: cluster-scoped", d.origin());
        } else if d.file.starts_with("kubernetes/targets/") {
            assert!(
                ["RoleBinding", "ServiceAccount"].contains(&d.kind()),
                "{}: targets/ holds the release identity and RoleBindings only",
                d.origin()
            );
            assert!(
                d.namespace().is_some_and(|n| n != NS),
                "{}: a target namespace",
                d.origin()
            );
        } else if d.file.starts_with("kubernetes/") {
            assert_eq!(d.namespace(), Some(NS), "{}: namespace", d.origin());
        } else {
            assert!(d.namespace().is_some(), "{}: namespaced", d.origin());
        }
    }
}

#[test]
fn deployment_pod_is_locked_down() {
    let m = load();
    let (d, dep) = the_deployment(&m);
    let o = d.origin();
    let spec = dep.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "{o}: one replica (embedded store)");
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate"),
        "{o}: Recreate, so two pods never share the store"
    );
    let pod = pod_spec(dep);
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "{o}: pod runAsNonRoot");
    assert!(
        psc.run_as_user.is_some_and(|u| u != 0),
        "{o}: pod runAsUser non-zero"
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault"),
        "{o}: seccomp RuntimeDefault"
    );
    assert_eq!(pod.host_network, None, "{o}: no hostNetwork");
    assert_eq!(pod.host_pid, None, "{o}: no hostPID");
    assert_eq!(pod.host_ipc, None, "{o}: no hostIPC");

    // Only the broker pod mounts the token; the ServiceAccount does not by default.
    let sa_name = pod.service_account_name.as_deref();
    assert_eq!(sa_name, Some(SA), "{o}: serviceAccountName");
    assert_eq!(
        pod.automount_service_account_token,
        Some(true),
        "{o}: helm needs the token"
    );
    let (sd, sa) = &m.service_accounts[0];
    assert_eq!(sd.name(), SA);
    assert_eq!(
        sa.automount_service_account_token,
        Some(false),
        "{}: no token by default for other pods using the account",
        sd.origin()
    );

    let c = broker_container(dep);
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(
        sc.read_only_root_filesystem,
        Some(true),
        "{o}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc.allow_privilege_escalation,
        Some(false),
        "{o}: allowPrivilegeEscalation false"
    );
    assert_ne!(sc.privileged, Some(true), "{o}: not privileged");
    assert_ne!(sc.run_as_non_root, Some(false), "{o}: runAsNonRoot");
    assert!(
        sc.run_as_user.is_none_or(|u| u != 0),
        "{o}: container runAsUser non-zero"
    );
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(strs(&caps.drop), vec!["ALL"], "{o}: drop ALL capabilities");
    assert!(strs(&caps.add).is_empty(), "{o}: adds no capability");

    // Resources: requests and limits for cpu and memory.
    let res = c.resources.as_ref().expect("resources");
    for (what, map) in [("requests", &res.requests), ("limits", &res.limits)] {
        let map = map
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: resources.{what}"));
        for r in ["cpu", "memory"] {
            assert!(map.contains_key(r), "{o}: resources.{what}.{r}");
        }
    }

    // Probes: readiness on /readyz, liveness on /healthz, HTTPS when TLS is on.
    let tls = env_value(c, "CHARTBROKER_TLS_CERT").is_some();
    let want_scheme = if tls { "HTTPS" } else { "HTTP" };
    let container_ports = container_ports(c);
    for (probe, path) in [
        (&c.readiness_probe, "/readyz"),
        (&c.liveness_probe, "/healthz"),
    ] {
        let probe = probe
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: probe for {path}"));
        let get = probe
            .http_get
            .as_ref()
            .unwrap_or_else(|| panic!("{o}: {path} probe is an httpGet"));
        assert_eq!(get.path.as_deref(), Some(path), "{o}: probe path");
        assert_eq!(
            get.scheme.as_deref().unwrap_or("HTTP"),
            want_scheme,
            "{o}: {path} probe scheme"
        );
        assert!(
            port_matches(&get.port, &container_ports),
            "{o}: {path} probe port {:?} is not a container port",
            get.port
        );
    }

    // Every mount has a volume; /tmp and the data dir are writable volumes;
    // mounted Secrets are read-only and not world-readable.
    let volumes: BTreeMap<&str, &k8s_openapi::api::core::v1::Volume> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut mounts = BTreeMap::new();
    for vm in c.volume_mounts.iter().flatten() {
        let v = volumes
            .get(vm.name.as_str())
            .unwrap_or_else(|| panic!("{o}: mount {} has no volume", vm.name));
        mounts.insert(vm.mount_path.as_str(), *v);
        if let Some(s) = &v.secret {
            assert_eq!(
                vm.read_only,
                Some(true),
                "{o}: Secret {} mounted read-only",
                vm.name
            );
            // 0440 at most: no write bits, nothing for others. (A YAML
            // `0440` is octal to kubectl but decimal 440 = 0o670 to a YAML 1.2
            // reader, so manifests spell it as decimal 288.)
            let mode = s.default_mode.unwrap_or(0o644);
            assert_eq!(
                mode & !0o440,
                0,
                "{o}: Secret volume {} defaultMode {mode:#o} allows more than 0o440",
                vm.name
            );
        }
    }
    assert!(
        mounts.get("/tmp").is_some_and(|v| v.empty_dir.is_some()),
        "{o}: /tmp is an emptyDir (the root filesystem is read-only)"
    );
    let data_dir = env_value(c, "CHARTBROKER_DATA_DIR").expect("CHARTBROKER_DATA_DIR");
    assert!(
        mounts
            .get(data_dir)
            .is_some_and(|v| v.empty_dir.is_some() || v.persistent_volume_claim.is_some()),
        "{o}: the data dir {data_dir} is a volume"
    );
    if let Some(claim) = mounts
        .get(data_dir)
        .and_then(|v| v.persistent_volume_claim.as_ref())
    {
        assert!(
            m.pvcs.iter().any(|(d, _)| d.name() == claim.claim_name),
            "{o}: PVC {} is not defined",
            claim.claim_name
        );
    }
    // File paths in the environment point into mounted volumes.
    for var in ["CHARTBROKER_TLS_CERT", "CHARTBROKER_TLS_KEY"] {
        assert!(env_value(c, var).is_some(), "{o}: {var} is set");
    }
    let files = c.env.iter().flatten().filter(|e| {
        e.name.ends_with("_FILE")
            || e.name.starts_with("CHARTBROKER_TLS_")
            || e.name == "CHARTBROKER_CATALOG"
    });
    for e in files {
        let (var, path) = (&e.name, e.value.as_deref().unwrap_or(""));
        assert!(
            mounts.keys().any(|mp| path.starts_with(&format!("{mp}/"))),
            "{o}: {var}={path} is not under a mounted volume"
        );
    }
    assert_eq!(
        env_value(c, "CHARTBROKER_ENGINE"),
        Some("helm"),
        "{o}: engine"
    );
}

#[test]
fn credentials_come_from_secrets_never_literals() {
    let m = load();
    let (d, dep) = the_deployment(&m);
    let c = broker_container(dep);
    let secrets: BTreeMap<&str, &Secret> = m.secrets.iter().map(|(d, s)| (d.name(), s)).collect();
    for e in c.env.iter().flatten() {
        let sensitive = ["PASSWORD", "USERNAME", "TOKEN", "STORE_KEY"]
            .iter()
            .any(|w| e.name.contains(w))
            && !e.name.ends_with("_FILE");
        if sensitive {
            let r = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .unwrap_or_else(|| panic!("{}: {} must come from a Secret", d.origin(), e.name));
            let s = secrets
                .get(r.name.as_str())
                .unwrap_or_else(|| panic!("{}: no template for Secret {}", d.origin(), r.name));
            assert!(
                s.string_data
                    .as_ref()
                    .is_some_and(|sd| sd.contains_key(&r.key))
                    || s.data.as_ref().is_some_and(|sd| sd.contains_key(&r.key)),
                "{}: Secret {} template has no key {}",
                d.origin(),
                r.name,
                r.key
            );
        }
    }
    // ConfigMap volumes refer to ConfigMaps deploy/ carries.
    for v in pod_spec(dep).volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            assert!(
                m.custom
                    .iter()
                    .any(|d| d.kind() == "ConfigMap" && d.name() == cm.name),
                "{}: volume {} uses ConfigMap {}, which deploy/ lacks",
                d.origin(),
                v.name,
                cm.name
            );
        }
    }
    // Secret volumes refer to templated Secrets (the TLS Secret comes from
    // cert-manager or `kubectl create secret tls`).
    for v in pod_spec(dep).volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
            let cert_manager = m.custom.iter().any(|d| {
                d.kind() == "Certificate" && d.value["spec"]["secretName"].as_str() == Some(name)
            });
            assert!(
                secrets.contains_key(name) || cert_manager,
                "{}: volume {} uses Secret {name}, which nothing in deploy/ describes",
                d.origin(),
                v.name
            );
        }
    }
}

#[test]
fn secrets_hold_placeholders_only() {
    let m = load();
    for (d, s) in &m.secrets {
        assert!(
            !d.top_level_kubernetes(),
            "{}: Secret templates must not sit where `kubectl apply -f deploy/kubernetes/` \
             would apply them over real ones",
            d.origin()
        );
        let mut values: Vec<(String, String)> = Vec::new();
        for (k, v) in s.string_data.iter().flatten() {
            values.push((k.clone(), v.clone()));
        }
        for (k, v) in s.data.iter().flatten() {
            values.push((k.clone(), String::from_utf8_lossy(&v.0).into_owned()));
        }
        assert!(
            !values.is_empty(),
            "{}: an empty Secret template",
            d.origin()
        );
        for (k, v) in values {
            assert!(
                placeholder(&v),
                "{}: Secret {} key {k} looks like a real value; use an empty string or a \
                 REPLACE_ME placeholder",
                d.origin(),
                d.name()
            );
        }
    }
    // Nothing key-like anywhere in deploy/, comments included.
    let mut files = Vec::new();
    yaml_files(&repo().join("deploy"), &mut files);
    files.push(repo().join("deploy/Dockerfile"));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for marker in ["PRIVATE KEY-----", "BEGIN CERTIFICATE-----"] {
            assert!(
                !text.contains(marker),
                "{}: contains a PEM block ({marker})",
                f.display()
            );
        }
    }
    // Registration examples reference Secrets rather than embedding them.
    for d in &m.custom {
        assert!(
            !d.file.starts_with("registration/") || !d.value.to_string().contains("password\":\""),
            "{}: a registration object embeds a password",
            d.origin()
        );
    }
}
