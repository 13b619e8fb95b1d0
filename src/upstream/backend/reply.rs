//! Classifying upstream answers: statuses, OSB error bodies,
//! `last_operation` states and credentials, and the messages the platform
//! sees for each.

use serde_json::{Map, Value};

use crate::broker::model::Secrets;
use crate::upstream::client::{Endpoint, Reply, UpstreamError};

/// What an operation acts on upstream.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    Instance(&'a str),
    Binding(&'a str, &'a str),
}

impl<'a> Target<'a> {
    pub(super) fn endpoint(self) -> Endpoint<'a> {
        match self {
            Target::Instance(i) => Endpoint::Instance(i),
            Target::Binding(i, b) => Endpoint::Binding(i, b),
        }
    }

    pub(super) fn last_operation(self) -> Endpoint<'a> {
        match self {
            Target::Instance(i) => Endpoint::InstanceLastOperation(i),
            Target::Binding(i, b) => Endpoint::BindingLastOperation(i, b),
        }
    }

    pub(super) fn noun(self) -> &'static str {
        match self {
            Target::Instance(_) => "service instance",
            Target::Binding(..) => "service binding",
        }
    }

    pub(super) fn remove_verb(self) -> &'static str {
        match self {
            Target::Instance(_) => "deprovision",
            Target::Binding(..) => "unbind",
        }
    }
}

/// A failed upstream operation, as its `last_operation` described it.
pub(super) struct LastOp {
    pub(super) description: Option<String>,
    pub(super) instance_usable: Option<bool>,
    pub(super) update_repeatable: Option<bool>,
}

pub(super) fn is_concurrency_error(r: &Reply) -> bool {
    r.status == 422
        && r.osb_error()
            .and_then(|e| e.error)
            .is_some_and(|e| e == "ConcurrencyError")
}

pub(super) fn operation_of(r: &Reply) -> Option<String> {
    r.object()
        .ok()?
        .get("operation")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

pub(super) fn status_error(r: &Reply, broker: &str) -> UpstreamError {
    UpstreamError::Status {
        broker: broker.to_owned(),
        code: r.status,
        error: r.osb_error(),
    }
}

pub(super) fn describe(res: &Result<Reply, UpstreamError>, broker: &str) -> String {
    match res {
        Ok(r) => status_error(r, broker).to_string(),
        Err(e) => e.to_string(),
    }
}

/// The message for a 4xx answer to a create, update or delete.
pub(super) fn rejected(r: &Reply, broker: &str, target: Target<'_>) -> String {
    let osb = r.osb_error().map(|e| format!(": {e}")).unwrap_or_default();
    match r.status {
        409 => format!(
            "conflict upstream: broker {broker} already has a {} with this id but different attributes (HTTP 409){osb}",
            target.noun()
        ),
        404 => format!(
            "upstream broker {broker} does not know this {} (HTTP 404){osb}",
            target.noun()
        ),
        400 => format!("upstream broker {broker} rejected the request as invalid (HTTP 400){osb}"),
        422 => format!("upstream broker {broker} could not process the request (HTTP 422){osb}"),
        code => format!("upstream broker {broker} refused the request (HTTP {code}){osb}"),
    }
}

/// `state` and the failure fields of a `last_operation` answer.
pub(super) fn last_operation(r: &Reply) -> Result<(String, LastOp), String> {
    let m = r.object()?;
    let state = m
        .get("state")
        .and_then(Value::as_str)
        .ok_or("it has no `state` string")?
        .to_owned();
    Ok((
        state,
        LastOp {
            description: m
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.trim().is_empty())
                .map(str::to_owned),
            instance_usable: m.get("instance_usable").and_then(Value::as_bool),
            update_repeatable: m.get("update_repeatable").and_then(Value::as_bool),
        },
    ))
}

/// Credentials from a bind or fetch-binding body: absent means none.
pub(super) fn credentials(body: &Map<String, Value>) -> Result<Secrets, String> {
    match body.get("credentials") {
        None | Some(Value::Null) => Ok(Secrets::default()),
        Some(v @ Value::Object(_)) => Ok(Secrets::from_value(v.clone())),
        Some(_) => Err("`credentials` is not a JSON object".into()),
    }
}

pub(super) fn upstream_failed(broker: &str, what: &str, lo: &LastOp) -> String {
    match &lo.description {
        Some(d) => format!("upstream broker {broker} reported the {what} failed: {d}"),
        None => format!("upstream broker {broker} reported the {what} failed"),
    }
}

pub(super) fn timed_out(broker: &str, what: &str, last: &str) -> String {
    format!(
        "upstream broker {broker} did not finish the {what} within the plan's maximum_polling_duration (last answer: {last})"
    )
}

pub(super) fn insert_opt(m: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.to_owned(), v.clone());
    }
}
