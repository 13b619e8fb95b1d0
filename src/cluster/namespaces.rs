//! The namespaces the broker owns: a `namespace: instance` plan's namespace
//! is created for one instance, labelled and annotated as its own; one of
//! that name the broker did not create for that instance is refused, and
//! only the instance's own is ever deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

use super::{FIELD_MANAGER, Kube, KubeError, MANAGED_BY, is_not_found};
use crate::names::label_value;

/// Annotation naming the instance a namespace was created for (the full
/// id; the label beside it may be a hash).
pub(crate) const INSTANCE_ANNOTATION: &str = "chartbroker.io/instance-id";
/// Label naming the instance a namespace was created for.
pub(crate) const INSTANCE_LABEL: &str = "chartbroker.io/instance";

/// Whether a namespace is the one the broker created for `instance_id`:
/// its managed-by label and its instance annotation.
fn owned_by_instance(ns: &Namespace, instance_id: &str) -> bool {
    let managed = ns
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1);
    let instance = ns
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INSTANCE_ANNOTATION))
        .is_some_and(|v| v == instance_id);
    managed && instance
}

fn check_owner(ns: &Namespace, name: &str, instance_id: &str) -> Result<(), KubeError> {
    if owned_by_instance(ns, instance_id) {
        return Ok(());
    }
    Err(KubeError::NotOwned(format!(
        "namespace {name:?} already exists and was not created by the broker for this \
         instance: a `namespace: instance` plan installs only into a namespace of its own, \
         so nothing was written (use another instance id)"
    )))
}

impl Kube {
    /// A Namespace's labels (None if it does not exist).
    pub(crate) async fn namespace_labels(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KubeError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Namespace {name}")))?;
        Ok(ns.map(|n| n.metadata.labels.unwrap_or_default()))
    }

    /// Creates the namespace of an instance, labelled as the broker's own
    /// and annotated with the instance it belongs to.
    ///
    /// A namespace of that name that is not this instance's own (someone
    /// else's, another tenant's, or another instance's) is refused, and
    /// nothing is written into it: installing there would hand a tenant's
    /// namespace to whoever picked a matching instance id. One the broker
    /// created for this instance on an earlier attempt is used as it is.
    pub(crate) async fn ensure_namespace(
        &self,
        name: &str,
        instance_id: &str,
    ) -> Result<(), KubeError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let existing = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Namespace {name}")))?;
        if let Some(ns) = existing {
            return check_owner(&ns, name, instance_id);
        }
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (INSTANCE_LABEL.to_string(), label_value(instance_id)),
                ])),
                annotations: Some(BTreeMap::from([(
                    INSTANCE_ANNOTATION.to_string(),
                    instance_id.to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        match api.create(&params, &ns).await {
            Ok(_) => Ok(()),
            // Created meanwhile: judged like any existing one.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let ns = api
                    .get(name)
                    .await
                    .map_err(Self::api_err(format!("reading Namespace {name}")))?;
                check_owner(&ns, name, instance_id)
            }
            Err(e) => Err(Self::api_err(format!("creating Namespace {name}"))(e)),
        }
    }

    /// Whether the namespace is the one the broker created for
    /// `instance_id` (None if it does not exist or is being deleted, with
    /// everything in it).
    pub(crate) async fn namespace_owned_by(
        &self,
        name: &str,
        instance_id: &str,
    ) -> Result<Option<bool>, KubeError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Namespace {name}")))?;
        Ok(ns
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .map(|ns| owned_by_instance(&ns, instance_id)))
    }

    /// Deletes a namespace, but only the one the broker created for this
    /// instance (and only that very object: a namespace recreated by
    /// someone else since it was judged is left alone).
    pub(crate) async fn delete_owned_namespace(
        &self,
        name: &str,
        instance_id: &str,
    ) -> Result<(), KubeError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Namespace {name}")))?
        else {
            return Ok(());
        };
        if !owned_by_instance(&ns, instance_id) {
            tracing::warn!(
                namespace = name,
                "not deleting a namespace chartbroker did not create for this instance"
            );
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: ns.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(Self::api_err(format!("deleting Namespace {name}"))(e)),
        }
    }
}
