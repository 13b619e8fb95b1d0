//! The one module that talks to the Kubernetes API (kube-rs).
//!
//! It writes binding Secrets by server-side apply (field manager
//! `chartbroker`), reads the objects credential templates may refer to,
//! manages the namespaces the broker owns (`namespaces.rs`), mints the
//! release identity's tokens helm runs with (`identity.rs`), and lists or
//! deletes what a release left behind. Every write is namespaced; nothing here touches
//! cluster-scoped objects except Namespaces the broker created itself.

mod identity;
mod namespaces;
mod readiness;

pub(crate) use identity::CallKubeconfig;
pub use identity::IdentityNames;

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

/// The field manager of everything the broker applies.
pub(crate) const FIELD_MANAGER: &str = "chartbroker";
/// Label on every object the broker creates itself.
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "chartbroker");

/// Kubernetes API failures, with the API's own message.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The client could not be configured (kubeconfig, in-cluster).
    #[error("kubernetes client configuration: {0}")]
    Config(String),
    /// An object of that name exists and is not the broker's to use.
    #[error("{0}")]
    NotOwned(String),
    /// A call failed.
    #[error("kubernetes API: {action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

impl KubeError {
    /// Whether the API server refused the call (403).
    pub(crate) fn is_forbidden(&self) -> bool {
        matches!(self, KubeError::Api { source: kube::Error::Api(s), .. } if s.code == 403)
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A Kubernetes client for the broker's own needs.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    /// Where the API server is, to point helm at it with the release
    /// identity's token (unknown for a client built in-process).
    access: Option<std::sync::Arc<identity::ClusterAccess>>,
}

impl Kube {
    /// A client from an explicit kubeconfig, or the standard resolution
    /// (`KUBECONFIG`, `~/.kube/config`, in-cluster service account).
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Self, KubeError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = match kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| KubeError::Config(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| KubeError::Config(e.to_string()))?
            }
            None => Config::infer()
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?,
        };
        let access = identity::ClusterAccess::from_config(&config)?;
        let client = Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?;
        Ok(Kube {
            client,
            access: Some(std::sync::Arc::new(access)),
        })
    }

    /// The underlying kube-rs client (a cheap clone), for adapters that keep
    /// their own objects in the API, such as the Secret-backed store.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn api_err(action: String) -> impl FnOnce(kube::Error) -> KubeError {
        move |source| KubeError::Api { action, source }
    }

    // === Secrets ===

    /// Applies a Secret of string data (server-side apply, forced: the broker
    /// owns these fields).
    pub(crate) async fn apply_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        string_data: BTreeMap<String, String>,
    ) -> Result<(), KubeError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..Default::default()
            },
            type_: Some(type_.into()),
            string_data: Some(string_data),
            ..Default::default()
        };
        // SSA needs apiVersion and kind in the body.
        let mut body = serde_json::to_value(&secret).expect("a Secret serializes");
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Secret");
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(Self::api_err(format!("applying Secret {namespace}/{name}")))?;
        Ok(())
    }

    /// Deletes a Secret; a missing one is fine.
    pub(crate) async fn delete_secret(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.delete_secret_with(namespace, name, &DeleteParams::default())
            .await
    }

    /// A Secret's annotations and uid (None if the Secret is missing), to
    /// judge who owns it before writing or deleting it.
    pub(crate) async fn secret_owner_info(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<(BTreeMap<String, String>, Option<String>)>, KubeError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Secret {namespace}/{name}")))?;
        Ok(s.map(|s| (s.metadata.annotations.unwrap_or_default(), s.metadata.uid)))
    }

    /// Deletes a Secret only if it is still the object with `uid` (so one
    /// replaced since it was judged is left alone); a missing one is fine.
    pub(crate) async fn delete_secret_with_uid(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), KubeError> {
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        self.delete_secret_with(namespace, name, &params).await
    }

    /// Deletes a Secret under `params`; a missing one is fine, and so is one
    /// that no longer meets `params`' preconditions (409: it is someone
    /// else's now).
    async fn delete_secret_with(
        &self,
        namespace: &str,
        name: &str,
        params: &DeleteParams,
    ) -> Result<(), KubeError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.delete(name, params).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && params.preconditions.is_some() => Ok(()),
            Err(e) => Err(Self::api_err(format!("deleting Secret {namespace}/{name}"))(e)),
        }
    }

    /// A Secret's data, decoded to strings (None if the Secret is missing).
    pub(crate) async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KubeError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Secret {namespace}/{name}")))?;
        Ok(s.map(|s| {
            let mut out: BTreeMap<String, String> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            out.extend(s.string_data.unwrap_or_default());
            out
        }))
    }

    /// A ConfigMap's data (None if missing).
    pub(crate) async fn configmap_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KubeError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let c = api.get_opt(name).await.map_err(Self::api_err(format!(
            "reading ConfigMap {namespace}/{name}"
        )))?;
        Ok(c.map(|c| c.data.unwrap_or_default()))
    }

    /// A Service as template data: `host` (cluster DNS name), `port` (the
    /// first port) and `ports` by name (None if missing).
    pub(crate) async fn service_endpoint(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let s = api
            .get_opt(name)
            .await
            .map_err(Self::api_err(format!("reading Service {namespace}/{name}")))?;
        Ok(s.map(|s| {
            let ports = s.spec.and_then(|sp| sp.ports).unwrap_or_default();
            service_value(
                name,
                namespace,
                ports
                    .iter()
                    .map(|p| (p.name.clone().unwrap_or_default(), p.port))
                    .collect(),
            )
        }))
    }

    // === What releases leave behind ===

    /// Deletes the PersistentVolumeClaims a release's StatefulSets left
    /// (matched by the standard `app.kubernetes.io/instance` label).
    pub(crate) async fn delete_release_pvcs(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<usize, KubeError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("app.kubernetes.io/instance={release}");
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Self::api_err(format!(
                "listing PVCs of {namespace}/{release}"
            )))?;
        let mut deleted = 0;
        for pvc in list.items {
            let Some(name) = pvc.metadata.name else {
                continue;
            };
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(KubeError::Api {
                        action: format!("deleting PVC {namespace}/{name}"),
                        source: e,
                    });
                }
            }
        }
        Ok(deleted)
    }
}

// === Authorization ===

#[async_trait::async_trait]
impl crate::broker::ports::NamespaceLabels for Kube {
    async fn labels(
        &self,
        namespace: &str,
    ) -> Result<Option<BTreeMap<String, String>>, crate::broker::ports::BackendError> {
        self.namespace_labels(namespace)
            .await
            .map_err(|e| crate::broker::ports::BackendError::new(e.to_string()))
    }
}

#[async_trait::async_trait]
impl crate::broker::ports::Authorizer for Kube {
    /// A SubjectAccessReview: may the platform's user `create` `secrets` in
    /// the namespace? Whoever may not, must not get a release or binding
    /// Secret there through the broker's own, broader rights.
    async fn may_act_in(
        &self,
        identity: &crate::broker::model::OriginatingIdentity,
        namespace: &str,
    ) -> Result<bool, crate::broker::ports::BackendError> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
        };
        let v = &identity.value;
        let strings = |x: &Value| -> Option<Vec<String>> {
            x.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        };
        let extra = v["extra"].as_object().map(|m| {
            m.iter()
                .filter_map(|(k, x)| strings(x).map(|s| (k.clone(), s)))
                .collect::<BTreeMap<_, _>>()
        });
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: v["username"].as_str().map(str::to_string),
                uid: v["uid"].as_str().map(str::to_string),
                groups: strings(&v["groups"]),
                extra,
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some("create".into()),
                    resource: Some("secrets".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&kube::api::PostParams::default(), &review)
            .await
            .map_err(|e| {
                crate::broker::ports::BackendError::new(format!("SubjectAccessReview: {e}"))
            })?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

/// The template view of a Service.
pub(crate) fn service_value(name: &str, namespace: &str, ports: Vec<(String, i32)>) -> Value {
    let by_name: serde_json::Map<String, Value> = ports
        .iter()
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, p)| (n.clone(), json!(p)))
        .collect();
    json!({
        "name": name,
        "host": format!("{name}.{namespace}.svc.cluster.local"),
        "port": ports.first().map(|(_, p)| *p),
        "ports": by_name,
    })
}
