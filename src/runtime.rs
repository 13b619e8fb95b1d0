//! Wires adapters to the core's ports: the one place that knows which store,
//! engine and sink a configuration means.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

mod steps;
use steps::credentials;

use crate::broker::ports::NamespaceLabels;
use crate::broker::{Adapters, Broker, BrokerConfig};
use crate::metrics::Metrics;
use crate::osb::AppState;

/// Release engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `helm template` into the data directory (no cluster).
    Render,
    /// Real helm releases in a cluster.
    Helm,
}

/// Where the broker keeps its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One redb file in the data directory (one replica).
    Redb,
    /// Secrets in the broker's namespace (several replicas).
    Kube,
}

/// Everything `serve` needs, already parsed. `Debug` leaves out the
/// password and the store key.
#[derive(Clone)]
pub struct ServeConfig {
    /// Catalog directory.
    pub catalog_dir: PathBuf,
    /// Charts directory.
    pub charts_dir: PathBuf,
    /// Data directory (store, rendered manifests, helm homes).
    pub data_dir: PathBuf,
    /// Release engine.
    pub engine: Engine,
    /// The helm binary.
    pub helm: PathBuf,
    /// Timeout of one helm call.
    pub helm_timeout: Duration,
    /// Helm processes running at once; further calls queue.
    pub max_helm_processes: usize,
    /// Namespace when the platform sends none.
    pub default_namespace: String,
    /// Store key (base64) given directly, e.g. from the environment.
    pub store_key: Option<String>,
    /// Store key file; default `<data-dir>/store.key` (created) with the
    /// redb store; the Kubernetes store never creates one.
    pub store_key_file: Option<PathBuf>,
    /// Secret in the state namespace holding the store key (`store.key`)
    /// and old keys (`old-*`).
    pub store_key_secret: Option<String>,
    /// Old store keys: they open records sealed before a rotation, never
    /// seal.
    pub store_old_key_files: Vec<PathBuf>,
    /// Basic-auth user from the environment.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// A credentials file (users, tokens, certificates).
    pub credentials_file: Option<PathBuf>,
    /// A platforms file: the trust of each named credential.
    pub platforms_file: Option<PathBuf>,
    /// Deadline for operations whose plan sets none.
    pub operation_timeout: Duration,
    /// Deadline for operations a request waits for (synchronous).
    pub sync_timeout: Duration,
    /// Kubeconfig for the helm engine (default: standard resolution).
    pub kubeconfig: Option<PathBuf>,
    /// Where records live.
    pub store: StoreKind,
    /// Namespace of the broker's own state Secrets (Kubernetes store).
    pub state_namespace: String,
    /// How long an operation's owner may go silent before another replica
    /// takes the operation over (Kubernetes store).
    pub lease: Duration,
    /// The chartbroker binary helm runs as its post-renderer; default: this
    /// process's own executable (tests, which run in-process, name it).
    pub exe: Option<PathBuf>,
    /// `--namespaces`: globs the broker may act in, `!glob` denied.
    pub namespaces: Vec<String>,
    /// `--namespace-selector`: labels a target Namespace must carry.
    pub namespace_selector: Option<String>,
    /// Whether Kubernetes users are checked with SubjectAccessReviews (helm
    /// engine); off, the platform is trusted for every request.
    pub subject_access_review: bool,
    /// The release identity helm runs as in each target namespace (helm
    /// engine): its ServiceAccount and the ClusterRoles the broker binds
    /// in namespaces it creates.
    pub release_identity: crate::cluster::IdentityNames,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("catalog_dir", &self.catalog_dir)
            .field("charts_dir", &self.charts_dir)
            .field("data_dir", &self.data_dir)
            .field("engine", &self.engine)
            .field("helm", &self.helm)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("store_key", &self.store_key.as_ref().map(|_| "<redacted>"))
            .field("store_key_file", &self.store_key_file)
            .field("store_key_secret", &self.store_key_secret)
            .field("store_old_key_files", &self.store_old_key_files)
            .field("credentials_file", &self.credentials_file)
            .field("platforms_file", &self.platforms_file)
            .field("kubeconfig", &self.kubeconfig)
            .field("store", &self.store)
            .field("state_namespace", &self.state_namespace)
            .field("namespaces", &self.namespaces)
            .field("namespace_selector", &self.namespace_selector)
            .field("subject_access_review", &self.subject_access_review)
            .field("release_identity", &self.release_identity)
            .finish_non_exhaustive()
    }
}

/// A wired broker, ready to serve.
pub struct Runtime {
    /// The HTTP state (broker, credentials, metrics, readiness).
    pub state: AppState,
    /// Refreshes imported upstream catalogs while the runtime lives.
    _upstream_refresh: Option<crate::upstream::aggregate::RefreshTask>,
    /// Takes over operations of replicas that died; forgets old tombstones.
    /// Started by [`Runtime::recover`].
    sweeper: std::sync::Mutex<Option<crate::broker::worker::AbortOnDrop>>,
    /// What reloads read: the configuration and the upstream brokers.
    cfg: ServeConfig,
    upstreams: Option<Arc<crate::upstream::Upstreams>>,
    /// What the dashboard reads of releases.
    records: Arc<dyn crate::releases::inspect::ReleaseRecords>,
}

impl Runtime {
    /// Opens the store, loads the catalog, wires the engine and resumes
    /// every operation a previous process left in progress: ready to serve.
    pub async fn start(cfg: &ServeConfig) -> anyhow::Result<Runtime> {
        Self::start_with(cfg, Arc::new(crate::dbusers::Servers)).await
    }

    /// [`Runtime::start`] with per-binding database users created and
    /// dropped by `users` (tests wrap the real servers to crash mid-bind).
    pub async fn start_with(
        cfg: &ServeConfig,
        users: Arc<dyn crate::dbusers::UserAdmin>,
    ) -> anyhow::Result<Runtime> {
        let runtime = Self::init(cfg, users).await?;
        runtime.recover().await?;
        Ok(runtime)
    }

    /// Everything [`Runtime::start`] does but recovery: `/healthz` answers
    /// and `/readyz` says "starting" until [`Runtime::recover`] is done, so
    /// `serve` listens (and liveness probes pass) while a large store is
    /// being settled.
    pub async fn init(
        cfg: &ServeConfig,
        users: Arc<dyn crate::dbusers::UserAdmin>,
    ) -> anyhow::Result<Runtime> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
        let metrics = Arc::new(Metrics::default());
        let (catalog, upstreams) = steps::load_catalog(cfg, &metrics).await?;
        let namespaces = steps::namespace_policy(cfg)?;
        let kube = steps::connect(cfg).await?;
        let (store, store_health) = steps::open_store(cfg, kube.as_ref(), &metrics).await?;
        let (helm, fetcher) = steps::start_helm(cfg, &metrics, &catalog).await;
        let wired = steps::wire_engine(cfg, kube.as_ref(), helm, fetcher, users).await?;
        let records = wired.records.clone();
        let m = metrics.clone();
        let broker = Broker::new(
            catalog,
            Adapters {
                store,
                chart: wired.chart,
                upstream: upstreams.as_ref().map(|u| u.backend()),
                sink: wired.sink,
                authorizer: wired.authorizer,
                namespaces: kube
                    .clone()
                    .map(|k| Arc::new(k) as Arc<dyn NamespaceLabels>),
            },
            BrokerConfig {
                default_namespace: cfg.default_namespace.clone(),
                default_operation_timeout: cfg.operation_timeout,
                sync_operation_timeout: cfg.sync_timeout,
                shared_store: cfg.store == StoreKind::Kube,
                lease: cfg.lease,
                namespaces,
                ..BrokerConfig::default()
            },
            Some(Arc::new(move |kind, state| m.operation(kind, state))),
        );
        steps::join_replicas(cfg, kube.as_ref(), &broker).await;
        let upstreams = upstreams.map(Arc::new);
        let upstream_refresh = upstreams.as_ref().and_then(|u| u.spawn_refresh(&broker));
        let state = AppState {
            broker,
            credentials: Arc::new(crate::osb::auth::LiveCredentials::new(credentials(cfg)?)),
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            store_health,
            ui: None,
        };
        Ok(Runtime {
            state,
            _upstream_refresh: upstream_refresh,
            sweeper: std::sync::Mutex::new(None),
            cfg: cfg.clone(),
            upstreams,
            records,
        })
    }

    /// Settles every operation a previous process left in progress (resumes
    /// it, or fails it past its deadline), starts the sweeper, and only then
    /// reports ready.
    pub async fn recover(&self) -> anyhow::Result<()> {
        let broker = &self.state.broker;
        let resumed = broker.resume().await.context("resuming operations")?;
        if resumed > 0 {
            tracing::info!(
                resumed,
                "resumed operations left in progress by a previous run"
            );
        }
        *self.sweeper.lock().expect("sweeper lock") = Some(broker.spawn_sweeper());
        self.state.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// What reloads the catalog, credentials and (when given) the
    /// listener's TLS of this runtime.
    pub fn reloader(&self, tls: Option<Arc<crate::tls::LiveTls>>) -> crate::reload::Reloader {
        let cfg = self.cfg.clone();
        crate::reload::Reloader {
            broker: self.state.broker.clone(),
            catalog_dir: cfg.catalog_dir.clone(),
            charts_dir: cfg.charts_dir.clone(),
            upstreams: self.upstreams.clone(),
            credentials: self.state.credentials.clone(),
            credentials_file: cfg
                .credentials_file
                .iter()
                .chain(&cfg.platforms_file)
                .cloned()
                .collect(),
            credential_source: Arc::new(move || credentials(&cfg)),
            tls,
            metrics: self.state.metrics.clone(),
        }
    }

    /// Turns the dashboard on (before [`Runtime::app`]); fills in the
    /// store and engine it shows.
    pub fn enable_ui(&mut self, mut ui: crate::ui::Ui) {
        ui.store = format!("{:?}", self.cfg.store).to_lowercase();
        ui.engine = format!("{:?}", self.cfg.engine).to_lowercase();
        ui.releases = Some(self.records.clone());
        ui.upstreams = self.upstreams.clone();
        self.state.ui = Some(Arc::new(ui));
    }

    /// The HTTP application.
    pub fn app(&self) -> crate::osb::App {
        crate::osb::app(self.state.clone())
    }
}

/// The namespace the broker runs in (from its service account), else
/// `chartbroker-system`.
pub fn default_state_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "chartbroker-system".into())
}

/// Resolves the helm binary: an explicit path, else `helm` on PATH, else the
/// one `scripts/install-tools.sh` installs; `helm` (left to fail when run)
/// when there is none.
pub fn find_helm(explicit: Option<PathBuf>) -> PathBuf {
    locate_helm(explicit).unwrap_or_else(|_| PathBuf::from("helm"))
}

/// [`find_helm`] that says how to get helm when there is none: `serve`
/// refuses to start without it rather than fail every chart operation.
pub fn locate_helm(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    let on_path = |name: &Path| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = explicit {
        // A bare name is looked up on PATH, as running it would.
        let found = if p.components().count() == 1 && !p.is_absolute() {
            on_path(&p)
        } else {
            Some(p.clone()).filter(|p| p.is_file())
        };
        return found.ok_or_else(|| {
            format!(
                "--helm {}: no such file (helm 3.18+ or 4 is needed: \
                 scripts/install-tools.sh --runtime installs it at .tools/bin/helm)",
                p.display()
            )
        });
    }
    if let Some(p) = on_path(Path::new("helm")) {
        return Ok(p);
    }
    let local = Path::new(".tools/bin/helm");
    if local.is_file() {
        return Ok(local.canonicalize().unwrap_or_else(|_| local.to_path_buf()));
    }
    Err(
        "helm not found on PATH nor at .tools/bin/helm: run scripts/install-tools.sh --runtime, \
         or pass --helm /path/to/helm (helm 3.18+ or 4)"
            .into(),
    )
}
