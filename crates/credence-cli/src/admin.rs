//! `credence keys`, `credence users`, `credence audit` and `credence strategy`: operations on a
//! data directory or a PostgreSQL database, or (for strategies) on a running server through its
//! API.

use crate::database::{open_admin, DatabaseArgs};
use anyhow::{bail, Context};
use credence_app::{issue_key, Clock, Role, Strategies, SystemClock};
use credence_store::{NewAuditEvent, Store};
use std::path::PathBuf;
use std::sync::Arc;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Where an administrative command acts: a data directory or a database.
#[derive(Debug, clap::Args)]
pub struct PlaceArgs {
    /// The embedded store's directory (ignored with --database-url).
    #[arg(long, env = "CREDENCE_DATA_DIR", default_value = crate::serve::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl PlaceArgs {
    /// Runs `work` on the place's store in a runtime of its own.
    fn run<T, F>(&self, create: bool, work: impl FnOnce(Arc<dyn Store>) -> F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = anyhow::Result<T>>,
    {
        runtime()?.block_on(async {
            let store = open_admin(&self.database, &self.data_dir, create).await?;
            work(store).await
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The operator running a CLI command, for audit events.
fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

pub fn keys_create(
    place: &PlaceArgs,
    roles: &[String],
    user: Option<String>,
) -> anyhow::Result<()> {
    let roles: Vec<Role> = roles
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| {
            Role::parse(r.trim()).with_context(|| {
                format!("unknown role {r:?}; roles are decide, review, analyst, approver, admin")
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let first_role = roles.first().map(|r| r.as_str()).unwrap_or("key");
    let issued_at = now_ms();
    let provisional_user = user.clone().unwrap_or_else(|| first_role.to_string());
    let mut issued = issue_key(&provisional_user, &roles, &cli_actor(), issued_at)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if user.is_none() {
        issued.record.user = format!("{first_role}-{}", issued.record.id);
    }
    let record = issued.record.clone();
    let audit = NewAuditEvent {
        at_ms: issued_at,
        actor: cli_actor(),
        action: "key.create".into(),
        subject: record.id.clone(),
        detail: serde_json::json!({"user": record.user, "roles": record.roles}),
    };
    // A new store may be created here: keys are often made before the first start.
    place.run(true, |store| async move {
        Ok(store.insert_key(issued.record, audit).await?)
    })?;
    println!(
        "created key {} for user {} with role(s) {}; it is shown once, keep it secret:",
        record.id,
        record.user,
        record.roles.join(", ")
    );
    println!("{}", issued.plaintext);
    Ok(())
}

pub fn users_create(place: &PlaceArgs, username: &str, role: &str) -> anyhow::Result<()> {
    if !credence_app::users::USER_ROLES.contains(&role) {
        bail!("unknown role {role:?}; workbench users are reviewer or senior_reviewer");
    }
    credence_app::auth::validate_user(username)
        .map_err(|e| anyhow::anyhow!("--username: {}", e.message))?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    let hash = credence_app::users::hash_password(password)
        .map_err(|e| anyhow::anyhow!("the password: {}", e.message))?;
    let at = now_ms();
    let user = credence_store::UserRecord {
        username: username.to_string(),
        password_hash: hash,
        role: role.to_string(),
        created_at_ms: at,
    };
    let audit = NewAuditEvent {
        at_ms: at,
        actor: cli_actor(),
        action: "user.create".into(),
        subject: username.to_string(),
        detail: serde_json::json!({"role": role}),
    };
    place.run(true, |store| async move {
        Ok(store.insert_user(user, audit).await?)
    })?;
    println!("created workbench user {username} ({role}); sign in at /review/login");
    Ok(())
}

pub fn keys_list(place: &PlaceArgs) -> anyhow::Result<()> {
    let keys = place.run(false, |store| async move { Ok(store.keys().await?) })?;
    for key in keys {
        let status = if key.revoked_at_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{}  {:<24} {:<28} {status}",
            key.id,
            key.user,
            key.roles.join(",")
        );
    }
    Ok(())
}

pub fn keys_revoke(place: &PlaceArgs, id: &str) -> anyhow::Result<()> {
    let at = now_ms();
    let audit = NewAuditEvent {
        at_ms: at,
        actor: cli_actor(),
        action: "key.revoke".into(),
        subject: id.to_string(),
        detail: serde_json::json!({}),
    };
    place.run(false, |store| async move {
        Ok(store.revoke_key(id, at, audit).await?)
    })?;
    println!("revoked key {id}");
    Ok(())
}

/// Returns true when the chain verifies.
pub fn audit_verify(place: &PlaceArgs) -> anyhow::Result<bool> {
    let report = place.run(
        false,
        |store| async move { Ok(store.verify_chain().await?) },
    )?;
    match &report.problem {
        None => {
            println!(
                "decision log verified: {} record(s), head {}",
                report.records, report.head_hash
            );
            Ok(true)
        }
        // Seq 0: a problem of the log as a whole (a cluster's checkpoints or node heads).
        Some(problem) if problem.seq == 0 => {
            println!(
                "decision log FAILED verification: {} ({} record(s) verified)",
                problem.problem, report.records
            );
            Ok(false)
        }
        Some(problem) => {
            println!(
                "decision log FAILED verification at record {}: {} ({} record(s) verified before it)",
                problem.seq, problem.problem, report.records
            );
            Ok(false)
        }
    }
}

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

/// One lifecycle operation.
pub enum StrategyOp {
    Upload(PathBuf),
    Approve(String),
    Activate(String),
    Rollback,
    List,
}

pub fn strategy(target: Target, op: StrategyOp) -> anyhow::Result<()> {
    let package = match &op {
        StrategyOp::Upload(dir) => {
            let source = crate::package_dir::read(dir)?;
            Some(credence_app::package_archive::pack(&source).context("packing the package")?)
        }
        _ => None,
    };
    let answer: serde_json::Value = match target {
        Target::Server { url, key, agent } => {
            let request = |method: &str, path: &str| {
                agent
                    .request(method, &format!("{url}{path}"))
                    .set("Authorization", &format!("Bearer {key}"))
            };
            let response = match &op {
                StrategyOp::Upload(_) => request("POST", "/v1/strategies")
                    .set("Content-Type", "application/gzip")
                    .send_bytes(package.as_deref().unwrap_or_default()),
                StrategyOp::Approve(v) => {
                    request("POST", &format!("/v1/strategies/{v}/approve")).call()
                }
                StrategyOp::Activate(v) => {
                    request("POST", &format!("/v1/strategies/{v}/activate")).call()
                }
                StrategyOp::Rollback => request("POST", "/v1/strategies/rollback").call(),
                StrategyOp::List => request("GET", "/v1/strategies").call(),
            };
            match response {
                Ok(response) => response
                    .into_json()
                    .context("reading the server's answer")?,
                Err(ureq::Error::Status(status, response)) => {
                    let body = response.into_string().unwrap_or_default();
                    bail!("the server refused ({status}): {body}")
                }
                Err(error) => bail!("cannot reach {url}: {error}"),
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
            let strategies = Strategies::new(store);
            let result = runtime.block_on(async move {
                strategies.refresh().await?;
                let value = match op {
                    StrategyOp::Upload(_) => serde_json::to_value(
                        strategies
                            .upload(package.unwrap_or_default(), &user, now)
                            .await?,
                    ),
                    StrategyOp::Approve(v) => {
                        serde_json::to_value(strategies.approve(&v, &user, now).await?)
                    }
                    StrategyOp::Activate(v) => {
                        serde_json::to_value(strategies.activate(&v, &user, now).await?)
                    }
                    StrategyOp::Rollback => {
                        serde_json::to_value(strategies.rollback(&user, now).await?)
                    }
                    StrategyOp::List => serde_json::to_value(strategies.list().await?),
                };
                Ok::<_, credence_app::AppError>(value)
            });
            match result {
                Ok(value) => value?,
                Err(error) => bail!(
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
                ),
            }
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
