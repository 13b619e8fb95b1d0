//! Binding Secrets applied into the app's namespace by the broker's own
//! Kubernetes client (the `helm` engine's [`SecretSink`]).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::helm_engine::kube_err;
use super::render::{OWNER_KEYS, binding_annotations, string_data};
use crate::broker::model::{SecretRef, Secrets};
use crate::broker::ports::{BackendError, BindingCtx, SecretSink};
use crate::cluster::{Kube, MANAGED_BY};
use crate::names::label_value;

/// Binding Secrets applied into the target namespace.
pub(crate) struct KubeSink {
    kube: Kube,
}

impl KubeSink {
    /// A sink over `kube`.
    pub(crate) fn new(kube: Kube) -> Self {
        KubeSink { kube }
    }
}

/// Whether a Secret's annotations say it is this binding's: a binding is
/// the pair (instance, binding), as both sinks write them.
fn owned_by(annotations: &BTreeMap<String, String>, ctx: &BindingCtx<'_>) -> bool {
    binding_annotations(ctx)
        .iter()
        .filter(|(k, _)| OWNER_KEYS.contains(&k.as_str()))
        .all(|(k, v)| annotations.get(k) == Some(v))
}

#[async_trait]
impl SecretSink for KubeSink {
    async fn put(
        &self,
        ctx: BindingCtx<'_>,
        credentials: &Secrets,
    ) -> Result<SecretRef, BackendError> {
        let inst = ctx.instance.instance;
        let secret = ctx.binding.secret_ref(inst);
        // Never take over a Secret someone else owns: a platform user could
        // otherwise name an app's own Secret, or another instance's binding
        // Secret (binding ids are chosen by platforms and need not be
        // unique across instances), and overwrite it.
        if let Some((annotations, _)) = self
            .kube
            .secret_owner_info(&secret.namespace, &secret.name)
            .await
            .map_err(kube_err)?
        {
            if !owned_by(&annotations, &ctx) {
                return Err(BackendError::new(format!(
                    "Secret {}/{} already exists and does not belong to this binding; choose another secret_name",
                    secret.namespace, secret.name
                )));
            }
        }
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            ("chartbroker.io/instance".to_string(), label_value(&inst.id)),
            (
                "chartbroker.io/binding".to_string(),
                label_value(&ctx.binding.id),
            ),
        ]);
        let annotations = binding_annotations(&ctx);
        let data = string_data(ctx.instance.service, credentials)
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        let type_ = crate::catalog::binding_secret_type(ctx.instance.service);
        self.kube
            .apply_secret(
                &secret.namespace,
                &secret.name,
                &type_,
                labels,
                annotations,
                data,
            )
            .await
            .map_err(kube_err)?;
        Ok(secret)
    }

    async fn delete(&self, ctx: BindingCtx<'_>, secret: &SecretRef) -> Result<(), BackendError> {
        let info = match self
            .kube
            .secret_owner_info(&secret.namespace, &secret.name)
            .await
        {
            Ok(info) => info,
            // A namespace that is gone took its Secrets with it, and the
            // broker's RoleBinding there too, hence the 403.
            Err(e)
                if e.is_forbidden()
                    && matches!(
                        self.kube.namespace_labels(&secret.namespace).await,
                        Ok(None)
                    ) =>
            {
                None
            }
            Err(e) => return Err(kube_err(e)),
        };
        let Some((annotations, uid)) = info else {
            return Ok(());
        };
        if !owned_by(&annotations, &ctx) {
            tracing::warn!(namespace = %secret.namespace, secret = %secret.name,
                "not deleting a binding Secret that belongs to another binding");
            return Ok(());
        }
        match uid {
            Some(uid) => self
                .kube
                .delete_secret_with_uid(&secret.namespace, &secret.name, &uid)
                .await
                .map_err(kube_err),
            None => self
                .kube
                .delete_secret(&secret.namespace, &secret.name)
                .await
                .map_err(kube_err),
        }
    }
}
