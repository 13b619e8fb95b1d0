//! Plans the operator removed from the catalog while instances of them
//! live. Deleting an instance must not depend on its plan still being
//! offered, so each instance keeps a [`Teardown`]: what removing it needs of
//! its plan (where its release and users live, or which upstream broker
//! holds it). A delete whose plan is gone runs on a stand-in plan built from
//! it, which serves deletes only and is never offered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    BindingUsers, ChartLimits, ChartPlan, ChartSource, NamespaceStrategy, Plan, ServedBy, Service,
    UpstreamPlan, schema::Validators,
};

/// What removing an instance needs of its plan. Stored in every instance
/// record as an object tagged by `served_by` (see the `Deserialize` impl).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "served_by", rename_all = "snake_case")]
pub enum Teardown {
    /// A Helm release.
    Chart {
        /// The plan's service, by name (for messages and Secret labels).
        service: String,
        /// The plan's name.
        plan: String,
        /// The release has a namespace of its own, deleted with it.
        own_namespace: bool,
        /// Its PersistentVolumeClaims are deleted too.
        delete_pvcs: bool,
        /// Bindings' own database users (`chart.binding_users`).
        binding_users: Option<BindingUsers>,
    },
    /// An instance held by an upstream broker.
    Upstream {
        /// The plan's service, by name.
        service: String,
        /// The plan's name.
        plan: String,
        /// Which broker, and its ids.
        upstream: UpstreamPlan,
    },
}

/// Reads what `#[serde(tag = "served_by")]` writes, without serde's
/// derived reader for tagged enums: that one buffers the whole object
/// (every key and value allocated as serde's `Content`) before it knows
/// the variant, and cost 17,000 instructions of the 46,000 of parsing an
/// instance record, which every `last_operation` poll does. Same rules:
/// unknown fields are ignored, and a variant's fields are required as the
/// derive required them (`binding_users` may be absent or null). One
/// difference: a field of the other variant (which the broker never
/// writes) must still have its type.
impl<'de> Deserialize<'de> for Teardown {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum ServedByTag {
            Chart,
            Upstream,
        }

        /// Either variant's fields.
        #[derive(Deserialize)]
        struct Fields {
            served_by: Option<ServedByTag>,
            service: Option<String>,
            plan: Option<String>,
            own_namespace: Option<bool>,
            delete_pvcs: Option<bool>,
            #[serde(default)]
            binding_users: Option<BindingUsers>,
            upstream: Option<UpstreamPlan>,
        }

        fn need<T, E: Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(name))
        }
        let f = Fields::deserialize(d)?;
        let service = need(f.service, "service")?;
        let plan = need(f.plan, "plan")?;
        match need(f.served_by, "served_by")? {
            ServedByTag::Chart => Ok(Teardown::Chart {
                service,
                plan,
                own_namespace: need(f.own_namespace, "own_namespace")?,
                delete_pvcs: need(f.delete_pvcs, "delete_pvcs")?,
                binding_users: f.binding_users,
            }),
            ServedByTag::Upstream => Ok(Teardown::Upstream {
                service,
                plan,
                upstream: need(f.upstream, "upstream")?,
            }),
        }
    }
}

impl Teardown {
    /// What removing an instance of `plan` needs.
    pub(crate) fn of(service: &Service, plan: &Plan) -> Teardown {
        let (service, name) = (service.name.clone(), plan.name.clone());
        match &plan.served_by {
            ServedBy::Chart(c) => Teardown::Chart {
                service,
                plan: name,
                own_namespace: c.namespace == NamespaceStrategy::Instance,
                delete_pvcs: c.delete_pvcs,
                binding_users: c.binding_users.clone(),
            },
            ServedBy::Upstream(u) => Teardown::Upstream {
                service,
                plan: name,
                upstream: u.clone(),
            },
        }
    }

    /// A service with one plan, `plan_id`, that can only remove instances:
    /// no values, credentials, schemas or policy, never in the catalog.
    pub(crate) fn stand_in(&self, service_id: &str, plan_id: &str) -> Service {
        let (service, plan, served_by) = match self {
            Teardown::Chart {
                service,
                plan,
                own_namespace,
                delete_pvcs,
                binding_users,
            } => (
                service,
                plan,
                ServedBy::Chart(Box::new(ChartPlan {
                    // Uninstalling never reads the chart.
                    source: ChartSource::Local(PathBuf::new()),
                    namespace: if *own_namespace {
                        NamespaceStrategy::Instance
                    } else {
                        NamespaceStrategy::Context
                    },
                    values: serde_json::Value::Null,
                    secrets: BTreeMap::new(),
                    credentials: serde_json::Value::Null,
                    policy: Default::default(),
                    lookups: BTreeMap::new(),
                    uses: BTreeMap::new(),
                    binding_namespaces: Vec::new(),
                    wait: false,
                    delete_pvcs: *delete_pvcs,
                    binding_users: binding_users.clone(),
                    limits: ChartLimits::default(),
                })),
            ),
            Teardown::Upstream {
                service,
                plan,
                upstream,
            } => (service, plan, ServedBy::Upstream(upstream.clone())),
        };
        let description = "removed from the catalog; serves deletes only".to_string();
        Service {
            id: service_id.to_string(),
            name: service.clone(),
            description: description.clone(),
            tags: Vec::new(),
            requires: Vec::new(),
            bindable: true,
            instances_retrievable: false,
            bindings_retrievable: false,
            allow_context_updates: false,
            plan_updateable: false,
            metadata: None,
            dashboard_client: None,
            binding: None,
            plans: vec![Plan {
                id: plan_id.to_string(),
                name: plan.clone(),
                description,
                free: None,
                bindable: Some(true),
                plan_updateable: Some(false),
                binding_rotatable: false,
                maximum_polling_duration: None,
                maintenance_info: None,
                metadata: None,
                schemas: None,
                async_required: false,
                served_by,
                validators: Validators::default(),
            }],
        }
    }
}
