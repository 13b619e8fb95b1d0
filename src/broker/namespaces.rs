//! Which namespaces the broker may act in: the operator's allow/deny list
//! (`--namespaces`) and label selector (`--namespace-selector`).
//!
//! A tenant is a namespace, and the broker holds rights in many of them, so
//! every namespace a request names (the platform's `context.namespace`, a
//! bind parameter `namespace`, the namespace a `namespace: instance` plan
//! creates) is judged here before anything is written. The system
//! namespaces and the broker's own are refused unless the operator names
//! them literally: a `*` must not open `kube-system` by accident.

use std::collections::{BTreeMap, BTreeSet};

/// Namespaces refused unless an allow entry names them exactly.
pub(crate) const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The operator's rules about namespaces.
#[derive(Clone, Debug)]
pub(crate) struct NamespacePolicy {
    allow: Vec<glob::Pattern>,
    deny: Vec<glob::Pattern>,
    /// Refused unless an allow entry is exactly this name.
    protected: BTreeSet<String>,
    selector: Option<LabelSelector>,
}

impl Default for NamespacePolicy {
    fn default() -> Self {
        NamespacePolicy::new(&[], None, "chartbroker-system").expect("no rules parse")
    }
}

impl NamespacePolicy {
    /// Rules from `--namespaces` entries (`pattern` allows, `!pattern`
    /// denies; globs with `*`, `?` and `[...]`) and `--namespace-selector`.
    /// Without allow entries every namespace not denied is allowed.
    /// `own_namespace` (the state namespace) joins the protected ones.
    pub(crate) fn new(
        entries: &[String],
        selector: Option<&str>,
        own_namespace: &str,
    ) -> Result<Self, String> {
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        for raw in entries.iter().flat_map(|e| e.split(',')) {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            let (list, pattern) = match entry.strip_prefix('!') {
                Some(p) => (&mut deny, p.trim()),
                None => (&mut allow, entry),
            };
            let p = glob::Pattern::new(pattern)
                .map_err(|e| format!("--namespaces entry {entry:?} is not a valid pattern: {e}"))?;
            list.push(p);
        }
        let mut protected: BTreeSet<String> =
            SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect();
        protected.insert(own_namespace.to_string());
        let selector = selector
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(LabelSelector::parse)
            .transpose()?;
        Ok(NamespacePolicy {
            allow,
            deny,
            protected,
            selector,
        })
    }

    /// Whether the name alone is acceptable; the error says why not.
    pub(crate) fn check_name(&self, namespace: &str) -> Result<(), String> {
        let refused = |why: &str| {
            Err(format!(
                "the broker may not act in namespace {namespace:?}: {why}"
            ))
        };
        if self.deny.iter().any(|p| p.matches(namespace)) {
            return refused("the operator denies it (--namespaces)");
        }
        if self.protected.contains(namespace) {
            return if self.allow.iter().any(|p| p.as_str() == namespace) {
                Ok(())
            } else {
                refused(
                    "system namespaces and the broker's own are refused unless --namespaces names them",
                )
            };
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(namespace)) {
            return refused("it is not in the operator's list (--namespaces)");
        }
        Ok(())
    }

    /// The label selector a target Namespace must match, if any.
    pub(crate) fn selector(&self) -> Option<&LabelSelector> {
        self.selector.as_ref()
    }
}

/// An equality-based label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`,
/// comma-separated, all must hold), as `kubectl -l` reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    text: String,
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equal(String, String),
    NotEqual(String, String),
    Exists(String),
    Absent(String),
}

impl LabelSelector {
    /// Parses a selector; set-based forms (`in`, `notin`) are refused
    /// rather than misread.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = |part: &str, why: &str| {
            Err(format!(
                "--namespace-selector {text:?}: {part:?} {why} (use k=v, k!=v, k or !k)"
            ))
        };
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim) {
            let valid_key = |k: &str| {
                !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
            };
            let r = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEqual(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equal(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            let key = match &r {
                Requirement::Equal(k, _)
                | Requirement::NotEqual(k, _)
                | Requirement::Exists(k)
                | Requirement::Absent(k) => k,
            };
            if !valid_key(key) {
                return bad(part, "is not a label requirement");
            }
            requirements.push(r);
        }
        Ok(LabelSelector {
            text: text.to_string(),
            requirements,
        })
    }

    /// Whether labels satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equal(k, v) => labels.get(k) == Some(v),
            Requirement::NotEqual(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }

    /// As the operator wrote it.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> NamespacePolicy {
        let e: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        NamespacePolicy::new(&e, None, "cb-system").unwrap()
    }

    #[test]
    fn system_and_own_namespaces_are_refused_by_default() {
        let p = policy(&[]);
        for ns in ["kube-system", "kube-public", "kube-node-lease", "cb-system"] {
            assert!(p.check_name(ns).is_err(), "{ns}");
        }
        assert!(p.check_name("apps").is_ok());
        // A glob never opens them; their literal name does.
        let p = policy(&["*"]);
        assert!(p.check_name("kube-system").is_err());
        let p = policy(&["team-*", "kube-public"]);
        assert!(p.check_name("kube-public").is_ok());
        assert!(p.check_name("kube-system").is_err());
        assert!(p.check_name("team-a").is_ok());
        assert!(p.check_name("apps").is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = policy(&["team-*,!team-admin"]);
        assert!(p.check_name("team-a").is_ok());
        assert!(p.check_name("team-admin").is_err());
        let p = policy(&["!prod-*"]);
        assert!(p.check_name("prod-eu").is_err());
        assert!(p.check_name("dev").is_ok());
    }

    #[test]
    fn selectors() {
        let s = LabelSelector::parse("tenant=yes, !frozen,tier!=system,team").unwrap();
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(s.matches(&l(&[("tenant", "yes"), ("team", "a")])));
        assert!(!s.matches(&l(&[("tenant", "yes")])));
        assert!(!s.matches(&l(&[("tenant", "yes"), ("team", "a"), ("frozen", "")])));
        assert!(!s.matches(&l(&[("tenant", "yes"), ("team", "a"), ("tier", "system")])));
        for bad in ["", "a in (b)", "=x", "a,,b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
        assert!(NamespacePolicy::new(&["[".into()], None, "x").is_err());
    }
}
