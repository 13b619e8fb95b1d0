//! Remote chart sources (repository, OCI, digest, signature): what loads
//! and what each rule refuses.

use serde_json::json;

use super::*;

/// The plan's chart replaced by `source` (a remote source).
fn with_source(source: serde_json::Value) -> serde_json::Value {
    let mut c = mk_catalog();
    let chart = c["services"][0]["plans"][0]["chart"]
        .as_object_mut()
        .unwrap();
    chart.remove("path");
    for (k, v) in source.as_object().unwrap() {
        chart.insert(k.clone(), v.clone());
    }
    c
}

#[test]
fn remote_chart_sources_load() {
    use crate::catalog::ChartSource;
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.catalog.join("keys")).unwrap();
    std::fs::write(fx.catalog.join("keys/pubring.gpg"), b"keys").unwrap();
    std::fs::write(fx.catalog.join("ca.pem"), b"ca").unwrap();
    let digest = format!("sha256:{}", "AB".repeat(32));
    let mut c = with_source(json!({
        "repository": "https://charts.example.com/stable/",
        "name": "mysql",
        "version": "1.2.3",
        "digest": digest,
        "verify": true,
        "keyring": "keys/pubring.gpg",
        "ca_file": "ca.pem",
        "auth": {"basic": {"username_env": "REPO_USER", "password_file": "creds/password"}},
    }));
    let mut oci = mk_chart_plan("plan-oci", "oci");
    oci["chart"] = json!({
        "oci": "oci://registry.example.com:5000/charts/mysql",
        "version": "1.2.3-rc.1",
        "credentials": {"x": 1},
    });
    c["services"][0]["plans"].as_array_mut().unwrap().push(oci);
    fx.write("c.yaml", &c.to_string());
    let catalog = fx.load();
    let plans = &catalog.services()[0].plans;
    let ChartSource::Repository { url, name, remote } = &plans[0].chart().unwrap().source else {
        panic!("a repository source");
    };
    assert_eq!(url, "https://charts.example.com/stable");
    assert_eq!(name, "mysql");
    assert_eq!(remote.version, "1.2.3");
    assert_eq!(remote.digest.as_deref(), Some(&*digest.to_lowercase()));
    let keyring = remote.keyring.as_ref().unwrap();
    assert!(keyring.is_absolute() && keyring.ends_with("keys/pubring.gpg"));
    assert!(remote.ca_file.as_ref().unwrap().ends_with("ca.pem"));
    // Secrets are named, not read: the file need not exist to load.
    let Some(crate::catalog::ChartAuth::Basic { username, password }) = &remote.auth else {
        panic!("basic auth: {:?}", remote.auth);
    };
    assert_eq!(
        username,
        &crate::credentials::Source::Env("REPO_USER".into())
    );
    let crate::credentials::Source::File(p) = password else {
        panic!("{password:?}");
    };
    assert!(p.is_absolute() && p.ends_with("creds/password"), "{p:?}");
    let ChartSource::Oci { reference, remote } = &plans[2].chart().unwrap().source else {
        panic!("an oci source");
    };
    assert_eq!(reference, "oci://registry.example.com:5000/charts/mysql");
    assert_eq!(
        (remote.keyring.as_ref(), remote.digest.as_ref()),
        (None, None)
    );
}

#[test]
fn remote_chart_rules() {
    let repo = |extra: serde_json::Value| {
        let mut s = json!({"repository": "https://charts.example.com", "name": "mysql", "version": "1.2.3"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        with_source(s)
    };
    let chart = format!("{PLAN0}.chart");
    let at = |f: &str| format!("{chart}.{f}");
    assert_eq!(lint_value(&repo(json!({}))), Vec::<String>::new());
    let cases = [
        (
            repo(json!({"repository": "http://charts.example.com"})),
            at("repository"),
            "plain http is refused",
        ),
        (
            repo(json!({"repository": "ftp://charts.example.com"})),
            at("repository"),
            "use https",
        ),
        (
            repo(json!({"repository": "https://u:p@charts.example.com"})),
            at("repository"),
            "credentials in the URL",
        ),
        (
            repo(json!({"repository": "not a url"})),
            at("repository"),
            "not a URL",
        ),
        (
            repo(json!({"name": "--set=x"})),
            at("name"),
            "not a chart name",
        ),
        (
            repo(json!({"version": "^1.2.0"})),
            at("version"),
            "not an exact version",
        ),
        (
            repo(json!({"version": "1.2"})),
            at("version"),
            "not an exact version",
        ),
        (
            repo(json!({"version": null})),
            at("version"),
            "needs an exact `version`",
        ),
        (
            repo(json!({"digest": "md5:abc"})),
            at("digest"),
            "sha256:<64 hex digits>",
        ),
        (
            repo(json!({"digest": "sha256:abc"})),
            at("digest"),
            "sha256:<64 hex digits>",
        ),
        (
            repo(json!({"verify": true})),
            at("keyring"),
            "needs a `keyring`",
        ),
        (
            repo(json!({"verify": true, "keyring": "missing.gpg"})),
            at("keyring"),
            "does not exist",
        ),
        (
            repo(json!({"keyring": "missing.gpg"})),
            at("keyring"),
            "only used with `verify: true`",
        ),
        (
            repo(json!({"ca_file": "missing.pem"})),
            at("ca_file"),
            "does not exist",
        ),
        (
            repo(json!({"path": "mysql"})),
            chart.clone(),
            "exactly one source",
        ),
        (
            repo(json!({"oci": "oci://r.example.com/c/mysql"})),
            chart.clone(),
            "exactly one source",
        ),
        (
            with_source(json!({"name": "mysql", "version": "1.2.3"})),
            chart.clone(),
            "needs one source",
        ),
        (
            with_source(json!({"repository": "https://c.example.com", "version": "1.2.3"})),
            at("name"),
            "needs the chart's `name`",
        ),
        (
            with_source(json!({"oci": "https://r.example.com/c/mysql", "version": "1.2.3"})),
            at("oci"),
            "must start with oci://",
        ),
        (
            with_source(json!({"oci": "oci://r.example.com/c/mysql:1.2.3", "version": "1.2.3"})),
            at("oci"),
            "no tag or digest",
        ),
        (
            with_source(json!({"oci": "oci://r.example.com", "version": "1.2.3"})),
            at("oci"),
            "needs a repository path",
        ),
        (
            with_source(
                json!({"oci": "oci://r.example.com/c/mysql", "name": "x", "version": "1.2.3"}),
            ),
            at("name"),
            "`name` is for `repository`",
        ),
        (
            with_source(json!({"path": "mysql", "version": "1.2.3"})),
            at("version"),
            "applies only to remote charts",
        ),
        (
            with_source(json!({"path": "mysql", "auth": {"docker_config": "c.json"}})),
            at("auth"),
            "applies only to remote charts",
        ),
        (
            repo(json!({"auth": {"bearer": {}}})),
            at("auth"),
            "bearer: one of token_env, token_file is required",
        ),
        (
            repo(json!({"auth": {"docker_config": "c.json"}})),
            at("auth"),
            "docker_config applies to `oci`",
        ),
        (
            with_source(
                json!({"oci": "oci://r.example.com/c/mysql", "version": "1.2.3",
                "auth": {"bearer": {"token_env": "T"}}}),
            ),
            at("auth"),
            "bearer applies to `repository`",
        ),
    ];
    for (catalog, path, needle) in cases {
        assert_one_issue(&catalog, &path, needle);
    }
}
