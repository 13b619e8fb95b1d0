//! The catalog page (services, plans, schemas, policy allowances) and the
//! health page (readiness, store, counters from `/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::html::state_name;
use super::html::{esc, page, span, time};
use super::instances::pretty;
use super::{Access, Denied, LinkQuery, UiState, charts, failed, html_body, upstreams};
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
    // Counted from the store's summary index: the page costs the same at
    // 100,000 instances as at ten.
    let by_state = match s.broker.count_by_state().await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    s.metrics
        .set_operations_in_progress(&s.broker.operations_running());
    let families = charts::families(&s.metrics.encode_text());
    let reload_failures: f64 = families
        .iter()
        .filter(|(name, _)| name.contains("reload_failures"))
        .flat_map(|(_, series)| series.iter().map(|x| x.value))
        .sum();
    let mut body = format!(
        "<table class=\"summary\" id=\"health\"><tr><th>Readiness</th><td>{}</td></tr>\
         <tr><th>Store</th><td>{}</td></tr><tr><th>Engine</th><td>{}</td></tr>\
         <tr><th>Replica</th><td>{}</td></tr><tr><th>Unreadable records</th><td>{}</td></tr>\
         <tr><th>Reload failures</th><td id=\"reload-failures\">{}</td></tr>",
        esc(&ready),
        esc(&s.ui.store),
        esc(&s.ui.engine),
        esc(s.broker.replica()),
        s.store_health.unreadable_count(),
        charts::number(reload_failures)
    );
    for (state, n) in by_state.into_iter().filter(|(_, n)| *n > 0) {
        let state = state_name(state);
        let _ = write!(body, "<tr><th>Instances {state}</th><td>{n}</td></tr>");
    }
    body.push_str("</table>");
    body.push_str(&replicas(&s));
    body.push_str(&upstreams(&s).await);
    body.push_str(&counters(&families));
    html_body(page("Health", true, &body))
}

/// The replicas sharing the store, by their leases.
fn replicas(s: &UiState) -> String {
    let mut out = String::from("<h2>Replicas</h2>");
    let Some(leases) = s.broker.replica_leases() else {
        let why = if s.broker.shares_store() {
            "No leases: this replica could not create its own, so operations are judged by their heartbeats."
        } else {
            "One replica: the store is not shared, so there are no leases."
        };
        let _ = write!(out, "<p class=\"note\" id=\"replicas-none\">{why}</p>");
        return out;
    };
    out.push_str("<table id=\"replicas\"><thead><tr><th>Replica</th><th>Lease</th><th>Renewed</th><th>Seen renewed</th><th>Duration</th><th>State</th></tr></thead><tbody>");
    for l in leases {
        let state = match (l.own, l.live) {
            (true, _) => "this replica",
            (false, true) => "live",
            (false, false) => "lapsed",
        };
        let _ = write!(
            out,
            "<tr class=\"{}\"><td class=\"id\">{}</td><td class=\"id\">{}</td><td>{}</td><td>{} ago</td><td>{}</td><td>{state}</td></tr>",
            if l.live { "succeeded" } else { "failed" },
            esc(&l.holder),
            esc(&l.name),
            esc(l.renewed.as_deref().unwrap_or("-")),
            span(l.seen_secs_ago),
            span(l.duration_secs)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The upstream brokers and whether they answer (probed at most every
/// [`upstreams::PROBE_EVERY`]).
async fn upstreams(s: &UiState) -> String {
    let mut out = String::from("<h2>Upstream brokers</h2>");
    let Some(ups) = &s.ui.upstreams else {
        out.push_str(
            "<p class=\"note\" id=\"upstreams-none\">The catalog names no upstream brokers.</p>",
        );
        return out;
    };
    let _ = write!(
        out,
        "<p class=\"note\">Probed with a catalog request at most every {}s; a page load within that shows the last answer.</p>",
        upstreams::PROBE_EVERY.as_secs()
    );
    out.push_str("<table id=\"upstreams\"><thead><tr><th>Upstream</th><th>Address</th><th>State</th><th>Probed</th></tr></thead><tbody>");
    for r in s.ui.probes.rows(ups).await {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"id\">{}</td><td class=\"reach\">{}</td><td>{}</td></tr>",
            if r.ok { "succeeded" } else { "failed" },
            esc(&r.name),
            esc(&r.origin),
            esc(&r.state),
            r.probed_at.map(time).unwrap_or_else(|| "-".into())
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Every counter as a number, and a small chart of each family that
/// counted something.
fn counters(families: &BTreeMap<String, Vec<charts::Series>>) -> String {
    let mut out = String::from("<h2>Charts</h2><div id=\"charts\">");
    for (name, series) in families {
        if let Some(svg) = charts::bars(name, series) {
            out.push_str(&svg);
        }
    }
    out.push_str("</div><h2>Counters</h2><table id=\"counters\"><thead><tr><th>Metric</th><th>Value</th></tr></thead><tbody>");
    for (name, series) in families {
        for x in series {
            let _ = write!(
                out,
                "<tr><td class=\"id\">{}{}</td><td>{}</td></tr>",
                esc(name),
                esc(&x.labels),
                charts::number(x.value)
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}
