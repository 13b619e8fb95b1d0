//! `/v2/service_instances/:instance_id/service_bindings/:binding_id` and its
//! `last_operation`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{OsbJson, OsbPath, OsbQuery, non_empty};
use super::headers::OriginIdentity;
use super::instances::{InstanceQuery, last_operation_response, meta, outcome};
use crate::api_version::ApiVersion;
use crate::broker::Broker;
use crate::broker::requests::{BindRequest, UnbindRequest};

/// Routes of this resource group.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}",
            get(fetch).put(bind).delete(unbind),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
            get(last_operation),
        )
        .route_layer(axum::middleware::from_fn(super::extract::valid_ids))
}

#[derive(Deserialize)]
struct BindBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    app_guid: Option<String>,
    bind_resource: Option<Value>,
    context: Option<Value>,
    parameters: Option<Value>,
    predecessor_binding_id: Option<String>,
}

async fn bind(
    State(broker): State<Broker>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    identity: OriginIdentity,
    headers: axum::http::HeaderMap,
    OsbJson(body): OsbJson<BindBody>,
) -> Result<Response, ApiError> {
    if body
        .bind_resource
        .as_ref()
        .is_some_and(|r| !r.is_object() && !r.is_null())
    {
        return Err(ApiError::BadRequest(
            "bind_resource must be a JSON object".into(),
        ));
    }
    let req = BindRequest {
        instance_id,
        binding_id,
        service_id: body.service_id.unwrap_or_default(),
        plan_id: body.plan_id.unwrap_or_default(),
        app_guid: non_empty(body.app_guid),
        // Conformance suites send `{}` for an absent bind_resource.
        bind_resource: body
            .bind_resource
            .filter(|r| r.as_object().is_some_and(|o| !o.is_empty())),
        context: body.context.filter(|c| !c.is_null()),
        parameters: body.parameters,
        predecessor_binding_id: non_empty(body.predecessor_binding_id),
        internal: None,
    };
    let out = broker
        .bind(req, meta(&q.accepts_incomplete, identity, &headers))
        .await?;
    let mut extra = Map::new();
    if let Some(c) = out.credentials {
        extra.insert("credentials".into(), c.to_value());
    }
    Ok(outcome(out.outcome, extra))
}

async fn unbind(
    State(broker): State<Broker>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    identity: OriginIdentity,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let req = UnbindRequest {
        instance_id,
        binding_id,
        service_id: q.service_id.clone().unwrap_or_default(),
        plan_id: q.plan_id.clone().unwrap_or_default(),
    };
    let out = broker
        .unbind(req, meta(&q.accepts_incomplete, identity, &headers))
        .await?;
    Ok(outcome(out, Map::new()))
}

async fn fetch(
    State(broker): State<Broker>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    caller: super::auth::Caller,
) -> Result<Response, ApiError> {
    broker.check_read(&instance_id, &caller.0).await?;
    let v = broker.fetch_binding(&instance_id, &binding_id).await?;
    Ok(Json(json!({
        "credentials": v.credentials.to_value(),
        "parameters": v.parameters,
    }))
    .into_response())
}

async fn last_operation(
    State(broker): State<Broker>,
    version: ApiVersion,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    caller: super::auth::Caller,
) -> Result<Response, ApiError> {
    broker.check_read(&instance_id, &caller.0).await?;
    let op = broker
        .binding_last_operation(&instance_id, &binding_id, q.operation.as_deref())
        .await?;
    Ok(last_operation_response(op, version))
}
