//! What the release itself creates, read from all its documents before any
//! object is judged, so a rule can say "only the release's own objects":
//! a Service must select the release's pods, a RoleBinding bind the
//! release's Role, an HPA scale the release's workload.
//!
//! Only what the API server will see counts: exact keys, string values,
//! objects in the release namespace. An object the policy refuses still
//! counts here (its own violation fails the release anyway).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::kinds::group_of;

/// Labels of one pod template.
pub(super) type Labels = BTreeMap<String, String>;

/// The kinds that carry a pod, with where each keeps its template (the
/// object holding `metadata` and `spec`) and whether it is a scale target.
const POD_CARRIERS: &[(&str, &str, &[&str])] = &[
    ("", "Pod", &[]),
    ("", "PodTemplate", &["template"]),
    ("", "ReplicationController", &["spec", "template"]),
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// The release's own objects.
#[derive(Debug, Default)]
pub(super) struct Release {
    /// The release namespace.
    pub(crate) namespace: String,
    /// (API group, kind, name) of every object the release creates.
    objects: BTreeSet<(String, String, String)>,
    /// The labels of every pod template of every workload.
    pods: Vec<Labels>,
}

impl Release {
    /// Reads every document of the release (non-objects are skipped).
    pub(crate) fn from_docs<'a>(
        docs: impl IntoIterator<Item = &'a Value>,
        namespace: &str,
    ) -> Release {
        let mut release = Release {
            namespace: namespace.to_owned(),
            ..Release::default()
        };
        for doc in docs {
            let text = |path: &[&str]| {
                path.iter()
                    .try_fold(doc, |v, k| v.get(k))
                    .and_then(Value::as_str)
            };
            let (Some(api), Some(kind), Some(name)) = (
                text(&["apiVersion"]),
                text(&["kind"]),
                text(&["metadata", "name"]),
            ) else {
                continue;
            };
            if text(&["metadata", "namespace"]).is_some_and(|ns| !ns.is_empty() && ns != namespace)
            {
                continue;
            }
            let group = group_of(api);
            release
                .objects
                .insert((group.to_owned(), kind.to_owned(), name.to_owned()));
            let carrier = POD_CARRIERS
                .iter()
                .find(|(g, k, _)| *g == group && *k == kind);
            if let Some((_, _, path)) = carrier {
                let template = path.iter().try_fold(doc, |v, k| v.get(k));
                release.pods.push(labels_of(template));
            }
        }
        release
    }

    /// Whether the release creates the object `kind` `name` of API `group`.
    pub(crate) fn creates(&self, group: &str, kind: &str, name: &str) -> bool {
        self.objects
            .contains(&(group.to_owned(), kind.to_owned(), name.to_owned()))
    }

    /// Whether `kind` `name` is a workload of the release that carries pods.
    pub(crate) fn creates_workload(&self, group: &str, kind: &str, name: &str) -> bool {
        POD_CARRIERS
            .iter()
            .any(|(g, k, _)| *g == group && *k == kind)
            && self.creates(group, kind, name)
    }

    /// Whether some pod template of the release has every label of `want`.
    pub(crate) fn has_pods_labelled(&self, want: &Labels) -> bool {
        self.pods
            .iter()
            .any(|pod| want.iter().all(|(k, v)| pod.get(k) == Some(v)))
    }

    /// Whether some pod template of the release matches `selector`.
    pub(crate) fn has_pods_selected(&self, selector: &Selector) -> bool {
        self.pods.iter().any(|pod| selector.matches(pod))
    }
}

/// The pod template of a built-in kind that carries one (the object
/// holding `metadata` and `spec`), under the exact keys the API server
/// reads.
pub(super) fn pod_template(doc: &Value) -> Option<&Value> {
    let group = group_of(doc.get("apiVersion")?.as_str()?);
    let kind = doc.get("kind")?.as_str()?;
    let (_, _, path) = POD_CARRIERS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)?;
    path.iter().try_fold(doc, |v, k| v.get(k))
}

/// `metadata.labels` of a pod template (string values only).
fn labels_of(template: Option<&Value>) -> Labels {
    template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// A `metav1.LabelSelector` the policy understands.
#[derive(Debug, Default)]
pub(super) struct Selector {
    labels: Labels,
    expressions: Vec<(String, Op, Vec<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Reads a label selector; `Err` says what the policy can't read (a
    /// selector it doesn't understand is one it can't vouch for).
    pub(crate) fn parse(v: &Value) -> Result<Selector, String> {
        let map = v.as_object().ok_or("is not a map")?;
        let mut out = Selector::default();
        for (key, value) in map {
            match key.as_str() {
                "matchLabels" => out.labels = string_map(value)?,
                "matchExpressions" => {
                    for e in value.as_array().ok_or("matchExpressions is not a list")? {
                        out.expressions.push(expression(e)?);
                    }
                }
                other => return Err(format!("has an unknown field {other:?}")),
            }
        }
        Ok(out)
    }

    /// Whether the selector pins at least one label to a value, so it
    /// can't reach every pod that merely lacks or has some label.
    pub(crate) fn pins_a_value(&self) -> bool {
        !self.labels.is_empty() || self.expressions.iter().any(|(_, op, _)| *op == Op::In)
    }

    fn matches(&self, pod: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| pod.get(k) == Some(v))
            && self.expressions.iter().all(|(key, op, values)| {
                let have = pod.get(key);
                match op {
                    Op::In => have.is_some_and(|h| values.contains(h)),
                    Op::NotIn => have.is_none_or(|h| !values.contains(h)),
                    Op::Exists => have.is_some(),
                    Op::DoesNotExist => have.is_none(),
                }
            })
    }
}

/// A map of strings (a Service selector, `matchLabels`).
pub(super) fn string_map(v: &Value) -> Result<Labels, String> {
    if v.is_null() {
        return Ok(Labels::new());
    }
    v.as_object()
        .ok_or("labels are not a map")?
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_owned())),
            None => Err(format!("label {k:?} is not a string")),
        })
        .collect()
}

fn expression(e: &Value) -> Result<(String, Op, Vec<String>), String> {
    let map = e.as_object().ok_or("an expression is not a map")?;
    if let Some(k) = map
        .keys()
        .find(|k| !["key", "operator", "values"].contains(&k.as_str()))
    {
        return Err(format!("an expression has an unknown field {k:?}"));
    }
    let key = map
        .get("key")
        .and_then(Value::as_str)
        .ok_or("an expression has no key")?;
    let op = match map.get("operator").and_then(Value::as_str) {
        Some("In") => Op::In,
        Some("NotIn") => Op::NotIn,
        Some("Exists") => Op::Exists,
        Some("DoesNotExist") => Op::DoesNotExist,
        other => return Err(format!("operator {other:?} is not understood")),
    };
    let values = match map.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or("a value is not a string")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("values is not a list".into()),
    };
    Ok((key.to_owned(), op, values))
}
