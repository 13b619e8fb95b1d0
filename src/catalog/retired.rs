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

/// What removing an instance needs of its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
