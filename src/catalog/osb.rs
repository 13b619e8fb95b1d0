//! The `GET /v2/catalog` body.
//!
//! Built from wire structs listing only OSB fields, so broker-only settings
//! (`chart`, `upstream`, `async_required`, secrets) cannot leak by adding a
//! field to the model. Serialized once per loaded catalog.

use ring::digest;
use serde::Serialize;
use serde_json::Value;

use super::{MaintenanceInfo, Plan, Service};

#[derive(Serialize)]
struct WireCatalog<'a> {
    services: Vec<WireService<'a>>,
}

#[derive(Serialize)]
struct WireService<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    tags: &'a [String],
    requires: &'a [String],
    bindable: bool,
    instances_retrievable: bool,
    bindings_retrievable: bool,
    allow_context_updates: bool,
    plan_updateable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_client: Option<&'a Value>,
    plans: Vec<WirePlan<'a>>,
}

#[derive(Serialize)]
struct WirePlan<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bindable: Option<bool>,
    binding_rotatable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_updateable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schemas: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_polling_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maintenance_info: Option<WireMaintenanceInfo<'a>>,
}

#[derive(Serialize)]
struct WireMaintenanceInfo<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

impl<'a> From<&'a Service> for WireService<'a> {
    fn from(s: &'a Service) -> Self {
        WireService {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            tags: &s.tags,
            requires: &s.requires,
            bindable: s.bindable,
            instances_retrievable: s.instances_retrievable,
            bindings_retrievable: s.bindings_retrievable,
            allow_context_updates: s.allow_context_updates,
            plan_updateable: s.plan_updateable,
            metadata: s.metadata.as_ref(),
            dashboard_client: s.dashboard_client.as_ref(),
            plans: s.plans.iter().map(WirePlan::from).collect(),
        }
    }
}

impl<'a> From<&'a Plan> for WirePlan<'a> {
    fn from(p: &'a Plan) -> Self {
        WirePlan {
            id: &p.id,
            name: &p.name,
            description: &p.description,
            metadata: p.metadata.as_ref(),
            free: p.free,
            bindable: p.bindable,
            binding_rotatable: p.binding_rotatable,
            plan_updateable: p.plan_updateable,
            schemas: p.schemas.as_ref(),
            maximum_polling_duration: p.maximum_polling_duration,
            maintenance_info: p.maintenance_info.as_ref().map(|m: &MaintenanceInfo| {
                WireMaintenanceInfo {
                    version: &m.version,
                    description: m.description.as_deref(),
                }
            }),
        }
    }
}

/// Serializes the catalog response body.
pub(super) fn body(services: &[Service]) -> Vec<u8> {
    let wire = WireCatalog {
        services: services.iter().map(WireService::from).collect(),
    };
    serde_json::to_vec(&wire).expect("catalog wire types always serialize")
}

/// A strong ETag for `body`: changes whenever the served bytes do.
pub(super) fn etag(body: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, body);
    let hex: String = hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}
