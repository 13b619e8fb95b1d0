//! The parts of an instance's page read from outside its record: the
//! release's revisions and applied manifests (from the engine, redacted),
//! and the instances that use it.
//!
//! Manifests are shown only after they parse: each document's Secret
//! values (`data`, `stringData`) are replaced whole, values of fields and
//! `env` entries whose names say they hold secrets are masked, and every
//! generated secret of the instance and its bindings is redacted in every
//! encoding [`crate::redact`] knows. Text that does not parse is not shown.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::{esc, url_part};
use super::masking::{MASK, secret_name};
use crate::broker::Broker;
use crate::broker::model::{Binding, BindingState, Instance};
use crate::releases::inspect::{Applied, ReleaseRecords};

/// Manifest text shown at most; the rest is cut with a note.
const MAX_SHOWN: usize = 512 * 1024;

/// The "Release" section: revisions and applied manifests. `secrets` are
/// the instance's and its bindings' generated values.
pub async fn release(
    records: Option<&dyn ReleaseRecords>,
    inst: &Instance,
    upstream: bool,
    secrets: &[String],
) -> String {
    let mut out = String::from("<h2>Release revisions</h2>");
    if upstream {
        out.push_str(
            "<p class=\"note\">Served by an upstream broker: it keeps no release here.</p>",
        );
        return out;
    }
    let Some(records) = records else {
        out.push_str("<p class=\"note\">This broker reads no releases.</p>");
        return out;
    };
    let applied = match records.applied(&inst.namespace, &inst.release).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, instance = %inst.id, "reading the release for the dashboard");
            let why = crate::redact::redact_chart_text(&e, secrets);
            let _ = write!(
                out,
                "<p class=\"warn\" id=\"release-error\">The release could not be read: {}</p>",
                esc(&why)
            );
            return out;
        }
    };
    out.push_str(&revisions(&applied, secrets));
    out.push_str(&manifests(&applied, secrets));
    out
}

fn revisions(applied: &Applied, secrets: &[String]) -> String {
    let mut out = format!("<p class=\"note\">{}</p>", esc(applied.kept));
    if applied.revisions.is_empty() {
        out.push_str("<p id=\"revisions-none\">No release exists now.</p>");
        return out;
    }
    out.push_str("<table id=\"revisions\"><thead><tr><th>Revision</th><th>Updated</th><th>Status</th><th>Chart</th><th>Description</th></tr></thead><tbody>");
    for r in &applied.revisions {
        let desc = crate::redact::redact_chart_text(&r.description, secrets);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"description\">{}</td></tr>",
            r.number,
            esc(&r.updated),
            esc(&r.status),
            esc(&r.chart),
            esc(&desc)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn manifests(applied: &Applied, secrets: &[String]) -> String {
    let Some(text) = &applied.manifest else {
        return String::new();
    };
    let mut out = String::from("<h2>Applied manifests</h2>");
    let docs = match crate::manifest::read(text) {
        Ok(d) => d,
        Err(_) => {
            out.push_str(
                "<p class=\"warn\">The manifests could not be read, so they are not shown.</p>",
            );
            return out;
        }
    };
    let _ = write!(
        out,
        "<p class=\"note\">{} objects; Secret values and generated secrets are redacted.</p><div id=\"manifests\">",
        docs.len()
    );
    let mut shown = 0;
    for doc in &docs {
        let value = redact_object(&doc.value);
        let body = serde_json::to_string_pretty(&value).unwrap_or_default();
        let body = crate::redact::redact_chart_text(&body, secrets);
        if shown + body.len() > MAX_SHOWN {
            out.push_str("<p class=\"warn\">The rest is not shown: too long for a page.</p>");
            break;
        }
        shown += body.len();
        let title = format!(
            "{} {}{}",
            value["kind"].as_str().unwrap_or("?"),
            value["metadata"]["name"].as_str().unwrap_or("?"),
            doc.source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
        let title = crate::redact::redact_chart_text(&title, secrets);
        let _ = write!(
            out,
            "<details class=\"manifest\"><summary>{}</summary><pre>{}</pre></details>",
            esc(&title),
            esc(&body)
        );
    }
    out.push_str("</div>");
    out
}

/// One object with what it holds secret masked: a Secret's values, string
/// fields named for secrets, and `{name: SECRET_NAME, value: ...}` pairs (`env`).
pub fn redact_object(v: &Value) -> Value {
    let mut v = v.clone();
    if v["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(m) = v.get_mut(field).and_then(Value::as_object_mut) {
                for value in m.values_mut() {
                    *value = Value::String(MASK.into());
                }
            }
        }
    }
    mask_named_values(&mut v);
    v
}

fn mask_named_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let named = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(secret_name);
            if named {
                if let Some(value) = m.get_mut("value").filter(|x| x.is_string()) {
                    *value = Value::String(MASK.into());
                }
            }
            // Only strings, and not names: `secretName`, `secretKeyRef` or
            // `automountServiceAccountToken` say where a secret is, not what.
            for (k, value) in m.iter_mut() {
                let names_one = ["name", "ref"]
                    .iter()
                    .any(|t| k.to_ascii_lowercase().ends_with(t));
                if value.is_string() && secret_name(k) && !names_one {
                    *value = Value::String(MASK.into());
                } else {
                    mask_named_values(value);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_named_values),
        _ => {}
    }
}

/// The "Used by" section: instances whose bindings on this one carry its
/// credentials (the reverse of their `uses`). `full` links them.
pub async fn used_by(broker: &Broker, bindings: &[Binding], full: bool) -> String {
    let users: Vec<(&Binding, &str)> = bindings
        .iter()
        .filter_map(|b| b.dependent.as_deref().map(|d| (b, d)))
        .collect();
    if users.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2>Used by</h2><ul id=\"used-by\">");
    for (b, dependent) in users {
        let state = match broker.instance_record(dependent).await {
            Ok(Some(i)) => super::html::state_name(i.state),
            Ok(None) => "gone",
            Err(_) => "unreadable",
        };
        let target = if full {
            format!(
                "<a href=\"/ui/instances/{}\">{}</a>",
                url_part(dependent),
                esc(dependent)
            )
        } else {
            esc(dependent)
        };
        let binding = if b.state == BindingState::Deleted {
            " (binding deleted)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li>{target} <span class=\"state\">{state}</span>{binding}</li>"
        );
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_named_fields_and_env_are_masked() {
        let secret = json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "c2VjcmV0"}, "stringData": {"b": "plain"}, "type": "Opaque"});
        let out = redact_object(&secret);
        assert_eq!(out["data"]["a"], MASK);
        assert_eq!(out["stringData"]["b"], MASK);
        assert_eq!(out["type"], "Opaque");
        let deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "DB_PASSWORD", "value": "hunter2"},
                                    {"name": "DB_HOST", "value": "db"}]}]}}}});
        let out = redact_object(&deploy);
        let env = &out["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], MASK);
        assert_eq!(env[1]["value"], "db");
        let pod = json!({"kind": "Pod", "spec": {"volumes": [{"secret": {"secretName": "creds"}}],
            "automountServiceAccountToken": false}, "metadata": {"annotations": {"api-token": "t0k"}}});
        let out = redact_object(&pod);
        assert_eq!(out["spec"]["volumes"][0]["secret"]["secretName"], "creds");
        assert_eq!(out["spec"]["automountServiceAccountToken"], false);
        assert_eq!(out["metadata"]["annotations"]["api-token"], MASK);
    }
}
