//! The `chartbroker` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use chartbroker::catalog::Catalog;
use chartbroker::runtime::{
    Engine, Runtime, ServeConfig, StoreKind, default_state_namespace, find_helm, locate_helm,
};

/// An Open Service Broker (API v2.17) that provisions Helm charts.
#[derive(Parser)]
#[command(name = "chartbroker", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CHARTBROKER_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    /// Render manifests into the data directory with `helm template` (no cluster).
    Render,
    /// Install real Helm releases into a cluster.
    Helm,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    /// One redb file in the data directory.
    Redb,
    /// Secrets in the broker's namespace.
    Kube,
}

#[derive(Subcommand)]
enum Command {
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
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CHARTBROKER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Catalog directory.
    #[arg(long, env = "CHARTBROKER_CATALOG", default_value = "catalog")]
    catalog: PathBuf,
    /// Charts directory.
    #[arg(long, env = "CHARTBROKER_CHARTS", default_value = "charts")]
    charts: PathBuf,
    /// Data directory: store, rendered manifests, helm state.
    #[arg(long, env = "CHARTBROKER_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Release engine.
    #[arg(long, env = "CHARTBROKER_ENGINE", default_value = "render")]
    engine: EngineArg,
    /// The helm binary (default: `helm` on PATH, else .tools/bin/helm).
    #[arg(long, env = "CHARTBROKER_HELM")]
    helm: Option<PathBuf>,
    /// Timeout of one helm invocation (durations: 300, 300s, 5m, 1h30m; a bare number is seconds).
    #[arg(long, env = "CHARTBROKER_HELM_TIMEOUT", default_value = "5m", value_parser = duration, allow_hyphen_values = true)]
    helm_timeout: Duration,
    /// Deadline of operations whose plan has no maximum_polling_duration.
    #[arg(long, env = "CHARTBROKER_OPERATION_TIMEOUT", default_value = "30m", value_parser = duration, allow_hyphen_values = true)]
    operation_timeout: Duration,
    /// Deadline of an operation a request waits for (no accepts_incomplete).
    #[arg(long, env = "CHARTBROKER_SYNC_TIMEOUT", default_value = "1m", value_parser = duration, allow_hyphen_values = true)]
    sync_timeout: Duration,
    /// Helm processes running at once; further helm calls wait for a slot.
    #[arg(long, env = "CHARTBROKER_MAX_HELM_PROCESSES", default_value_t = chartbroker::helm::DEFAULT_MAX_PROCESSES)]
    max_helm_processes: usize,
    /// Connections served at once; more get 503 with Retry-After.
    #[arg(long, env = "CHARTBROKER_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,
    /// How long a connection may take to send a request's headers (and stay
    /// idle between requests, and take for a TLS handshake).
    #[arg(long, env = "CHARTBROKER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration, allow_hyphen_values = true)]
    header_read_timeout: Duration,
    /// Namespace for instances whose platform sends none in `context`.
    #[arg(long, env = "CHARTBROKER_DEFAULT_NAMESPACE", default_value = "default")]
    default_namespace: String,
    /// Basic-auth user name.
    #[arg(long, env = "CHARTBROKER_USERNAME", hide_env_values = true)]
    username: Option<String>,
    /// Basic-auth password (prefer the environment variable).
    #[arg(long, env = "CHARTBROKER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// YAML file with `users: [{username, password}]`, `tokens: [...]` and
    /// `certificates: [{sha256, name}]`, each with its trust.
    #[arg(long, env = "CHARTBROKER_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// YAML file (not secret) setting each credential's trust:
    /// `platforms: [{name, identity, namespaces, deprovision_poll}]`.
    #[arg(long, env = "CHARTBROKER_PLATFORMS_FILE")]
    platforms_file: Option<PathBuf>,
    /// Store encryption key, base64 of 32 bytes (prefer the environment variable).
    #[arg(long, env = "CHARTBROKER_STORE_KEY", hide_env_values = true)]
    store_key: Option<String>,
    /// File holding the store encryption key (redb default: <data-dir>/store.key, created if
    /// absent; --store kube never creates one).
    #[arg(long, env = "CHARTBROKER_STORE_KEY_FILE")]
    store_key_file: Option<PathBuf>,
    /// Secret in --state-namespace holding the store key (entry `store.key`; entries `old-*`
    /// are old keys), for --store kube.
    #[arg(long, env = "CHARTBROKER_STORE_KEY_SECRET")]
    store_key_secret: Option<String>,
    /// Old store key file (repeatable): opens records sealed before a key rotation, never seals.
    #[arg(long, env = "CHARTBROKER_STORE_OLD_KEY_FILES", value_delimiter = ',')]
    store_old_key_file: Vec<PathBuf>,
    /// Where records live: `redb` (a file in the data directory, one replica)
    /// or `kube` (Secrets in --state-namespace, several replicas).
    #[arg(long, env = "CHARTBROKER_STORE", default_value = "redb")]
    store: StoreArg,
    /// Namespace of the state Secrets (default: the pod's own namespace, else chartbroker-system).
    #[arg(long, env = "CHARTBROKER_STATE_NAMESPACE")]
    state_namespace: Option<String>,
    /// How long a replica may go silent before others take its operations over (--store kube).
    #[arg(long = "lease-seconds", visible_alias = "lease", env = "CHARTBROKER_LEASE_SECONDS",
          default_value = "30s", value_parser = duration, allow_hyphen_values = true)]
    lease_seconds: Duration,
    /// Kubeconfig for the helm engine (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "CHARTBROKER_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespaces the broker may act in: comma-separated globs, `!glob` denies
    /// (default: all but kube-system, kube-public, kube-node-lease and the
    /// state namespace, which only their literal name here allows).
    #[arg(long, env = "CHARTBROKER_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Label selector a target Namespace must match (k=v, k!=v, k, !k; needs a cluster).
    #[arg(long, env = "CHARTBROKER_NAMESPACE_SELECTOR")]
    namespace_selector: Option<String>,
    /// Check Kubernetes users with SubjectAccessReviews (helm engine); `false`
    /// trusts the platform for every request, identity or not.
    #[arg(long, env = "CHARTBROKER_SUBJECT_ACCESS_REVIEW", default_value_t = true, action = clap::ArgAction::Set)]
    subject_access_review: bool,
    /// ServiceAccount helm runs as in each target namespace (helm engine): a
    /// TokenRequest token of it, never the broker's own credentials.
    #[arg(
        long,
        env = "CHARTBROKER_RELEASE_SERVICE_ACCOUNT",
        default_value = "chartbroker-release"
    )]
    release_service_account: String,
    /// ClusterRole the broker binds to the release ServiceAccount in the
    /// namespaces it creates (`namespace: instance` plans).
    #[arg(
        long,
        env = "CHARTBROKER_RELEASE_CLUSTER_ROLE",
        default_value = "chartbroker-release"
    )]
    release_cluster_role: String,
    /// ClusterRole of the broker's own work in a target namespace, bound to
    /// the broker in the namespaces it creates.
    #[arg(
        long,
        env = "CHARTBROKER_TARGET_CLUSTER_ROLE",
        default_value = "chartbroker-target"
    )]
    target_cluster_role: String,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, env = "CHARTBROKER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "CHARTBROKER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates signed by it (mTLS).
    #[arg(long, env = "CHARTBROKER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Seconds between checks of the catalog, charts, TLS and credentials
    /// files for changes, which are then reloaded; 0: reload on SIGHUP only.
    #[arg(long, env = "CHARTBROKER_RELOAD_INTERVAL", default_value_t = 2)]
    reload_interval: u64,
    #[command(flatten)]
    ui: UiArgs,
}

/// The operator's dashboard (`/ui/`).
#[derive(clap::Args)]
struct UiArgs {
    /// Serve the read-only dashboard under /ui/.
    #[arg(long = "ui", env = "CHARTBROKER_UI")]
    enabled: bool,
    /// The dashboard's own user.
    #[arg(long, env = "CHARTBROKER_UI_USERNAME", hide_env_values = true)]
    ui_username: Option<String>,
    /// Its password (at least 8 characters).
    #[arg(long, env = "CHARTBROKER_UI_PASSWORD", hide_env_values = true)]
    ui_password: Option<String>,
    /// Accept the broker's /v2 credentials on the dashboard instead.
    #[arg(long, env = "CHARTBROKER_UI_BROKER_CREDENTIALS")]
    ui_broker_credentials: bool,
    /// The broker's URL as platforms' users reach it: turns on signed
    /// per-instance links returned as `dashboard_url`.
    #[arg(long, env = "CHARTBROKER_UI_PUBLIC_URL")]
    ui_public_url: Option<String>,
    /// File with the key signing those links (32 bytes or more, shared by
    /// replicas); default: a random key per process.
    #[arg(
        long,
        env = "CHARTBROKER_UI_LINK_KEY_FILE",
        conflicts_with = "ui_link_key"
    )]
    ui_link_key_file: Option<PathBuf>,
    /// The link key itself (32 bytes or more), e.g. from a Secret.
    #[arg(long, env = "CHARTBROKER_UI_LINK_KEY", hide_env_values = true)]
    ui_link_key: Option<String>,
    /// How long a signed link stays valid.
    #[arg(long, env = "CHARTBROKER_UI_LINK_TTL", default_value = "24h", value_parser = duration)]
    ui_link_ttl: Duration,
}

#[derive(Subcommand)]
enum CatalogCommand {
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
struct RenderArgs {
    /// Service name or id.
    #[arg(long)]
    service: String,
    /// Plan name or id.
    #[arg(long)]
    plan: String,
    /// A parameter, `key=value`; the value is parsed as JSON when it can be.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Namespace to render into.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Catalog directory.
    #[arg(long, env = "CHARTBROKER_CATALOG", default_value = "catalog")]
    catalog: PathBuf,
    /// Charts directory.
    #[arg(long, env = "CHARTBROKER_CHARTS", default_value = "charts")]
    charts: PathBuf,
    /// The helm binary.
    #[arg(long, env = "CHARTBROKER_HELM")]
    helm: Option<PathBuf>,
    /// Print only the values, not the manifests.
    #[arg(long)]
    values_only: bool,
}

/// clap's parser for duration flags: one grammar for flags, environment
/// and catalog (`chartbroker::duration`).
fn duration(text: &str) -> Result<Duration, String> {
    chartbroker::duration::parse(text).map_err(|e| e.to_string())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: log collectors get plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::PostRender { call } = &cli.command {
        // Helm waits on this process: no runtime, no logging set-up.
        let out = chartbroker::releases::postrender::run(
            call,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        );
        if let Err(why) = out {
            eprintln!("{why}");
            std::process::exit(1);
        }
        return Ok(());
    }
    init_tracing(cli.log_format);
    // reqwest and kube need a process-wide rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(*args)),
        Command::Catalog {
            command: CatalogCommand::Lint { dir, charts },
        } => rt.block_on(lint(&dir, &charts)),
        Command::Render(args) => rt.block_on(render(args)),
        Command::PostRender { .. } => unreachable!("handled above"),
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let helm = locate_helm(a.helm).map_err(anyhow::Error::msg)?;
    // From here on SIGHUP means reload, never the default (exit), even
    // while the broker is still starting.
    drop(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::hangup(),
    )?);
    let cfg = ServeConfig {
        catalog_dir: a.catalog,
        charts_dir: a.charts,
        data_dir: a.data_dir,
        engine: match a.engine {
            EngineArg::Render => Engine::Render,
            EngineArg::Helm => Engine::Helm,
        },
        helm,
        helm_timeout: a.helm_timeout,
        max_helm_processes: a.max_helm_processes.max(1),
        default_namespace: a.default_namespace,
        store_key: a.store_key,
        store_key_file: a.store_key_file,
        store_key_secret: a.store_key_secret,
        store_old_key_files: a.store_old_key_file,
        username: a.username,
        password: a.password,
        credentials_file: a.credentials_file,
        platforms_file: a.platforms_file,
        operation_timeout: a.operation_timeout,
        sync_timeout: a.sync_timeout.max(Duration::from_secs(1)),
        kubeconfig: a.kubeconfig,
        store: match a.store {
            StoreArg::Redb => StoreKind::Redb,
            StoreArg::Kube => StoreKind::Kube,
        },
        state_namespace: a.state_namespace.unwrap_or_else(default_state_namespace),
        lease: a.lease_seconds.max(Duration::from_secs(1)),
        exe: None,
        namespaces: a.namespaces,
        namespace_selector: a.namespace_selector,
        subject_access_review: a.subject_access_review,
        release_identity: chartbroker::cluster::IdentityNames {
            service_account: a.release_service_account,
            release_role: a.release_cluster_role,
            target_role: a.target_cluster_role,
        },
    };
    let tls = match a.tls_cert.zip(a.tls_key) {
        Some((cert, key)) => Some(std::sync::Arc::new(chartbroker::tls::LiveTls::new(
            chartbroker::tls::TlsSettings {
                cert,
                key,
                client_ca: a.tls_client_ca,
            },
        )?)),
        None => None,
    };
    let mut runtime =
        Runtime::init(&cfg, std::sync::Arc::new(chartbroker::dbusers::Servers)).await?;
    if a.ui.enabled {
        runtime.enable_ui(chartbroker::ui::Ui::configure(
            chartbroker::ui::UiSettings {
                username: a.ui.ui_username,
                password: a.ui.ui_password,
                broker_credentials: a.ui.ui_broker_credentials,
                public_url: a.ui.ui_public_url,
                link_key_file: a.ui.ui_link_key_file,
                link_key: a.ui.ui_link_key,
                link_ttl: a.ui.ui_link_ttl,
            },
        )?);
    }
    let _reload = std::sync::Arc::new(runtime.reloader(tls.clone()))
        .spawn((a.reload_interval > 0).then(|| Duration::from_secs(a.reload_interval)))?;
    let listener = std::net::TcpListener::bind(a.listen)
        .with_context(|| format!("listening on {}", a.listen))?;
    tracing::info!(listen = %listener.local_addr()?, tls = tls.is_some(),
        mtls = tls.as_ref().is_some_and(|t| t.mutual()),
        catalog = %cfg.catalog_dir.display(), data_dir = %cfg.data_dir.display(), "chartbroker serving");
    let limits = chartbroker::server::EdgeLimits {
        header_read_timeout: a.header_read_timeout.max(Duration::from_secs(1)),
        max_connections: a.max_connections.max(1),
    };
    // Listen first, recover second: probes reach a broker that is still
    // settling a large store (`/readyz` says "starting" until it is done).
    let server = chartbroker::server::run_live(
        runtime.app(),
        listener,
        tls,
        limits,
        chartbroker::server::shutdown_signal(),
    );
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        r = runtime.recover() => r?,
    }
    tracing::info!("recovery finished; ready");
    chartbroker::runtime::resident::shed_start_up();
    server.await
}

async fn lint(dir: &std::path::Path, charts: &std::path::Path) -> anyhow::Result<()> {
    let mut issues = chartbroker::catalog::lint(dir, charts);
    if issues.is_empty() {
        let c = Catalog::load(dir, charts)?;
        // Upstream brokers: settings and import conflicts are problems; an
        // unreachable upstream is only a warning.
        for f in chartbroker::upstream::lint(&c, dir).await {
            if f.warning {
                eprintln!("warning: {}", f.issue);
            } else {
                issues.push(f.issue);
            }
        }
    }
    if issues.is_empty() {
        let c = Catalog::load(dir, charts)?;
        let plans: usize = c.services().iter().map(|s| s.plans.len()).sum();
        println!(
            "{}: ok ({} services, {plans} plans)",
            dir.display(),
            c.services().len()
        );
        for line in chartbroker::catalog::policy_report(&c) {
            println!("  {line}");
        }
        return Ok(());
    }
    for i in &issues {
        eprintln!("{i}");
    }
    eprintln!("{} problem(s)", issues.len());
    std::process::exit(1);
}

async fn render(a: RenderArgs) -> anyhow::Result<()> {
    use chartbroker::releases::{pipeline::RenderError, preview};
    let catalog = Catalog::load(&a.catalog, &a.charts)?;
    let (service, plan) =
        preview::find(&catalog, &a.service, &a.plan).map_err(anyhow::Error::msg)?;
    let mut params = serde_json::Map::new();
    for p in &a.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?} is not key=value"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        params.insert(k.to_string(), v);
    }
    let release =
        preview::release(service, plan, params, &a.namespace).map_err(anyhow::Error::msg)?;
    println!("# values (generated secrets are shown: this is a local preview)");
    println!("{}", serde_json::to_string_pretty(&release.values)?);
    if a.values_only {
        return Ok(());
    }
    let tmp = std::env::temp_dir().join(format!("chartbroker-render-{}", std::process::id()));
    let helm = chartbroker::helm::Helm::new(find_helm(a.helm), &tmp, Duration::from_secs(120));
    // A remote chart is pulled (and verified) into the temporary directory.
    let out = preview::manifests(&helm, plan, release, &tmp).await;
    let _ = std::fs::remove_dir_all(&tmp);
    // The same verdict `serve` would give: a preview that passes here passes
    // there (up to what only a cluster's `lookup` changes). What passes is
    // shown as the broker would write it; what fails, as helm rendered it.
    match out {
        Ok(manifests) => {
            print!("{manifests}");
            Ok(())
        }
        Err(e @ RenderError::Refused { .. }) => {
            if let RenderError::Refused { manifests, .. } = &e {
                print!("{manifests}");
            }
            Err(anyhow::anyhow!("{e}"))
        }
        Err(e) => Err(e.into()),
    }
}
