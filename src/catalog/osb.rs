//! The `GET /v2/catalog` body.
//!
//! Built from wire structs listing only OSB fields, so broker-only settings
//! (`chart`, `upstream`, `async_required`, secrets) cannot leak by adding a
//! field to the model. Serialized once per loaded catalog and API version:
//! each version gets only the fields it defines ([`ApiVersion`]).

use ring::digest;
use serde::Serialize;
use serde_json::Value;

use super::{MaintenanceInfo, Plan, Service};
use crate::api_version::ApiVersion;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    instances_retrievable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bindings_retrievable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_context_updates: Option<bool>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    binding_rotatable: Option<bool>,
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

impl<'a> WireService<'a> {
    fn new(s: &'a Service, v: ApiVersion) -> Self {
        WireService {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            tags: &s.tags,
            requires: &s.requires,
            bindable: s.bindable,
            instances_retrievable: v.has_retrievable().then_some(s.instances_retrievable),
            bindings_retrievable: v.has_retrievable().then_some(s.bindings_retrievable),
            allow_context_updates: v.has_v2_15_fields().then_some(s.allow_context_updates),
            plan_updateable: s.plan_updateable,
            metadata: s.metadata.as_ref(),
            dashboard_client: s.dashboard_client.as_ref(),
            plans: s.plans.iter().map(|p| WirePlan::new(p, v)).collect(),
        }
    }
}

impl<'a> WirePlan<'a> {
    fn new(p: &'a Plan, v: ApiVersion) -> Self {
        let v2_15 = v.has_v2_15_fields();
        WirePlan {
            id: &p.id,
            name: &p.name,
            description: &p.description,
            metadata: p.metadata.as_ref(),
            free: p.free,
            bindable: p.bindable,
            binding_rotatable: v.has_binding_rotation().then_some(p.binding_rotatable),
            plan_updateable: p.plan_updateable.filter(|_| v2_15),
            schemas: p.schemas.as_ref(),
            maximum_polling_duration: p.maximum_polling_duration.filter(|_| v2_15),
            maintenance_info: p.maintenance_info.as_ref().filter(|_| v2_15).map(
                |m: &MaintenanceInfo| WireMaintenanceInfo {
                    version: &m.version,
                    description: m.description.as_deref(),
                },
            ),
        }
    }
}

/// Serializes the catalog response body for platforms speaking `v`.
pub(super) fn body(services: &[Service], v: ApiVersion) -> Vec<u8> {
    let wire = WireCatalog {
        services: services.iter().map(|s| WireService::new(s, v)).collect(),
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
