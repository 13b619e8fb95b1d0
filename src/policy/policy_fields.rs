//! The plan settings that widen the allow-list by value rather than by
//! rule name: `allow_hosts`, `allow_annotations`, `role_resources`; their
//! lint and how `catalog lint` shows them.

use super::Policy;
use super::ceiling;

/// The placeholder `allow_hosts` patterns may use for the release namespace.
const NAMESPACE: &str = "{namespace}";

impl Policy {
    /// Whether `host` (of an Ingress rule, TLS entry or route) is one the
    /// plan's `allow_hosts` admits for a release in `namespace`. A pattern
    /// `*.example.com` admits one label in place of `*` (`a.example.com`,
    /// not `a.b.example.com`), and the wildcard host `*.example.com`
    /// itself; matching ignores ASCII case.
    pub(super) fn host_allowed(&self, host: &str, namespace: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        self.allow_hosts.iter().any(|pattern| {
            let pattern = pattern.replace(NAMESPACE, namespace).to_ascii_lowercase();
            if host == pattern {
                return true;
            }
            match (pattern.strip_prefix("*."), host.split_once('.')) {
                (Some(suffix), Some((label, rest))) => {
                    rest == suffix && !label.is_empty() && !label.contains('*')
                }
                _ => false,
            }
        })
    }
}

/// Lint of the value settings, as (path relative to `policy`, message).
pub(super) fn problems(p: &Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, pattern) in p.allow_hosts.iter().enumerate() {
        if let Err(msg) = host_pattern(pattern) {
            out.push((format!("allow_hosts[{i}]"), msg));
        }
    }
    for (i, key) in p.allow_annotations.iter().enumerate() {
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c));
        if !ok {
            out.push((
                format!("allow_annotations[{i}]"),
                format!("`{key}` is not an annotation key (exact keys only, no wildcards)"),
            ));
        }
    }
    for (i, entry) in p.role_resources.iter().enumerate() {
        let (resource, group) = entry.split_once('.').unwrap_or((entry.as_str(), ""));
        let problem = if entry.contains('*') || entry.trim().is_empty() {
            Some(format!(
                "`{entry}` must name one resource (`resource` or `resource.group`)"
            ))
        } else if ceiling::sensitive(&resource.to_ascii_lowercase(), "get").is_some() {
            Some(format!(
                "`{entry}` reaches past the release; loosen rule `rbac-sensitive` instead"
            ))
        } else if ceiling::writes_judged(group, resource, "create") {
            Some(format!(
                "writes to `{entry}` create objects the policy never sees; loosen rule \
                 `rbac-writes` instead"
            ))
        } else {
            None
        };
        if let Some(msg) = problem {
            out.push((format!("role_resources[{i}]"), msg));
        }
    }
    out
}

/// `catalog lint` lines for the value settings (empty for the defaults).
pub(super) fn allowances(p: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for (what, list) in [
        ("ingress hosts:", &p.allow_hosts),
        ("ingress annotations: also", &p.allow_annotations),
        ("role resources: also", &p.role_resources),
    ] {
        if !list.is_empty() {
            out.push(format!("{what} {}", list.join(", ")));
        }
    }
    out
}

/// A DNS name, optionally starting with `*.`, possibly with `{namespace}`.
fn host_pattern(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let name = name.replace(NAMESPACE, "ns");
    let labels_ok = name.split('.').count() >= 2
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if labels_ok {
        Ok(())
    } else {
        Err(format!(
            "`{pattern}` is not a host pattern (`app.example.com`, `*.apps.example.com`, \
             `*.{NAMESPACE}.example.com`); to allow any host, loosen rule `ingress-host`"
        ))
    }
}
