use super::*;

#[test]
fn every_fixture_has_a_case() {
    let mut dirs: Vec<String> = std::fs::read_dir(hostile_charts())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.chart.to_owned()).collect();
    cases.sort();
    assert_eq!(dirs, cases);
}

#[tokio::test]
async fn hostile_charts_are_refused_before_anything_is_written() {
    let b = hostile_broker().await;
    for c in CASES {
        let instance = format!("i-{}", c.chart);
        let plan = format!("hostile-{}", c.chart);
        let uri = format!("/v2/service_instances/{instance}");
        let r = b.put(&uri, body("svc-hostile", &plan)).await;
        assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
        let description = r.description();
        assert!(
            description.starts_with("policy rejected the chart: "),
            "{}: {description}",
            c.chart
        );
        c.assert_named_in(&instance, description);
    }
    let written = files_under(&b.data.path().join("render"));
    assert!(written.is_empty(), "manifests written: {written:?}");
}

#[tokio::test]
async fn async_provision_fails_with_the_violation() {
    let b = hostile_broker().await;
    let body = body("svc-hostile", "hostile-privileged");
    let r = b.by(None).provision("i-async", body).await;
    let description = r.assert_state("failed");
    assert!(
        description.contains("Deployment/cb-i-async-web: container \"app\" is privileged"),
        "{description}"
    );
    assert!(files_under(&b.data.path().join("render")).is_empty());
}

#[tokio::test]
async fn plan_allowances_let_the_same_charts_through() {
    let b = hostile_broker().await;
    for c in CASES.iter().filter(|c| c.allow.is_some()) {
        let instance = format!("ok-{}", c.chart);
        let plan = format!("allowed-{}", c.chart);
        let uri = format!("/v2/service_instances/{instance}");
        let r = b.put(&uri, body("svc-hostile", &plan)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.chart, r.text);
        assert!(b.release_dir(&instance).join("manifests.yaml").is_file());
    }
}

#[test]
fn catalog_lint_names_bad_policy_entries() {
    let yaml = "services:\n  - id: s\n    name: s\n    description: d\n    bindable: false\n    \
                plans:\n      - id: p\n        name: p\n        description: d\n        \
                chart: {path: privileged, policy: {extra_kinds: [ClusterRole, Gizmo], \
                allow_capabilities: [CAP_NET_BIND_SERVICE, SUPERPOWER]}}\n";
    let err = Catalog::from_yaml(Path::new("c.yaml"), yaml, &hostile_charts()).unwrap_err();
    let text = err.to_string();
    for path in [
        "services[0].plans[0].chart.policy.extra_kinds[0]: `ClusterRole` is cluster-scoped",
        "services[0].plans[0].chart.policy.extra_kinds[1]: unknown kind `Gizmo`",
        "services[0].plans[0].chart.policy.allow_capabilities[1]: unknown capability `SUPERPOWER`",
    ] {
        assert!(text.contains(path), "expected {path:?} in:\n{text}");
    }
    assert_eq!(text.matches("chart.policy").count(), 3, "{text}");
    let typo = yaml.replace("extra_kinds", "extra_kind");
    assert!(Catalog::from_yaml(Path::new("c.yaml"), &typo, &hostile_charts()).is_err());
}

/// Every Pod Security rule, on every workload kind, through a provision:
/// refused with exactly that rule named and nothing written; the plan that
/// loosens that one rule by name gets the same chart through.
#[tokio::test]
async fn pod_security_restricted_on_every_workload_kind() {
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    let kinds = "extra_kinds: [DaemonSet, ReplicationController]";
    let mut plans = String::new();
    // The control: the same pod with nothing broken passes in every kind.
    let mut cases = vec![("none", Value::Null, Value::Null, "containers")];
    cases.extend(pod_cases());
    for (rule, pod, container, list) in &cases {
        for (kind, api) in WORKLOADS {
            let chart = format!("{rule}-{}", kind.to_ascii_lowercase());
            write_pod_chart(&charts.path().join(&chart), kind, api, pod, container, list);
            plans += &format!(
                "      - {{id: {chart}, name: {chart}, description: d, chart: {{path: {chart}, policy: {{{kinds}}}}}}}\n"
            );
            if *kind == "Deployment" && *rule != "none" {
                plans += &format!(
                    "      - {{id: allow-{chart}, name: allow-{chart}, description: d, chart: {{path: {chart}, policy: {{{kinds}, allow: [{rule}]}}}}}}\n"
                );
            }
        }
    }
    std::fs::write(
        catalog.path().join("pods.yaml"),
        format!("services:\n  - id: svc-pods\n    name: pods\n    description: d\n    bindable: false\n    plans:\n{plans}"),
    )
    .unwrap();
    let b = render_broker_on(catalog.path(), charts.path()).await;
    for (n, (rule, _, _, _)) in cases.iter().enumerate() {
        for (kind, _) in WORKLOADS {
            let plan = format!("{rule}-{}", kind.to_ascii_lowercase());
            // Short ids keep the release name readable: cb-<instance>.
            let instance = format!("p{n}-{}", kind.to_ascii_lowercase());
            let r = b
                .put(
                    &format!("/v2/service_instances/{instance}"),
                    body("svc-pods", &plan),
                )
                .await;
            if *rule == "none" {
                assert_eq!(r.status, StatusCode::CREATED, "{plan}: {}", r.text);
                continue;
            }
            assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
            let description = r.json["description"].as_str().unwrap();
            assert!(
                description.starts_with(&format!(
                    "policy rejected the chart: {kind}/cb-{instance}-w: "
                )),
                "{plan}: {description}"
            );
            assert_eq!(rules_named(description), [*rule], "{plan}: {description}");
            assert!(!b.release_dir(&instance).exists(), "{plan} wrote manifests");
            if *kind == "Deployment" {
                let r = b
                    .put(
                        &format!("/v2/service_instances/ok-{instance}"),
                        body("svc-pods", &format!("allow-{plan}")),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "allow-{plan}: {}", r.text);
            }
        }
    }
}

/// Every plan of the repository's catalog provisions through the default
/// policy, with the values the catalog gives its chart.
#[tokio::test]
async fn repository_catalog_passes_the_default_policy() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    let catalog = Catalog::load(&cfg.catalog_dir, &cfg.charts_dir).unwrap();
    let b = TestBroker::with_config(data, cfg).await;
    let mut provisioned = 0;
    for service in catalog.services() {
        for plan in service.plans.iter().filter(|p| p.chart().is_some()) {
            assert_eq!(plan.chart().unwrap().policy, Policy::default());
            let instance = format!("ex-{}-{}", service.name, plan.name);
            let mut request = body(&service.id, &plan.id);
            // A plan that uses another service gets an instance provisioned
            // earlier in this loop (catalog files load in name order).
            for dep in plan.chart().unwrap().uses.values() {
                let used = catalog
                    .services()
                    .iter()
                    .find(|s| s.name == dep.service)
                    .expect("lint checked the service exists");
                request["parameters"][&dep.parameter] =
                    json!(format!("ex-{}-{}", used.name, used.plans[0].name));
            }
            let r = b
                .put(&format!("/v2/service_instances/{instance}"), request)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{instance}: {}", r.text);
            provisioned += 1;
        }
    }
    assert!(provisioned >= 6, "only {provisioned} chart plans");
}

/// Every chart under `charts/` (including those no plan uses yet) passes
/// the default policy with its own default values.
#[tokio::test]
async fn repository_charts_pass_with_default_values() {
    let home = tempfile::tempdir().unwrap();
    let helm = Helm::new(helm_bin(), home.path(), Duration::from_secs(60));
    let mut charts: Vec<PathBuf> = std::fs::read_dir(repo().join("charts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    charts.sort();
    assert!(charts.len() >= 4, "{charts:?}");
    for chart in charts {
        let manifests = helm
            .template(
                "ex-1",
                &chart,
                "apps",
                &json!({}),
                chartbroker::helm::DEFAULT_MAX_MANIFEST_BYTES,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", chart.display()));
        assert!(manifests.contains("kind:"), "{manifests}");
        if let Err(v) = policy::check(&manifests, "apps", &Policy::default()) {
            panic!("{}: {v}", chart.display());
        }
    }
}

/// A symlink in a chart folder would let the chart author render any file
/// the broker can read (here a stand-in for its store key) into a
/// manifest. It is refused at lint, at start (the catalog doesn't load),
/// and at every use if it appears while the broker runs, naming the file.
#[tokio::test]
async fn symlinked_chart_files_are_refused() {
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    leaking_chart(charts.path(), catalog.path());
    let data = tempfile::tempdir().unwrap();
    let secret = data.path().join("credentials.yaml");
    std::fs::write(&secret, "TOP-SECRET-KEY-MATERIAL").unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = charts.path().to_path_buf();
    let b = TestBroker::with_config(data, cfg).await;

    // The link appears after start: the next provision is refused.
    let key = charts.path().join("leak/files/key");
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&secret, &key).unwrap();
    let r = b
        .put("/v2/service_instances/leak-1", body("svc-leak", "leak"))
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let description = r.json["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("{}: is a symbolic link", key.display())),
        "{description}"
    );
    assert!(!r.text.contains("TOP-SECRET"), "{}", r.text);
    let written = files_under(&b.data.path().join("render"));
    assert!(written.is_empty(), "manifests written: {written:?}");

    // At start and at lint, the catalog doesn't load.
    let err = Catalog::load(catalog.path(), charts.path()).unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "chart.path: {}: is a symbolic link",
            key.display()
        )),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["catalog", "lint"])
        .arg(catalog.path())
        .arg("--charts")
        .arg(charts.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("leak/files/key: is a symbolic link"),
        "{stderr}"
    );

    // A chart folder that is a link elsewhere is refused the same way.
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "harmless").unwrap();
    assert!(Catalog::load(catalog.path(), charts.path()).is_ok());
    std::fs::rename(charts.path().join("leak"), charts.path().join("real")).unwrap();
    std::os::unix::fs::symlink(charts.path().join("real"), charts.path().join("leak")).unwrap();
    let err = Catalog::load(catalog.path(), charts.path()).unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

/// `catalog lint` shows what each plan's policy allows, and refuses a plan
/// that tries to loosen a rule no plan may loosen.
#[test]
fn catalog_lint_shows_each_plans_policy() {
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let lint = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
            .args(["catalog", "lint"])
            .arg(dir)
            .arg("--charts")
            .arg(hostile_charts())
            .output()
            .unwrap()
    };
    let out = lint(catalog.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "  hostile/hostile-privileged: default policy (Pod Security restricted)\n",
        "  hostile/allowed-privileged: allows rules off: privileged-container, privilege-escalation, unmasked-proc-mount\n",
        "  hostile/allowed-daemonset: allows kinds: also DaemonSet\n",
        "  hostile/allowed-capabilities-add: allows capabilities: also SYS_ADMIN\n",
        "  hostile/allowed-node-port: allows rules off: service-type\n",
        "  hostile/allowed-ingress-any-host: allows ingress hosts: victim.example.com\n",
        "  hostile/allowed-role-beyond-edit: allows role resources: also rolebindings.rbac.authorization.k8s.io\n",
        "  hostile/allowed-ingress-snippet: allows ingress hosts: *.apps.example.com; \
         ingress annotations: also nginx.ingress.kubernetes.io/configuration-snippet\n",
    ] {
        assert!(stdout.contains(line), "expected {line:?} in:\n{stdout}");
    }
    // The rules themselves, each by name.
    let listed = |prefix: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"));
        line.split(", ").map(str::to_owned).collect()
    };
    let loosenable = listed("policy rules a plan may loosen (chart.policy.allow): ");
    let never = listed("policy rules no plan may loosen: ");
    for rule in policy::RULES {
        let list = if rule.loosenable { &loosenable } else { &never };
        assert!(
            list.iter().any(|r| r == rule.name),
            "{} not listed",
            rule.name
        );
    }
    std::fs::write(
        catalog.path().join("hostile.yaml"),
        "services:\n  - {id: s, name: s, description: d, bindable: false, plans: [{id: p, name: p, description: d, chart: {path: wildcard-role, policy: {allow: [wildcard-rbac, seccomp, everything]}}}]}\n",
    )
    .unwrap();
    let out = lint(catalog.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for named in [
        "chart.policy.allow[0]: rule `wildcard-rbac` can't be loosened",
        "chart.policy.allow[2]: unknown rule `everything`",
    ] {
        assert!(stderr.contains(named), "{stderr}");
    }
    assert!(!stderr.contains("allow[1]"), "{stderr}");
}
