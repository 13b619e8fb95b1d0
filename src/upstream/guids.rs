//! `organization_guid` and `space_guid` for upstream provisions.
//!
//! The spec still marks both REQUIRED on provision, and brokers built on the
//! mainstream OSB frameworks (openbrokerapi, Spring Cloud Open Service
//! Broker, brokerapi) refuse a provision without them. Kubernetes platforms
//! send a `context` instead, and our edge accepts that, so the upstream
//! needs values the platform never gave. They are derived from what stays
//! fixed for an instance's life (the cluster id of its context and its
//! namespace), not stored: a restarted broker, or another replica, sends the
//! same values for the same instance without any record of them.

use serde_json::Value;
use uuid::Uuid;

use crate::broker::model::Instance;

/// The UUIDv5 namespace of derived values. Never change it: every instance
/// provisioned upstream would get other values on its next provision retry.
pub(crate) const NAMESPACE: Uuid = uuid::uuid!("8137cb36-5daa-4f7c-9edf-a4ebd12a4ea6");

/// Values an operator fixed for one upstream (`organization_guid`,
/// `space_guid` in its entry), used when the platform sent none.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fixed {
    /// Sent as `organization_guid`.
    pub(crate) organization: Option<String>,
    /// Sent as `space_guid`.
    pub(crate) space: Option<String>,
}

/// The pair sent upstream with a provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Guids {
    /// `organization_guid`.
    pub(crate) organization: String,
    /// `space_guid`.
    pub(crate) space: String,
}

/// Each value, in order of preference: what the platform sent; the same
/// field of the context (the Cloud Foundry profile puts it there, and
/// frameworks refuse a top-level value that differs from it); the
/// operator's fixed value; the value derived from the cluster and
/// namespace.
pub(crate) fn for_instance(inst: &Instance, fixed: &Fixed) -> Guids {
    let from_context = |field: &str| non_empty(inst.context.get(field));
    let cluster = non_empty(inst.context.get("clusterid")).unwrap_or_default();
    let pick =
        |sent: &Option<String>, field: &str, fixed: &Option<String>, derive: &dyn Fn() -> Uuid| {
            sent.clone()
                .filter(|s| !s.is_empty())
                .or_else(|| from_context(field))
                .or_else(|| fixed.clone())
                .unwrap_or_else(|| derive().to_string())
        };
    Guids {
        organization: pick(
            &inst.organization_guid,
            "organization_guid",
            &fixed.organization,
            &|| organization(&cluster),
        ),
        space: pick(&inst.space_guid, "space_guid", &fixed.space, &|| {
            space(&cluster, &inst.namespace)
        }),
    }
}

/// The organization of a cluster: UUIDv5 of `organization:<clusterid>`.
pub(crate) fn organization(cluster: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("organization:{cluster}").as_bytes())
}

/// The space of a namespace in a cluster: UUIDv5 of
/// `space:<clusterid>/<namespace>` (a namespace has no `/`, so the last one
/// separates them).
pub(crate) fn space(cluster: &str, namespace: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("space:{cluster}/{namespace}").as_bytes(),
    )
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance(context: Value, namespace: &str) -> Instance {
        serde_json::from_value(json!({
            "id": "i-1", "service_id": "s", "plan_id": "p", "parameters": {},
            "context": context, "organization_guid": null, "space_guid": null,
            "maintenance_version": null, "release": "cb-i-1", "namespace": namespace,
            "secrets": {}, "dashboard_url": null, "state": "provisioning",
            "provision_fingerprint": "f", "operations": []
        }))
        .expect("an instance record")
    }

    fn k8s(cluster: &str, ns: &str) -> Instance {
        instance(
            json!({"platform": "kubernetes", "clusterid": cluster, "namespace": ns}),
            ns,
        )
    }

    #[test]
    fn derived_values_are_stable_per_cluster_and_namespace() {
        let none = Fixed::default();
        let a = for_instance(&k8s("c-1", "apps"), &none);
        // Pinned (computed with Python's uuid.uuid5): the values must never
        // change between releases.
        assert_eq!(a.organization, "164cfd3e-02c3-50da-9c0e-f640e81d6957");
        assert_eq!(a.space, "6cc24af8-9db1-5714-b1a7-6fec1cdb4051");
        // Same cluster and namespace, another instance: the same pair.
        let mut other = k8s("c-1", "apps");
        other.id = "i-2".into();
        other.context["instance_name"] = json!("db");
        assert_eq!(for_instance(&other, &none), a);
        // Another namespace: same organization, another space.
        let b = for_instance(&k8s("c-1", "web"), &none);
        assert_eq!(b.organization, a.organization);
        assert_ne!(b.space, a.space);
        // Another cluster: both differ.
        let c = for_instance(&k8s("c-2", "apps"), &none);
        assert_ne!(c.organization, a.organization);
        assert_ne!(c.space, a.space);
        // No cluster id (or an empty one): still a fixed pair per namespace.
        let d = for_instance(&instance(json!({"namespace": "apps"}), "apps"), &none);
        assert_eq!(d, for_instance(&k8s("", "apps"), &none));
        assert_ne!(d.space, a.space);
    }

    #[test]
    fn what_the_platform_or_operator_gave_wins() {
        let fixed = Fixed {
            organization: Some("org-op".into()),
            space: Some("space-op".into()),
        };
        let mut i = k8s("c-1", "apps");
        i.organization_guid = Some("org-sent".into());
        i.space_guid = Some(String::new());
        let g = for_instance(&i, &fixed);
        assert_eq!(g.organization, "org-sent");
        assert_eq!(g.space, "space-op");
        // Only one fixed: the other is derived.
        let g = for_instance(
            &k8s("c-1", "apps"),
            &Fixed {
                organization: Some("org-op".into()),
                space: None,
            },
        );
        assert_eq!(g.organization, "org-op");
        assert_eq!(g.space, space("c-1", "apps").to_string());
        // The Cloud Foundry profile's context carries them.
        let cf = instance(
            json!({"platform": "cloudfoundry", "organization_guid": "o-cf", "space_guid": "s-cf"}),
            "default",
        );
        let g = for_instance(&cf, &fixed);
        assert_eq!(
            (g.organization.as_str(), g.space.as_str()),
            ("o-cf", "s-cf")
        );
    }
}
