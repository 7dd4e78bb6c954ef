//! `credence strategy …` and `credence shadow report`: the lifecycle of strategies by name —
//! upload, approve, activate, roll back, run a candidate in shadow or on a ramp, promote, abort,
//! resume, and the shadow comparison — on a running server through its API or on a data
//! directory or database directly (the same `credence_app::Strategies` the server uses).

use crate::admin::runtime;
use crate::database::{open_admin, DatabaseArgs};
use anyhow::{bail, Context};
use credence_app::strategies::ramp::{Guard, GuardMetric, RampRequest, RampStepSpec};
use credence_app::{Clock, Strategies, SystemClock};
use std::path::PathBuf;

/// Where a strategy command acts.
pub enum Target {
    Server {
        url: String,
        key: String,
        /// Speaks HTTP and HTTPS, trusting Mozilla's roots and `--ca-file`.
        agent: ureq::Agent,
    },
    DataDir {
        dir: PathBuf,
        database: DatabaseArgs,
        user: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// A running server's URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "CREDENCE_SERVER", conflicts_with = "data_dir")]
    pub server: Option<String>,
    /// The API key for --server.
    #[arg(long, env = "CREDENCE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// PEM CA certificates to trust for an https:// --server besides Mozilla's roots.
    #[arg(
        long,
        env = "CREDENCE_CA_FILE",
        value_name = "FILE",
        requires = "server"
    )]
    pub ca_file: Option<PathBuf>,
    /// Act on a data directory directly instead of a server.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Who is acting, with --data-dir (maker-checker compares users).
    #[arg(long)]
    pub user: Option<String>,
}

impl TargetArgs {
    /// The target of a command that only reads: --user may be left out.
    fn reading(mut self) -> anyhow::Result<Target> {
        if self.server.is_none() && self.user.is_none() {
            self.user = Some("reader".into());
        }
        self.target()
    }
}

impl TargetArgs {
    pub fn target(self) -> anyhow::Result<Target> {
        let data_dir = match (&self.data_dir, &self.database.database_url) {
            (None, Some(_)) => Some(PathBuf::from(crate::serve::DEFAULT_DATA_DIR)),
            _ => self.data_dir,
        };
        match (self.server, data_dir) {
            (Some(url), None) => {
                let extra_roots = match &self.ca_file {
                    Some(path) => {
                        let pem = std::fs::read(path)
                            .with_context(|| format!("cannot read --ca-file {}", path.display()))?;
                        credence_outbound::providers::pem_certificates(&pem, "--ca-file")?
                    }
                    None => Vec::new(),
                };
                let tls = credence_outbound::providers::tls_config(&extra_roots)?;
                Ok(Target::Server {
                    url: url.trim_end_matches('/').to_string(),
                    key: self
                        .key
                        .context("--server needs --key (or CREDENCE_KEY) with a suitable role")?,
                    agent: ureq::AgentBuilder::new().tls_config(tls).build(),
                })
            }
            (None, Some(dir)) => Ok(Target::DataDir {
                dir,
                database: self.database,
                user: self
                    .user
                    .context("--data-dir needs --user: who uploads or approves")?,
            }),
            _ => bail!("give either --server URL (with --key), or --data-dir DIR or --database-url URL (with --user)"),
        }
    }
}

/// `credence strategy …`.
#[derive(clap::Subcommand)]
pub enum StrategyCommand {
    /// List versions, newest first (of one strategy with --strategy).
    List {
        /// Only this strategy's (package name's) versions.
        #[arg(long)]
        strategy: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Show a strategy: its active version and its rollouts.
    Show {
        /// The strategy (package name).
        #[arg(long)]
        strategy: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Upload a package directory: compiled, its cases run, stored as a draft of the strategy
    /// its manifest names.
    Upload {
        /// The package directory (holding strategy.yaml).
        dir: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Approve a draft (by someone other than its uploader).
    Approve {
        /// The version (content hash) to approve.
        version: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Activate an approved version for its strategy at once — or, with --ramp, put it on a
    /// ramp under guard rails (as `strategy ramp`).
    Activate {
        /// The version (content hash) to activate.
        version: String,
        #[command(flatten)]
        ramp: RampArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run an approved version in shadow beside its strategy's active version: every live
    /// decision is also evaluated with it, stored, never answered.
    Shadow {
        /// The candidate version.
        version: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Put an approved version on a ramp: a growing share of customers decided with it, halted
    /// and sent back to the live version when a guard rail is breached.
    Ramp {
        /// The candidate version.
        version: String,
        #[command(flatten)]
        ramp: RampArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Make the candidate of a strategy's rollout its active version now.
    Promote {
        /// The strategy (package name).
        #[arg(long)]
        strategy: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Stop a strategy's rollout; its live version decides for everyone.
    Abort {
        /// The strategy (package name).
        #[arg(long)]
        strategy: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Resume a halted ramp at the step it halted in.
    Resume {
        /// The strategy (package name).
        #[arg(long)]
        strategy: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Re-activate the version of a strategy that was active before its current one.
    Rollback {
        /// The strategy (package name) [default: the default strategy].
        #[arg(long)]
        strategy: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `credence shadow …`.
#[derive(clap::Subcommand)]
pub enum ShadowCommand {
    /// Compare a shadow rollout's candidate with the live version over a window: outcome
    /// matrix, swap sets, limit and APR differences, reason-code shifts, differing records.
    Report {
        /// The strategy (package name).
        #[arg(long)]
        strategy: String,
        /// The rollout [default: the strategy's newest shadow rollout].
        #[arg(long)]
        rollout: Option<String>,
        /// From this time: RFC 3339 or a date [default: the rollout's start].
        #[arg(long)]
        from: Option<String>,
        /// Before this time [default: the rollout's end, or now].
        #[arg(long)]
        to: Option<String>,
        /// How many differing records to list.
        #[arg(long, default_value_t = 20)]
        differing: u32,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// A ramp's declaration on the command line.
#[derive(Debug, Default, clap::Args)]
pub struct RampArgs {
    /// The steps in percent, ending with 100, e.g. 5,25,50,100.
    #[arg(long, value_delimiter = ',')]
    pub ramp: Vec<u32>,
    /// Decisions of the strategy each step sees at least [default: 1000].
    #[arg(long)]
    pub step_min_decisions: Option<u64>,
    /// Seconds each step lasts at least [default: 0].
    #[arg(long)]
    pub step_min_seconds: Option<u64>,
    /// A guard rail METRIC:LIMIT[:MIN_DECISIONS], repeatable: approval_rate:3 (points either
    /// way of the live version's), decline_rate:3, refer_rate:3, error_rate:0.01, p99_latency_ms:50.
    #[arg(long = "guard")]
    pub guards: Vec<String>,
}

impl RampArgs {
    fn request(&self) -> anyhow::Result<RampRequest> {
        let mut guards = Vec::new();
        for text in &self.guards {
            let parts: Vec<&str> = text.split(':').collect();
            let (metric, limit, minimum) = match parts.as_slice() {
                [m, l] => (*m, *l, None),
                [m, l, n] => (*m, *l, Some(*n)),
                _ => bail!(
                    "--guard {text}: write METRIC:LIMIT[:MIN_DECISIONS], e.g. approval_rate:3"
                ),
            };
            let metric: GuardMetric = serde_json::from_value(serde_json::json!(metric))
                .with_context(|| format!("--guard {text}: metrics are approval_rate, decline_rate, refer_rate, error_rate, p99_latency_ms"))?;
            let limit: f64 = limit
                .parse()
                .with_context(|| format!("--guard {text}: the limit {limit} is not a number"))?;
            let min_decisions = minimum
                .map(|n| n.parse::<u64>())
                .transpose()
                .with_context(|| format!("--guard {text}: the minimum is not a whole number"))?;
            let rate = matches!(
                metric,
                GuardMetric::ApprovalRate | GuardMetric::DeclineRate | GuardMetric::ReferRate
            );
            guards.push(Guard {
                metric,
                max_diff_points: rate.then_some(limit),
                max: (!rate).then_some(limit),
                min_decisions,
            });
        }
        Ok(RampRequest {
            ramp: self
                .ramp
                .iter()
                .map(|p| RampStepSpec::Percent(*p))
                .collect(),
            step_min_decisions: self.step_min_decisions,
            step_min_seconds: self.step_min_seconds,
            guards,
        })
    }
}

/// One lifecycle operation.
enum Op {
    List(Option<String>),
    Show(String),
    Upload(Vec<u8>),
    Approve(String),
    Activate(String),
    Shadow(String),
    Ramp(String, RampRequest),
    Promote(String, Option<String>),
    Abort(String, Option<String>),
    Resume(String),
    Rollback(Option<String>),
    Report {
        strategy: String,
        rollout: Option<String>,
        from: Option<String>,
        to: Option<String>,
        differing: u32,
    },
}

/// Runs `credence strategy …`.
pub fn run(command: StrategyCommand) -> anyhow::Result<()> {
    let (target, op) = match command {
        StrategyCommand::List { strategy, target } => (target, Op::List(strategy)),
        StrategyCommand::Show { strategy, target } => (target, Op::Show(strategy)),
        StrategyCommand::Upload { dir, target } => {
            let source =
                credence_app::package_dir::read(&dir).map_err(|e| anyhow::anyhow!(e.message))?;
            let package =
                credence_app::package_archive::pack(&source).context("packing the package")?;
            (target, Op::Upload(package))
        }
        StrategyCommand::Approve { version, target } => (target, Op::Approve(version)),
        StrategyCommand::Activate {
            version,
            ramp,
            target,
        } => {
            if ramp.ramp.is_empty() {
                if !ramp.guards.is_empty()
                    || ramp.step_min_decisions.is_some()
                    || ramp.step_min_seconds.is_some()
                {
                    bail!("--guard and --step-min-* declare a ramp: give its steps with --ramp 5,25,50,100");
                }
                (target, Op::Activate(version))
            } else {
                (target, Op::Ramp(version, ramp.request()?))
            }
        }
        StrategyCommand::Shadow { version, target } => (target, Op::Shadow(version)),
        StrategyCommand::Ramp {
            version,
            ramp,
            target,
        } => {
            if ramp.ramp.is_empty() {
                bail!("give the ramp's steps with --ramp, e.g. --ramp 5,25,50,100");
            }
            (target, Op::Ramp(version, ramp.request()?))
        }
        StrategyCommand::Promote {
            strategy,
            reason,
            target,
        } => (target, Op::Promote(strategy, reason)),
        StrategyCommand::Abort {
            strategy,
            reason,
            target,
        } => (target, Op::Abort(strategy, reason)),
        StrategyCommand::Resume { strategy, target } => (target, Op::Resume(strategy)),
        StrategyCommand::Rollback { strategy, target } => (target, Op::Rollback(strategy)),
    };
    let answer = execute(target.target()?, op)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// Runs `credence shadow …`.
pub fn run_shadow(command: ShadowCommand) -> anyhow::Result<()> {
    let ShadowCommand::Report {
        strategy,
        rollout,
        from,
        to,
        differing,
        target,
    } = command;
    let answer = execute(
        target.reading()?,
        Op::Report {
            strategy,
            rollout,
            from,
            to,
            differing,
        },
    )?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

// ureq's error (the refused answer, kept to read its body) is large; it lives only here.
#[allow(clippy::result_large_err)]
fn execute(target: Target, op: Op) -> anyhow::Result<serde_json::Value> {
    match target {
        Target::Server { url, key, agent } => {
            let request = |method: &str, path: &str| {
                agent
                    .request(method, &format!("{url}{path}"))
                    .set("Authorization", &format!("Bearer {key}"))
            };
            let post_json = |path: &str, body: serde_json::Value| {
                request("POST", path)
                    .set("Content-Type", "application/json")
                    .send_string(&body.to_string())
            };
            let response = match &op {
                Op::List(None) => request("GET", "/v1/strategies").call(),
                Op::List(Some(s)) => request("GET", &format!("/v1/strategies?strategy={s}")).call(),
                Op::Show(s) => {
                    let active =
                        request("GET", &format!("/v1/strategies/active?strategy={s}")).call();
                    let rollouts = request("GET", &format!("/v1/strategies/{s}/rollouts")).call();
                    return match (active, rollouts) {
                        (Ok(a), Ok(r)) => Ok(serde_json::json!({
                            "strategy": s,
                            "active": a.into_json::<serde_json::Value>()?,
                            "rollouts": r.into_json::<serde_json::Value>()?,
                        })),
                        (Err(e), _) | (_, Err(e)) => Err(refused(&url, e)),
                    };
                }
                Op::Upload(package) => request("POST", "/v1/strategies")
                    .set("Content-Type", "application/gzip")
                    .send_bytes(package),
                Op::Approve(v) => request("POST", &format!("/v1/strategies/{v}/approve")).call(),
                Op::Activate(v) => request("POST", &format!("/v1/strategies/{v}/activate")).call(),
                Op::Shadow(v) => request("POST", &format!("/v1/strategies/{v}/shadow")).call(),
                Op::Ramp(v, ramp) => post_json(
                    &format!("/v1/strategies/{v}/ramp"),
                    serde_json::to_value(ramp)?,
                ),
                Op::Promote(s, reason) => post_json(
                    &format!("/v1/strategies/{s}/rollout/promote"),
                    serde_json::json!({"reason": reason}),
                ),
                Op::Abort(s, reason) => post_json(
                    &format!("/v1/strategies/{s}/rollout/abort"),
                    serde_json::json!({"reason": reason}),
                ),
                Op::Resume(s) => {
                    request("POST", &format!("/v1/strategies/{s}/rollout/resume")).call()
                }
                Op::Rollback(None) => request("POST", "/v1/strategies/rollback").call(),
                Op::Rollback(Some(s)) => {
                    request("POST", &format!("/v1/strategies/{s}/rollback")).call()
                }
                Op::Report {
                    strategy,
                    rollout,
                    from,
                    to,
                    differing,
                } => {
                    let mut call =
                        request("GET", &format!("/v1/strategies/{strategy}/shadow-report"))
                            .query("differing", &differing.to_string());
                    for (name, value) in [("rollout", rollout), ("from", from), ("to", to)] {
                        if let Some(value) = value {
                            call = call.query(name, value);
                        }
                    }
                    call.call()
                }
            };
            match response {
                Ok(response) => response.into_json().context("reading the server's answer"),
                Err(error) => Err(refused(&url, error)),
            }
        }
        Target::DataDir {
            dir,
            database,
            user,
        } => {
            let now = SystemClock.now().timestamp_millis();
            let runtime = runtime()?;
            let store = runtime.block_on(open_admin(&database, &dir, false))?;
            let strategies = Strategies::new(store.clone());
            let result = runtime.block_on(async move {
                strategies.refresh().await?;
                let json = |v: Result<serde_json::Value, serde_json::Error>| {
                    v.map_err(|e| {
                        credence_app::AppError::new(
                            credence_app::ErrorCode::Internal,
                            e.to_string(),
                        )
                    })
                };
                match op {
                    Op::List(filter) => json(serde_json::to_value(
                        strategies
                            .list(|name| filter.as_deref().is_none_or(|f| f == name))
                            .await?,
                    )),
                    Op::Show(name) => {
                        let active = strategies.resolve(Some(&name))?;
                        Ok(serde_json::json!({
                            "strategy": name,
                            "active": strategies.get(&active.version).await?,
                            "rollouts": strategies.rollouts(&name, 20).await?,
                        }))
                    }
                    Op::Upload(package) => json(serde_json::to_value(
                        strategies.upload(package, &user, now, |_| Ok(())).await?,
                    )),
                    Op::Approve(v) => json(serde_json::to_value(
                        strategies.approve(&v, &user, now).await?,
                    )),
                    Op::Activate(v) => json(serde_json::to_value(
                        strategies.activate(&v, &user, now).await?,
                    )),
                    Op::Shadow(v) => json(serde_json::to_value(
                        strategies.start_shadow(&v, &user, now).await?,
                    )),
                    Op::Ramp(v, ramp) => json(serde_json::to_value(
                        strategies.start_ramp(&v, ramp, &user, now).await?,
                    )),
                    Op::Promote(s, reason) => json(serde_json::to_value(
                        strategies
                            .promote(&s, &user, now, reason.as_deref().unwrap_or(""))
                            .await?,
                    )),
                    Op::Abort(s, reason) => json(serde_json::to_value(
                        strategies
                            .abort(&s, &user, now, reason.as_deref().unwrap_or(""))
                            .await?,
                    )),
                    Op::Resume(s) => json(serde_json::to_value(
                        strategies.resume(&s, &user, now).await?,
                    )),
                    Op::Rollback(name) => {
                        let name = match name {
                            Some(name) => name,
                            None => strategies.default_name().ok_or_else(|| {
                                credence_app::AppError::new(
                                    credence_app::ErrorCode::NoActiveStrategy,
                                    "no strategy version is active",
                                )
                            })?,
                        };
                        json(serde_json::to_value(
                            strategies.rollback(&name, &user, now).await?,
                        ))
                    }
                    Op::Report {
                        strategy,
                        rollout,
                        from,
                        to,
                        differing,
                    } => {
                        let time = |field: &str, text: Option<String>| {
                            text.map(|t| parse_time_ms(field, &t)).transpose()
                        };
                        let query = credence_app::shadow::ShadowReportQuery {
                            strategy,
                            rollout_id: rollout,
                            from_ms: time("--from", from)?,
                            to_ms: time("--to", to)?,
                            differing_limit: Some(differing),
                        };
                        json(serde_json::to_value(
                            credence_app::shadow::shadow_report(&*store, &query, now).await?,
                        ))
                    }
                }
            });
            result.map_err(|error| {
                anyhow::anyhow!(
                    "{}{}",
                    error.message,
                    if error.details.is_null() {
                        String::new()
                    } else {
                        format!(
                            "\n{}",
                            serde_json::to_string_pretty(&error.details).unwrap_or_default()
                        )
                    }
                )
            })
        }
    }
}

/// A time given on the command line: RFC 3339 or a date (its start, UTC).
fn parse_time_ms(field: &str, text: &str) -> Result<i64, credence_app::AppError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            credence_app::AppError::parameter(
                field,
                format!("{text} is not RFC 3339 (2026-12-06T10:00:00Z) or a date (2026-12-06)"),
            )
        })
}

fn refused(url: &str, error: ureq::Error) -> anyhow::Error {
    match error {
        ureq::Error::Status(status, response) => {
            let body = response.into_string().unwrap_or_default();
            anyhow::anyhow!("the server refused ({status}): {body}")
        }
        error => anyhow::anyhow!("cannot reach {url}: {error}"),
    }
}
