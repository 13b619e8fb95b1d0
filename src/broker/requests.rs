//! What the edge hands to the core and gets back: plain data, no HTTP types.

use serde_json::Value;

use super::model::{OpState, OriginatingIdentity, Secrets};

/// Facts about the HTTP request that every operation records.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestMeta {
    /// `accepts_incomplete=true` was sent.
    pub(crate) accepts_incomplete: bool,
    /// Decoded `X-Broker-API-Originating-Identity`.
    pub(crate) originating_identity: Option<OriginatingIdentity>,
    /// `X-Broker-API-Request-Identity`.
    pub(crate) request_identity: Option<String>,
    /// The trust of the credential that authenticated the request.
    pub(crate) trust: std::sync::Arc<super::trust::Trust>,
}

/// `PUT /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub(crate) struct ProvisionRequest {
    /// From the path.
    pub(crate) instance_id: String,
    /// Required.
    pub(crate) service_id: String,
    /// Required.
    pub(crate) plan_id: String,
    /// The platform's context.
    pub(crate) context: Option<Value>,
    /// Deprecated but sent by many platforms.
    pub(crate) organization_guid: Option<String>,
    /// Deprecated but sent by many platforms.
    pub(crate) space_guid: Option<String>,
    /// Must be an object when present.
    pub(crate) parameters: Option<Value>,
    /// `maintenance_info.version`.
    pub(crate) maintenance_version: Option<String>,
}

/// `PATCH /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateRequest {
    /// From the path.
    pub(crate) instance_id: String,
    /// Required.
    pub(crate) service_id: String,
    /// New plan, if changing.
    pub(crate) plan_id: Option<String>,
    /// New context.
    pub(crate) context: Option<Value>,
    /// Changed parameters (merged over the current ones).
    pub(crate) parameters: Option<Value>,
    /// `maintenance_info.version`.
    pub(crate) maintenance_version: Option<String>,
}

/// `DELETE /v2/service_instances/:instance_id`
#[derive(Clone, Debug, Default)]
pub(crate) struct DeprovisionRequest {
    /// From the path.
    pub(crate) instance_id: String,
    /// Required query parameter.
    pub(crate) service_id: String,
    /// Required query parameter.
    pub(crate) plan_id: String,
}

/// `PUT /v2/service_instances/:instance_id/service_bindings/:binding_id`
#[derive(Clone, Debug, Default)]
pub(crate) struct BindRequest {
    /// From the path.
    pub(crate) instance_id: String,
    /// From the path.
    pub(crate) binding_id: String,
    /// Required.
    pub(crate) service_id: String,
    /// Required.
    pub(crate) plan_id: String,
    /// Deprecated `app_guid`.
    pub(crate) app_guid: Option<String>,
    /// `bind_resource`.
    pub(crate) bind_resource: Option<Value>,
    /// Binding context.
    pub(crate) context: Option<Value>,
    /// Binding parameters.
    pub(crate) parameters: Option<Value>,
    /// For rotation.
    pub(crate) predecessor_binding_id: Option<String>,
    /// Set by the broker itself for bindings it makes for a dependent
    /// instance: where the Secret goes, and for whom. Never from the edge.
    pub(crate) internal: Option<(super::model::SecretRef, String)>,
}

/// `DELETE .../service_bindings/:binding_id`
#[derive(Clone, Debug, Default)]
pub(crate) struct UnbindRequest {
    /// From the path.
    pub(crate) instance_id: String,
    /// From the path.
    pub(crate) binding_id: String,
    /// Required query parameter.
    pub(crate) service_id: String,
    /// Required query parameter.
    pub(crate) plan_id: String,
}

/// How a mutating request was answered.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
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
pub(crate) struct InstanceOutcome {
    /// Status to send.
    pub(crate) outcome: Outcome,
    /// Dashboard URL, if any.
    pub(crate) dashboard_url: Option<String>,
}

/// Answer to bind.
#[derive(Clone, Debug)]
pub(crate) struct BindOutcome {
    /// Status to send.
    pub(crate) outcome: Outcome,
    /// Credentials (never on 202).
    pub(crate) credentials: Option<Secrets>,
}

/// `GET /v2/service_instances/:instance_id`
#[derive(Clone, Debug)]
pub(crate) struct InstanceView {
    /// Service id.
    pub(crate) service_id: String,
    /// Plan id.
    pub(crate) plan_id: String,
    /// Dashboard URL.
    pub(crate) dashboard_url: Option<String>,
    /// Parameters.
    pub(crate) parameters: Value,
    /// Maintenance version.
    pub(crate) maintenance_version: Option<String>,
}

/// `GET .../service_bindings/:binding_id`
#[derive(Clone, Debug)]
pub struct BindingView {
    /// Credentials.
    pub(crate) credentials: Secrets,
    /// Parameters.
    pub(crate) parameters: Value,
}

/// A `last_operation` answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LastOperation {
    /// State.
    pub(crate) state: OpState,
    /// Message.
    pub(crate) description: Option<String>,
    /// Failed update/deprovision only.
    pub(crate) instance_usable: Option<bool>,
    /// Failed update only.
    pub(crate) update_repeatable: Option<bool>,
}
