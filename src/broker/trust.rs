//! What a platform's credential is trusted with: whether each request must
//! carry a user identity the broker checks, and which namespaces the
//! platform may reach. Trust comes from the credential that authenticated
//! the request (configured by the operator), never from anything the
//! request says about itself: `context.platform` and the identity's
//! platform label are the caller's words.

use std::sync::Arc;

use serde::Deserialize;

/// Who decides that a platform's user may act in a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IdentityRule {
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
pub(crate) enum DeprovisionPoll {
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
pub(crate) struct Trust {
    /// A name for logs and errors (never the secret itself).
    pub(crate) name: String,
    /// Whether each request needs a checked user identity.
    pub(crate) identity: IdentityRule,
    /// Namespaces this credential may reach (exact names or `prefix*`);
    /// `None`: every namespace the operator lets the broker act in.
    pub(crate) namespaces: Option<Vec<String>>,
    /// The answer to polls of a completed asynchronous deprovision.
    pub(crate) deprovision_poll: DeprovisionPoll,
}

impl Trust {
    /// The broker's own follow-up of a request it already authorized when
    /// it accepted it (the bindings a dependent instance makes and
    /// removes): checked then, as the platform's caller, not again.
    pub(crate) fn already_authorized() -> Arc<Trust> {
        Arc::new(Trust {
            name: "broker (dependency of an accepted request)".into(),
            identity: IdentityRule::Platform,
            ..Trust::default()
        })
    }

    /// Whether `namespace` is one this credential may reach.
    pub(crate) fn reaches(&self, namespace: &str) -> bool {
        let Some(list) = &self.namespaces else {
            return true;
        };
        list.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => namespace.starts_with(prefix),
            None => p == namespace,
        })
    }
}

/// The trust fields of a credential, as written; unset ones take the
/// defaults of [`Trust`].
// No deny_unknown_fields here: serde can't combine it with `flatten`; the
// structs that flatten it refuse unknown keys for both.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct TrustFields {
    /// `required` (default) or `platform`.
    pub(crate) identity: Option<IdentityRule>,
    /// Namespaces (exact, or `prefix*`) the credential may reach.
    pub(crate) namespaces: Option<Vec<String>>,
    /// `succeeded` (default) or `gone`.
    pub(crate) deprovision_poll: Option<DeprovisionPoll>,
}

impl TrustFields {
    /// The trust of the credential called `name`.
    pub(crate) fn into_trust(self, name: &str) -> Arc<Trust> {
        Arc::new(self.over(&Trust {
            name: name.to_string(),
            ..Trust::default()
        }))
    }

    /// `base` with the fields set here replaced.
    pub(crate) fn over(&self, base: &Trust) -> Trust {
        Trust {
            name: base.name.clone(),
            identity: self.identity.unwrap_or(base.identity),
            namespaces: self.namespaces.clone().or_else(|| base.namespaces.clone()),
            deprovision_poll: self.deprovision_poll.unwrap_or(base.deprovision_poll),
        }
    }

    /// Refuses namespaces that are neither a name nor a `prefix*`.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        for n in self.namespaces.iter().flatten() {
            let name = n.strip_suffix('*').unwrap_or(n);
            anyhow::ensure!(
                !name.contains('*') && (n.ends_with('*') || crate::names::is_dns_label(name, 63)),
                "namespaces: {n:?} is neither a namespace name nor a prefix ending in *"
            );
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
