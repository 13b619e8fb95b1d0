//! The release identity: helm never runs with the broker's own credentials.
//!
//! Each target namespace holds a ServiceAccount for releases, bound there
//! (by a RoleBinding in that namespace only) to the release ClusterRole:
//! exactly what a release may do, inside that namespace. Before each helm
//! call the broker asks the TokenRequest API for a short-lived token of that
//! account and hands helm a private kubeconfig holding it, so `lookup`,
//! hooks and every write helm makes are authorized by Kubernetes as the
//! release identity, and RBAC escalation prevention covers the Roles a chart
//! creates. The broker itself may only mint tokens for that one account
//! name (`serviceaccounts/token` with `resourceNames`), never use them.
//!
//! TokenRequest rather than impersonation: helm then holds no credential of
//! the broker at all (with impersonation it would hold the broker's token
//! and merely ask to be someone else), and the token expires on its own.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::{FIELD_MANAGER, Kube, KubeError, MANAGED_BY};

/// The shortest token lifetime the API server grants.
const MIN_TOKEN_SECONDS: i64 = 600;

/// How the release identity is named in the cluster (deploy/ and the chart
/// create these; tests suffix the cluster-scoped ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityNames {
    /// The ServiceAccount helm runs as, in each target namespace.
    pub service_account: String,
    /// The ClusterRole bound to it there: what a release may do.
    pub release_role: String,
    /// The ClusterRole of the broker's own work in a target namespace
    /// (binding Secrets, readiness, lookups), bound to the broker in the
    /// namespaces it creates.
    pub target_role: String,
}

impl Default for IdentityNames {
    fn default() -> Self {
        IdentityNames {
            service_account: "chartbroker-release".into(),
            release_role: "chartbroker-release".into(),
            target_role: "chartbroker-target".into(),
        }
    }
}

/// Where the API server is, as helm must reach it (no credentials).
#[derive(Clone)]
pub(super) struct ClusterAccess {
    server: String,
    ca_pem: Option<Vec<u8>>,
    insecure: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

impl ClusterAccess {
    pub(super) fn from_config(c: &kube::Config) -> Result<Self, KubeError> {
        let ca_pem = match (&c.root_cert, &c.root_cert_file) {
            (Some(ders), _) => Some(ders.iter().flat_map(|d| pem("CERTIFICATE", d)).collect()),
            (None, Some(f)) => Some(
                std::fs::read(f).map_err(|e| KubeError::Config(format!("{}: {e}", f.display())))?,
            ),
            (None, None) => None,
        };
        Ok(ClusterAccess {
            server: c.cluster_url.to_string().trim_end_matches('/').to_string(),
            ca_pem,
            insecure: c.accept_invalid_certs,
            tls_server_name: c.tls_server_name.clone(),
            proxy_url: c.proxy_url.as_ref().map(ToString::to_string),
        })
    }

    /// A kubeconfig for this cluster with one bearer token and nothing else.
    fn kubeconfig(&self, token: &str) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let mut cluster = format!("    server: {}\n", q(&self.server));
        if let Some(ca) = &self.ca_pem {
            cluster.push_str(&format!("    certificate-authority-data: {}\n", b64(ca)));
        }
        if self.insecure {
            cluster.push_str("    insecure-skip-tls-verify: true\n");
        }
        if let Some(n) = &self.tls_server_name {
            cluster.push_str(&format!("    tls-server-name: {}\n", q(n)));
        }
        if let Some(p) = &self.proxy_url {
            cluster.push_str(&format!("    proxy-url: {}\n", q(p)));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster:\n{cluster}\
             users:\n- name: release\n  user:\n    token: {}\ncontexts:\n- name: release\n  \
             context:\n    cluster: cluster\n    user: release\ncurrent-context: release\n",
            q(token)
        )
    }
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// What a TokenRequest got.
pub(crate) enum Token {
    /// A token (never logged: this type has no `Debug`).
    Issued(String),
    /// The namespace does not exist.
    NoNamespace,
    /// The namespace exists, the ServiceAccount does not.
    NoAccount,
}

/// A private kubeconfig for one helm call, removed when dropped. Mode 0600
/// in a 0700 directory; its path is the only thing that goes on helm's
/// environment, and the token inside is never logged.
pub(crate) struct CallKubeconfig {
    path: PathBuf,
}

impl CallKubeconfig {
    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for CallKubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallKubeconfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for CallKubeconfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn private_file(dir: &Path, contents: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing directory keeps its mode: make sure nobody else can list it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(format!("{}.kubeconfig", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    if let Err(e) = f.write_all(contents.as_bytes()) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl Kube {
    /// A TokenRequest for `service_account` in `namespace`, valid at least
    /// `lifetime` (and never less than the server's minimum).
    pub(crate) async fn release_token(
        &self,
        namespace: &str,
        service_account: &str,
        lifetime: Duration,
    ) -> Result<Token, KubeError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let seconds = i64::try_from(lifetime.as_secs())
            .unwrap_or(i64::MAX)
            .max(MIN_TOKEN_SECONDS);
        let req = TokenRequest {
            metadata: ObjectMeta::default(),
            spec: TokenRequestSpec {
                expiration_seconds: Some(seconds),
                ..Default::default()
            },
            status: None,
        };
        match api
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                service_account,
                &PostParams::default(),
                &req,
            )
            .await
        {
            Ok(t) => Ok(t
                .status
                .map_or(Token::NoAccount, |s| Token::Issued(s.token))),
            // The API server names what is missing: the namespace (its
            // lifecycle admission) or the account.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Ok(if s.message.starts_with("namespaces ") {
                    Token::NoNamespace
                } else {
                    Token::NoAccount
                })
            }
            Err(source) => Err(KubeError::Api {
                action: format!(
                    "requesting a token of ServiceAccount {namespace}/{service_account}"
                ),
                source,
            }),
        }
    }

    /// A private kubeconfig under `dir` holding a fresh token of the
    /// release identity of `namespace`; `None` when the namespace does not
    /// exist. An error when the account is missing: helm never falls back
    /// to the broker's own credentials.
    pub(crate) async fn release_kubeconfig(
        &self,
        namespace: &str,
        names: &IdentityNames,
        dir: &Path,
        lifetime: Duration,
    ) -> Result<Option<CallKubeconfig>, KubeError> {
        let access = self.access.as_ref().ok_or_else(|| {
            KubeError::Config("no API server address to give helm (client built in-process)".into())
        })?;
        let sa = &names.service_account;
        let token = match self.release_token(namespace, sa, lifetime).await? {
            Token::Issued(t) => t,
            Token::NoNamespace => return Ok(None),
            Token::NoAccount => {
                return Err(KubeError::Config(format!(
                    "namespace {namespace} has no release identity (ServiceAccount {sa}): \
                     the broker's chart or deploy/ creates it for each target namespace; \
                     helm never runs with the broker's own credentials"
                )));
            }
        };
        let path = private_file(dir, &access.kubeconfig(&token))
            .map_err(|e| KubeError::Config(format!("writing helm's kubeconfig: {e}")))?;
        Ok(Some(CallKubeconfig { path }))
    }

    /// In a namespace the broker created: the release ServiceAccount, bound
    /// to the release ClusterRole, and the broker itself bound to the target
    /// ClusterRole (its binding Secrets and readiness reads). Creating the
    /// bindings needs `bind` on exactly those two ClusterRoles, not their
    /// rights. Objects already there are left as they are.
    pub(crate) async fn ensure_release_identity(
        &self,
        namespace: &str,
        names: &IdentityNames,
    ) -> Result<(), KubeError> {
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..Default::default()
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        let sa = ServiceAccount {
            metadata: meta(&names.service_account),
            automount_service_account_token: Some(false),
            ..Default::default()
        };
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        created(sas.create(&params, &sa).await, || {
            format!(
                "creating ServiceAccount {namespace}/{}",
                names.service_account
            )
        })?;
        let me = self.whoami().await?;
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
        let release_subject = Subject {
            kind: "ServiceAccount".into(),
            name: names.service_account.clone(),
            namespace: Some(namespace.to_string()),
            api_group: None,
        };
        for (role, subject) in [
            (&names.release_role, release_subject),
            (&names.target_role, me),
        ] {
            let rb = RoleBinding {
                metadata: meta(role),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: role.clone(),
                },
                subjects: Some(vec![subject]),
            };
            created(bindings.create(&params, &rb).await, || {
                format!("creating RoleBinding {namespace}/{role}")
            })?;
        }
        self.wait_for_release_rights(namespace, &names.service_account)
            .await
    }

    /// A RoleBinding takes effect once the API server's authorizer has seen
    /// it, a moment after it is created: asks the authorizer (a
    /// SubjectAccessReview) until the release identity may list Secrets in
    /// `namespace`, so helm's first call is not refused.
    async fn wait_for_release_rights(&self, namespace: &str, sa: &str) -> Result<(), KubeError> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
        };
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{namespace}:{sa}")),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated".into(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some("list".into()),
                    resource: Some("secrets".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        for _ in 0..50 {
            let answer =
                api.create(&PostParams::default(), &review)
                    .await
                    .map_err(Self::api_err(format!(
                        "checking the release identity's rights in {namespace}"
                    )))?;
            if answer.status.is_some_and(|s| s.allowed) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(KubeError::Config(format!(
            "the release identity {namespace}/{sa} was bound but the API server does not \
             grant it the release rights (is the ClusterRole missing?)"
        )))
    }

    /// The broker's own identity as an RBAC subject (a SelfSubjectReview,
    /// which every authenticated client may create).
    async fn whoami(&self) -> Result<Subject, KubeError> {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let review = api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .map_err(Self::api_err(
                "asking who the broker is (SelfSubjectReview)".into(),
            ))?;
        let user = review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .ok_or_else(|| {
                KubeError::Config("the API server did not say who the broker is".into())
            })?;
        Ok(subject_of(&user))
    }
}

fn created<T>(r: Result<T, kube::Error>, what: impl FnOnce() -> String) -> Result<(), KubeError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, 409) => Ok(()),
        Err(source) => Err(KubeError::Api {
            action: what(),
            source,
        }),
    }
}

/// `system:serviceaccount:NS:NAME` is a ServiceAccount subject; any other
/// name a User.
fn subject_of(user: &str) -> Subject {
    if let Some((ns, name)) = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        return Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            api_group: None,
        };
    }
    Subject {
        kind: "User".into(),
        name: user.into(),
        namespace: None,
        api_group: Some("rbac.authorization.k8s.io".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_holds_one_token_and_the_clusters_trust() {
        let a = ClusterAccess {
            server: "https://10.0.0.1:6443".into(),
            ca_pem: Some(pem("CERTIFICATE", b"der bytes")),
            insecure: false,
            tls_server_name: Some("kubernetes".into()),
            proxy_url: None,
        };
        let kc = a.kubeconfig("tok\"en");
        let v: serde_json::Value = serde_saphyr::from_str(&kc).unwrap();
        assert_eq!(v["users"][0]["user"]["token"], "tok\"en");
        assert_eq!(v["users"][0]["user"].as_object().unwrap().len(), 1);
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(v["clusters"][0]["cluster"]["tls-server-name"], "kubernetes");
        assert!(v["clusters"][0]["cluster"]["insecure-skip-tls-verify"].is_null());
        let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        let ca = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .unwrap();
        assert!(
            String::from_utf8(ca)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
    }

    #[test]
    fn call_files_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("cb-kc-{}", uuid::Uuid::new_v4().simple()));
        let path = private_file(&dir, "secret").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let f = CallKubeconfig { path: path.clone() };
        assert!(!format!("{f:?}").contains("secret"));
        drop(f);
        assert!(!path.exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn subjects() {
        let s = subject_of("system:serviceaccount:cb-system:chartbroker");
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "chartbroker", Some("cb-system"))
        );
        let u = subject_of("admin");
        assert_eq!((u.kind.as_str(), u.namespace), ("User", None));
    }
}
