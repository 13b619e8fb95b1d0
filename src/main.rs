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

#[path = "main/args.rs"]
mod args;
use args::*;

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

/// The broker's settings from its flags.
fn serve_config(a: &ServeArgs, helm: std::path::PathBuf) -> ServeConfig {
    ServeConfig {
        catalog_dir: a.catalog.clone(),
        charts_dir: a.charts.clone(),
        data_dir: a.data_dir.clone(),
        engine: match a.engine {
            EngineArg::Render => Engine::Render,
            EngineArg::Helm => Engine::Helm,
        },
        helm,
        helm_timeout: a.helm_timeout,
        max_helm_processes: a.max_helm_processes.max(1),
        default_namespace: a.default_namespace.clone(),
        store_key: a.store_key.clone(),
        store_key_file: a.store_key_file.clone(),
        store_key_secret: a.store_key_secret.clone(),
        store_old_key_files: a.store_old_key_file.clone(),
        username: a.username.clone(),
        password: a.password.clone(),
        credentials_file: a.credentials_file.clone(),
        platforms_file: a.platforms_file.clone(),
        operation_timeout: a.operation_timeout,
        sync_timeout: a.sync_timeout.max(Duration::from_secs(1)),
        kubeconfig: a.kubeconfig.clone(),
        store: match a.store {
            StoreArg::Redb => StoreKind::Redb,
            StoreArg::Kube => StoreKind::Kube,
        },
        state_namespace: a
            .state_namespace
            .clone()
            .unwrap_or_else(default_state_namespace),
        lease: a.lease_seconds.max(Duration::from_secs(1)),
        exe: None,
        namespaces: a.namespaces.clone(),
        namespace_selector: a.namespace_selector.clone(),
        subject_access_review: a.subject_access_review,
        release_identity: chartbroker::cluster::IdentityNames {
            service_account: a.release_service_account.clone(),
            release_role: a.release_cluster_role.clone(),
            target_role: a.target_cluster_role.clone(),
        },
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let helm = locate_helm(a.helm.clone()).map_err(anyhow::Error::msg)?;
    // From here on SIGHUP means reload, never the default (exit), even
    // while the broker is still starting.
    drop(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::hangup(),
    )?);
    let cfg = serve_config(&a, helm);
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
