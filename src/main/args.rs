//! The command line: subcommands and their flags (clap).

use super::*;

/// An Open Service Broker (API v2.17) that provisions Helm charts.
#[derive(Parser)]
#[command(name = "chartbroker", version, about, long_about = None)]
pub(super) struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CHARTBROKER_LOG_FORMAT",
        default_value = "text"
    )]
    pub(super) log_format: LogFormat,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum EngineArg {
    /// Render manifests into the data directory with `helm template` (no cluster).
    Render,
    /// Install real Helm releases into a cluster.
    Helm,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum StoreArg {
    /// One redb file in the data directory.
    Redb,
    /// Secrets in the broker's namespace.
    Kube,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Serve the OSB API.
    Serve(Box<ServeArgs>),
    /// Catalog tools.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Preview what provisioning a plan would produce (values and manifests).
    Render(RenderArgs),
    /// Helm's post-renderer (run by helm, not by people): checks the policy
    /// of one call on the manifests helm is about to apply.
    #[command(hide = true)]
    PostRender {
        /// The call file the broker wrote for this helm command.
        #[arg(long)]
        call: PathBuf,
    },
}

#[derive(clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CHARTBROKER_LISTEN", default_value = "127.0.0.1:8080")]
    pub(super) listen: SocketAddr,
    /// Catalog directory.
    #[arg(long, env = "CHARTBROKER_CATALOG", default_value = "catalog")]
    pub(super) catalog: PathBuf,
    /// Charts directory.
    #[arg(long, env = "CHARTBROKER_CHARTS", default_value = "charts")]
    pub(super) charts: PathBuf,
    /// Data directory: store, rendered manifests, helm state.
    #[arg(long, env = "CHARTBROKER_DATA_DIR", default_value = "data")]
    pub(super) data_dir: PathBuf,
    /// Release engine.
    #[arg(long, env = "CHARTBROKER_ENGINE", default_value = "render")]
    pub(super) engine: EngineArg,
    /// The helm binary (default: `helm` on PATH, else .tools/bin/helm).
    #[arg(long, env = "CHARTBROKER_HELM")]
    pub(super) helm: Option<PathBuf>,
    /// Timeout of one helm invocation (durations: 300, 300s, 5m, 1h30m; a bare number is seconds).
    #[arg(long, env = "CHARTBROKER_HELM_TIMEOUT", default_value = "5m", value_parser = duration, allow_hyphen_values = true)]
    pub(super) helm_timeout: Duration,
    /// Deadline of operations whose plan has no maximum_polling_duration.
    #[arg(long, env = "CHARTBROKER_OPERATION_TIMEOUT", default_value = "30m", value_parser = duration, allow_hyphen_values = true)]
    pub(super) operation_timeout: Duration,
    /// Deadline of an operation a request waits for (no accepts_incomplete).
    #[arg(long, env = "CHARTBROKER_SYNC_TIMEOUT", default_value = "1m", value_parser = duration, allow_hyphen_values = true)]
    pub(super) sync_timeout: Duration,
    /// Helm processes running at once; further helm calls wait for a slot.
    #[arg(long, env = "CHARTBROKER_MAX_HELM_PROCESSES", default_value_t = chartbroker::helm::DEFAULT_MAX_PROCESSES)]
    pub(super) max_helm_processes: usize,
    /// Connections served at once; more get 503 with Retry-After.
    #[arg(long, env = "CHARTBROKER_MAX_CONNECTIONS", default_value_t = 512)]
    pub(super) max_connections: usize,
    /// How long a connection may take to send a request's headers (and stay
    /// idle between requests, and take for a TLS handshake).
    #[arg(long, env = "CHARTBROKER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration, allow_hyphen_values = true)]
    pub(super) header_read_timeout: Duration,
    /// Namespace for instances whose platform sends none in `context`.
    #[arg(long, env = "CHARTBROKER_DEFAULT_NAMESPACE", default_value = "default")]
    pub(super) default_namespace: String,
    /// Basic-auth user name.
    #[arg(long, env = "CHARTBROKER_USERNAME", hide_env_values = true)]
    pub(super) username: Option<String>,
    /// Basic-auth password (prefer the environment variable).
    #[arg(long, env = "CHARTBROKER_PASSWORD", hide_env_values = true)]
    pub(super) password: Option<String>,
    /// YAML file with `users: [{username, password}]`, `tokens: [...]` and
    /// `certificates: [{sha256, name}]`, each with its trust.
    #[arg(long, env = "CHARTBROKER_CREDENTIALS_FILE")]
    pub(super) credentials_file: Option<PathBuf>,
    /// YAML file (not secret) setting each credential's trust:
    /// `platforms: [{name, identity, namespaces, deprovision_poll}]`.
    #[arg(long, env = "CHARTBROKER_PLATFORMS_FILE")]
    pub(super) platforms_file: Option<PathBuf>,
    /// Store encryption key, base64 of 32 bytes (prefer the environment variable).
    #[arg(long, env = "CHARTBROKER_STORE_KEY", hide_env_values = true)]
    pub(super) store_key: Option<String>,
    /// File holding the store encryption key (redb default: <data-dir>/store.key, created if
    /// absent; --store kube never creates one).
    #[arg(long, env = "CHARTBROKER_STORE_KEY_FILE")]
    pub(super) store_key_file: Option<PathBuf>,
    /// Secret in --state-namespace holding the store key (entry `store.key`; entries `old-*`
    /// are old keys), for --store kube.
    #[arg(long, env = "CHARTBROKER_STORE_KEY_SECRET")]
    pub(super) store_key_secret: Option<String>,
    /// Old store key file (repeatable): opens records sealed before a key rotation, never seals.
    #[arg(long, env = "CHARTBROKER_STORE_OLD_KEY_FILES", value_delimiter = ',')]
    pub(super) store_old_key_file: Vec<PathBuf>,
    /// Where records live: `redb` (a file in the data directory, one replica)
    /// or `kube` (Secrets in --state-namespace, several replicas).
    #[arg(long, env = "CHARTBROKER_STORE", default_value = "redb")]
    pub(super) store: StoreArg,
    /// Namespace of the state Secrets (default: the pod's own namespace, else chartbroker-system).
    #[arg(long, env = "CHARTBROKER_STATE_NAMESPACE")]
    pub(super) state_namespace: Option<String>,
    /// How long a replica may go silent before others take its operations over (--store kube).
    #[arg(long = "lease-seconds", visible_alias = "lease", env = "CHARTBROKER_LEASE_SECONDS",
          default_value = "30s", value_parser = duration, allow_hyphen_values = true)]
    pub(super) lease_seconds: Duration,
    /// Kubeconfig for the helm engine (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "CHARTBROKER_KUBECONFIG")]
    pub(super) kubeconfig: Option<PathBuf>,
    /// Namespaces the broker may act in: comma-separated globs, `!glob` denies
    /// (default: all but kube-system, kube-public, kube-node-lease and the
    /// state namespace, which only their literal name here allows).
    #[arg(long, env = "CHARTBROKER_NAMESPACES", value_delimiter = ',')]
    pub(super) namespaces: Vec<String>,
    /// Label selector a target Namespace must match (k=v, k!=v, k, !k; needs a cluster).
    #[arg(long, env = "CHARTBROKER_NAMESPACE_SELECTOR")]
    pub(super) namespace_selector: Option<String>,
    /// Check Kubernetes users with SubjectAccessReviews (helm engine); `false`
    /// trusts the platform for every request, identity or not.
    #[arg(long, env = "CHARTBROKER_SUBJECT_ACCESS_REVIEW", default_value_t = true, action = clap::ArgAction::Set)]
    pub(super) subject_access_review: bool,
    /// ServiceAccount helm runs as in each target namespace (helm engine): a
    /// TokenRequest token of it, never the broker's own credentials.
    #[arg(
        long,
        env = "CHARTBROKER_RELEASE_SERVICE_ACCOUNT",
        default_value = "chartbroker-release"
    )]
    pub(super) release_service_account: String,
    /// ClusterRole the broker binds to the release ServiceAccount in the
    /// namespaces it creates (`namespace: instance` plans).
    #[arg(
        long,
        env = "CHARTBROKER_RELEASE_CLUSTER_ROLE",
        default_value = "chartbroker-release"
    )]
    pub(super) release_cluster_role: String,
    /// ClusterRole of the broker's own work in a target namespace, bound to
    /// the broker in the namespaces it creates.
    #[arg(
        long,
        env = "CHARTBROKER_TARGET_CLUSTER_ROLE",
        default_value = "chartbroker-target"
    )]
    pub(super) target_cluster_role: String,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, env = "CHARTBROKER_TLS_CERT", requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "CHARTBROKER_TLS_KEY", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates signed by it (mTLS).
    #[arg(long, env = "CHARTBROKER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub(super) tls_client_ca: Option<PathBuf>,
    /// Seconds between checks of the catalog, charts, TLS and credentials
    /// files for changes, which are then reloaded; 0: reload on SIGHUP only.
    #[arg(long, env = "CHARTBROKER_RELOAD_INTERVAL", default_value_t = 2)]
    pub(super) reload_interval: u64,
    #[command(flatten)]
    pub(super) ui: UiArgs,
}

/// The operator's dashboard (`/ui/`).
#[derive(clap::Args)]
pub(super) struct UiArgs {
    /// Serve the read-only dashboard under /ui/.
    #[arg(long = "ui", env = "CHARTBROKER_UI")]
    pub(super) enabled: bool,
    /// The dashboard's own user.
    #[arg(long, env = "CHARTBROKER_UI_USERNAME", hide_env_values = true)]
    pub(super) ui_username: Option<String>,
    /// Its password (at least 8 characters).
    #[arg(long, env = "CHARTBROKER_UI_PASSWORD", hide_env_values = true)]
    pub(super) ui_password: Option<String>,
    /// Accept the broker's /v2 credentials on the dashboard instead.
    #[arg(long, env = "CHARTBROKER_UI_BROKER_CREDENTIALS")]
    pub(super) ui_broker_credentials: bool,
    /// The broker's URL as platforms' users reach it: turns on signed
    /// per-instance links returned as `dashboard_url`.
    #[arg(long, env = "CHARTBROKER_UI_PUBLIC_URL")]
    pub(super) ui_public_url: Option<String>,
    /// File with the key signing those links (32 bytes or more, shared by
    /// replicas); default: a random key per process.
    #[arg(
        long,
        env = "CHARTBROKER_UI_LINK_KEY_FILE",
        conflicts_with = "ui_link_key"
    )]
    pub(super) ui_link_key_file: Option<PathBuf>,
    /// The link key itself (32 bytes or more), e.g. from a Secret.
    #[arg(long, env = "CHARTBROKER_UI_LINK_KEY", hide_env_values = true)]
    pub(super) ui_link_key: Option<String>,
    /// How long a signed link stays valid.
    #[arg(long, env = "CHARTBROKER_UI_LINK_TTL", default_value = "24h", value_parser = duration)]
    pub(super) ui_link_ttl: Duration,
}

#[derive(Subcommand)]
pub(super) enum CatalogCommand {
    /// Check a catalog; exits 1 and lists every problem with file and path.
    Lint {
        /// Catalog directory.
        #[arg(default_value = "catalog")]
        dir: PathBuf,
        /// Charts directory.
        #[arg(long, env = "CHARTBROKER_CHARTS", default_value = "charts")]
        charts: PathBuf,
    },
}

#[derive(clap::Args)]
pub(super) struct RenderArgs {
    /// Service name or id.
    #[arg(long)]
    pub(super) service: String,
    /// Plan name or id.
    #[arg(long)]
    pub(super) plan: String,
    /// A parameter, `key=value`; the value is parsed as JSON when it can be.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub(super) params: Vec<String>,
    /// Namespace to render into.
    #[arg(long, default_value = "default")]
    pub(super) namespace: String,
    /// Catalog directory.
    #[arg(long, env = "CHARTBROKER_CATALOG", default_value = "catalog")]
    pub(super) catalog: PathBuf,
    /// Charts directory.
    #[arg(long, env = "CHARTBROKER_CHARTS", default_value = "charts")]
    pub(super) charts: PathBuf,
    /// The helm binary.
    #[arg(long, env = "CHARTBROKER_HELM")]
    pub(super) helm: Option<PathBuf>,
    /// Print only the values, not the manifests.
    #[arg(long)]
    pub(super) values_only: bool,
}

/// clap's parser for duration flags: one grammar for flags, environment
/// and catalog (`chartbroker::duration`).
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    chartbroker::duration::parse(text).map_err(|e| e.to_string())
}
