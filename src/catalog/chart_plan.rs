//! A chart plan's settings: its source, limits, lookups, dependencies,
//! namespace strategy and generated secrets.

use super::*;

/// A Helm chart backend.
#[derive(Debug, Clone)]
pub struct ChartPlan {
    /// Where the chart comes from: a local folder, a Helm repository or an
    /// OCI registry (`chart.path` / `chart.repository` / `chart.oci`).
    pub(crate) source: ChartSource,
    /// Where releases go.
    pub(crate) namespace: NamespaceStrategy,
    /// Values tree; string leaves are templates (see [`crate::template`]).
    pub(crate) values: Value,
    /// Secrets generated once per instance, by name.
    pub(crate) secrets: BTreeMap<String, SecretSpec>,
    /// Credentials tree returned by bind; string leaves are templates.
    pub(crate) credentials: Value,
    /// What the chart's rendered manifests may contain (`chart.policy`).
    pub policy: crate::policy::Policy,
    /// Objects of the release that credential templates read, by name
    /// (`lookups.<name>` in credentials).
    pub(crate) lookups: BTreeMap<String, Lookup>,
    /// Instances of other services this plan binds to (`uses.<name>.secret`
    /// in values is the name of the binding Secret in this release's namespace).
    pub uses: BTreeMap<String, Dependency>,
    /// Namespaces besides the instance's that a bind parameter `namespace`
    /// may put the binding Secret in.
    pub(crate) binding_namespaces: Vec<String>,
    /// Wait for the release's workloads to be ready (helm engine).
    pub(crate) wait: bool,
    /// Delete the PersistentVolumeClaims the release leaves on deprovision.
    pub(crate) delete_pvcs: bool,
    /// Each binding gets its own database user (`chart.binding_users`).
    pub(crate) binding_users: Option<BindingUsers>,
    /// How much helm may print for this plan (`chart.limits`).
    pub(crate) limits: ChartLimits,
}

/// Caps on what the broker reads from helm for one plan (`chart.limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ChartLimits {
    /// Bytes of rendered manifests (`helm template` output) the broker
    /// reads; past them helm is stopped and the operation fails.
    pub(crate) max_manifest_bytes: usize,
}

impl Default for ChartLimits {
    fn default() -> Self {
        ChartLimits {
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
        }
    }
}

/// Where a plan's chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChartSource {
    /// A chart folder under the charts directory (absolute path).
    Local(PathBuf),
    /// A chart in an HTTPS Helm repository (one with an `index.yaml`).
    Repository {
        /// The repository's base URL, `https://` only, without a trailing `/`.
        url: String,
        /// The chart's name in the repository index.
        name: String,
        /// Version, digest, provenance and TLS settings.
        remote: RemoteChart,
    },
    /// A chart in an OCI registry.
    Oci {
        /// `oci://host[:port]/path/name`, without tag or digest.
        reference: String,
        /// Version, digest, provenance and TLS settings.
        remote: RemoteChart,
    },
}

/// How a remote chart is pinned and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteChart {
    /// The exact chart version (semver; never a range).
    pub(crate) version: String,
    /// `sha256:<64 lowercase hex>` the chart archive must hash to.
    pub(crate) digest: Option<String>,
    /// When set (`verify: true`), the chart's provenance file must be signed
    /// by a key in this keyring (absolute path).
    pub(crate) keyring: Option<PathBuf>,
    /// CA bundle trusted for the repository's TLS (absolute path).
    pub(crate) ca_file: Option<PathBuf>,
    /// Credentials for a private repository or registry (`chart.auth`).
    pub(crate) auth: Option<ChartAuth>,
}

impl ChartSource {
    /// The chart folder, for a local source.
    pub(crate) fn local_path(&self) -> Option<&Path> {
        match self {
            ChartSource::Local(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for ChartSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartSource::Local(p) => write!(f, "{}", p.display()),
            ChartSource::Repository { url, name, remote } => {
                write!(f, "{name} {} from {url}", remote.version)
            }
            ChartSource::Oci { reference, remote } => {
                write!(f, "{reference}:{}", remote.version)
            }
        }
    }
}

/// An object of the release whose data credentials may use. Exactly one of
/// `secret`, `configmap`, `service` names it (a template over the instance).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lookup {
    /// A Secret's name.
    pub(crate) secret: Option<String>,
    /// A ConfigMap's name.
    pub(crate) configmap: Option<String>,
    /// A Service's name: the value is `{name, host, port, ports}`.
    pub(crate) service: Option<String>,
    /// One key of the Secret or ConfigMap (the value is then a string);
    /// without it the value is every key.
    pub(crate) key: Option<String>,
}

/// Kinds of object a [`Lookup`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
    /// A Service.
    Service,
}

impl Lookup {
    /// The kind and the name template, or why the lookup is malformed.
    pub(crate) fn target(&self) -> Result<(LookupKind, &str), String> {
        match (&self.secret, &self.configmap, &self.service) {
            (Some(n), None, None) => Ok((LookupKind::Secret, n)),
            (None, Some(n), None) => Ok((LookupKind::ConfigMap, n)),
            (None, None, Some(n)) => {
                if self.key.is_some() {
                    Err("a service lookup takes no `key`".into())
                } else {
                    Ok((LookupKind::Service, n))
                }
            }
            _ => Err("a lookup names exactly one of `secret`, `configmap`, `service`".into()),
        }
    }
}

/// An instance of another service that a plan depends on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Name of the service the instance must belong to.
    pub service: String,
    /// The provisioning parameter that holds the instance id.
    pub parameter: String,
    /// Namespaces besides the dependent's own where the used instance may
    /// live (glob patterns). Empty: only the dependent's own namespace, so
    /// one tenant can't name another tenant's instance.
    #[serde(default)]
    pub(crate) namespaces: Vec<String>,
}

impl Dependency {
    /// Whether an instance in `used` may be used from `dependent`.
    pub(crate) fn reaches(&self, dependent: &str, used: &str) -> bool {
        dependent == used
            || self
                .namespaces
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .any(|p| p.matches(used))
    }
}

/// Which namespace a chart release is installed into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NamespaceStrategy {
    /// The namespace from the platform's OSB `context`.
    #[default]
    Context,
    /// A namespace of its own per instance.
    Instance,
}

/// How to generate one per-instance secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretSpec {
    /// Number of characters, 8..=256 (default 32).
    #[serde(default = "default_secret_length")]
    pub(crate) length: usize,
    /// Characters to draw from (default alphanumeric).
    #[serde(default)]
    pub(crate) alphabet: Alphabet,
}

pub(super) fn default_secret_length() -> usize {
    32
}

/// Character sets for generated secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Alphabet {
    /// `A-Z a-z 0-9`.
    #[default]
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// `A-Z a-z 0-9 - _` (URL- and filename-safe base64 alphabet).
    Urlsafe,
}

impl Alphabet {
    /// The characters of this alphabet, for uniform sampling.
    pub(crate) fn chars(self) -> &'static [u8] {
        match self {
            Alphabet::Alphanumeric => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            }
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Urlsafe => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            }
        }
    }
}
