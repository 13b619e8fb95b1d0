//! The instances table (filtered and paged on the server) and one
//! instance's page: operations, bindings, parameters, dependencies.

use super::html::state_name;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::html::{esc, page, span, time, url_part};
use super::masking::{mask, mask_text};
use super::{Access, LinkQuery, UiState, failed, html_body};
use crate::broker::model::{Binding, BindingState, HasOperations, Instance, OpState, Operation};
use crate::broker::summary::{InstanceSummary, SummaryPage, SummaryQuery};
use crate::catalog::{Catalog, ServedBy};

/// Rows per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// Filters and page of the instances table.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    namespace: Option<String>,
    service: Option<String>,
    state: Option<String>,
    page: Option<String>,
}

/// The wire name of a state.
const STATES: &[&str] = &["provisioning", "provision_failed", "ready", "deleted"];

/// Service name, plan name and what serves the plan.
fn names(
    catalog: &Catalog,
    service_id: &str,
    plan_id: &str,
    engine: &str,
) -> (String, String, String) {
    let Some(service) = catalog.services().iter().find(|s| s.id == service_id) else {
        return (service_id.to_string(), plan_id.to_string(), "?".into());
    };
    let Some(plan) = service.plans.iter().find(|p| p.id == plan_id) else {
        return (service.name.clone(), plan_id.to_string(), "?".into());
    };
    let by = match &plan.served_by {
        ServedBy::Chart(_) => format!("chart ({engine})"),
        ServedBy::Upstream(u) => format!("upstream {}", u.broker),
    };
    (service.name.clone(), plan.name.clone(), by)
}

/// The store-side query of the filters: a service by its catalog name or
/// its id; `None` when a filter can match nothing (an unknown state).
fn query(catalog: &Catalog, q: &ListQuery, page_no: usize) -> Option<SummaryQuery> {
    fn want(f: &Option<String>) -> Option<&str> {
        f.as_deref().filter(|v| !v.is_empty())
    }
    let state = match want(&q.state) {
        Some(s) => Some(serde_json::from_value(Value::String(s.into())).ok()?),
        None => None,
    };
    let service_id = want(&q.service).map(|s| {
        catalog
            .services()
            .iter()
            .find(|svc| svc.name == s)
            .map_or_else(|| s.to_string(), |svc| svc.id.clone())
    });
    Some(SummaryQuery {
        namespace: want(&q.namespace).map(str::to_string),
        service_id,
        state,
        offset: (page_no - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    })
}

/// `GET /ui/instances`: one page, read from the store's summary index
/// (filtered and paged there), never every record.
pub(crate) async fn list(
    State(s): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    match s.access(&headers, None, &LinkQuery::default()) {
        Ok(Access::Full) => {}
        Ok(Access::Instance(_)) => return StatusCode::FORBIDDEN.into_response(),
        Err(denied) => return denied.into_response(),
    }
    let catalog = s.broker.catalog();
    let asked = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let (found, offset) = match query(&catalog, &q, asked) {
        Some(sq) => match s.broker.instance_page(&sq).await {
            Ok(v) => v,
            Err(e) => return failed(e),
        },
        None => (
            SummaryPage {
                total: Some(0),
                ..SummaryPage::default()
            },
            0,
        ),
    };
    let page_no = offset / PAGE_SIZE + 1;
    let mut body = filters(&q);
    let _ = match found.total {
        Some(total) => write!(
            body,
            "<p id=\"count\">{total} instances, page {page_no} of {}</p>",
            total.div_ceil(PAGE_SIZE).max(1)
        ),
        None => write!(body, "<p id=\"count\">page {page_no}, more follow</p>"),
    };
    if found.skipped > 0 {
        let _ = write!(
            body,
            "<p class=\"warn\">{} records could not be read.</p>",
            found.skipped
        );
    }
    body.push_str(&rows_table(&catalog, &found.rows, &s.ui.engine));
    body.push_str(&pager(&q, page_no, found.more));
    html_body(page("Instances", true, &body))
}

fn rows_table(catalog: &Catalog, rows: &[InstanceSummary], engine: &str) -> String {
    let now = crate::broker::now();
    let mut body = String::from(
        "<table id=\"instances\"><thead><tr><th>Instance</th><th>Service</th><th>Plan</th><th>Namespace</th><th>State</th><th>Last operation</th><th>Age</th><th>Served by</th></tr></thead><tbody>",
    );
    for i in rows {
        let (service, plan, by) = names(catalog, &i.service_id, &i.plan_id, engine);
        let (op, age) = match i.last_op {
            Some((kind, state)) => (
                format!("{} {}", kind.as_str(), state.as_str()),
                span(now.saturating_sub(i.last_started)),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = write!(
            body,
            "<tr><td class=\"id\"><a href=\"/ui/instances/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"state\" data-state-for=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            url_part(&i.id),
            esc(&i.id),
            esc(&service),
            esc(&plan),
            esc(&i.namespace),
            esc(&i.id),
            state_name(i.state),
            esc(&op),
            esc(&age),
            esc(&by)
        );
    }
    body.push_str("</tbody></table>");
    body
}

fn filters(q: &ListQuery) -> String {
    let v = |f: &Option<String>| esc(f.as_deref().unwrap_or(""));
    let mut states = String::from("<option value=\"\">any</option>");
    for st in STATES {
        let sel = if q.state.as_deref() == Some(st) {
            " selected"
        } else {
            ""
        };
        let _ = write!(states, "<option{sel}>{st}</option>");
    }
    format!(
        "<form method=\"get\" action=\"/ui/instances\" class=\"filters\">\
         <label>Namespace <input name=\"namespace\" value=\"{}\"></label> \
         <label>Service <input name=\"service\" value=\"{}\"></label> \
         <label>State <select name=\"state\">{states}</select></label> \
         <button type=\"submit\">Filter</button></form>",
        v(&q.namespace),
        v(&q.service)
    )
}

fn pager(q: &ListQuery, page_no: usize, more: bool) -> String {
    let link = |n: usize, label: &str, rel: &str| {
        format!(
            "<a rel=\"{rel}\" href=\"/ui/instances?namespace={}&amp;service={}&amp;state={}&amp;page={n}\">{label}</a>",
            url_part(q.namespace.as_deref().unwrap_or("")),
            url_part(q.service.as_deref().unwrap_or("")),
            url_part(q.state.as_deref().unwrap_or(""))
        )
    };
    let mut out = String::from("<p class=\"pager\">");
    if page_no > 1 {
        out.push_str(&link(page_no - 1, "← previous", "prev"));
    }
    if more {
        out.push(' ');
        out.push_str(&link(page_no + 1, "next →", "next"));
    }
    out.push_str("</p>");
    out
}

/// `GET /ui/instances/{id}`: with the credential, or a signed link for `id`.
pub(crate) async fn show(
    State(s): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(link): Query<LinkQuery>,
) -> Response {
    let full = match s.access(&headers, Some(&id), &link) {
        Ok(Access::Full) => true,
        Ok(Access::Instance(granted)) if granted == id => false,
        Ok(Access::Instance(_)) => return StatusCode::FORBIDDEN.into_response(),
        Err(denied) => return denied.into_response(),
    };
    let inst = match s.broker.instance_record(&id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            let body = page("Not found", full, "<p>No such instance.</p>");
            return (StatusCode::NOT_FOUND, html_body(body)).into_response();
        }
        Err(e) => return failed(e),
    };
    let bindings = match s.broker.instance_bindings(&id).await {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let catalog = s.broker.catalog();
    let secrets: Vec<String> = inst
        .secrets
        .strings()
        .into_iter()
        .chain(bindings.iter().flat_map(|b| b.credentials.strings()))
        .collect();
    let upstream = matches!(
        plan_of(&catalog, &inst).map(|p| &p.served_by),
        Some(ServedBy::Upstream(_))
    );
    let mut body = summary(&catalog, &inst, &s.ui.engine);
    body.push_str(&timeline(inst.operations(), &secrets));
    body.push_str(&bindings_table(&catalog, &inst, &bindings, &secrets));
    body.push_str(&parameters(&catalog, &inst, &secrets));
    body.push_str(&dependencies(&inst, full));
    body.push_str(&super::detail::used_by(&s.broker, &bindings, full).await);
    let releases = s.ui.releases.as_deref();
    body.push_str(&super::detail::release(releases, &inst, upstream, &secrets).await);
    html_body(page(&format!("Instance {}", inst.id), full, &body))
}

fn summary(catalog: &Catalog, inst: &Instance, engine: &str) -> String {
    let (service, plan, by) = names(catalog, &inst.service_id, &inst.plan_id, engine);
    format!(
        "<table class=\"summary\"><tr><th>Service</th><td>{}</td></tr><tr><th>Plan</th><td>{}</td></tr>\
         <tr><th>Namespace</th><td>{}</td></tr><tr><th>Release</th><td>{}</td></tr>\
         <tr><th>State</th><td class=\"state\" data-state-for=\"{}\">{}</td></tr><tr><th>Served by</th><td>{}</td></tr></table>",
        esc(&service),
        esc(&plan),
        esc(&inst.namespace),
        esc(&inst.release),
        esc(&inst.id),
        state_name(inst.state),
        esc(&by)
    )
}

fn timeline(ops: &[Operation], secrets: &[String]) -> String {
    let now = crate::broker::now();
    let mut out = String::from(
        "<h2>Operations</h2><table id=\"operations\"><thead><tr><th>Kind</th><th>Started</th><th>Duration</th><th>Outcome</th><th>Description</th></tr></thead><tbody>",
    );
    for o in ops.iter().rev() {
        let took = match o.finished_at {
            Some(f) => span(f.saturating_sub(o.started_at)),
            None => format!("running for {}", span(now.saturating_sub(o.started_at))),
        };
        let class = match o.state {
            OpState::Failed => "failed",
            OpState::Succeeded => "succeeded",
            OpState::InProgress => "running",
        };
        let desc = o
            .description
            .as_deref()
            .map(|d| mask_text(d, secrets))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"description\">{}</td></tr>",
            o.kind.as_str(),
            time(o.started_at),
            esc(&took),
            o.state.as_str(),
            esc(&desc)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn binding_state(s: BindingState) -> &'static str {
    match s {
        BindingState::Binding => "binding",
        BindingState::BindFailed => "bind_failed",
        BindingState::Bound => "bound",
        BindingState::Deleted => "deleted",
    }
}

fn plan_of<'a>(catalog: &'a Catalog, inst: &Instance) -> Option<&'a crate::catalog::Plan> {
    catalog
        .services()
        .iter()
        .find(|s| s.id == inst.service_id)
        .and_then(|s| s.plans.iter().find(|p| p.id == inst.plan_id))
}

fn bindings_table(
    catalog: &Catalog,
    inst: &Instance,
    bindings: &[Binding],
    secrets: &[String],
) -> String {
    // The type the binding Secret is written with, as the service says.
    let secret_type = catalog
        .services()
        .iter()
        .find(|s| s.id == inst.service_id)
        .map_or_else(|| "?".to_owned(), crate::catalog::binding_secret_type);
    let mut out = String::from(
        "<h2>Bindings</h2><table id=\"bindings\"><thead><tr><th>Binding</th><th>State</th><th>Secret</th><th>Type</th><th>For</th><th>Last operation</th></tr></thead><tbody>",
    );
    for b in bindings {
        let secret = b.secret_ref.clone().unwrap_or_else(|| b.secret_ref(inst));
        let last = b
            .operations()
            .last()
            .map(|o| {
                let d = o
                    .description
                    .as_deref()
                    .map(|d| mask_text(d, secrets))
                    .unwrap_or_default();
                format!("{} {} {}", o.kind.as_str(), o.state.as_str(), d)
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td class=\"id\">{}</td><td>{}</td><td>Secret {}/{}</td><td class=\"secret-type\">{}</td><td>{}</td><td class=\"description\">{}</td></tr>",
            esc(&b.id),
            binding_state(b.state),
            esc(&secret.namespace),
            esc(&secret.name),
            esc(&secret_type),
            esc(b.dependent.as_deref().unwrap_or("platform")),
            esc(last.trim())
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn parameters(catalog: &Catalog, inst: &Instance, secrets: &[String]) -> String {
    let schema = plan_of(catalog, inst)
        .and_then(|p| p.schemas.as_ref())
        .and_then(|s| s.pointer("/service_instance/create/parameters"));
    let shown = inst
        .requested_parameters
        .as_ref()
        .unwrap_or(&inst.parameters);
    let masked = mask(shown, schema, secrets);
    let text = serde_json::to_string_pretty(&masked).unwrap_or_default();
    format!(
        "<h2>Parameters</h2><pre id=\"parameters\">{}</pre>",
        esc(&text)
    )
}

fn dependencies(inst: &Instance, full: bool) -> String {
    if inst.dependencies.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2>Uses</h2><ul id=\"uses\">");
    for (name, d) in &inst.dependencies {
        let target = if full {
            format!(
                "<a href=\"/ui/instances/{}\">{}</a>",
                url_part(&d.instance_id),
                esc(&d.instance_id)
            )
        } else {
            esc(&d.instance_id)
        };
        let _ = write!(
            out,
            "<li>{}: {target} (Secret {}/{})</li>",
            esc(name),
            esc(&d.secret.namespace),
            esc(&d.secret.name)
        );
    }
    out.push_str("</ul>");
    out
}

/// The value shown for JSON (used by the catalog page too).
pub(crate) fn pretty(v: &Value) -> String {
    esc(&serde_json::to_string_pretty(v).unwrap_or_default())
}
