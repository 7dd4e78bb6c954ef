//! `credence serve`: configuration (file, environment, flags), the store, the bundled
//! strategy, and the HTTP server's lifetime.

use anyhow::Context;
use credence_app::SystemClock;
use credence_service::{Service, ServiceLimits};
use credence_store::{SqliteStore, Store};
use credence_store_postgres::PostgresStore;
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
    /// A TOML file with any of: addr, data_dir, database_url, database_pool_size,
    /// database_statement_timeout_ms, database_ca_file, node_id, max_body_bytes, max_package_bytes,
    /// default_page_size, max_page_size, strategy_refresh_ms, default_strategy,
    /// session_ttl_seconds, log_format,
    /// secrets_file, provider_ca_file, public_url, secure_cookies, header_read_timeout_ms,
    /// request_timeout_ms, max_connections, http_threads, log_commit_window_us, a [sign_in]
    /// table and a [limits] table (see docs/service.md). Flags and environment variables
    /// override it.
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
    /// The strategy (package name) `POST /v1/decisions/{flow}` and `/v1/flows/{flow}/decisions`
    /// decide with [default: the first strategy ever activated — the bundled example on a new
    /// data directory].
    #[arg(long, env = "CREDENCE_DEFAULT_STRATEGY", value_name = "NAME")]
    pub default_strategy: Option<String>,
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
    /// The URL clients reach this service at (behind a proxy, its https:// address); an
    /// https:// URL turns on Secure cookies.
    #[arg(long, env = "CREDENCE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Mark workbench cookies Secure (true/false) [default: true when --public-url is https://].
    #[arg(long, env = "CREDENCE_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// The most time a connection may take to send a request's headers, from its opening or
    /// its previous answer (so also the keep-alive idle timeout), in ms [default: 10000].
    #[arg(long, env = "CREDENCE_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// The most time a request may take from its headers to its answer, body included, in ms
    /// [default: 30000].
    #[arg(long, env = "CREDENCE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// The most connections open at once; more are closed on accept [default: 10000, lowered
    /// to fit the process's open-files limit].
    #[arg(long, env = "CREDENCE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Threads serving HTTP connections, each with a single-threaded runtime; a connection is
    /// served from start to end by one of them [default: one per core, at most 256].
    #[arg(long, env = "CREDENCE_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// The longest the decision log's writer waits, after a decision's record arrives, for
    /// more to commit with it (one fdatasync or transaction for all), in µs; it waits only
    /// while decisions arrive at least two a window (on PostgreSQL rounded up to whole
    /// milliseconds). 0 commits each batch at once [default: 1000].
    #[arg(long, env = "CREDENCE_LOG_COMMIT_WINDOW_US")]
    pub log_commit_window_us: Option<u64>,
    #[command(flatten)]
    pub database: crate::database::DatabaseArgs,
    /// This node's name in a cluster on PostgreSQL: its own chain of the decision log
    /// [default: the host's name, or HOST-2, … when a live process holds it].
    #[arg(long, env = "CREDENCE_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Demo mode: also run the provider simulator inside this process and point the example
    /// strategy's data sources at it (CREDENCE_PROVIDERS_URL), and activate the second bundled
    /// product (the card-line example) beside the cash loan if it never was.
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
    default_strategy: Option<String>,
    session_ttl_seconds: Option<u64>,
    log_format: Option<String>,
    secrets_file: Option<PathBuf>,
    provider_ca_file: Option<PathBuf>,
    public_url: Option<String>,
    secure_cookies: Option<bool>,
    header_read_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    http_threads: Option<usize>,
    log_commit_window_us: Option<u64>,
    database_url: Option<String>,
    database_pool_size: Option<usize>,
    database_statement_timeout_ms: Option<u64>,
    database_ca_file: Option<PathBuf>,
    node_id: Option<String>,
    #[serde(default)]
    sign_in: SignInFile,
    #[serde(default)]
    limits: LimitsFile,
}

/// `[sign_in]`: workbench sign-in throttling.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInFile {
    free_failures: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    lockout_failures: Option<u32>,
    lockout_ms: Option<u64>,
    address_free_failures: Option<u32>,
    address_lockout_failures: Option<u32>,
    concurrent_hashes: Option<usize>,
}

/// `[limits]`: what a strategy package may make the engine do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    expression_steps: Option<u64>,
    range_values: Option<u64>,
    list_items: Option<u64>,
    string_chars: Option<u64>,
    flow_steps: Option<u64>,
    table_rows: Option<usize>,
    text_file_bytes: Option<usize>,
    yaml_nodes: Option<u64>,
}

impl LimitsFile {
    fn resolve(&self) -> credence_engine::Limits {
        let d = credence_engine::Limits::default();
        credence_engine::Limits {
            expression: credence_engine::ExprLimits {
                max_steps: self.expression_steps.unwrap_or(d.expression.max_steps),
                max_range_values: self.range_values.unwrap_or(d.expression.max_range_values),
                max_list_items: self.list_items.unwrap_or(d.expression.max_list_items),
                max_string_chars: self.string_chars.unwrap_or(d.expression.max_string_chars),
            },
            max_flow_steps: self.flow_steps.unwrap_or(d.max_flow_steps),
            max_table_rows: self.table_rows.unwrap_or(d.max_table_rows),
            max_text_file_bytes: self.text_file_bytes.unwrap_or(d.max_text_file_bytes),
            max_yaml_nodes: self.yaml_nodes.unwrap_or(d.max_yaml_nodes),
        }
    }
}

impl SignInFile {
    fn resolve(&self) -> credence_service::sign_in::SignInLimits {
        let d = credence_service::sign_in::SignInLimits::default();
        credence_service::sign_in::SignInLimits {
            free_failures: self.free_failures.unwrap_or(d.free_failures),
            base_delay_ms: self.base_delay_ms.unwrap_or(d.base_delay_ms),
            max_delay_ms: self.max_delay_ms.unwrap_or(d.max_delay_ms),
            lockout_failures: self.lockout_failures.unwrap_or(d.lockout_failures).max(1),
            lockout_ms: self.lockout_ms.unwrap_or(d.lockout_ms),
            address_free_failures: self
                .address_free_failures
                .unwrap_or(d.address_free_failures),
            address_lockout_failures: self
                .address_lockout_failures
                .unwrap_or(d.address_lockout_failures)
                .max(1),
            concurrent_hashes: self.concurrent_hashes.unwrap_or(d.concurrent_hashes).max(1),
        }
    }
}

/// The settings in force after merging flags, environment, file and defaults.
#[derive(Debug)]
pub struct ServeConfig {
    pub addr: String,
    pub data_dir: PathBuf,
    pub limits: ServiceLimits,
    pub strategy_refresh_ms: u64,
    pub default_strategy: Option<String>,
    pub log_json: bool,
    pub secrets_file: Option<PathBuf>,
    pub provider_ca_file: Option<PathBuf>,
    pub database: crate::database::DatabaseArgs,
    pub node_id: Option<String>,
    /// The decision log writer's commit window, in µs (`group_commit`).
    pub log_commit_window_us: u64,
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
        let public_url = self.public_url.or(file.public_url);
        let secure_cookies = self
            .secure_cookies
            .or(file.secure_cookies)
            .unwrap_or_else(|| {
                public_url
                    .as_deref()
                    .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://"))
            });
        let http = credence_service::server::HttpLimits {
            header_read_timeout_ms: self
                .header_read_timeout_ms
                .or(file.header_read_timeout_ms)
                .unwrap_or(defaults.http.header_read_timeout_ms)
                .max(1),
            request_timeout_ms: self
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(defaults.http.request_timeout_ms)
                .max(1),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.http.max_connections)
                .max(1),
            max_header_bytes: defaults.http.max_header_bytes,
            threads: self
                .http_threads
                .or(file.http_threads)
                .unwrap_or(defaults.http.threads),
        };
        anyhow::ensure!(
            (1..=credence_service::server::MAX_HTTP_THREADS).contains(&http.threads),
            "http_threads is {}: it must be between 1 and {} (one per core is the default)",
            http.threads,
            credence_service::server::MAX_HTTP_THREADS
        );
        let limits = ServiceLimits {
            secure_cookies,
            http,
            sign_in: file.sign_in.resolve(),
            strategy: file.limits.resolve(),
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
        if let Some(us) = self.log_commit_window_us.or(file.log_commit_window_us) {
            anyhow::ensure!(
                us <= MAX_LOG_COMMIT_WINDOW_US,
                "log_commit_window_us is {us}: it must be at most {MAX_LOG_COMMIT_WINDOW_US} \
                 (every decision may wait this long for its commit); 1000 is the default, 0 \
                 commits at once"
            );
        }
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
            default_strategy: self.default_strategy.or(file.default_strategy),
            log_json,
            secrets_file: self.secrets_file.or(file.secrets_file),
            provider_ca_file: self.provider_ca_file.or(file.provider_ca_file),
            database: self.database.or(crate::database::DatabaseArgs {
                database_url: file.database_url,
                database_pool_size: file.database_pool_size,
                database_statement_timeout_ms: file.database_statement_timeout_ms,
                database_ca_file: file.database_ca_file,
            }),
            node_id: self.node_id.or(file.node_id),
            log_commit_window_us: self
                .log_commit_window_us
                .or(file.log_commit_window_us)
                .unwrap_or(credence_store::group_commit::DEFAULT_WINDOW.as_micros() as u64),
            example: self.example,
        })
    }
}

/// The longest commit window an operator may set: 100 ms.
const MAX_LOG_COMMIT_WINDOW_US: u64 = 100_000;

/// Live decisions younger than this are left to the shadow queue by the catch-up.
const SHADOW_SETTLE_MS: i64 = 5_000;

/// The bundled example strategy (the cash loan) as a package archive.
pub fn bundled_package() -> anyhow::Result<Vec<u8>> {
    pack_bundled(BUNDLED_STRATEGY)
}

/// The second bundled example (the credit-card line) as a package archive.
pub fn bundled_card_package() -> anyhow::Result<Vec<u8>> {
    pack_bundled(BUNDLED_CARD_STRATEGY)
}

fn pack_bundled(files: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let mut source = credence_engine::PackageSource::new();
    for (path, bytes) in files {
        source.insert(*path, bytes.to_vec());
    }
    credence_app::package_archive::pack(&source).context("packing a bundled strategy")
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
    let (store, postgres): (Arc<dyn Store>, Option<PostgresStore>) = match config
        .database
        .postgres()?
    {
        Some(mut options) => {
            options.commit_window_us = config.log_commit_window_us;
            let store = PostgresStore::connect_node(&options, config.node_id.as_deref())
                .await
                .with_context(|| format!("opening {}", options.redacted_url()))?;
            match store.connection_info().await {
                Ok(info) => tracing::info!(
                    database = %options.redacted_url(),
                    server_version = %info.server_version,
                    tls = info.tls,
                    node = store.node_id().unwrap_or_default(),
                    "connected to PostgreSQL"
                ),
                Err(error) => tracing::warn!(%error, "cannot describe the database connection"),
            }
            (Arc::new(store.clone()), Some(store))
        }
        None => {
            let window = std::time::Duration::from_micros(config.log_commit_window_us);
            let store = SqliteStore::open_with_commit_window(&config.data_dir, window)
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
            (Arc::new(store), None)
        }
    };
    let place = config.database.describe(&config.data_dir);
    let service = Service::new(store.clone(), Arc::new(SystemClock), config.limits.clone());
    if postgres.is_some() {
        // Several nodes: a bureau report one of them bought is not bought again by another.
        service.providers.share_answers(store.clone());
    }
    if let Some(path) = &config.secrets_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secrets file {}", path.display()))?;
        let secrets = credence_outbound::providers::parse_secrets(&text);
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
        let url = credence_provider_sim::spawn_local().await?;
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
        // One product that cannot be loaded does not stop the others.
        Err(error) if !service.strategies.active_all().is_empty() => {
            tracing::error!(%error, "serving the strategies that loaded")
        }
        Err(error) => anyhow::bail!("loading the active strategy: {error}"),
    }
    if config.example {
        match service
            .strategies
            .bootstrap_product(bundled_card_package()?, service.now_ms())
            .await
        {
            Ok(Some(version)) => {
                tracing::info!(%version, "activated the bundled card-line example beside the cash loan")
            }
            Ok(None) => {}
            Err(error) => anyhow::bail!("activating the card-line example: {error}"),
        }
    }
    if let Err(error) = service
        .strategies
        .set_default(config.default_strategy.clone())
        .await
    {
        if service.strategies.active_all().is_empty() {
            anyhow::bail!("loading the active strategies: {error}");
        }
        tracing::error!(%error, "serving the strategies that loaded");
    }
    if let Some(name) = &config.default_strategy {
        if service.strategies.active_named(name).is_none() {
            anyhow::bail!(
                "default_strategy {name} is not an active strategy here; active: {}",
                service
                    .strategies
                    .active_all()
                    .iter()
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    // A crash between a referral's answer and its case being stored left a referred decision
    // without its case: open it now, from the decision in the log.
    match service
        .cases
        .open_missing(credence_app::cases::RECONCILE_RECENT_DECISIONS)
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
        .active_all()
        .iter()
        .map(|a| {
            let default = service.strategies.default_name().as_deref() == Some(a.name.as_str());
            format!(
                "{} {}{}",
                a.name,
                a.version,
                if default { " (default)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!("credence listening on http://{local}");
    match postgres.as_ref().and_then(|p| p.node_id()) {
        Some(node) => println!("{place}, node {node}, active strategies: {active}"),
        None => println!("{place}, active strategies: {active}"),
    }
    if let Some(url) = &simulator_url {
        println!("provider simulator (--example) on {url}: the example's data sources call it");
    }
    // Say which data providers the active strategies call, and which cannot be reached now.
    for (strategy, check) in service.check_providers().await {
        let problem = check
            .problem
            .as_deref()
            .map(|p| format!(": {p}"))
            .unwrap_or_default();
        println!(
            "data source {strategy}/{} provider {} {}{}{problem}",
            check.source,
            check.provider,
            check.status,
            if check.address.is_empty() {
                String::new()
            } else {
                format!(" at {}", check.address)
            },
        );
        if check.status != "reachable" {
            tracing::warn!(strategy = %strategy, source = %check.source, provider = %check.provider,
                status = check.status, problem = check.problem.as_deref().unwrap_or(""),
                "a data provider is not usable; decisions follow the source's on_failure");
        }
    }
    if store.keys().await.map(|k| k.is_empty()).unwrap_or(false) {
        println!(
            "no API keys yet; create an admin key with: credence keys create {} --role admin --user admin",
            config.database.flag(&config.data_dir)
        );
    }
    tracing::info!(address = %local, store = %place, strategy = %active, "serving");

    // Activations on other processes: polled, and on PostgreSQL also announced (NOTIFY) so
    // that every node follows within milliseconds; the poll covers a lost notification.
    let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
    if let Some(postgres) = postgres.clone() {
        tokio::spawn(follow_notifications(postgres, wake));
    }
    let refresh_service = service.clone();
    let refresh_every = std::time::Duration::from_millis(config.strategy_refresh_ms);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(refresh_every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(()) = woken.recv() => {}
            }
            match refresh_service.strategies.refresh().await {
                Ok(true) => tracing::info!(
                    active = refresh_service
                        .strategies
                        .active_all()
                        .iter()
                        .map(|a| format!("{}={}", a.name, a.version))
                        .collect::<Vec<_>>()
                        .join(", "),
                    "followed an activation or rollout made by another process"
                ),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot follow the newest activation"),
            }
        }
    });

    // Shadow twins the queue lost (a crash, a full queue) are made from the log; the newest
    // seconds are left to the queue.
    let shadow_service = service.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
        let mut caught_up = credence_app::shadow::CaughtUp::new();
        loop {
            ticker.tick().await;
            let before_ms = shadow_service.now_ms() - SHADOW_SETTLE_MS;
            match credence_app::shadow::catch_up(
                &*shadow_service.store,
                &shadow_service.strategies,
                &mut caught_up,
                before_ms,
            )
            .await
            {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "made shadow twins the queue had lost"),
                Err(error) => tracing::warn!(%error, "cannot catch up the shadow evaluation"),
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
    let webhook_agent = credence_outbound::webhooks::agent(service.providers.tls_config());
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            ticker.tick().await;
            credence_outbound::webhooks::deliver_due(
                &webhook_service.store,
                &webhook_agent,
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

    let mut http = config.limits.http.clone();
    http.max_connections = http.max_connections.min(crate::os::connection_room());
    tracing::info!(
        max_connections = http.max_connections,
        header_read_timeout_ms = http.header_read_timeout_ms,
        request_timeout_ms = http.request_timeout_ms,
        http_threads = http.threads,
        "HTTP limits"
    );
    credence_service::server::serve(
        listener,
        credence_service::router(service.clone()),
        http,
        crate::os::shutdown_signal(),
        10_000,
    )
    .await
    .context("serving HTTP")?;
    // The cases of the last referrals answered are stored before the process ends.
    service.cases.settled().await;
    if let Err(error) = service.save_provider_answers().await {
        tracing::warn!(%error, "cannot save cached provider answers");
    }
    // The node's newest records bound into a checkpoint before it goes.
    if let Some(postgres) = &postgres {
        if let Err(error) = postgres.checkpoint_now().await {
            tracing::warn!(%error, "cannot write the last checkpoint");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Forwards activation notifications to the refresher, listening again after a lost
/// connection.
async fn follow_notifications(store: PostgresStore, wake: tokio::sync::mpsc::Sender<()>) {
    loop {
        match store.listen_for_activations().await {
            Ok(mut versions) => {
                while let Some(version) = versions.recv().await {
                    tracing::debug!(%version, "heard of an activation");
                    let _ = wake.try_send(());
                }
            }
            Err(error) => tracing::warn!(%error, "cannot listen for activations; polling only"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

pub fn shell_path(path: &Path) -> String {
    path.display().to_string()
}
