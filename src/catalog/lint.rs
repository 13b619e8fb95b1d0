//! The rules that make a catalog invalid.
//!
//! Every rule reports into one [`Lint`] and never stops the walk, so an admin
//! fixes a catalog in one round trip instead of one error per restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::LintIssue;
use crate::template;

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

    /// Checks a chart folder: inside the charts directory, present, a chart.
    pub(crate) fn chart_dir(&mut self, path: &str, rel: &Path, resolved: &Path) {
        let path = join(path, "chart.path");
        let relative = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if rel.as_os_str().is_empty() || !relative {
            let msg = format!(
                "`{}` must be a folder name under the charts directory",
                rel.display()
            );
            self.issue(path, msg);
        } else if !resolved.is_dir() {
            self.issue(
                path,
                format!("chart folder {} does not exist", resolved.display()),
            );
        } else if let Err(e) = super::chart_files::check_folder(resolved) {
            self.issue(path, format!("{}: {}", e.file, e.problem));
        } else if !resolved.join("Chart.yaml").is_file() {
            self.issue(path, format!("{} has no Chart.yaml", resolved.display()));
        }
    }

    /// The directory of the file being read: relative paths in it resolve
    /// against it.
    pub(crate) fn file_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A remote chart's version: present and exact, so a plan never changes
    /// under the platform.
    pub(crate) fn chart_version(&mut self, path: &str, version: Option<&str>) {
        match version {
            None => self.issue(path, "a remote chart needs an exact `version` (like 1.2.3)"),
            Some(v) if !is_semver(v) => self.issue(
                path,
                format!(
                    "`{v}` is not an exact version (like 1.2.3); ranges are refused so a plan \
                     never changes under the platform"
                ),
            ),
            Some(_) => {}
        }
    }

    /// A pinned archive digest: `sha256:` and 64 hex digits.
    pub(crate) fn chart_digest(&mut self, path: &str, digest: &str) {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            self.issue(
                path,
                format!("`{digest}` is not a digest like sha256:<64 hex digits>"),
            );
        }
    }

    /// A chart name as a repository index lists it; never an option to helm.
    pub(crate) fn chart_name(&mut self, path: &str, name: &str) {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            self.issue(
                path,
                format!("`{name}` is not a chart name (letters, digits, `.`, `_`, `-`)"),
            );
        }
    }

    /// A Helm repository URL: HTTPS only, no credentials.
    pub(crate) fn repository_url(&mut self, path: &str, url: &str) {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return self.issue(path, format!("`{url}` is not a URL: {e}")),
        };
        match parsed.scheme() {
            "https" => {}
            "http" => {
                return self.issue(
                    path,
                    format!("`{url}`: plain http is refused; chart repositories must use https"),
                );
            }
            other => {
                return self.issue(
                    path,
                    format!("`{url}`: scheme `{other}` is not supported; use https://"),
                );
            }
        }
        self.remote_url_rules(path, url, &parsed);
    }

    /// An OCI chart reference: `oci://host[:port]/path/name`, the version
    /// given apart.
    pub(crate) fn oci_reference(&mut self, path: &str, reference: &str) {
        if !reference.starts_with("oci://") {
            return self.issue(
                path,
                format!("`{reference}` must start with oci:// (like oci://registry.example.com/charts/mysql)"),
            );
        }
        let parsed = match reqwest::Url::parse(reference) {
            Ok(u) => u,
            Err(e) => return self.issue(path, format!("`{reference}` is not a reference: {e}")),
        };
        if !self.remote_url_rules(path, reference, &parsed) {
            return;
        }
        let repo = parsed.path().trim_start_matches('/');
        if repo.contains([':', '@']) {
            return self.issue(
                path,
                format!("`{reference}`: no tag or digest here; the version goes in `version`"),
            );
        }
        let component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if repo.is_empty() || !repo.split('/').all(component) {
            self.issue(
                path,
                format!(
                    "`{reference}` needs a repository path of lowercase letters, digits, `.`, \
                     `_`, `-` (like oci://registry.example.com/charts/mysql)"
                ),
            );
        }
    }

    /// Rules shared by repository URLs and OCI references; false when one
    /// failed.
    fn remote_url_rules(&mut self, path: &str, text: &str, url: &reqwest::Url) -> bool {
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some(
                "credentials in the URL are refused (a URL is shown in messages and logs); name them under `auth:`",
            )
        } else if url.host_str().is_none_or(str::is_empty) {
            Some("no host")
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("no query or fragment allowed")
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.issue(path, format!("`{text}`: {p}"));
                false
            }
            None => true,
        }
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

fn check_variable(var: &str, which: Tree, scope: &Scope<'_>) -> Result<(), String> {
    let segs: Vec<&str> = var.split('.').collect();
    let no_fields = |what: &str| Err(format!("`{var}`: {what} has no fields"));
    match segs.as_slice() {
        ["context", ..] | ["instance" | "secrets" | "parameters"] => Ok(()),
        ["instance", field, rest @ ..] => {
            if !INSTANCE_FIELDS.contains(field) {
                Err(format!(
                    "unknown variable `{var}`; instance has {}",
                    INSTANCE_FIELDS.join(", ")
                ))
            } else if !rest.is_empty() {
                no_fields(&format!("instance.{field}"))
            } else {
                Ok(())
            }
        }
        ["secrets", name, rest @ ..] => {
            if !scope.secrets.contains_key(*name) {
                Err(format!(
                    "`{var}`: secret `{name}` is not declared under chart.secrets"
                ))
            } else if !rest.is_empty() {
                no_fields(&format!("secrets.{name}"))
            } else {
                Ok(())
            }
        }
        ["parameters", name, ..] => {
            declared(var, name, scope.parameters.as_ref(), "the plan's instance")
        }
        ["lookups", name, ..] if which == Tree::Credentials => {
            if scope.lookups.contains(*name) {
                Ok(())
            } else {
                Err(format!(
                    "`{var}`: lookup `{name}` is not declared under chart.lookups"
                ))
            }
        }
        ["lookups", ..] => Err(format!(
            "`{var}`: lookups.* is only available in credentials"
        )),
        ["uses", name, field] => {
            if !scope.uses.contains(*name) {
                Err(format!(
                    "`{var}`: `{name}` is not declared under chart.uses"
                ))
            } else if !["secret", "instance"].contains(field) {
                Err(format!("`{var}`: uses.{name} has secret and instance"))
            } else {
                Ok(())
            }
        }
        ["uses", ..] => Err(format!(
            "`{var}`: use uses.<name>.secret or uses.<name>.instance"
        )),
        ["user", "username" | "password"] if which == Tree::Credentials && scope.binding_user => {
            Ok(())
        }
        ["user", ..] if which == Tree::Credentials && scope.binding_user => {
            Err(format!("`{var}`: user has username and password"))
        }
        ["user", ..] => Err(format!(
            "`{var}`: user.* is the binding's own database user: only in credentials of a plan with chart.binding_users"
        )),
        ["binding", ..] if which == Tree::Values => Err(format!(
            "`{var}`: binding.* is only available in credentials"
        )),
        ["binding"] | ["binding", "parameters"] => Ok(()),
        ["binding", "parameters", name, ..] => declared(
            var,
            name,
            scope.binding_parameters.as_ref(),
            "the plan's binding",
        ),
        ["binding", field, rest @ ..] => {
            if !BINDING_FIELDS.contains(field) {
                Err(format!(
                    "unknown variable `{var}`; binding has id, app_guid, parameters"
                ))
            } else if !rest.is_empty() {
                no_fields(&format!("binding.{field}"))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "unknown variable `{var}`; templates use instance.*, context.*, parameters.*, \
             secrets.*{}",
            if which == Tree::Credentials {
                " and binding.*"
            } else {
                ""
            }
        )),
    }
}

/// The known variable closest to a mistyped `var`, compared on as many
/// segments as the candidate has (`lookups.db` for `lookps.db.port`), with
/// `var`'s remaining segments kept.
fn suggestion(var: &str, which: Tree, scope: &Scope<'_>) -> Option<String> {
    let mut known: Vec<String> = INSTANCE_FIELDS
        .iter()
        .map(|f| format!("instance.{f}"))
        .collect();
    known.extend(scope.secrets.keys().map(|s| format!("secrets.{s}")));
    known.extend(
        scope
            .parameters
            .iter()
            .flatten()
            .map(|p| format!("parameters.{p}")),
    );
    for u in &scope.uses {
        known.push(format!("uses.{u}.secret"));
        known.push(format!("uses.{u}.instance"));
    }
    if which == Tree::Credentials {
        known.extend(scope.lookups.iter().map(|l| format!("lookups.{l}")));
        known.extend(BINDING_FIELDS.iter().map(|f| format!("binding.{f}")));
        known.extend(
            scope
                .binding_parameters
                .iter()
                .flatten()
                .map(|p| format!("binding.parameters.{p}")),
        );
        if scope.binding_user {
            known.extend(["user.username".into(), "user.password".into()]);
        }
    }
    let segs: Vec<&str> = var.split('.').collect();
    let mut best: Option<(usize, String)> = None;
    for cand in &known {
        let n = cand.split('.').count();
        if n > segs.len() {
            continue;
        }
        let head = segs[..n].join(".");
        if let Some(near) = super::suggest::closest(&head, [cand.as_str()]) {
            let d = super::suggest::distance(&head, near);
            if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                let rest = &segs[n..];
                let full = std::iter::once(near)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(".");
                best = Some((d, full));
            }
        }
    }
    best.map(|(_, s)| s)
}

fn declared(
    var: &str,
    name: &str,
    props: Option<&BTreeSet<String>>,
    whose: &str,
) -> Result<(), String> {
    match props {
        Some(props) if !props.contains(name) => Err(format!(
            "`{var}`: parameter `{name}` is not in {whose} schema properties"
        )),
        _ => Ok(()),
    }
}

/// Semantic Versioning 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`.
fn is_semver(v: &str) -> bool {
    let (rest, build) = v.split_once('+').map_or((v, None), |(a, b)| (a, Some(b)));
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(a, b)| (a, Some(b)));
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let idents = |s: &str, numeric_rule: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!numeric_rule || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| idents(p, true))
        && build.is_none_or(|b| idents(b, false))
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
