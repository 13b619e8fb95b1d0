//! What of a Helm release is not ready yet: its Deployments and
//! StatefulSets (the workload kinds the broker's release RBAC covers), read
//! while `helm --wait` blocks, so `last_operation` can say what it waits for.
//!
//! Helm itself says too little for that: Helm 3's `--wait --debug` names no
//! resource and ends with only "context deadline exceeded"; Helm 4's
//! `--wait=watcher --debug` names them but only in debug logs, which also
//! carry what the broker must not log. Reading the objects works for both.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Api, ListParams};

use super::{Kube, KubeError};

/// Helm's annotation naming the release an object belongs to.
const RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";

impl Kube {
    /// One line per workload of `release` in `namespace` that is not ready,
    /// e.g. `deployment/web: 0 of 1 replicas ready`; empty when all are.
    pub(crate) async fn unready_workloads(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Vec<String>, KubeError> {
        let ours = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(RELEASE_ANNOTATION))
                .is_some_and(|r| r == release)
        };
        let mut out = Vec::new();
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let list = deployments
            .list(&ListParams::default())
            .await
            .map_err(Self::api_err(format!("listing Deployments in {namespace}")))?;
        for d in list.items.iter().filter(|d| ours(&d.metadata)) {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            let name = d.metadata.name.as_deref().unwrap_or_default();
            out.extend(unready(
                "deployment",
                name,
                d.metadata.generation,
                status.observed_generation,
                want,
                status.ready_replicas.unwrap_or(0),
                status.updated_replicas.unwrap_or(0),
            ));
        }
        let sets: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
        let list = sets
            .list(&ListParams::default())
            .await
            .map_err(Self::api_err(format!(
                "listing StatefulSets in {namespace}"
            )))?;
        for s in list.items.iter().filter(|s| ours(&s.metadata)) {
            let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = s.status.clone().unwrap_or_default();
            let name = s.metadata.name.as_deref().unwrap_or_default();
            out.extend(unready(
                "statefulset",
                name,
                s.metadata.generation,
                status.observed_generation,
                want,
                status.ready_replicas.unwrap_or(0),
                status.updated_replicas.unwrap_or(0),
            ));
        }
        Ok(out)
    }
}

/// The line for one workload, or None when it is ready.
fn unready(
    kind: &str,
    name: &str,
    generation: Option<i64>,
    observed: Option<i64>,
    want: i32,
    ready: i32,
    updated: i32,
) -> Option<String> {
    // Missing replicas first: it is what a person waits for, and what a
    // workload no controller has looked at yet (empty status) lacks too.
    if ready < want {
        return Some(format!("{kind}/{name}: {ready} of {want} replicas ready"));
    }
    if observed < generation {
        return Some(format!(
            "{kind}/{name}: the controller has not seen the change yet"
        ));
    }
    if updated < want {
        return Some(format!(
            "{kind}/{name}: {updated} of {want} replicas updated"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unready;

    #[test]
    fn lines_name_the_workload_and_what_is_missing() {
        assert_eq!(
            unready("deployment", "web", Some(1), Some(1), 1, 0, 1).as_deref(),
            Some("deployment/web: 0 of 1 replicas ready")
        );
        assert_eq!(
            unready("statefulset", "db", Some(2), Some(1), 1, 1, 1).as_deref(),
            Some("statefulset/db: the controller has not seen the change yet")
        );
        assert_eq!(
            unready("statefulset", "db", Some(1), None, 1, 0, 0).as_deref(),
            Some("statefulset/db: 0 of 1 replicas ready"),
            "a status no controller wrote yet"
        );
        assert_eq!(
            unready("deployment", "web", Some(3), Some(3), 2, 2, 1).as_deref(),
            Some("deployment/web: 1 of 2 replicas updated")
        );
        assert_eq!(
            unready("deployment", "web", Some(3), Some(3), 2, 2, 2),
            None
        );
        assert_eq!(
            unready("deployment", "web", Some(3), Some(3), 0, 0, 0),
            None
        );
    }
}
