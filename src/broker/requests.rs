//! What the edge hands to the core and gets back: plain data, no HTTP types.

use serde_json::Value;

use super::model::{OpState, OriginatingIdentity, Secrets};

/// Facts about the HTTP request that every operation records.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// `accepts_incomplete=true` was sent.
    pub accepts_incomplete: bool,
    /// Decoded `X-Broker-API-Originating-Identity`.
    pub originating_identity: Option<OriginatingIdentity>,
    /// `X-Broker-API-Request-Identity`.
    pub request_identity: Option<String>,
    /// The trust of the credential that authenticated the request.
    pub trust: std::sync::Arc<super::trust::Trust>,
}

/// `PUT /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub struct ProvisionRequest {
    /// From the path.
    pub instance_id: String,
    /// Required.
    pub service_id: String,
    /// Required.
    pub plan_id: String,
    /// The platform's context.
    pub context: Option<Value>,
    /// Deprecated but sent by many platforms.
    pub organization_guid: Option<String>,
    /// Deprecated but sent by many platforms.
    pub space_guid: Option<String>,
    /// Must be an object when present.
    pub parameters: Option<Value>,
    /// `maintenance_info.version`.
    pub maintenance_version: Option<String>,
}

/// `PATCH /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub struct UpdateRequest {
    /// From the path.
    pub instance_id: String,
    /// Required.
    pub service_id: String,
    /// New plan, if changing.
    pub plan_id: Option<String>,
    /// New context.
    pub context: Option<Value>,
    /// Changed parameters (merged over the current ones).
    pub parameters: Option<Value>,
    /// `maintenance_info.version`.
    pub maintenance_version: Option<String>,
}

/// `DELETE /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub struct DeprovisionRequest {
    /// From the path.
    pub instance_id: String,
    /// Required query parameter.
    pub service_id: String,
    /// Required query parameter.
    pub plan_id: String,
}

/// `PUT /v2/service_instances/:instance_id/service_bindings/:binding_id`
#[derive(Clone, Debug, Default)]
pub struct BindRequest {
    /// From the path.
    pub instance_id: String,
    /// From the path.
    pub binding_id: String,
    /// Required.
    pub service_id: String,
    /// Required.
    pub plan_id: String,
    /// Deprecated `app_guid`.
    pub app_guid: Option<String>,
    /// `bind_resource`.
    pub bind_resource: Option<Value>,
    /// Binding context.
    pub context: Option<Value>,
    /// Binding parameters.
    pub parameters: Option<Value>,
    /// For rotation.
    pub predecessor_binding_id: Option<String>,
    /// Set by the broker itself for bindings it makes for a dependent
    /// instance: where the Secret goes, and for whom. Never from the edge.
    pub internal: Option<(super::model::SecretRef, String)>,
}

/// `DELETE .../service_bindings/:binding_id`
#[derive(Clone, Debug, Default)]
pub struct UnbindRequest {
    /// From the path.
    pub instance_id: String,
    /// From the path.
    pub binding_id: String,
    /// Required query parameter.
    pub service_id: String,
    /// Required query parameter.
    pub plan_id: String,
}

/// How a mutating request was answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// 201: created by this request (provision, bind).
    Created,
    /// 200: already there and identical, or applied synchronously.
    Done,
    /// 202: in progress; poll with this operation token.
    Accepted {
        /// The operation token.
        operation: String,
    },
}

/// Answer to provision and update.
#[derive(Clone, Debug)]
pub struct InstanceOutcome {
    /// Status to send.
    pub outcome: Outcome,
    /// Dashboard URL, if any.
    pub dashboard_url: Option<String>,
}

/// Answer to bind.
#[derive(Clone, Debug)]
pub struct BindOutcome {
    /// Status to send.
    pub outcome: Outcome,
    /// Credentials (never on 202).
    pub credentials: Option<Secrets>,
}

/// `GET /v2/service_instances/:instance_id`
#[derive(Clone, Debug)]
pub struct InstanceView {
    /// Service id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Dashboard URL.
    pub dashboard_url: Option<String>,
    /// Parameters.
    pub parameters: Value,
    /// Maintenance version.
    pub maintenance_version: Option<String>,
}

/// `GET .../service_bindings/:binding_id`
#[derive(Clone, Debug)]
pub struct BindingView {
    /// Credentials.
    pub credentials: Secrets,
    /// Parameters.
    pub parameters: Value,
}

/// A `last_operation` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct LastOperation {
    /// State.
    pub state: OpState,
    /// Message.
    pub description: Option<String>,
    /// Failed update/deprovision only.
    pub instance_usable: Option<bool>,
    /// Failed update only.
    pub update_repeatable: Option<bool>,
}
