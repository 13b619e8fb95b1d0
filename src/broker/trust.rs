//! What a platform's credential is trusted with: whether each request must
//! carry a user identity the broker checks, and which namespaces the
//! platform may reach. Trust comes from the credential that authenticated
//! the request (configured by the operator), never from anything the
//! request says about itself: `context.platform` and the identity's
//! platform label are the caller's words.

use std::sync::Arc;

use serde::Deserialize;

use super::requests::RequestMeta;
use super::{Broker, BrokerError, Result};

/// Who decides that a platform's user may act in a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityRule {
    /// Every request carries a Kubernetes originating identity that passes
    /// a SubjectAccessReview in each namespace it touches (when the broker
    /// has SubjectAccessReviews on). The default.
    #[default]
    Required,
    /// The platform is its own authorizer (Crossplane's provider-osb: its
    /// RBAC decides who may create the managed resources, and it sends no
    /// user identity): no user check, only the credential's namespaces.
    Platform,
}

/// What `last_operation` answers about an asynchronous deprovision that
/// has completed. The spec allows both; platforms differ in what they read
/// as "gone".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionPoll {
    /// 200 `succeeded` while the tombstone lives, 410 once it is forgotten
    /// (what osb-checker expects right after the delete).
    #[default]
    Succeeded,
    /// 410 Gone as soon as the deprovision has completed (what
    /// provider-osb needs: it treats only 404/410 as deleted).
    Gone,
}

/// The trust of one platform credential.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// A name for logs and errors (never the secret itself).
    pub name: String,
    /// Whether each request needs a checked user identity.
    pub identity: IdentityRule,
    /// Namespaces this credential may reach (exact names or `prefix*`);
    /// `None`: every namespace the operator lets the broker act in.
    pub namespaces: Option<Vec<String>>,
    /// The answer to polls of a completed asynchronous deprovision.
    pub deprovision_poll: DeprovisionPoll,
}

impl Trust {
    /// The broker's own follow-up of a request it already authorized when
    /// it accepted it (the bindings a dependent instance makes and
    /// removes): checked then, as the platform's caller, not again.
    pub fn already_authorized() -> Arc<Trust> {
        Arc::new(Trust {
            name: "broker (dependency of an accepted request)".into(),
            identity: IdentityRule::Platform,
            ..Trust::default()
        })
    }

    /// Whether `namespace` is one this credential may reach.
    pub fn reaches(&self, namespace: &str) -> bool {
        let Some(list) = &self.namespaces else {
            return true;
        };
        list.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => namespace.starts_with(prefix),
            None => p == namespace,
        })
    }
}

impl Broker {
    /// 404, as for an instance that does not exist, when the instance
    /// lives in a namespace the credential may not reach: reads (fetch,
    /// `last_operation`) are scoped like writes, so a platform confined to
    /// its namespaces can't read another's instances or binding
    /// credentials. Reads check no user: the platform reads what it asked
    /// for.
    pub async fn check_read(&self, instance_id: &str, trust: &Trust) -> Result<()> {
        if trust.namespaces.is_none() {
            return Ok(());
        }
        match self.load_instance(instance_id).await? {
            Some((inst, _)) if !trust.reaches(&self.tenant_namespace(&inst.context)) => Err(
                BrokerError::NotFound(format!("service instance {instance_id} does not exist")),
            ),
            _ => Ok(()),
        }
    }

    /// 403 unless the request's credential may act in every one of
    /// `namespaces`: each must be one of the credential's namespaces, and,
    /// for a credential whose trust is [`IdentityRule::Required`] and with
    /// an authorizer (helm engine, SubjectAccessReviews on), the request
    /// must carry a Kubernetes identity with a user name that may act
    /// there, whatever the request's context or identity calls its
    /// platform.
    pub(super) async fn authorize(&self, meta: &RequestMeta, namespaces: &[&str]) -> Result<()> {
        let trust = &meta.trust;
        if let Some(ns) = namespaces.iter().find(|n| !trust.reaches(n)) {
            return Err(BrokerError::Forbidden(format!(
                "the platform credential {:?} may not reach namespace {ns:?}",
                trust.name
            )));
        }
        let Some(auth) = &self.inner.adapters.authorizer else {
            return Ok(());
        };
        if trust.identity == IdentityRule::Platform {
            return Ok(());
        }
        let id = meta
            .originating_identity
            .as_ref()
            .filter(|id| id.platform == "kubernetes")
            .filter(|id| {
                id.value
                    .get("username")
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| !u.is_empty())
            })
            .ok_or_else(|| {
                BrokerError::Forbidden(format!(
                    "the platform credential {:?} requires each request to carry the user's X-Broker-API-Originating-Identity (kubernetes profile, with a username): the broker checks it with a SubjectAccessReview before acting in a namespace",
                    trust.name
                ))
            })?;
        let user = id.value.get("username").and_then(|u| u.as_str());
        let user = user.unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for namespace in namespaces.iter().filter(|n| seen.insert(**n)) {
            match auth.may_act_in(id, namespace).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(BrokerError::Forbidden(format!(
                        "user {user:?} may not create Secrets in namespace {namespace:?}"
                    )));
                }
                Err(e) => {
                    return Err(BrokerError::Internal(format!(
                        "could not check {user:?}'s access to namespace {namespace:?}: {}",
                        e.message
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_exact_and_prefix() {
        let t = Trust {
            namespaces: Some(vec!["shop".into(), "team-*".into()]),
            ..Trust::default()
        };
        assert!(t.reaches("shop"));
        assert!(t.reaches("team-a"));
        assert!(!t.reaches("shop2"));
        assert!(!t.reaches("teams"));
        assert!(Trust::default().reaches("anything"));
        let none = Trust {
            namespaces: Some(vec![]),
            ..Trust::default()
        };
        assert!(!none.reaches("shop"));
    }
}
