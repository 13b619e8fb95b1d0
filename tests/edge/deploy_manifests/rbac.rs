use super::*;

#[test]
fn rbac_has_no_wildcards_or_escalation_verbs() {
    let m = load();
    let rules = all_rules(&m);
    assert!(!rules.is_empty());
    for (origin, rule) in &rules {
        for (field, values) in [
            ("verbs", rule.verbs.iter().map(String::as_str).collect()),
            ("resources", strs(&rule.resources)),
            ("apiGroups", strs(&rule.api_groups)),
            ("resourceNames", strs(&rule.resource_names)),
        ] {
            assert!(
                !values.iter().any(|v| v.contains('*')),
                "{origin}: `*` in {field}: {values:?}"
            );
        }
        assert!(
            rule.non_resource_urls.is_none(),
            "{origin}: nonResourceURLs (discovery is already open to authenticated users)"
        );
        assert!(!rule.verbs.is_empty(), "{origin}: a rule without verbs");
        assert!(
            !strs(&rule.resources).is_empty(),
            "{origin}: a rule without resources"
        );
        // RBAC objects and ServiceAccounts: the release identity's (a
        // chart's own Roles, which escalation prevention holds to this
        // role) and, for `namespace: instance`, the broker's set-up of the
        // release identity in a namespace it creates. `bind` only on the two
        // ClusterRoles by name; subresources only the release identity's
        // token, by name.
        let release = origin.ends_with(&format!("ClusterRole {RELEASE_ROLE}"));
        let namespaces = origin.contains("optional/rbac-namespaces.yaml");
        for v in &rule.verbs {
            assert!(
                !["escalate", "impersonate", "deletecollection"].contains(&v.as_str()),
                "{origin}: verb {v}"
            );
            if v == "bind" {
                assert!(namespaces, "{origin}: bind");
                assert_eq!(strs(&rule.resources), ["clusterroles"], "{origin}");
                assert_eq!(
                    strs(&rule.resource_names),
                    [RELEASE_ROLE, "chartbroker-target"],
                    "{origin}"
                );
            }
        }
        for r in strs(&rule.resources) {
            if r.contains('/') {
                assert_eq!(r, "serviceaccounts/token", "{origin}: subresource {r}");
                assert_eq!(rule.verbs, ["create"], "{origin}");
                assert_eq!(strs(&rule.resource_names), [RELEASE_ROLE], "{origin}");
            }
            if ["clusterrolebindings"].contains(&r)
                || (r == "clusterroles" && !rule.verbs.iter().all(|v| v == "bind"))
            {
                panic!("{origin}: resource {r}");
            }
            if ["roles", "rolebindings", "serviceaccounts"].contains(&r) {
                assert!(
                    release || (namespaces && rule.verbs == ["create"] && r != "roles"),
                    "{origin}: resource {r} (RBAC objects and ServiceAccounts: only the release \
                     identity, and the broker creating it in its own namespaces)"
                );
            }
        }
    }
    // Every binding names an existing role and binds only the broker.
    let role_names: BTreeSet<(&str, &str)> = m
        .roles
        .iter()
        .map(|(d, _)| ("Role", d.name()))
        .chain(
            m.cluster_roles
                .iter()
                .map(|(d, _)| ("ClusterRole", d.name())),
        )
        .collect();
    let bindings = m
        .role_bindings
        .iter()
        .map(|(d, b)| (d, &b.role_ref, &b.subjects))
        .chain(
            m.cluster_role_bindings
                .iter()
                .map(|(d, b)| (d, &b.role_ref, &b.subjects)),
        );
    for (d, role_ref, subjects) in bindings {
        assert!(
            role_names.contains(&(role_ref.kind.as_str(), role_ref.name.as_str())),
            "{}: binds {} {}, which deploy/ does not define",
            d.origin(),
            role_ref.kind,
            role_ref.name
        );
        let subjects = subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{}: exactly one subject", d.origin());
        // The release ClusterRole goes to the release identity of the
        // binding's own namespace, never to the broker; everything else to
        // the broker.
        if role_ref.name == RELEASE_ROLE {
            let s = &subjects[0];
            assert_eq!(
                (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
                ("ServiceAccount", RELEASE_ROLE, d.namespace()),
                "{}: the release ClusterRole binds its namespace's release identity",
                d.origin()
            );
        } else {
            assert!(
                binds_broker(&Some(subjects.to_vec())),
                "{}: binds something other than the broker's ServiceAccount",
                d.origin()
            );
        }
    }
}

#[test]
fn own_namespace_role_covers_only_secrets_and_replica_leases() {
    let m = load();
    let own: Vec<_> = m
        .roles
        .iter()
        .filter(|(d, _)| d.namespace() == Some(NS))
        .collect();
    assert!(!own.is_empty(), "a Role for the broker's state in {NS}");
    for (d, role) in own {
        let mut leases = false;
        for rule in role.rules.iter().flatten() {
            let groups = strs(&rule.api_groups);
            let resources = strs(&rule.resources);
            if groups == vec!["coordination.k8s.io"] {
                // Each replica's own Lease, watched by the others.
                assert_eq!(resources, vec!["leases"], "{}", d.origin());
                leases = true;
                continue;
            }
            assert_eq!(groups, vec![""], "{}: core group only", d.origin());
            assert_eq!(
                resources,
                vec!["secrets"],
                "{}: the broker's own state is Secrets, never ConfigMaps",
                d.origin()
            );
            assert!(
                !rule.verbs.iter().any(|v| v == "patch" || v == "watch"),
                "{}: Secrets are written by compare-and-swap and read on demand",
                d.origin()
            );
        }
        assert!(
            leases,
            "{}: replicas need their Leases (coordination.k8s.io)",
            d.origin()
        );
        assert!(
            m.role_bindings
                .iter()
                .any(|(bd, b)| bd.namespace() == Some(NS)
                    && b.role_ref.kind == "Role"
                    && b.role_ref.name == d.name()
                    && binds_broker(&b.subjects)),
            "{}: Role {} is not bound to the broker",
            d.origin(),
            d.name()
        );
    }
    // Nothing grants the broker anything else in its own namespace.
    for (d, b) in &m.role_bindings {
        if d.namespace() == Some(NS) {
            assert_eq!(
                b.role_ref.kind,
                "Role",
                "{}: only the state Role in {NS}",
                d.origin()
            );
        }
    }
}

#[test]
fn subjectaccessreviews_are_create_only() {
    let m = load();
    let mut found = false;
    for (d, role) in &m.cluster_roles {
        for rule in role.rules.iter().flatten() {
            if strs(&rule.resources).contains(&"subjectaccessreviews") {
                found = true;
                assert_eq!(
                    rule.verbs,
                    vec!["create".to_string()],
                    "{}: SubjectAccessReviews: create only",
                    d.origin()
                );
                assert_eq!(strs(&rule.api_groups), vec!["authorization.k8s.io"]);
                assert_eq!(
                    strs(&rule.resources),
                    vec!["subjectaccessreviews"],
                    "{}: the review rule grants nothing else",
                    d.origin()
                );
                assert!(
                    m.cluster_role_bindings
                        .iter()
                        .any(|(_, b)| b.role_ref.name == d.name() && binds_broker(&b.subjects)),
                    "{}: ClusterRole {} is not bound to the broker",
                    d.origin(),
                    d.name()
                );
            }
        }
    }
    assert!(found, "no rule lets the broker create SubjectAccessReviews");
    // No other review or authorization resource is granted anywhere.
    for (origin, rule) in all_rules(&m) {
        if strs(&rule.api_groups).contains(&"authorization.k8s.io") {
            assert_eq!(
                strs(&rule.resources),
                vec!["subjectaccessreviews"],
                "{origin}"
            );
        }
    }
}

#[test]
fn release_role_covers_exactly_the_default_policy_kinds() {
    let m = load();
    let (d, role) = m
        .cluster_roles
        .iter()
        .find(|(d, _)| d.name() == RELEASE_ROLE)
        .expect("the chartbroker-release ClusterRole");
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        for g in strs(&rule.api_groups) {
            for r in strs(&rule.resources) {
                granted
                    .entry((g.to_string(), r.to_string()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    let needed: BTreeSet<(String, String)> = chart_kinds()
        .iter()
        .map(|(a, k)| {
            let (g, r) = resource_of(a, k);
            (g.to_string(), r.to_string())
        })
        .collect();
    // helm: look up, create (POST or apply), change (apply/patch), uninstall.
    for gr in &needed {
        let verbs = granted
            .get(gr)
            .unwrap_or_else(|| panic!("{}: charts create {gr:?}, not granted", d.origin()));
        for v in ["get", "create", "patch", "delete"] {
            assert!(verbs.contains(v), "{}: {gr:?} lacks {v}", d.origin());
        }
    }
    // Release records: helm lists and rewrites its own Secrets.
    let secrets = &granted[&(String::new(), "secrets".to_string())];
    for v in ["list", "update"] {
        assert!(secrets.contains(v), "{}: secrets lack {v}", d.origin());
    }
    // Exactly the kinds the default policy admits: what a chart can get
    // past the policy, the release identity may write, and nothing else.
    let admitted: BTreeSet<(String, String)> = DEFAULT_POLICY_RESOURCES
        .iter()
        .map(|(g, r)| (g.to_string(), r.to_string()))
        .collect();
    let granted_kinds: BTreeSet<(String, String)> = granted.keys().cloned().collect();
    assert_eq!(granted_kinds, admitted, "{}", d.origin());
    for (gr, verbs) in &granted {
        for v in verbs {
            assert!(
                ["get", "list", "watch", "create", "patch", "delete"].contains(&v.as_str())
                    || (v == "update" && gr.1 == "secrets"),
                "{}: grants {v} on {gr:?}",
                d.origin()
            );
        }
    }
    // Least privilege by default: bound per namespace. A cluster-wide binding
    // of it exists only as a clearly optional file.
    assert!(
        m.role_bindings
            .iter()
            .any(|(bd, b)| b.role_ref.kind == "ClusterRole"
                && b.role_ref.name == RELEASE_ROLE
                && bd.namespace() != Some(NS)),
        "no per-namespace RoleBinding example for {RELEASE_ROLE}"
    );
    for (bd, b) in &m.cluster_role_bindings {
        if b.role_ref.name == RELEASE_ROLE {
            assert!(
                bd.file.starts_with("kubernetes/optional/"),
                "{}: the cluster-wide binding must be optional",
                bd.origin()
            );
        }
    }
    // Namespace rights exist only in an optional file.
    for (origin, rule) in all_rules(&m) {
        if strs(&rule.resources).contains(&"namespaces") {
            assert!(
                origin.starts_with("deploy/kubernetes/optional/"),
                "{origin}: namespace rights must be optional"
            );
        }
    }
}

#[test]
fn service_and_network_policy_match_the_pod() {
    let m = load();
    let (_, dep) = the_deployment(&m);
    let pod_labels = dep
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|md| md.labels.clone())
        .unwrap_or_default();
    let c = broker_container(dep);
    let container_ports = container_ports(c);
    let listen_port: i32 = env_value(c, "CHARTBROKER_LISTEN")
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("CHARTBROKER_LISTEN host:port");
    assert!(
        container_ports.iter().any(|(_, p)| *p == listen_port),
        "the container port is the listen port {listen_port}"
    );

    let (sd, svc) = &m.services[0];
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"), "{}", sd.origin());
    let selector = spec.selector.clone().unwrap_or_default();
    assert_selects_pod(
        &selector,
        &pod_labels,
        &format!("{}: selector", sd.origin()),
    );
    let ports = spec.ports.as_deref().unwrap_or_default();
    assert!(!ports.is_empty());
    for p in ports {
        assert_eq!(p.port, 443, "{}: HTTPS on 443", sd.origin());
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        assert!(
            port_matches(&target, &container_ports),
            "{}: targetPort {target:?} is not a container port",
            sd.origin()
        );
    }

    let (nd, np) = &m.network_policies[0];
    let spec = np.spec.as_ref().unwrap();
    let sel = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    assert_selects_pod(&sel, &pod_labels, &format!("{}: podSelector", nd.origin()));
    assert_eq!(
        strs(&spec.policy_types),
        vec!["Ingress", "Egress"],
        "{}: both directions are restricted",
        nd.origin()
    );
    let ingress = spec.ingress.as_deref().unwrap_or_default();
    assert!(!ingress.is_empty(), "{}: ingress rules", nd.origin());
    for rule in ingress {
        assert!(
            !rule.from.as_deref().unwrap_or_default().is_empty(),
            "{}: an ingress rule open to every source",
            nd.origin()
        );
        let ports = rule.ports.as_deref().unwrap_or_default();
        assert!(
            !ports.is_empty(),
            "{}: an ingress rule on every port",
            nd.origin()
        );
        for p in ports {
            let port = p.port.clone().expect("port");
            assert!(
                port_matches(&port, &container_ports),
                "{}: ingress port {port:?} is not the broker's port",
                nd.origin()
            );
        }
    }
    let egress = spec.egress.as_deref().unwrap_or_default();
    let egress_ports: BTreeSet<i32> = egress
        .iter()
        .flat_map(|r| r.ports.iter().flatten())
        .filter_map(|p| match p.port {
            Some(IntOrString::Int(n)) => Some(n),
            _ => None,
        })
        .collect();
    for want in [53, 443, 6443] {
        assert!(
            egress_ports.contains(&want),
            "{}: egress to port {want} (DNS, API server)",
            nd.origin()
        );
    }
    for rule in egress {
        assert!(
            !rule.to.as_deref().unwrap_or_default().is_empty(),
            "{}: an egress rule open to every destination",
            nd.origin()
        );
    }
}
