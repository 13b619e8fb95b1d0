//! A plan's `chart:` section: its values, limits and lookups, and where the
//! chart comes from (a folder, a Helm repository or an OCI registry).

use super::*;

pub(super) fn build_chart(
    mut doc: ChartDoc,
    path: &str,
    bindable: bool,
    schemas: Option<&Value>,
    lint: &mut Lint,
    charts_dir: &Path,
) -> ChartPlan {
    let source = build_source(&doc, path, lint, charts_dir);
    let values = mapping_or_empty(doc.values.take(), &join(path, "chart.values"), lint);
    let credentials = mapping_or_empty(
        doc.credentials.take(),
        &join(path, "chart.credentials"),
        lint,
    );
    if bindable && credentials.as_object().is_some_and(|c| c.is_empty()) {
        lint.issue(
            join(path, "chart.credentials"),
            "the plan is bindable, so it needs credentials to return on bind",
        );
    }
    lint.secrets(path, &doc.secrets);
    for (rel, message) in doc.policy.problems() {
        lint.issue(join(path, &join("chart.policy", &rel)), message);
    }
    let scope = Scope {
        secrets: &doc.secrets,
        parameters: schema::property_names(
            schemas,
            &[SchemaKind::InstanceCreate, SchemaKind::InstanceUpdate],
        ),
        binding_parameters: schema::property_names(schemas, &[SchemaKind::BindingCreate]),
        lookups: doc.lookups.keys().cloned().collect(),
        uses: doc.uses.keys().cloned().collect(),
        binding_user: doc.binding_users.is_some(),
    };
    if let Some(users) = &doc.binding_users {
        lint.binding_users(path, users, bindable, &credentials, &scope);
    }
    lint.templates(&join(path, "chart.values"), &values, Tree::Values, &scope);
    lint.templates(
        &join(path, "chart.credentials"),
        &credentials,
        Tree::Credentials,
        &scope,
    );
    let names_scope = Scope {
        lookups: Default::default(),
        uses: Default::default(),
        binding_user: false,
        ..scope
    };
    lint_references(&doc, path, &names_scope, lint);
    ChartPlan {
        source,
        namespace: doc.namespace,
        values,
        secrets: doc.secrets,
        credentials,
        policy: doc.policy,
        lookups: doc.lookups,
        uses: doc.uses,
        binding_namespaces: doc.binding_namespaces,
        wait: doc.wait,
        delete_pvcs: doc.delete_pvcs,
        limits: doc.limits,
        binding_users: doc.binding_users,
    }
}

/// The chart's source: a folder under `charts_dir`, or a remote chart
/// whose files (`keyring`, `ca_file`) resolve against the catalog file's
/// directory.
pub(super) fn build_source(
    doc: &ChartDoc,
    path: &str,
    lint: &mut Lint,
    charts_dir: &Path,
) -> ChartSource {
    let at = |field: &str| join(path, &format!("chart.{field}"));
    let local = |rel: &Path, lint: &mut Lint| {
        let joined = charts_dir.join(rel);
        lint.chart_dir(path, rel, &joined);
        ChartSource::Local(absolute(&joined))
    };
    if !one_source(doc, path, lint) {
        return ChartSource::Local(PathBuf::new());
    }
    if let Some(rel) = &doc.path {
        let remote_only = [
            ("name", doc.name.is_some()),
            ("version", doc.version.is_some()),
            ("digest", doc.digest.is_some()),
            ("verify", doc.verify),
            ("keyring", doc.keyring.is_some()),
            ("ca_file", doc.ca_file.is_some()),
            ("auth", doc.auth.is_some()),
        ];
        for (field, set) in remote_only {
            if set {
                lint.issue(
                    at(field),
                    "applies only to remote charts (`repository` or `oci`), not to `path`",
                );
            }
        }
        return local(rel, lint);
    }
    let remote = remote_chart(doc, path, lint);
    if let Some(url) = &doc.repository {
        lint.repository_url(&at("repository"), url);
        match &doc.name {
            Some(name) => lint.chart_name(&at("name"), name),
            None => lint.issue(at("name"), "a `repository` chart needs the chart's `name`"),
        }
        ChartSource::Repository {
            url: url.trim_end_matches('/').to_string(),
            name: doc.name.clone().unwrap_or_default(),
            remote,
        }
    } else {
        let reference = doc.oci.clone().unwrap_or_default();
        if doc.name.is_some() {
            lint.issue(
                at("name"),
                "an `oci` reference already names the chart; `name` is for `repository`",
            );
        }
        lint.oci_reference(&at("oci"), &reference);
        ChartSource::Oci { reference, remote }
    }
}

/// The chart's lookups and `uses:` name what the plan declares; binding
/// namespaces are valid names.
fn lint_references(doc: &ChartDoc, path: &str, names_scope: &Scope<'_>, lint: &mut Lint) {
    for (name, lookup) in &doc.lookups {
        let at = join(path, &format!("chart.lookups.{name}"));
        match lookup.target() {
            Ok((_, template)) => {
                let tree = Value::String(template.to_string());
                lint.templates(&at, &tree, Tree::Values, names_scope);
            }
            Err(msg) => lint.issue(&at, msg),
        }
    }
    for (name, dep) in &doc.uses {
        let at = join(path, &format!("chart.uses.{name}"));
        if let Some(props) = &names_scope.parameters {
            if !props.contains(&dep.parameter) {
                lint.issue(
                    &at,
                    format!(
                        "parameter `{}` is not in the plan's instance schema properties",
                        dep.parameter
                    ),
                );
            }
        }
        lint.service_ref(&at, &dep.service);
        for ns in &dep.namespaces {
            if let Err(e) = glob::Pattern::new(ns) {
                lint.issue(
                    join(&at, "namespaces"),
                    format!("{ns:?} is not a valid namespace pattern: {e}"),
                );
            }
        }
    }
    for ns in &doc.binding_namespaces {
        if !crate::names::is_dns_label(ns, 63) {
            lint.issue(
                join(path, "chart.binding_namespaces"),
                format!("`{ns}` is not a valid namespace name"),
            );
        }
    }
}

/// Whether the chart names exactly one source (noting it if not).
fn one_source(doc: &ChartDoc, path: &str, lint: &mut Lint) -> bool {
    let kinds = [
        doc.path.is_some(),
        doc.repository.is_some(),
        doc.oci.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        1 => true,
        0 => {
            lint.issue(
                join(path, "chart"),
                "a chart needs one source: `path`, `repository` (with `name`) or `oci`",
            );
            false
        }
        _ => {
            lint.issue(
                join(path, "chart"),
                "a chart has exactly one source: `path`, `repository` (with `name`) or `oci`",
            );
            false
        }
    }
}

/// A remote chart's pin: version, digest, keyring, CA file and auth, the
/// files resolved against the catalog file's directory.
fn remote_chart(doc: &ChartDoc, path: &str, lint: &mut Lint) -> RemoteChart {
    let at = |field: &str| join(path, &format!("chart.{field}"));
    let base = lint.file_dir();
    let file = |rel: &PathBuf| absolute(&base.join(rel));
    let keyring = doc.keyring.as_ref().map(file);
    let ca_file = doc.ca_file.as_ref().map(file);
    match (&keyring, doc.verify) {
        (None, true) => lint.issue(at("keyring"), "`verify: true` needs a `keyring`"),
        (Some(_), false) => lint.issue(
            at("keyring"),
            "a keyring is only used with `verify: true`; set it or remove the keyring",
        ),
        _ => {}
    }
    let used_keyring = keyring.as_ref().filter(|_| doc.verify);
    for (field, file) in [("keyring", used_keyring), ("ca_file", ca_file.as_ref())] {
        if let Some(f) = file {
            if !f.is_file() {
                lint.issue(at(field), format!("file {} does not exist", f.display()));
            }
        }
    }
    let version = doc.version.clone().unwrap_or_default();
    lint.chart_version(&at("version"), doc.version.as_deref());
    let digest = doc.digest.as_ref().map(|d| d.to_ascii_lowercase());
    if let Some(d) = &digest {
        lint.chart_digest(&at("digest"), d);
    }
    // Only checked here: the files or variables holding the secrets are
    // read at each fetch (a catalog is linted where they don't exist).
    let auth = doc.auth.as_ref().and_then(|a| {
        match crate::catalog::ChartAuth::parse(a, &base, doc.oci.is_some()) {
            Ok(auth) => Some(auth),
            Err(problems) => {
                for p in problems {
                    lint.issue(at("auth"), p);
                }
                None
            }
        }
    });
    RemoteChart {
        version,
        digest,
        keyring: keyring.filter(|_| doc.verify),
        ca_file,
        auth,
    }
}

/// `p` made absolute (canonical where it exists).
fn absolute(p: &Path) -> PathBuf {
    p.canonicalize()
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// Helm values files and OSB credentials are both mappings; absent means
/// empty.
pub(super) fn mapping_or_empty(tree: Option<Value>, path: &str, lint: &mut Lint) -> Value {
    match tree {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            lint.issue(path, "must be a mapping");
            Value::Object(Default::default())
        }
    }
}
