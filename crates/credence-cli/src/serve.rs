//! `credence serve`: configuration (file, environment, flags), the store, the bundled
//! strategy, and the HTTP server's lifetime.

use anyhow::Context;
use credence_service::{Service, ServiceLimits, SystemClock};
use credence_store::{SqliteStore, Store};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/bundled_strategy.rs"));

pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./credence-data";

/// Flags (and their environment variables) of `credence serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the URL is printed).
    #[arg(long, env = "CREDENCE_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Directory of the embedded store; created if missing.
    #[arg(long, env = "CREDENCE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML file with any of: addr, data_dir, max_body_bytes, max_package_bytes,
    /// default_page_size, max_page_size, strategy_refresh_ms, session_ttl_seconds, log_format,
    /// secrets_file, provider_ca_file. Flags and environment variables override it.
    #[arg(long, env = "CREDENCE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Largest decision request body in bytes [default: 65536].
    #[arg(long, env = "CREDENCE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest strategy package upload in bytes [default: 16777216].
    #[arg(long, env = "CREDENCE_MAX_PACKAGE_BYTES")]
    pub max_package_bytes: Option<usize>,
    /// How often to follow activations made by other processes, in ms [default: 1000].
    #[arg(long, env = "CREDENCE_STRATEGY_REFRESH_MS")]
    pub strategy_refresh_ms: Option<u64>,
    /// How long a review workbench sign-in lasts, in seconds [default: 28800].
    #[arg(long, env = "CREDENCE_SESSION_TTL_SECONDS")]
    pub session_ttl_seconds: Option<u64>,
    /// Log format: `text` or `json` (one JSON object per line) [default: text]. The level
    /// comes from RUST_LOG (default `info`).
    #[arg(long, env = "CREDENCE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// A file of `NAME=value` lines for the `{secret:NAME}` placeholders of data-source URLs
    /// and headers; names not in it are read from the environment. Keep it readable by the
    /// service only.
    #[arg(long, env = "CREDENCE_SECRETS_FILE", value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for HTTPS data providers, besides the Mozilla roots
    /// built in (a bureau behind a private PKI, a TLS-inspecting egress proxy).
    #[arg(long, env = "CREDENCE_PROVIDER_CA_FILE", value_name = "FILE")]
    pub provider_ca_file: Option<PathBuf>,
    /// Demo mode: also run the provider simulator inside this process and point the example
    /// strategy's data sources at it (CREDENCE_PROVIDERS_URL).
    #[arg(long)]
    pub example: bool,
}

/// The config file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    addr: Option<String>,
    data_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    max_package_bytes: Option<usize>,
    default_page_size: Option<u32>,
    max_page_size: Option<u32>,
    strategy_refresh_ms: Option<u64>,
    session_ttl_seconds: Option<u64>,
    log_format: Option<String>,
    secrets_file: Option<PathBuf>,
    provider_ca_file: Option<PathBuf>,
}

/// The settings in force after merging flags, environment, file and defaults.
#[derive(Debug)]
pub struct ServeConfig {
    pub addr: String,
    pub data_dir: PathBuf,
    pub limits: ServiceLimits,
    pub strategy_refresh_ms: u64,
    pub log_json: bool,
    pub secrets_file: Option<PathBuf>,
    pub provider_ca_file: Option<PathBuf>,
    pub example: bool,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<ConfigFile>(&text)
                    .with_context(|| format!("config file {}", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let defaults = ServiceLimits::default();
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => anyhow::bail!("log_format must be text or json, got {other}"),
        };
        let limits = ServiceLimits {
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            max_package_bytes: self
                .max_package_bytes
                .or(file.max_package_bytes)
                .unwrap_or(defaults.max_package_bytes),
            default_page_size: file.default_page_size.unwrap_or(defaults.default_page_size),
            max_page_size: file.max_page_size.unwrap_or(defaults.max_page_size),
            session_ttl_seconds: self
                .session_ttl_seconds
                .or(file.session_ttl_seconds)
                .unwrap_or(defaults.session_ttl_seconds)
                .max(1),
        };
        anyhow::ensure!(
            limits.max_body_bytes >= 256,
            "max_body_bytes must be at least 256"
        );
        anyhow::ensure!(
            (1..=limits.max_page_size).contains(&limits.default_page_size),
            "default_page_size must be between 1 and max_page_size"
        );
        Ok(ServeConfig {
            addr: self
                .addr
                .or(file.addr)
                .unwrap_or_else(|| DEFAULT_ADDR.into()),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            limits,
            strategy_refresh_ms: self
                .strategy_refresh_ms
                .or(file.strategy_refresh_ms)
                .unwrap_or(1000)
                .max(50),
            log_json,
            secrets_file: self.secrets_file.or(file.secrets_file),
            provider_ca_file: self.provider_ca_file.or(file.provider_ca_file),
            example: self.example,
        })
    }
}

/// The bundled example strategy as a package archive.
pub fn bundled_package() -> anyhow::Result<Vec<u8>> {
    let mut source = credence_engine::PackageSource::new();
    for (path, bytes) in BUNDLED_STRATEGY {
        source.insert(*path, bytes.to_vec());
    }
    credence_service::package_archive::pack(&source).context("packing the bundled strategy")
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_logging(config.log_json);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    credence_service::metrics::install();
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let service = Service::new(store.clone(), Arc::new(SystemClock), config.limits.clone());
    if let Some(path) = &config.secrets_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secrets file {}", path.display()))?;
        let secrets = credence_service::providers::parse_secrets(&text);
        tracing::info!(count = secrets.len(), "loaded data-source secrets");
        service.providers.add_secrets(secrets);
    }
    if let Some(path) = &config.provider_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the provider CA file {}", path.display()))?;
        let count = service
            .providers
            .trust_ca_pem(&pem)
            .with_context(|| path.display().to_string())?;
        tracing::info!(
            count,
            "trusting extra CA certificates for HTTPS data providers"
        );
    }
    let simulator_url = if config.example {
        let url = crate::sim_providers::spawn_local().await?;
        service.providers.add_secrets(
            [("CREDENCE_PROVIDERS_URL".to_string(), url.clone())]
                .into_iter()
                .collect(),
        );
        Some(url)
    } else {
        None
    };
    match service
        .strategies
        .bootstrap(bundled_package()?, service.now_ms())
        .await
    {
        Ok(Some(version)) => {
            tracing::info!(%version, "activated the bundled example strategy on a new store")
        }
        Ok(None) => {}
        Err(error) => anyhow::bail!("loading the active strategy: {error}"),
    }
    // A crash between a referral's answer and its case being stored left a referred decision
    // without its case: open it now, from the decision in the log.
    match service
        .cases
        .open_missing(credence_service::cases::RECONCILE_RECENT_DECISIONS)
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::warn!(
            count,
            "opened review cases a crash had kept from being stored"
        ),
        Err(error) => anyhow::bail!("opening the review cases of referred decisions: {error}"),
    }
    // Provider answers paid for by an earlier run are reused until their TTL, not paid again.
    match service.restore_provider_answers().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "restored cached provider answers"),
        Err(error) => tracing::warn!(%error, "cannot restore cached provider answers"),
    }
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let active = service
        .strategies
        .active()
        .map(|a| a.version.clone())
        .unwrap_or_default();
    println!("credence listening on http://{local}");
    println!(
        "data directory {}, active strategy {active}",
        config.data_dir.display()
    );
    if let Some(url) = &simulator_url {
        println!("provider simulator (--example) on {url}: the example's data sources call it");
    }
    if store.keys().await.map(|k| k.is_empty()).unwrap_or(false) {
        println!(
            "no API keys yet; create an admin key with: credence keys create --data-dir {} --role admin --user admin",
            shell_path(&config.data_dir)
        );
    }
    tracing::info!(address = %local, data_dir = %config.data_dir.display(), strategy = %active, "serving");

    let refresh_service = service.clone();
    let refresh_every = std::time::Duration::from_millis(config.strategy_refresh_ms);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(refresh_every);
        loop {
            ticker.tick().await;
            match refresh_service.strategies.refresh().await {
                Ok(true) => tracing::info!(
                    version = refresh_service
                        .strategies
                        .active()
                        .map(|a| a.version.clone())
                        .unwrap_or_default(),
                    "followed an activation made by another process"
                ),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot follow the newest activation"),
            }
        }
    });

    // The SLA clock: breached cases go to the senior reviewers.
    let sweep_service = service.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            ticker.tick().await;
            match sweep_service.cases.escalate_breached().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "escalated review cases past their SLA"),
                Err(error) => tracing::warn!(%error, "cannot escalate breached review cases"),
            }
        }
    });

    // Webhook deliveries: the outbox is polled four times a second.
    let webhook_service = service.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            ticker.tick().await;
            credence_service::webhooks::deliver_due(
                &webhook_service.store,
                webhook_service.now_ms(),
            )
            .await;
        }
    });

    // Paid provider answers go to the store four times a second (small batches, no burst),
    // for the next run's cache.
    let saver_service = service.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            ticker.tick().await;
            if let Err(error) = saver_service.save_provider_answers().await {
                tracing::warn!(%error, "cannot save cached provider answers");
            }
        }
    });

    axum::serve(listener, credence_service::router(service.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    // The cases of the last referrals answered are stored before the process ends.
    service.cases.settled().await;
    if let Err(error) = service.save_provider_answers().await {
        tracing::warn!(%error, "cannot save cached provider answers");
    }
    tracing::info!("stopped");
    Ok(())
}

fn shell_path(path: &Path) -> String {
    path.display().to_string()
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
