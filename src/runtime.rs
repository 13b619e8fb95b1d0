//! Wires adapters to the core's ports: the one place that knows which store,
//! engine and sink a configuration means.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use crate::broker::namespaces::NamespacePolicy;
use crate::broker::ports::Store;
use crate::broker::ports::{Authorizer, NamespaceLabels, SecretSink};
use crate::broker::{Adapters, Broker, BrokerConfig};
use crate::catalog::Catalog;
use crate::cluster::Kube;
use crate::helm::Helm;
use crate::metrics::Metrics;
use crate::osb::{AppState, auth::Credentials};
use crate::releases::chart::ChartPlans;
use crate::releases::helm_engine::{HelmEngine, KubeSink};
use crate::releases::render::RenderEngine;
use crate::store::health::StoreHealth;
use crate::store::kubernetes::KubeStore;
use crate::store::redb::RedbStore;
use crate::store::seal::{Sealer, write_private};

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
        let catalog = Catalog::load(&cfg.catalog_dir, &cfg.charts_dir)
            .with_context(|| format!("loading the catalog from {}", cfg.catalog_dir.display()))?;
        // Upstream brokers: their backend, and imported catalogs merged in
        // before resuming, so operations on imported plans find their plan.
        let metrics = Arc::new(Metrics::default());
        let m = metrics.clone();
        let upstreams = crate::upstream::Upstreams::new(
            &catalog,
            &cfg.catalog_dir,
            &cfg.data_dir,
            Some(Arc::new(
                move |broker: &str, method: &str, outcome: &str, took| {
                    m.upstream_call(broker, method, outcome, took)
                },
            )),
        );
        let catalog = match &upstreams {
            Some(u) => u.initial_catalog(catalog).await,
            None => catalog,
        };
        let namespaces = NamespacePolicy::new(
            &cfg.namespaces,
            cfg.namespace_selector.as_deref(),
            &cfg.state_namespace,
        )
        .map_err(anyhow::Error::msg)?;
        if namespaces.selector().is_some()
            && cfg.engine != Engine::Helm
            && cfg.store != StoreKind::Kube
        {
            anyhow::bail!(
                "--namespace-selector reads Namespaces from a cluster: it needs --engine helm or --store kube"
            );
        }
        let kubeconfig = resolve_kubeconfig(cfg.kubeconfig.clone());
        let kube = if cfg.engine == Engine::Helm || cfg.store == StoreKind::Kube {
            Some(
                Kube::connect(kubeconfig.as_deref())
                    .await
                    .context("connecting to Kubernetes")?,
            )
        } else {
            None
        };
        let sealer = store_key(cfg, kube.as_ref()).await?;
        tracing::info!(key_id = %sealer.key_id(), "store key loaded");
        let m = metrics.clone();
        let store_health = Arc::new(StoreHealth::with_observer(Arc::new(move |kind| {
            m.store_error(kind)
        })));
        let store: Arc<dyn Store> = match (cfg.store, &kube) {
            (StoreKind::Redb, _) => Arc::new(
                RedbStore::open(&cfg.data_dir.join("chartbroker.redb"), sealer)
                    .context("opening the store (is another broker using this data directory?)")?
                    .with_health(store_health.clone()),
            ),
            (StoreKind::Kube, Some(kube)) => {
                tracing::info!(namespace = %cfg.state_namespace, "state in Kubernetes Secrets");
                let lists = metrics.clone();
                let store = KubeStore::new(kube, cfg.state_namespace.clone(), sealer)
                    .with_health(store_health.clone())
                    .with_list_observer(Arc::new(move |selects| lists.store_list(selects)));
                store.check_key().await.context("checking the store key")?;
                Arc::new(store)
            }
            (StoreKind::Kube, None) => unreachable!("connected above"),
        };
        let m = metrics.clone();
        let load = metrics.clone();
        let helm = Helm::new(&cfg.helm, cfg.data_dir.join("helm"), cfg.helm_timeout)
            .with_observer(Arc::new(move |cmd, took, ok| m.helm_call(cmd, took, ok)))
            .with_max_processes(
                cfg.max_helm_processes,
                Some(Arc::new(move |running, waiting| {
                    load.helm_load(running, waiting)
                })),
            );
        match helm.version().await {
            Ok(v) => tracing::info!(helm = %cfg.helm.display(), version = %v, "using helm"),
            Err(e) => tracing::warn!(error = %e,
                "helm is not usable: chart operations will fail until it is (run scripts/install-tools.sh or pass --helm)"),
        }
        // Remote charts (repositories, OCI) are pulled once into the data directory.
        let fetcher = Arc::new(crate::charts::ChartFetcher::new(
            helm.clone(),
            cfg.data_dir.join("charts"),
        ));
        match fetcher.prune(&catalog).await {
            0 => {}
            n => tracing::info!(
                removed = n,
                "removed cached charts the catalog no longer uses"
            ),
        }
        type Wired = (
            Arc<ChartPlans>,
            Arc<dyn SecretSink>,
            Option<Arc<dyn Authorizer>>,
        );
        let (chart, sink, authorizer): Wired = match cfg.engine {
            Engine::Render => {
                let engine = RenderEngine::new(helm, cfg.data_dir.join("render"));
                // With a cluster at hand (`--store kube`), instance namespaces
                // are checked there too.
                let engine = Arc::new(match &kube {
                    Some(k) => engine.with_cluster(k.clone()),
                    None => engine,
                });
                let plans = ChartPlans::new(engine.clone())
                    .with_fetcher(fetcher)
                    .with_user_admin(users);
                (Arc::new(plans), engine, None)
            }
            Engine::Helm => {
                let kube = kube.clone().expect("connected above for the helm engine");
                let exe = match &cfg.exe {
                    Some(p) => p.clone(),
                    None => std::env::current_exe()
                        .context("finding the broker's own executable (helm's post-renderer)")?,
                };
                let engine = HelmEngine::new(helm.with_kubeconfig(kubeconfig), kube.clone(), &exe)
                    .await
                    .context("the helm engine needs a working helm binary")?;
                tracing::info!(helm_major = engine.major(), "helm engine ready");
                if !cfg.subject_access_review {
                    tracing::warn!(
                        "SubjectAccessReview is off: the platform is trusted for every namespace a request names"
                    );
                }
                (
                    Arc::new(
                        ChartPlans::new(Arc::new(engine))
                            .with_fetcher(fetcher)
                            .with_user_admin(users),
                    ),
                    Arc::new(KubeSink::new(kube.clone())),
                    cfg.subject_access_review
                        .then(|| Arc::new(kube) as Arc<dyn Authorizer>),
                )
            }
        };
        let m = metrics.clone();
        let broker = Broker::new(
            catalog,
            Adapters {
                store,
                chart,
                upstream: upstreams.as_ref().map(|u| u.backend()),
                sink,
                authorizer,
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
        if let (StoreKind::Kube, Some(kube)) = (cfg.store, &kube) {
            match crate::store::lease::KubeReplicas::start(
                kube,
                &cfg.state_namespace,
                broker.replica(),
                cfg.lease,
            )
            .await
            {
                Ok(r) => broker.set_replicas(r),
                Err(e) => tracing::warn!(error = %e,
                    "no replica Lease: falling back to a heartbeat per operation and a sweep of every record each half lease (grant leases in the state namespace)"),
            }
        }
        let upstreams = upstreams.map(Arc::new);
        let upstream_refresh = upstreams.as_ref().and_then(|u| u.spawn_refresh(&broker));
        let credentials = credentials(cfg)?;
        let state = AppState {
            broker,
            credentials: Arc::new(crate::osb::auth::LiveCredentials::new(credentials)),
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
        self.state.ui = Some(Arc::new(ui));
    }

    /// The HTTP application.
    pub fn app(&self) -> axum::Router {
        crate::osb::app(self.state.clone())
    }
}

/// Why `--store kube` never makes up a key.
const SHARED_KEY_NEEDED: &str = "--store kube needs a store key shared by every replica: \
    set --store-key-file, CHARTBROKER_STORE_KEY or --store-key-secret NAME (a Secret in the \
    state namespace). A key created by each replica on its own would leave every replica \
    unable to read the records the others write, so none is created";

/// The current key (from the flag or environment, a file or a Secret) plus
/// the old keys. Only the redb store, used by one process, may create its
/// key file.
async fn store_key(cfg: &ServeConfig, kube: Option<&Kube>) -> anyhow::Result<Sealer> {
    let mut sealer = if let Some(k) = &cfg.store_key {
        Sealer::from_base64(k).context("CHARTBROKER_STORE_KEY")?
    } else if let Some(path) = &cfg.store_key_file {
        match cfg.store {
            StoreKind::Kube => Sealer::load(path)?,
            StoreKind::Redb => created(path, Sealer::load_or_create(path)?),
        }
    } else if let Some(name) = &cfg.store_key_secret {
        let kube = kube.context(
            "--store-key-secret needs a Kubernetes connection (--store kube or --engine helm)",
        )?;
        crate::store::kubernetes::key_from_secret(kube, &cfg.state_namespace, name)
            .await
            .with_context(|| {
                format!(
                    "reading the store key from Secret {}/{name}",
                    cfg.state_namespace
                )
            })?
    } else if cfg.store == StoreKind::Kube {
        anyhow::bail!(SHARED_KEY_NEEDED);
    } else {
        let path = cfg.data_dir.join("store.key");
        created(&path, Sealer::load_or_create(&path)?)
    };
    for path in &cfg.store_old_key_files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("old store key file {}", path.display()))?;
        sealer = sealer
            .with_old_base64(&text)
            .with_context(|| format!("old store key file {}", path.display()))?;
    }
    Ok(sealer)
}

fn created(path: &Path, (sealer, created): (Sealer, bool)) -> Sealer {
    if created {
        tracing::warn!(path = %path.display(),
            "created a new store encryption key; back it up: without it the store cannot be read");
    }
    sealer
}

/// Credentials from the environment and the credentials file; when none is
/// configured, a generated user is written to `<data-dir>/credentials.yaml`
/// (never to the log).
fn credentials(cfg: &ServeConfig) -> anyhow::Result<Credentials> {
    let mut c = Credentials::default();
    match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => c.add_user(u, p),
        (None, None) => {}
        _ => anyhow::bail!("set both CHARTBROKER_USERNAME and CHARTBROKER_PASSWORD, or neither"),
    }
    if let Some(f) = &cfg.credentials_file {
        c.add_file(f)?;
    }
    if c.is_empty() {
        let path = cfg.data_dir.join("credentials.yaml");
        if !path.exists() {
            let password = Sealer::generate_base64()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(24)
                .collect::<String>();
            write_private(
                &path,
                format!("# generated by chartbroker on first start\nusers:\n  - username: admin\n    password: {password}\n").as_bytes(),
            )?;
        }
        tracing::warn!(path = %path.display(),
            "no credentials configured: using the generated user 'admin' whose password is in this file");
        c.add_file(&path)?;
    }
    if let Some(f) = &cfg.platforms_file {
        crate::osb::credentials_file::apply_platforms_file(&mut c, f)?;
    }
    Ok(c)
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

/// The kubeconfig helm and kube-rs share: an explicit one, else
/// `KUBECONFIG`, else `~/.kube/config`; `None` means in-cluster.
fn resolve_kubeconfig(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| {
            std::env::var_os("KUBECONFIG")
                .and_then(|v| std::env::split_paths(&v).next())
                .filter(|p| !p.as_os_str().is_empty())
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".kube/config"))
                .filter(|p| p.is_file())
        })
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
