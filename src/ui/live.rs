//! Live updates: a Server-Sent Events stream of the states of the
//! instances a page shows, and the static files (served from the binary;
//! the CSP forbids inline script and style).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::{Map, json};

use super::html::state_name;
use super::{Access, LinkQuery, UiState};
use crate::broker::model::HasOperations;

/// Instances one stream may follow (a page shows at most this many).
const MAX_IDS: usize = 100;
/// How often states are read again.
const EVERY: Duration = Duration::from_secs(2);

/// `GET /ui/events?id=..&id=..`: every two seconds an event `states` with
/// `{id: {state, op}}`. A signed link follows its one instance, until it
/// expires.
pub(crate) async fn events(
    State(s): State<UiState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut ids = Vec::new();
    let mut link = LinkQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "id" if ids.len() < MAX_IDS => ids.push(v),
            "expires" => link.expires = Some(v),
            "sig" => link.sig = Some(v),
            _ => {}
        }
    }
    let single = (ids.len() == 1).then(|| ids[0].clone());
    let until = match s.access(&headers, single.as_deref(), &link) {
        Ok(Access::Full) => u64::MAX,
        Ok(Access::Instance(id)) if single.as_deref() == Some(&id) => link
            .expires
            .as_deref()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0),
        Ok(Access::Instance(_)) => return StatusCode::FORBIDDEN.into_response(),
        Err(denied) => return denied.into_response(),
    };
    Sse::new(stream(s, ids, until))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn stream(
    s: UiState,
    ids: Vec<String>,
    until: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(true, move |first| {
        let (s, ids) = (s.clone(), ids.clone());
        async move {
            if !first {
                tokio::time::sleep(EVERY).await;
            }
            if crate::broker::now() >= until {
                return None;
            }
            let mut states = Map::new();
            for id in &ids {
                if let Ok(Some(i)) = s.broker.instance_record(id).await {
                    let op = i
                        .operations()
                        .last()
                        .map(|o| {
                            format!("{} {} {}", o.kind.as_str(), o.state.as_str(), o.started_at)
                        })
                        .unwrap_or_default();
                    states.insert(id.clone(), json!({"state": state_name(i.state), "op": op}));
                }
            }
            let event = Event::default().event("states").json_data(states).ok()?;
            Some((Ok(event), false))
        }
    })
}

/// `GET /ui/static/ui.css`.
pub(crate) async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/ui.css"),
    )
        .into_response()
}

/// `GET /ui/static/live.js`.
pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/live.js"),
    )
        .into_response()
}

/// `GET /ui/static/icon.svg` (named by every page, so no browser asks for
/// `/favicon.ico`).
pub(crate) async fn icon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        include_str!("static/icon.svg"),
    )
        .into_response()
}
