//! Policy on rendered manifests: hostile charts are stopped before they reach
//! the cluster.
//!
//! Before a release is installed or upgraded, the manifests helm would apply
//! go through [`check`], a function over helm's multi-document output, so
//! it runs on whatever stream reaches the cluster (`helm template` today,
//! the final post-rendered manifests, hooks and `crds/` tomorrow). Any
//! violation fails the operation with every offending object and rule
//! named, and nothing is written or applied.
//!
//! The default is Pod Security Standards "restricted" for every pod, plus
//! rules on kinds, namespaces, RBAC, Services and Secrets; [`RULES`] lists
//! each by its stable name. A plan loosens rules one by one by name
//! (`chart.policy.allow`), kinds with `allow_kinds` / `extra_kinds`, and
//! added capabilities with `allow_capabilities`. The rules that keep a
//! release inside its namespace and its own RBAC can't be loosened.
//!
//! This module is pure: YAML in, verdict out.
//!
//! # Layout
//!
//! - `mod.rs`: [`Policy`] (the catalog's `chart.policy`), [`check`], the
//!   per-object walk (shape, scope, kind, namespace), [`Violations`].
//! - `ruleset.rs`: every rule's name, what it refuses, whether a plan may
//!   loosen it.
//! - `kinds.rs`: the default allow-list, cluster-scoped kinds, capability
//!   names, and how a catalog names a kind (`Deployment`, `Kind.group`).
//! - `release.rs`: what the release creates (objects, pod-template labels),
//!   read from all documents first, and label selectors.
//! - `pods.rs`: Pod Security "restricted" on every pod spec;
//!   `placement.rs`: ServiceAccount, nodeName, control-plane nodes;
//!   `fields.rs`: the pod fields the policy knows (`pod-field`).
//! - `rules.rs`: which rules run on one object; `rbac.rs` and `ceiling.rs`:
//!   Roles under the edit ceiling, bindings to the release's own;
//!   `selectors.rs`: selectors and references (Services, NetworkPolicies,
//!   PDBs, HPAs, PVCs); `exposure.rs`: Ingress and Gateway routes.
//! - `policy_fields.rs`: `allow_hosts`, `allow_annotations`,
//!   `role_resources`.
//! - `lookup.rs`: how untrusted YAML is read (spellings, booleans).

mod ceiling;
mod exposure;
mod fields;
mod kinds;
mod lookup;
mod placement;
mod pods;
mod policy_fields;
mod rbac;
mod release;
mod rules;
mod ruleset;
mod selectors;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use kinds::GroupKind;
pub(crate) use ruleset::summary as rules_summary;
pub use ruleset::{RULES, Rule};

/// What a plan's charts may create, beyond the safe defaults. Catalog key
/// `chart.policy`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Replaces the default allow-list of kinds: built-in kinds by name
    /// (`Deployment`), others as `Kind.group`. Cluster-scoped kinds are
    /// refused whatever this says.
    pub(crate) allow_kinds: Option<Vec<String>>,
    /// Added to the allow-list (default or `allow_kinds`), e.g. `DaemonSet`.
    pub(crate) extra_kinds: Vec<String>,
    /// Rules switched off for this plan, by name (`host-path`, `seccomp`).
    pub(crate) allow: Vec<String>,
    /// Shorthand for `allow: [privileged-container, privilege-escalation,
    /// unmasked-proc-mount]`.
    pub(crate) allow_privileged: bool,
    /// Shorthand for `allow: [host-path]`.
    pub(crate) allow_host_path: bool,
    /// Shorthand for `allow: [host-namespace, host-port]`.
    pub(crate) allow_host_network: bool,
    /// Capabilities containers may add beyond `NET_BIND_SERVICE` (`CAP_`
    /// prefix and case don't matter).
    pub(crate) allow_capabilities: Vec<String>,
    /// Hosts an Ingress or route may claim: `app.example.com`, or
    /// `*.apps.example.com` (any one label in its place); `{namespace}`
    /// stands for the release namespace. None by default.
    pub(crate) allow_hosts: Vec<String>,
    /// Annotation keys an Ingress or route may carry beyond the default
    /// allow-list (exact keys).
    pub(crate) allow_annotations: Vec<String>,
    /// Resources a Role may grant beyond the namespace edit ceiling, with
    /// any of the ceiling's verbs: `resource` (core group) or
    /// `resource.group`, e.g. `leases.coordination.k8s.io`.
    pub(crate) role_resources: Vec<String>,
}

impl Policy {
    /// Problems with the policy itself, as (path relative to `policy`,
    /// message) pairs for the catalog lint: unknown or cluster-scoped kinds,
    /// unknown capabilities.
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let lists = [
            ("allow_kinds", self.allow_kinds.as_deref().unwrap_or(&[])),
            ("extra_kinds", &self.extra_kinds[..]),
        ];
        for (field, entries) in lists {
            for (i, entry) in entries.iter().enumerate() {
                if let Err(msg) = kinds::parse_entry(entry) {
                    out.push((format!("{field}[{i}]"), msg));
                }
            }
        }
        for (i, name) in self.allow.iter().enumerate() {
            let problem = match ruleset::find(name) {
                Some(rule) if rule.loosenable => continue,
                Some(_) if name == "kind-not-allowed" => format!(
                    "rule `{name}` is loosened with `allow_kinds` or `extra_kinds`, which name the kinds"
                ),
                Some(_) => format!("rule `{name}` can't be loosened"),
                None => format!("unknown rule `{name}`"),
            };
            out.push((format!("allow[{i}]"), problem));
        }
        out.extend(policy_fields::problems(self));
        for (i, cap) in self.allow_capabilities.iter().enumerate() {
            if !kinds::is_capability(&kinds::normalize_capability(cap)) {
                out.push((
                    format!("allow_capabilities[{i}]"),
                    format!("unknown capability `{cap}`"),
                ));
            }
        }
        out
    }

    /// Whether this plan switches rule `name` off. Only loosenable rules
    /// ever are, whatever the catalog says.
    pub(crate) fn allows(&self, name: &str) -> bool {
        if !ruleset::find(name).is_some_and(|r| r.loosenable) {
            return false;
        }
        self.allow.iter().any(|a| a == name)
            || match name {
                "privileged-container" | "privilege-escalation" | "unmasked-proc-mount" => {
                    self.allow_privileged
                }
                "host-path" => self.allow_host_path,
                "host-namespace" | "host-port" => self.allow_host_network,
                _ => false,
            }
    }

    /// What this policy allows beyond the defaults, one line per kind of
    /// allowance (empty for the default policy), for `catalog lint`.
    pub(crate) fn allowances(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(kinds) = &self.allow_kinds {
            out.push(format!("kinds: only {}", kinds.join(", ")));
        }
        if !self.extra_kinds.is_empty() {
            out.push(format!("kinds: also {}", self.extra_kinds.join(", ")));
        }
        let rules: Vec<&str> = RULES
            .iter()
            .map(|r| r.name)
            .filter(|r| self.allows(r))
            .collect();
        if !rules.is_empty() {
            out.push(format!("rules off: {}", rules.join(", ")));
        }
        out.extend(policy_fields::allowances(self));
        if !self.allow_capabilities.is_empty() && !self.allows("capability-not-allowed") {
            out.push(format!(
                "capabilities: also {}",
                self.allow_capabilities.join(", ")
            ));
        }
        out
    }

    /// The kinds this policy allows. Entries that don't parse are dropped
    /// (lint reports them), which only ever narrows the list.
    fn allowed_kinds(&self) -> BTreeSet<GroupKind> {
        let base: Vec<&str> = match &self.allow_kinds {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => kinds::DEFAULT_ALLOWED.to_vec(),
        };
        base.into_iter()
            .chain(self.extra_kinds.iter().map(String::as_str))
            .filter_map(|e| kinds::parse_entry(e).ok())
            .collect()
    }
}

/// One object breaking one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The object's kind; empty when the document is not an object.
    pub(crate) kind: String,
    /// The object's name, or `document #N` when it has none.
    pub(crate) name: String,
    /// The namespace the object would land in.
    pub(crate) namespace: String,
    /// Stable rule id, e.g. `privileged-container`.
    pub(crate) rule: &'static str,
    /// What is wrong, e.g. `container "app" is privileged`.
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            write!(f, "{}", self.name)?;
        } else {
            write!(f, "{}/{}", self.kind, self.name)?;
        }
        write!(f, ": {} (rule: {})", self.message, self.rule)
    }
}

/// Every violation found in one set of manifests (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

/// How many violations [`Violations`]' `Display` lists before summarizing.
const SHOWN: usize = 20;

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "; and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Checks `manifests` (helm's multi-document YAML) for a release in
/// `namespace` against `policy`: reads them with [`crate::manifest::read`]
/// (a stream Kubernetes might read differently is itself a violation), then
/// [`check_docs`].
pub fn check(manifests: &str, namespace: &str, policy: &Policy) -> Result<(), Violations> {
    let docs = crate::manifest::read(manifests)
        .map_err(|e| Violations(vec![unreadable(&e, namespace)]))?;
    check_docs(&docs, namespace, policy)
}

/// The violation of a stream the manifest reader refused.
pub(crate) fn unreadable(e: &crate::manifest::ReadError, namespace: &str) -> Violation {
    let (rule, message) = if e.syntax {
        ("invalid-yaml", format!("not valid YAML ({e})"))
    } else {
        (
            "ambiguous-yaml",
            format!("Kubernetes' YAML reader may read this differently: {e}"),
        )
    };
    Violation {
        kind: String::new(),
        name: "manifests".into(),
        namespace: namespace.into(),
        rule,
        message,
    }
}

/// Checks judged documents (as [`crate::manifest::read`] returns them) for
/// a release in `namespace` against `policy`: first what the release
/// creates (its context), then every object against the rules, with that
/// context.
pub(crate) fn check_docs(
    docs: &[crate::manifest::Doc],
    namespace: &str,
    policy: &Policy,
) -> Result<(), Violations> {
    let release = release::Release::from_docs(docs.iter().map(|d| &d.value), namespace);
    let allowed = policy.allowed_kinds();
    let mut found = Vec::new();
    for doc in docs {
        check_doc(
            &doc.value, doc.number, &release, policy, &allowed, &mut found,
        );
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(Violations(found))
    }
}

/// Collects violations against one object, tagged with its identity; drops
/// those of rules the plan switched off.
struct Report<'a> {
    out: &'a mut Vec<Violation>,
    policy: &'a Policy,
    /// What the release creates.
    release: &'a release::Release,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
}

impl Report<'_> {
    fn add(&mut self, rule: &'static str, message: String) {
        debug_assert!(ruleset::find(rule).is_some(), "unlisted rule {rule}");
        if self.policy.allows(rule) {
            return;
        }
        self.out.push(Violation {
            kind: self.kind.to_owned(),
            name: self.name.to_owned(),
            namespace: self.namespace.to_owned(),
            rule,
            message,
        });
    }
}

/// The namespace the object would land in when it is not the release's:
/// every spelling of `namespace` counts, and so does one that isn't a
/// string.
fn foreign_namespace(meta: Option<&Value>, release_ns: &str) -> Option<String> {
    let ns = meta
        .into_iter()
        .flat_map(|m| lookup::fields(m, "namespace"))
        .find(|ns| match ns {
            Value::Null => false,
            Value::String(s) => !s.is_empty() && s != release_ns,
            _ => true,
        })?;
    Some(ns.as_str().map_or_else(|| ns.to_string(), str::to_owned))
}

fn check_doc(
    doc: &Value,
    number: usize,
    release: &release::Release,
    policy: &Policy,
    allowed: &BTreeSet<GroupKind>,
    out: &mut Vec<Violation>,
) {
    let release_ns = release.namespace.as_str();
    let text = |key: &str| {
        doc.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let meta = doc.get("metadata");
    let meta_text = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(api_version), Some(kind), Some(name)) = (
        text("apiVersion"),
        text("kind"),
        meta_text("name").or_else(|| meta_text("generateName")),
    ) else {
        let doc_name = format!("document #{number}");
        let mut report = Report {
            out,
            policy,
            release,
            kind: "",
            name: &doc_name,
            namespace: release_ns,
        };
        report.add(
            "not-an-object",
            "is not a Kubernetes object (needs apiVersion, kind and metadata.name)".into(),
        );
        return;
    };
    let foreign_ns = foreign_namespace(meta, release_ns);
    let namespace = foreign_ns.clone().unwrap_or_else(|| release_ns.to_owned());
    let mut report = Report {
        out,
        policy,
        release,
        kind,
        name,
        namespace: &namespace,
    };
    if kinds::is_cluster_scoped(kind) {
        report.add(
            "cluster-scoped",
            format!("{kind} is cluster-scoped; charts may only create namespaced objects"),
        );
        return;
    }
    let gk = GroupKind {
        group: kinds::group_of(api_version).to_owned(),
        kind: kind.to_owned(),
    };
    if !allowed.contains(&gk) {
        report.add(
            "kind-not-allowed",
            format!("kind {kind} ({api_version}) is not allowed by the plan's policy"),
        );
    }
    if foreign_ns.is_some() {
        report.add(
            "other-namespace",
            format!("is in namespace {namespace:?}, not the release namespace {release_ns:?}"),
        );
    }
    rules::check_object(doc, &gk.group, kind, &mut report);
}
