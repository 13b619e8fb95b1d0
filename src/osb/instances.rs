//! `/v2/service_instances/:instance_id` and its `last_operation`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{OsbJson, OsbPath, OsbQuery, flag, non_empty};
use super::headers::OriginIdentity;
use crate::api_version::ApiVersion;
use crate::broker::model::OpState;
use crate::broker::requests::{
    DeprovisionRequest, InstanceOutcome, LastOperation, Outcome, ProvisionRequest, RequestMeta,
    UpdateRequest,
};
use crate::broker::{Broker, BrokerError};

/// Routes of this resource group.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v2/service_instances/{instance_id}",
            get(fetch).put(provision).patch(update).delete(deprovision),
        )
        .route(
            "/v2/service_instances/{instance_id}/last_operation",
            get(last_operation),
        )
        .route_layer(axum::middleware::from_fn(super::extract::valid_ids))
}

/// Query parameters the instance routes accept.
#[derive(Deserialize, Default)]
pub(crate) struct InstanceQuery {
    /// `accepts_incomplete`.
    pub(crate) accepts_incomplete: Option<String>,
    /// `service_id`.
    pub(crate) service_id: Option<String>,
    /// `plan_id`.
    pub(crate) plan_id: Option<String>,
    /// `operation`.
    pub(crate) operation: Option<String>,
}

#[derive(Deserialize, Default)]
struct MaintenanceInfo {
    version: Option<String>,
}

#[derive(Deserialize)]
struct ProvisionBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    context: Option<Value>,
    organization_guid: Option<String>,
    space_guid: Option<String>,
    parameters: Option<Value>,
    maintenance_info: Option<MaintenanceInfo>,
}

#[derive(Deserialize)]
struct UpdateBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    context: Option<Value>,
    parameters: Option<Value>,
    maintenance_info: Option<MaintenanceInfo>,
}

/// Facts of the request every operation records.
pub(crate) fn meta(
    q_accepts: &Option<String>,
    identity: OriginIdentity,
    headers: &axum::http::HeaderMap,
) -> RequestMeta {
    RequestMeta {
        accepts_incomplete: flag(q_accepts),
        originating_identity: identity.0,
        trust: identity.1,
        request_identity: headers
            .get(&super::headers::REQUEST_IDENTITY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

async fn provision(
    State(app): State<super::AppState>,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    identity: OriginIdentity,
    headers: axum::http::HeaderMap,
    OsbJson(body): OsbJson<ProvisionBody>,
) -> Result<Response, ApiError> {
    let broker = &app.broker;
    let organization_guid = non_empty(body.organization_guid);
    let space_guid = non_empty(body.space_guid);
    // The spec marks both REQUIRED and non-empty, deprecated in favour of
    // `context`; both public conformance suites expect 400 without them.
    // Some Kubernetes platforms send empty ones next to a `context` object,
    // which replaces them: only a request carrying neither is refused. Any
    // non-empty value is taken as sent (Crossplane's provider-osb requires
    // them in its spec and sends UUIDs).
    if !body.context.as_ref().is_some_and(Value::is_object) {
        for (field, value) in [
            ("organization_guid", &organization_guid),
            ("space_guid", &space_guid),
        ] {
            if value.is_none() {
                return Err(ApiError::BadRequest(format!(
                    "{field} is required (a non-empty string) when no context object is sent"
                )));
            }
        }
    }
    let link = super::dashboard_url(&app, &instance_id);
    let req = ProvisionRequest {
        instance_id,
        service_id: body.service_id.unwrap_or_default(),
        plan_id: body.plan_id.unwrap_or_default(),
        context: body.context,
        organization_guid,
        space_guid,
        parameters: body.parameters,
        maintenance_version: body.maintenance_info.and_then(|m| non_empty(m.version)),
    };
    let mut out = broker
        .provision(req, meta(&q.accepts_incomplete, identity, &headers))
        .await?;
    out.dashboard_url = out.dashboard_url.or(link);
    Ok(instance_outcome(out))
}

async fn update(
    State(app): State<super::AppState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    identity: OriginIdentity,
    headers: axum::http::HeaderMap,
    OsbJson(body): OsbJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let broker = &app.broker;
    // A fresh link: the platform keeps the last one it was given.
    let link = super::dashboard_url(&app, &instance_id);
    let req = UpdateRequest {
        instance_id,
        service_id: body.service_id.unwrap_or_default(),
        plan_id: non_empty(body.plan_id),
        context: body.context,
        parameters: body.parameters,
        maintenance_version: body.maintenance_info.and_then(|m| non_empty(m.version)),
    };
    let mut out = broker
        .update(req, meta(&q.accepts_incomplete, identity, &headers))
        .await
        .map_err(|e| failure_for(e, version))?;
    out.dashboard_url = out.dashboard_url.or(link);
    Ok(instance_outcome(out))
}

async fn deprovision(
    State(broker): State<Broker>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    identity: OriginIdentity,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let req = DeprovisionRequest {
        instance_id,
        service_id: q.service_id.clone().unwrap_or_default(),
        plan_id: q.plan_id.clone().unwrap_or_default(),
    };
    let out = broker
        .deprovision(req, meta(&q.accepts_incomplete, identity, &headers))
        .await
        .map_err(|e| failure_for(e, version))?;
    Ok(outcome(out, Map::new()))
}

async fn fetch(
    State(app): State<super::AppState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    caller: super::auth::Caller,
) -> Result<Response, ApiError> {
    let broker = &app.broker;
    broker.check_read(&instance_id, &caller.0).await?;
    let v = broker.fetch_instance(&instance_id).await?;
    let mut body = json!({
        "service_id": v.service_id,
        "plan_id": v.plan_id,
        "parameters": v.parameters,
    });
    if let Some(d) = v
        .dashboard_url
        .or_else(|| super::dashboard_url(&app, &instance_id))
    {
        body["dashboard_url"] = json!(d);
    }
    if let Some(m) = v.maintenance_version.filter(|_| version.has_v2_15_fields()) {
        body["maintenance_info"] = json!({"version": m});
    }
    Ok(Json(body).into_response())
}

async fn last_operation(
    State(broker): State<Broker>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(q): OsbQuery<InstanceQuery>,
    caller: super::auth::Caller,
) -> Result<Response, ApiError> {
    broker.check_read(&instance_id, &caller.0).await?;
    let op = broker
        .instance_last_operation_for(
            &instance_id,
            q.operation.as_deref(),
            caller.0.deprovision_poll,
        )
        .await?;
    Ok(last_operation_response(op, version))
}

/// A failed synchronous update or deprovision carries `instance_usable` and
/// `update_repeatable` only for platforms speaking 2.16 or later, which
/// defined them.
fn failure_for(e: BrokerError, version: ApiVersion) -> BrokerError {
    match e {
        BrokerError::OperationFailed { error, with_flags } => BrokerError::OperationFailed {
            error,
            with_flags: with_flags && version.has_v2_16_fields(),
        },
        other => other,
    }
}

/// How soon a platform should poll again while an operation runs.
const RETRY_AFTER_SECS: &str = "2";

/// A `last_operation` body (instances and bindings share it), with the
/// fields `version` defines: `instance_usable` and `update_repeatable` from
/// 2.16, the polling delay (`Retry-After`) from 2.15.
pub(crate) fn last_operation_response(op: LastOperation, version: ApiVersion) -> Response {
    let mut body = json!({ "state": op.state.as_str() });
    if let Some(d) = op.description {
        body["description"] = json!(d);
    }
    if version.has_v2_16_fields() {
        if let Some(u) = op.instance_usable {
            body["instance_usable"] = json!(u);
        }
        if let Some(r) = op.update_repeatable {
            body["update_repeatable"] = json!(r);
        }
    }
    let mut resp = Json(body).into_response();
    if op.state == OpState::InProgress && version.has_v2_15_fields() {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    resp
}

fn instance_outcome(out: InstanceOutcome) -> Response {
    let mut extra = Map::new();
    if let Some(d) = out.dashboard_url {
        extra.insert("dashboard_url".into(), json!(d));
    }
    outcome(out.outcome, extra)
}

/// Status and body for an [`Outcome`]: 201/200 with `extra`, 202 with the
/// operation.
pub(crate) fn outcome(outcome: Outcome, mut body: Map<String, Value>) -> Response {
    let status = match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Done => StatusCode::OK,
        Outcome::Accepted { operation } => {
            body.insert("operation".into(), json!(operation));
            StatusCode::ACCEPTED
        }
    };
    (status, Json(Value::Object(body))).into_response()
}
