//! The named steps of [`super::Runtime::init`], in the order it runs them:
//! catalog (with upstream brokers), namespaces, cluster, store, helm, the
//! release engine, replicas; and the credentials the edge checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{Engine, ServeConfig, StoreKind};
use crate::broker::Broker;
use crate::broker::namespaces::NamespacePolicy;
use crate::broker::ports::{Authorizer, SecretSink, Store};
use crate::catalog::Catalog;
use crate::charts::ChartFetcher;
use crate::cluster::Kube;
use crate::helm::Helm;
use crate::metrics::Metrics;
use crate::osb::auth::Credentials;
use crate::releases::chart::ChartPlans;
use crate::releases::helm_engine::HelmEngine;
use crate::releases::render::RenderEngine;
use crate::releases::secret_sink::KubeSink;
use crate::store::health::StoreHealth;
use crate::store::kubernetes::KubeStore;
use crate::store::redb::RedbStore;
use crate::store::seal::{Sealer, write_private};
use crate::upstream::Upstreams;

/// The catalog, with the plans of upstream brokers merged in before
/// anything resumes, so operations on imported plans find their plan.
pub(super) async fn load_catalog(
    cfg: &ServeConfig,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Catalog, Option<Upstreams>)> {
    let catalog = Catalog::load(&cfg.catalog_dir, &cfg.charts_dir)
        .with_context(|| format!("loading the catalog from {}", cfg.catalog_dir.display()))?;
    let m = metrics.clone();
    let upstreams = Upstreams::new(
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
    Ok((catalog, upstreams))
}

/// Which namespaces requests may name; a label selector needs a cluster.
pub(super) fn namespace_policy(cfg: &ServeConfig) -> anyhow::Result<NamespacePolicy> {
    let namespaces = NamespacePolicy::new(
        &cfg.namespaces,
        cfg.namespace_selector.as_deref(),
        &cfg.state_namespace,
    )
    .map_err(anyhow::Error::msg)?;
    if namespaces.selector().is_some() && cfg.engine != Engine::Helm && cfg.store != StoreKind::Kube
    {
        anyhow::bail!(
            "--namespace-selector reads Namespaces from a cluster: it needs --engine helm or --store kube"
        );
    }
    Ok(namespaces)
}

/// The Kubernetes connection, when the engine or the store needs one.
pub(super) async fn connect(cfg: &ServeConfig) -> anyhow::Result<Option<Kube>> {
    if cfg.engine != Engine::Helm && cfg.store != StoreKind::Kube {
        return Ok(None);
    }
    let kubeconfig = resolve_kubeconfig(cfg.kubeconfig.clone());
    Kube::connect(kubeconfig.as_deref())
        .await
        .context("connecting to Kubernetes")
        .map(Some)
}

/// The record store with its key, and the health it reports to `/readyz`.
pub(super) async fn open_store(
    cfg: &ServeConfig,
    kube: Option<&Kube>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<StoreHealth>)> {
    let sealer = store_key(cfg, kube).await?;
    tracing::info!(key_id = %sealer.key_id(), "store key loaded");
    let m = metrics.clone();
    let health = Arc::new(StoreHealth::with_observer(Arc::new(move |kind| {
        m.store_error(kind)
    })));
    let store: Arc<dyn Store> = match (cfg.store, kube) {
        (StoreKind::Redb, _) => Arc::new(
            RedbStore::open(&cfg.data_dir.join("chartbroker.redb"), sealer)
                .context("opening the store (is another broker using this data directory?)")?
                .with_health(health.clone()),
        ),
        (StoreKind::Kube, Some(kube)) => {
            tracing::info!(namespace = %cfg.state_namespace, "state in Kubernetes Secrets");
            let lists = metrics.clone();
            let store = KubeStore::new(kube, cfg.state_namespace.clone(), sealer)
                .with_health(health.clone())
                .with_list_observer(Arc::new(move |selects| lists.store_list(selects)));
            store.check_key().await.context("checking the store key")?;
            Arc::new(store)
        }
        (StoreKind::Kube, None) => unreachable!("connect() connects for --store kube"),
    };
    Ok((store, health))
}

/// Helm (checked, not required: chart operations fail until it works) and
/// the fetcher that pulls remote charts once into the data directory.
pub(super) async fn start_helm(
    cfg: &ServeConfig,
    metrics: &Arc<Metrics>,
    catalog: &Catalog,
) -> (Helm, Arc<ChartFetcher>) {
    let (m, load) = (metrics.clone(), metrics.clone());
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
    let fetcher = Arc::new(ChartFetcher::new(helm.clone(), cfg.data_dir.join("charts")));
    match fetcher.prune(catalog).await {
        0 => {}
        n => tracing::info!(
            removed = n,
            "removed cached charts the catalog no longer uses"
        ),
    }
    (helm, fetcher)
}

/// The release engine's side of the core's ports.
pub(super) struct Wired {
    pub(super) chart: Arc<ChartPlans>,
    pub(super) sink: Arc<dyn SecretSink>,
    pub(super) authorizer: Option<Arc<dyn Authorizer>>,
    /// What the dashboard reads of releases.
    pub(super) records: Arc<dyn crate::releases::inspect::ReleaseRecords>,
}

/// The chart plans on the configured engine, where binding Secrets go, and
/// who checks Kubernetes users.
pub(super) async fn wire_engine(
    cfg: &ServeConfig,
    kube: Option<&Kube>,
    helm: Helm,
    fetcher: Arc<ChartFetcher>,
    users: Arc<dyn crate::dbusers::UserAdmin>,
) -> anyhow::Result<Wired> {
    let plans = |engine| {
        Arc::new(
            ChartPlans::new(engine)
                .with_fetcher(fetcher)
                .with_user_admin(users),
        )
    };
    match (cfg.engine, kube) {
        (Engine::Render, _) => {
            let engine = RenderEngine::new(helm, cfg.data_dir.join("render"));
            let records = Arc::new(crate::releases::inspect::RenderRecords::new(
                cfg.data_dir.join("render"),
            ));
            // With a cluster at hand (`--store kube`), instance namespaces
            // are checked there too.
            let engine = Arc::new(match kube {
                Some(k) => engine.with_cluster(k.clone()),
                None => engine,
            });
            Ok(Wired {
                chart: plans(engine.clone()),
                sink: engine,
                authorizer: None,
                records,
            })
        }
        (Engine::Helm, Some(kube)) => {
            let (engine, records) = helm_engine(cfg, kube, helm).await?;
            Ok(Wired {
                chart: plans(Arc::new(engine)),
                sink: Arc::new(KubeSink::new(kube.clone())),
                authorizer: cfg
                    .subject_access_review
                    .then(|| Arc::new(kube.clone()) as Arc<dyn Authorizer>),
                records,
            })
        }
        (Engine::Helm, None) => unreachable!("connect() connects for the helm engine"),
    }
}

/// The helm engine as the release identity, with the broker itself as
/// helm's post-renderer, and what the dashboard reads of its releases.
async fn helm_engine(
    cfg: &ServeConfig,
    kube: &Kube,
    helm: Helm,
) -> anyhow::Result<(HelmEngine, Arc<crate::releases::inspect::HelmRecords>)> {
    let exe = match &cfg.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("finding the broker's own executable (helm's post-renderer)")?,
    };
    let records = Arc::new(crate::releases::inspect::HelmRecords::new(
        helm.clone(),
        kube.clone(),
        cfg.release_identity.clone(),
    ));
    // No kubeconfig for helm itself: each release call gets a
    // private one holding the release identity's token.
    let engine = HelmEngine::new(helm, kube.clone(), &exe)
        .await
        .context("the helm engine needs a working helm binary")?
        .with_identity(cfg.release_identity.clone());
    tracing::info!(helm_major = engine.major(), "helm engine ready");
    if !cfg.subject_access_review {
        tracing::warn!(
            "SubjectAccessReview is off: the platform is trusted for every namespace a request names"
        );
    }
    Ok((engine, records))
}

/// With `--store kube`, a Lease of this replica's own; without one (no
/// rights in the state namespace) operations fall back to heartbeats.
pub(super) async fn join_replicas(cfg: &ServeConfig, kube: Option<&Kube>, broker: &Broker) {
    let (StoreKind::Kube, Some(kube)) = (cfg.store, kube) else {
        return;
    };
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

/// Why `--store kube` never makes up a key.
const SHARED_KEY_NEEDED: &str = "--store kube needs a store key shared by every replica: \
    set --store-key-file, CHARTBROKER_STORE_KEY or --store-key-secret NAME (a Secret in the \
    state namespace). A key created by each replica on its own would leave every replica \
    unable to read the records the others write, so none is created";

/// The current key (from the flag or environment, a file or a Secret) plus
/// the old keys. Only the redb store, used by one process, may create its
/// key file.
pub(super) async fn store_key(cfg: &ServeConfig, kube: Option<&Kube>) -> anyhow::Result<Sealer> {
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
pub(super) fn credentials(cfg: &ServeConfig) -> anyhow::Result<Credentials> {
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
