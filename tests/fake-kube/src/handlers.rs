//! HTTP routing: fixed endpoints (version, health, discovery, OpenAPI) and
//! one handler that parses resource paths the way the API server lays them
//! out:
//!
//! ```text
//! /api/v1/{resource}[/{name}[/{subresource}]]                       cluster-scoped, or all namespaces
//! /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]       namespaced
//! /apis/{group}/{version}/...                                       the same for named groups
//! /api/v1/watch/...                                                 legacy watch paths
//! ```
//!
//! Every request is logged (see [`crate::FakeKube::requests`]) and checked
//! against the injected faults first. Bodies may be JSON, YAML (apply) or
//! protobuf (Secrets, ConfigMaps, Namespaces, DeleteOptions); replies are
//! always JSON.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::discovery::{self, ResourceType};
use crate::openapi;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{self, ApiError, PatchKind, WatchEvent, WriteOpts};
use crate::{FakeKube, protobuf};

/// Watches without `timeoutSeconds` end after this long; clients reconnect.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The axum router serving `kube`'s state; mount it anywhere (or give it to
/// kube-rs as an in-process transport).
pub fn router(kube: FakeKube) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/api", get(api_versions))
        .route("/api/", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/apis/", get(api_groups))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*path}", get(openapi_doc))
        .fallback(resource)
        // Release records of big charts approach the real 3 MiB limit.
        .layer(DefaultBodyLimit::max(16 << 20))
        .layer(middleware::from_fn_with_state(kube.clone(), log_and_faults))
        .with_state(kube)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.status())
    }
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn log_and_faults(State(kube): State<FakeKube>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |pq| pq.to_string());
    kube.inner
        .requests
        .lock()
        .unwrap()
        .push((method.clone(), path.clone()));
    let fault = {
        let mut faults = kube.inner.faults.lock().unwrap();
        let idx = faults.iter().position(|f| {
            (f.method == "*" || f.method == method) && req.uri().path().starts_with(&f.path_prefix)
        });
        idx.map(|i| faults.remove(i))
    };
    match fault {
        Some(f) => ApiError::from_code(
            f.status,
            format!("injected fault: {} {}", f.method, f.path_prefix),
        )
        .into_response(),
        None => next.run(req).await,
    }
}

async fn version() -> Response {
    json_response(StatusCode::OK, &discovery::version())
}

async fn ok() -> &'static str {
    "ok"
}

async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_response(StatusCode::OK, &discovery::api_versions(host))
}

async fn api_groups(State(kube): State<FakeKube>) -> Response {
    let types = kube.inner.store.lock().unwrap().types();
    json_response(StatusCode::OK, &discovery::api_group_list(&types))
}

async fn openapi_index(State(kube): State<FakeKube>) -> Response {
    let types = kube.inner.store.lock().unwrap().types();
    json_response(StatusCode::OK, &openapi::index(&types))
}

async fn openapi_doc(State(kube): State<FakeKube>, uri: Uri) -> Response {
    let types = kube.inner.store.lock().unwrap().types();
    let key = uri.path().trim_start_matches("/openapi/v3/");
    match openapi::document(&types, key) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => not_found_path().into_response(),
    }
}

/// A parsed resource path.
struct Target {
    rt: ResourceType,
    /// `Some` for a namespaced path (`/namespaces/{ns}/...`).
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    /// Legacy `/watch/` path.
    watch: bool,
}

/// Parses `/api/v1/...` or `/apis/{g}/{v}/...`; `Ok(None)` is a discovery
/// document request, answered directly.
fn parse_path(kube: &FakeKube, path: &str) -> Result<Result<Target, Value>, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => {
            let types = kube.inner.store.lock().unwrap().types();
            return discovery::api_group_doc(&types, group)
                .map(Err)
                .ok_or_else(not_found_path);
        }
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found_path()),
    };
    let store = kube.inner.store.lock().unwrap();
    if rest.is_empty() {
        return discovery::api_resource_list(&store.types(), group, version)
            .map(Err)
            .ok_or_else(not_found_path);
    }
    let mut watch = false;
    if rest[0] == "watch" {
        watch = true;
        rest = &rest[1..];
    }
    let (namespace, rest) = match rest {
        ["namespaces", _ns, "status" | "finalize"] => (None, rest),
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found_path()),
    };
    let rt = store
        .resolve(group, version, plural)
        .ok_or_else(not_found_path)?;
    // A namespaced resource by name needs its namespace; a cluster-scoped
    // one has none.
    if (rt.namespaced && namespace.is_none() && name.is_some())
        || (!rt.namespaced && namespace.is_some())
    {
        return Err(not_found_path());
    }
    if let Some(sub) = &subresource {
        let known = (sub == "status" && rt.status_subresource)
            || (rt.plural == "namespaces" && rt.group.is_empty() && sub == "finalize")
            || (rt.plural == "serviceaccounts" && rt.group.is_empty() && sub == "token");
        if !known {
            return Err(not_found_path());
        }
    }
    Ok(Ok(Target {
        rt,
        namespace,
        name,
        subresource,
        watch,
    }))
}

/// Decodes a request body by its content type.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let ctype = content_type(headers);
    if ctype == "application/vnd.kubernetes.protobuf" {
        return protobuf::decode(body).map_err(|e| ApiError::new(415, "UnsupportedMediaType", e));
    }
    if ctype.contains("yaml") {
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The field manager of a write: `fieldManager`, else what the real server
/// derives from the User-Agent (its part before the first `/`).
fn write_opts(q: &HashMap<String, String>, headers: &HeaderMap) -> WriteOpts {
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string()
    });
    WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        manager,
        force: q.get("force").is_some_and(|v| v == "true"),
    }
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

async fn resource(
    State(kube): State<FakeKube>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&kube, method, uri.path(), &q, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn handle(
    kube: &FakeKube,
    method: Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let target = match parse_path(kube, path)? {
        Ok(t) => t,
        Err(doc) if method == Method::GET => return Ok(json_response(StatusCode::OK, &doc)),
        Err(_) => {
            return Err(ApiError::from_code(
                405,
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let rt = &target.rt;
    let ns = target.namespace.as_deref().unwrap_or("");
    let status_only = target.subresource.as_deref() == Some("status");
    let not_allowed = || {
        ApiError::from_code(
            405,
            "the server does not allow this method on the requested resource",
        )
    };
    if rt.create_only {
        return match (&method, &target.name) {
            (&Method::POST, None) => review(kube, rt, ns, decode_body(headers, body)?),
            _ => Err(not_allowed()),
        };
    }
    if target.subresource.as_deref() == Some("token") {
        let (&Method::POST, Some(name)) = (&method, target.name.as_deref()) else {
            return Err(not_allowed());
        };
        return token_request(kube, rt, ns, name, decode_body(headers, body)?);
    }
    let watching = target.watch || q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let mut store = kube.inner.store.lock().unwrap();
    match (method, target.name.as_deref()) {
        (Method::GET, Some(name)) if !watching => {
            Ok(json_response(StatusCode::OK, &store.get(rt, ns, name)?))
        }
        (Method::GET, name) if watching => {
            let (labels, mut fields) = selectors(q)?;
            if let Some(name) = name {
                fields = FieldSelector::parse(&format!("metadata.name={name}")).expect("valid");
            }
            let ns = target.namespace.clone();
            Ok(watch(&store, rt.clone(), ns, labels, fields, q))
        }
        (Method::GET, None) => {
            let (labels, fields) = selectors(q)?;
            let items = store.list(rt, target.namespace.as_deref(), &labels, &fields);
            Ok(json_response(
                StatusCode::OK,
                &paginate(rt, items, store.resource_version(), q)?,
            ))
        }
        (Method::POST, None) => {
            let obj = decode_body(headers, body)?;
            let created = store.create(rt, ns, obj, &write_opts(q, headers))?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::PUT, Some(name)) => {
            let obj = decode_body(headers, body)?;
            let updated = store.replace(rt, ns, name, obj, &write_opts(q, headers), status_only)?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (Method::PATCH, Some(name)) => {
            let kind = match content_type(headers).as_str() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/json-patch+json" => PatchKind::Json,
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other})"
                        ),
                    ));
                }
            };
            // Apply, unlike other writes, has no User-Agent fallback.
            if matches!(kind, PatchKind::Apply) && !q.contains_key("fieldManager") {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let (obj, created) = store.patch(
                rt,
                ns,
                name,
                kind,
                body,
                &write_opts(q, headers),
                status_only,
            )?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &obj))
        }
        (Method::DELETE, Some(name)) => {
            let options = decode_body(headers, body)?;
            let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
                || options["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let obj = store.delete(rt, ns, name, &options, dry_run)?;
            Ok(delete_response(rt, &obj))
        }
        (Method::DELETE, None) => {
            let options = decode_body(headers, body)?;
            let (labels, fields) = selectors(q)?;
            let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
            let mut deleted = Vec::new();
            for obj in store.list(rt, target.namespace.as_deref(), &labels, &fields) {
                let meta = |field: &str| {
                    obj["metadata"][field]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                };
                let (obj_ns, name) = (meta("namespace"), meta("name"));
                deleted.push(store.delete(rt, &obj_ns, &name, &options, dry_run)?);
            }
            let list = store::list_object(rt, deleted, store.resource_version());
            Ok(json_response(StatusCode::OK, &list))
        }
        _ => Err(not_allowed()),
    }
}

/// Most resources answer a DELETE with a success `Status`; namespaces and
/// custom resources with the object; anything still held by finalizers with
/// the object and 202 Accepted.
fn delete_response(rt: &ResourceType, obj: &Value) -> Response {
    if obj["metadata"]["deletionTimestamp"].is_string()
        && obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    {
        return json_response(StatusCode::ACCEPTED, obj);
    }
    let builtin = discovery::builtin()
        .iter()
        .any(|b| b.group == rt.group && b.plural == rt.plural);
    if !builtin || rt.plural == "namespaces" {
        return json_response(StatusCode::OK, obj);
    }
    json_response(StatusCode::OK, &store::deleted_status(rt, obj))
}

/// `limit` and `continue` (the token is an opaque offset).
fn paginate(
    rt: &ResourceType,
    items: Vec<Value>,
    rv: u64,
    q: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let start: usize = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => token
            .strip_prefix("fake-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?,
        None => 0,
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let end = start + page.len();
    let mut list = store::list_object(rt, page, rv);
    if end < total {
        list["metadata"]["continue"] = json!(format!("fake-{end}"));
        list["metadata"]["remainingItemCount"] = json!(total - end);
    }
    Ok(list)
}

/// TokenRequest (`serviceaccounts/{name}/token`): a token naming the
/// account, for an account that exists (the fake checks no token, so this
/// only lets a client that asks for one go on, as against a real server).
fn token_request(
    kube: &FakeKube,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut body: Value,
) -> Result<Response, ApiError> {
    kube.inner.store.lock().unwrap().get(rt, ns, name)?;
    if !body.is_object() {
        body = json!({});
    }
    body["apiVersion"] = json!("authentication.k8s.io/v1");
    body["kind"] = json!("TokenRequest");
    body["status"] = json!({
        "token": format!("fake-token-{ns}-{name}"),
        "expirationTimestamp": "2099-01-01T00:00:00Z",
    });
    Ok(json_response(StatusCode::CREATED, &body))
}

/// SubjectAccessReview and friends: the review comes back with a `status`.
fn review(
    kube: &FakeKube,
    rt: &ResourceType,
    ns: &str,
    mut body: Value,
) -> Result<Response, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if rt.namespaced {
        body["metadata"]["namespace"] = json!(ns);
        if body["spec"]["resourceAttributes"].is_object() {
            body["spec"]["resourceAttributes"]["namespace"] = json!(ns);
        }
    }
    let rule = kube.inner.authorizer.read().unwrap().clone();
    let allowed = rule(&body["spec"]);
    body["apiVersion"] = json!(rt.api_version());
    body["kind"] = json!(rt.kind);
    body["status"] = if allowed {
        json!({"allowed": true, "reason": "allowed by the fake-kube authorizer"})
    } else {
        json!({"allowed": false, "reason": "denied by the fake-kube authorizer"})
    };
    Ok(json_response(StatusCode::CREATED, &body))
}

/// A watch stream: newline-separated `{"type", "object"}` events.
///
/// Without a `resourceVersion` (or with `"0"`), the current objects come
/// first as ADDED events; with one, the changes after it (or a 410 ERROR
/// event when those are no longer kept); with `sendInitialEvents=true`, the
/// current objects then a BOOKMARK marking their end. Then live changes,
/// until `timeoutSeconds` (default 5 minutes). Selectors filter on the
/// changed object (an object that stops matching sends no DELETED).
fn watch(
    store: &store::Store,
    rt: ResourceType,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    q: &HashMap<String, String>,
) -> Response {
    // Subscribing while the caller holds the store lock: no change can fall
    // between the initial events and the live ones.
    let mut rx = store.subscribe();
    let current_rv = store.resource_version();
    let matches = move |e: &WatchEvent| {
        e.group == rt.group
            && e.plural == rt.plural
            && ns.as_deref().is_none_or(|ns| e.namespace == ns)
            && labels.matches(&e.object["metadata"]["labels"])
            && fields.matches(&e.object)
    };
    let mut initial: Vec<Bytes> = Vec::new();
    let mut timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let from = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0");
    match from {
        Some(from) if !send_initial => match from
            .parse::<u64>()
            .ok()
            .and_then(|rv| store.events_since(rv))
        {
            Some(events) => initial.extend(
                events
                    .iter()
                    .filter(|e| matches(e))
                    .map(|e| event_line(e.kind, &e.object)),
            ),
            None => {
                let gone = ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {from} ({current_rv})"),
                );
                initial.push(event_line("ERROR", &gone.status()));
                timeout = Duration::ZERO;
            }
        },
        _ => {
            for e in store.snapshot() {
                if matches(&e) {
                    initial.push(event_line("ADDED", &e.object));
                }
            }
            if send_initial {
                let bookmark = json!({
                    "kind": "", "apiVersion": "",
                    "metadata": {"resourceVersion": current_rv.to_string(),
                                 "annotations": {"k8s.io/initial-events-end": "true"}},
                });
                initial.push(event_line("BOOKMARK", &bookmark));
            }
        }
    }
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                _ = &mut deadline => return,
                event = rx.recv() => match event {
                    Ok(e) if e.rv > current_rv && matches(&e) => {
                        if tx.send(event_line(e.kind, &e.object)).await.is_err() {
                            return; // the client went away
                        }
                    }
                    Ok(_) => {}
                    // A watcher too slow to keep up must start over, as
                    // with a real server: end the stream.
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
}
