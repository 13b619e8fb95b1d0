//! The core's error type. Each variant's doc states its OSB wire result; the
//! edge maps them in exactly one place (`osb::error`).

use super::ports::{BackendError, StoreError};

/// Why the broker refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// 400 `{"description": ...}`: malformed or missing data, unknown ids,
    /// parameters failing the plan's schema.
    #[error("{0}")]
    BadRequest(String),
    /// 404 `{"description": ...}`: no such instance or binding (or not yet
    /// provisioned / bound).
    #[error("{0}")]
    NotFound(String),
    /// 403 `{"error": "Forbidden"}`: the originating user may not act in the
    /// target namespace (checked with a SubjectAccessReview).
    #[error("{0}")]
    Forbidden(String),
    /// 409 `{"description": ...}`: same id, different attributes.
    #[error("{0}")]
    Conflict(String),
    /// 410 `{"description": ...}`: the instance or binding does not exist
    /// (deprovision, unbind) or its async delete finished (last_operation).
    #[error("{0}")]
    Gone(String),
    /// 422 `{"error": "AsyncRequired"}`.
    #[error(
        "This service plan requires client support for asynchronous operations (accepts_incomplete=true)."
    )]
    AsyncRequired,
    /// 422 `{"error": "ConcurrencyError"}`: another operation is in progress.
    #[error("{0}")]
    Concurrency(String),
    /// 422 `{"error": "MaintenanceInfoConflict"}`.
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    /// 422 `{"error": "PlanChangeNotSupported"}`: the plan is not updateable.
    #[error("{0}")]
    PlanChangeNotSupported(String),
    /// 422 `{"description": ...}`: the request cannot be served in the
    /// instance's current state.
    #[error("{0}")]
    Unprocessable(String),
    /// 500 with the backend's (redacted) message, plus `instance_usable` /
    /// `update_repeatable` when the failed request was an update or
    /// deprovision: a synchronous operation failed in the backend.
    #[error("{}", .error.message)]
    OperationFailed {
        /// What the backend said.
        error: BackendError,
        /// Whether the usable/repeatable flags belong in the body.
        with_flags: bool,
    },
    /// 503 `{"description": ...}`: the broker is not ready (store or catalog).
    #[error("{0}")]
    Unavailable(String),
    /// 500 with a generic description; the detail is only logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        match e {
            // Not a broker bug to hide behind "see the log": the operator
            // must act (give this replica the shared key), so say so.
            StoreError::Unreadable(why) => BrokerError::Unavailable(why),
            e => BrokerError::Internal(e.to_string()),
        }
    }
}

/// Result alias for the core.
pub(crate) type Result<T, E = BrokerError> = std::result::Result<T, E>;
