//! The catalog page (services, plans, schemas, policy allowances) and the
//! health page (readiness, store, counters from `/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::html::{esc, page};
use super::instances::{pretty, state_name};
use super::{Access, Denied, LinkQuery, UiState, failed, html_body};
use crate::catalog::ServedBy;

fn full(s: &UiState, headers: &HeaderMap) -> Result<(), Denied> {
    match s.access(headers, None, &LinkQuery::default()) {
        Ok(Access::Full) => Ok(()),
        Ok(Access::Instance(_)) => Err(Denied::Forbidden),
        Err(denied) => Err(denied),
    }
}

/// `GET /ui/catalog`.
pub(crate) async fn catalog(State(s): State<UiState>, headers: HeaderMap) -> Response {
    if let Err(denied) = full(&s, &headers) {
        return denied.into_response();
    }
    let catalog = s.broker.catalog();
    let mut body = String::new();
    for service in catalog.services() {
        let _ = write!(
            body,
            "<section class=\"service\"><h2>{}</h2><p>{}</p><p class=\"id\">id {} · bindable {}</p>",
            esc(&service.name),
            esc(&service.description),
            esc(&service.id),
            service.bindable
        );
        for plan in &service.plans {
            let (by, allows, secrets) = match &plan.served_by {
                ServedBy::Chart(c) => {
                    let a = c.policy.allowances();
                    let allows = if a.is_empty() {
                        "default policy (Pod Security restricted)".to_owned()
                    } else {
                        a.join("; ")
                    };
                    let names: Vec<&str> = c.secrets.keys().map(String::as_str).collect();
                    ("chart".to_owned(), allows, names.join(", "))
                }
                ServedBy::Upstream(u) => {
                    (format!("upstream {}", u.broker), "-".into(), String::new())
                }
            };
            let _ = write!(
                body,
                "<div class=\"plan\"><h3>{} / {}</h3><p>{}</p><table><tr><th>Plan id</th><td>{}</td></tr>\
                 <tr><th>Served by</th><td>{}</td></tr><tr><th>Allows beyond the default</th><td class=\"allowances\">{}</td></tr>\
                 <tr><th>Generated secrets</th><td>{}</td></tr></table>",
                esc(&service.name),
                esc(&plan.name),
                esc(&plan.description),
                esc(&plan.id),
                esc(&by),
                esc(&allows),
                esc(&secrets)
            );
            if let Some(schemas) = &plan.schemas {
                let _ = write!(
                    body,
                    "<details><summary>Parameter schemas</summary><pre>{}</pre></details>",
                    pretty(schemas)
                );
            }
            body.push_str("</div>");
        }
        body.push_str("</section>");
    }
    html_body(page("Catalog", true, &body))
}

/// `GET /ui/health`.
pub(crate) async fn health(State(s): State<UiState>, headers: HeaderMap) -> Response {
    if let Err(denied) = full(&s, &headers) {
        return denied.into_response();
    }
    let ready = match s.store_health.problem() {
        Some(reason) => format!("store unreadable: {reason}"),
        None if s.ready.load(Ordering::Acquire) => "ready".into(),
        None => "starting".into(),
    };
    let (all, skipped) = match s.broker.all_instances().await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &all {
        *by_state.entry(state_name(i.state)).or_default() += 1;
    }
    let mut body = format!(
        "<table class=\"summary\" id=\"health\"><tr><th>Readiness</th><td>{}</td></tr>\
         <tr><th>Store</th><td>{}</td></tr><tr><th>Engine</th><td>{}</td></tr>\
         <tr><th>Replica</th><td>{}</td></tr><tr><th>Unreadable records</th><td>{}</td></tr>",
        esc(&ready),
        esc(&s.ui.store),
        esc(&s.ui.engine),
        esc(s.broker.replica()),
        s.store_health.unreadable_count() + skipped
    );
    for (state, n) in by_state {
        let _ = write!(body, "<tr><th>Instances {state}</th><td>{n}</td></tr>");
    }
    body.push_str("</table><h2>Counters</h2><table id=\"counters\"><thead><tr><th>Metric</th><th>Value</th></tr></thead><tbody>");
    s.metrics
        .set_operations_in_progress(&s.broker.operations_running());
    for line in s.metrics.encode_text().lines() {
        if line.starts_with('#') || line.is_empty() || line.contains("_bucket{") {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ') {
            let _ = write!(
                body,
                "<tr><td class=\"id\">{}</td><td>{}</td></tr>",
                esc(name),
                esc(value)
            );
        }
    }
    body.push_str("</tbody></table>");
    html_body(page("Health", true, &body))
}
