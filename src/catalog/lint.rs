//! The rules that make a catalog invalid.
//!
//! Every rule reports into one [`Lint`] and never stops the walk, so an admin
//! fixes a catalog in one round trip instead of one error per restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::LintIssue;
use crate::template;
mod variables;
use variables::*;
mod charts;

/// OSB's only permissions for `requires`.
const REQUIRES: &[&str] = &["syslog_drain", "route_forwarding", "volume_mount"];
/// `instance.*` fields the broker puts into template data.
const INSTANCE_FIELDS: &[&str] = &[
    "id",
    "service_id",
    "plan_id",
    "service_name",
    "plan_name",
    "release",
    "namespace",
];
/// `binding.*` fields other than `parameters`.
const BINDING_FIELDS: &[&str] = &["id", "app_guid"];
/// Allowed generated-secret lengths: shorter is guessable, longer is silly.
pub(super) const SECRET_LENGTHS: std::ops::RangeInclusive<usize> = 8..=256;

/// What each chart plan's policy allows beyond the default, one line per
/// plan (`service/plan: ...`), for `catalog lint` to show: an allowance is
/// a decision someone should see, not only a key in a YAML file.
pub fn policy_report(catalog: &super::Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for service in catalog.services() {
        for plan in &service.plans {
            let Some(chart) = plan.chart() else { continue };
            let allowed = chart.policy.allowances();
            let what = if allowed.is_empty() {
                "default policy (Pod Security restricted)".to_owned()
            } else {
                format!("allows {}", allowed.join("; "))
            };
            out.push(format!("{}/{}: {what}", service.name, plan.name));
        }
    }
    out.extend(crate::policy::rules_summary());
    out
}

/// Which tree a template lives in; `binding.*` exists only in credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tree {
    Values,
    Credentials,
}

/// What templates of one plan may reference.
pub(super) struct Scope<'a> {
    pub(crate) secrets: &'a BTreeMap<String, super::SecretSpec>,
    /// Declared `chart.lookups` (credentials only).
    pub(crate) lookups: BTreeSet<String>,
    /// Declared `chart.uses`.
    pub(crate) uses: BTreeSet<String>,
    /// `None`: the instance schemas list no properties, any name goes.
    pub(crate) parameters: Option<BTreeSet<String>>,
    pub(crate) binding_parameters: Option<BTreeSet<String>>,
    /// `chart.binding_users` is set: credentials may use `user.*`.
    pub(crate) binding_user: bool,
}

/// Collects issues for the file being read, plus what cross-file rules need.
#[derive(Default)]
pub(super) struct Lint {
    pub(crate) issues: Vec<LintIssue>,
    file: PathBuf,
    /// First definition of each unique thing, as `file: path`.
    seen: HashMap<(String, &'static str, String), String>,
    upstream_refs: Vec<(PathBuf, String, String)>,
    upstream_names: BTreeSet<String>,
    service_refs: Vec<(PathBuf, String, String)>,
    service_names: BTreeSet<String>,
}

/// `prefix` + a path relative to it (which may be empty or start with `[`).
pub(super) fn join(prefix: &str, rel: &str) -> String {
    match rel.chars().next() {
        None => prefix.to_owned(),
        Some('[') => format!("{prefix}{rel}"),
        Some(_) if prefix.is_empty() => rel.to_owned(),
        Some(_) => format!("{prefix}.{rel}"),
    }
}

impl Lint {
    /// Later issues are attributed to `file`.
    pub(crate) fn set_file(&mut self, file: &Path) {
        self.file = file.to_path_buf();
    }

    /// Records a problem at `path` in the current file.
    pub(crate) fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(LintIssue {
            file: self.file.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reports `value` if another `what` in the same `scope` (a path in the
    /// current file) already used it; `scope` is empty for catalog-wide
    /// uniqueness.
    pub(crate) fn unique(&mut self, scope: &str, what: &'static str, value: &str, path: &str) {
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!("{}: {scope}", self.file.display())
        };
        let key = (scope, what, value.to_owned());
        if let Some(first) = self.seen.get(&key) {
            let msg = format!("duplicate {what} `{value}` (first defined at {first})");
            self.issue(path, msg);
        } else {
            self.seen
                .insert(key, format!("{}: {path}", self.file.display()));
        }
    }

    /// OSB requires ids, names and descriptions to be non-empty strings.
    pub(crate) fn non_empty(&mut self, path: &str, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.issue(join(path, field), "must be a non-empty string");
        }
    }

    /// Names are typed on command lines; whitespace breaks that.
    pub(crate) fn name(&mut self, path: &str, value: &str) {
        self.non_empty(path, "name", value);
        if value.chars().any(char::is_whitespace) {
            self.issue(
                join(path, "name"),
                format!("`{value}` must not contain spaces"),
            );
        }
    }

    /// `requires` holds only the permissions OSB defines.
    pub(crate) fn requires(&mut self, path: &str, requires: &[String]) {
        for (i, r) in requires.iter().enumerate() {
            if !REQUIRES.contains(&r.as_str()) {
                let msg = format!(
                    "unknown permission `{r}`; expected one of {}",
                    REQUIRES.join(", ")
                );
                self.issue(format!("{path}.requires[{i}]"), msg);
            }
        }
    }

    /// OSB passes `metadata`/`dashboard_client` as objects.
    pub(crate) fn object(&mut self, path: &str, field: &str, value: Option<&Value>) {
        if value.is_some_and(|v| !v.is_object()) {
            self.issue(join(path, field), "must be a mapping");
        }
    }

    /// `maintenance_info.version` must be semver 2.0 (OSB).
    pub(crate) fn maintenance_version(&mut self, path: &str, version: &str) {
        let path = join(path, "maintenance_info.version");
        if version.trim().is_empty() {
            self.issue(path, "must be a non-empty semantic version");
        } else if !is_semver(version) {
            self.issue(
                path,
                format!("`{version}` is not a semantic version (like 1.2.3)"),
            );
        }
    }

    /// `binding.type` and `binding.provider` become a Secret `type`
    /// (`servicebinding.io/<type>`) and files a workload reads by name, so
    /// both keep to the spec's entry-name alphabet (lowercase letters,
    /// digits, `-`, `.`), which also keeps them valid in a Secret type.
    pub(crate) fn binding_type(&mut self, path: &str, b: &super::BindingType) {
        for (field, value) in [("type", &b.kind), ("provider", &b.provider)] {
            let ok = (1..=63).contains(&value.len())
                && value.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
                })
                && value.as_bytes()[0].is_ascii_alphanumeric()
                && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric();
            if !ok {
                self.issue(
                    join(path, field),
                    format!(
                        "`{value}` must be 1 to 63 lowercase letters, digits, `-` or `.`, \
                         starting and ending with a letter or digit (Service Binding for Kubernetes)"
                    ),
                );
            }
        }
    }

    /// A plan's credentials must not hold the `type`/`provider` entries the
    /// service's `binding:` writes into the Secret: one would silently
    /// replace the other.
    pub(crate) fn binding_entries(
        &mut self,
        plan_path: &str,
        credentials: &Value,
        b: &super::BindingType,
    ) {
        let Some(map) = credentials.as_object() else {
            return;
        };
        for key in ["type", "provider"] {
            if map.contains_key(key) {
                self.issue(
                    join(plan_path, &format!("chart.credentials.{key}")),
                    format!(
                        "the binding Secret's `{key}` entry comes from the service's `binding:` \
                         (`{}`); rename this credential",
                        if key == "type" { &b.kind } else { &b.provider }
                    ),
                );
            }
        }
    }

    /// Remembers an `upstream.broker` reference, checked in [`Lint::finish`]
    /// because the upstream may be declared in another file.
    pub(crate) fn upstream_ref(&mut self, path: String, broker: &str) {
        self.upstream_refs
            .push((self.file.clone(), path, broker.to_owned()));
    }

    /// Remembers a `chart.uses.*.service` reference, checked in
    /// [`Lint::finish`] because the service may be declared in another file.
    pub(crate) fn service_ref(&mut self, path: &str, service: &str) {
        self.service_refs
            .push((self.file.clone(), path.to_owned(), service.to_owned()));
    }

    /// Registers a declared service name.
    pub(crate) fn service_name(&mut self, name: &str) {
        self.service_names.insert(name.to_owned());
    }

    /// Registers a declared upstream broker name.
    pub(crate) fn upstream_name(&mut self, path: &str, name: &str) {
        self.unique("", "upstream name", name, path);
        self.upstream_names.insert(name.to_owned());
    }

    /// Secret names must be usable as `{{secrets.<name>}}`; lengths bounded.
    pub(crate) fn secrets(&mut self, path: &str, secrets: &BTreeMap<String, super::SecretSpec>) {
        for (name, spec) in secrets {
            let at = join(path, &template::join_key("chart.secrets", name));
            let ident = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if name.is_empty() || !ident {
                self.issue(
                    &at,
                    "secret names may use only letters, digits, `_` and `-`",
                );
            }
            if !SECRET_LENGTHS.contains(&spec.length) {
                let (lo, hi) = (SECRET_LENGTHS.start(), SECRET_LENGTHS.end());
                self.issue(
                    join(&at, "length"),
                    format!("{} is out of range {lo}..={hi}", spec.length),
                );
            }
        }
    }

    /// `chart.binding_users`: its own rules, templates over the instance,
    /// and credentials that hand out the binding's user (else creating one
    /// would be pointless).
    pub(crate) fn binding_users(
        &mut self,
        plan: &str,
        users: &super::BindingUsers,
        bindable: bool,
        credentials: &Value,
        scope: &Scope<'_>,
    ) {
        let at = join(plan, "chart.binding_users");
        if !bindable {
            self.issue(
                &at,
                "the plan is not bindable, so it has no bindings to create users for",
            );
        }
        for (rel, message) in users.problems() {
            self.issue(join(&at, rel), message);
        }
        for (rel, tree) in users.templates() {
            self.templates(&join(&at, &rel), &tree, Tree::Values, scope);
        }
        let used: BTreeSet<String> = template::string_leaves(credentials)
            .into_iter()
            .filter_map(|(_, source)| template::variables(source).ok())
            .flatten()
            .collect();
        for field in ["user.username", "user.password"] {
            if !used.contains(field) {
                self.issue(
                    join(plan, "chart.credentials"),
                    format!("chart.binding_users is set but no credential uses `{field}`: bindings would not get their own user"),
                );
            }
        }
    }

    /// Every string leaf of `tree` must compile and use known variables.
    pub(crate) fn templates(&mut self, path: &str, tree: &Value, which: Tree, scope: &Scope<'_>) {
        for (leaf, source) in template::string_leaves(tree) {
            if !source.contains("{{") {
                continue;
            }
            let at = join(path, &leaf);
            match template::variables(source) {
                Err(e) => self.issue(at, e.message),
                Ok(vars) => {
                    for var in vars {
                        if let Err(mut msg) = check_variable(&var, which, scope) {
                            if let Some(near) = suggestion(&var, which, scope) {
                                msg.push_str(&format!(" — did you mean `{near}`?"));
                            }
                            self.issue(&at, msg);
                        }
                    }
                }
            }
        }
    }

    /// Runs the cross-file rules and returns every issue.
    pub(crate) fn finish(mut self) -> Vec<LintIssue> {
        for (file, path, service) in std::mem::take(&mut self.service_refs) {
            if !self.service_names.contains(&service) {
                self.file = file;
                self.issue(path, format!("no service named `{service}` in the catalog"));
            }
        }
        for (file, path, broker) in std::mem::take(&mut self.upstream_refs) {
            if !self.upstream_names.contains(&broker) {
                self.file = file;
                self.issue(
                    path,
                    format!("no upstream broker named `{broker}` under upstreams:"),
                );
            }
        }
        self.issues
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn semver() {
        for ok in [
            "1.0.0",
            "0.0.1",
            "2.1.1+abcdef",
            "1.0.0-rc.1",
            "1.0.0-alpha-1+001",
            "10.20.30",
        ] {
            assert!(super::is_semver(ok), "{ok}");
        }
        for bad in [
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "v1.0.0",
            "1.0.0+",
            "1..0",
            "1.0.0-a..b",
        ] {
            assert!(!super::is_semver(bad), "{bad}");
        }
    }
}
