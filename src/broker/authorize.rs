//! Acting on a platform credential's trust (see [`super::trust`]): the
//! namespaces it reaches for reads and writes, and the user check each
//! write needs when the credential requires one.

use super::requests::RequestMeta;
use super::trust::{IdentityRule, Trust};
use super::{Broker, BrokerError, Result};

impl Broker {
    /// 404, as for an instance that does not exist, when the instance
    /// lives in a namespace the credential may not reach: reads (fetch,
    /// `last_operation`) are scoped like writes, so a platform confined to
    /// its namespaces can't read another's instances or binding
    /// credentials. Reads check no user: the platform reads what it asked
    /// for.
    pub(crate) async fn check_read(&self, instance_id: &str, trust: &Trust) -> Result<()> {
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
