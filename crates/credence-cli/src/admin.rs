//! `credence keys`, `credence users` and `credence audit`: operations on a data directory or a
//! PostgreSQL database.

use crate::database::{open_admin, DatabaseArgs};
use anyhow::{bail, Context};
use credence_app::{issue_key, Role};
use credence_store::{NewAuditEvent, Store};
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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
    strategies: &[String],
) -> anyhow::Result<()> {
    let roles: Vec<Role> = roles
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| {
            Role::parse(r.trim()).with_context(|| {
                format!("--role: unknown role {r:?}; roles are decide, review (or reviewer), analyst, approver, admin")
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
    issued.record.strategies = strategy_names(strategies)?;
    let record = issued.record.clone();
    let audit = NewAuditEvent {
        at_ms: issued_at,
        actor: cli_actor(),
        action: "key.create".into(),
        subject: record.id.clone(),
        detail: serde_json::json!({"user": record.user, "roles": record.roles, "strategies": record.strategies}),
    };
    // A new store may be created here: keys are often made before the first start.
    place.run(true, |store| async move {
        Ok(store.insert_key(issued.record, audit).await?)
    })?;
    println!(
        "created key {} for user {} with role(s) {} on {}; it is shown once, keep it secret:",
        record.id,
        record.user,
        record.roles.join(", "),
        if record.strategies.is_empty() {
            "every strategy".to_string()
        } else {
            format!("strategies {}", record.strategies.join(", "))
        }
    );
    println!("{}", issued.plaintext);
    Ok(())
}

/// `--strategy` values (repeated or comma-separated), checked as strategy names.
fn strategy_names(values: &[String]) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    credence_app::auth::validate_strategy_names(&names)
        .map_err(|e| anyhow::anyhow!("--strategy: {}", e.message))
}

pub fn users_create(
    place: &PlaceArgs,
    username: &str,
    role: &str,
    strategies: &[String],
) -> anyhow::Result<()> {
    let Some(role) = credence_app::users::user_role(role) else {
        bail!("--role: unknown role {role:?}; workbench users are reviewer (or review) or senior_reviewer (or senior_review)");
    };
    credence_app::auth::validate_user(username)
        .map_err(|e| anyhow::anyhow!("--username: {}", e.message))?;
    let password = password_from_stdin()?;
    let hash = credence_app::users::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("the password: {}", e.message))?;
    let at = now_ms();
    let user = credence_store::UserRecord {
        username: username.to_string(),
        password_hash: hash,
        role: role.to_string(),
        strategies: strategy_names(strategies)?,
        created_at_ms: at,
        disabled_at_ms: None,
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

/// Reads one line of standard input: a password, never an argument (shell history keeps those).
fn password_from_stdin() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\n', '\r']).to_string())
}

pub fn users_list(place: &PlaceArgs) -> anyhow::Result<()> {
    let users = place.run(false, |store| async move { Ok(store.users().await?) })?;
    for user in users {
        println!(
            "{:<24} {:<16} {:<10} {}",
            user.username,
            user.role,
            if user.disabled_at_ms.is_some() {
                "disabled"
            } else {
                "active"
            },
            if user.strategies.is_empty() {
                "all strategies".to_string()
            } else {
                user.strategies.join(",")
            }
        );
    }
    Ok(())
}

/// What `users disable|enable|reset-password` changes.
pub enum UserChange {
    /// Signs-in refused, sessions ended.
    Disable,
    /// Signs-in allowed again.
    Enable,
    /// A new password, read from standard input.
    ResetPassword,
}

pub fn users_change(place: &PlaceArgs, username: &str, change: UserChange) -> anyhow::Result<()> {
    let new_hash = match change {
        UserChange::ResetPassword => Some(
            credence_app::users::hash_password(&password_from_stdin()?)
                .map_err(|e| anyhow::anyhow!("the password: {}", e.message))?,
        ),
        _ => None,
    };
    let at = now_ms();
    let (action, said) = match change {
        UserChange::Disable => ("user.disable", "disabled; their sessions have ended"),
        UserChange::Enable => ("user.enable", "enabled"),
        UserChange::ResetPassword => ("user.reset_password", "given a new password"),
    };
    let username = username.to_string();
    let name = username.clone();
    place.run(false, |store| async move {
        let Some(mut user) = store.user(&name).await? else {
            bail!("there is no user {name}; list users with `credence users list`");
        };
        match change {
            UserChange::Disable => user.disabled_at_ms = Some(at),
            UserChange::Enable => user.disabled_at_ms = None,
            UserChange::ResetPassword => user.password_hash = new_hash.unwrap_or_default(),
        }
        let audit = NewAuditEvent {
            at_ms: at,
            actor: cli_actor(),
            action: action.into(),
            subject: name.clone(),
            detail: serde_json::json!({}),
        };
        Ok(store.update_user(user, audit).await?)
    })?;
    println!("user {username} {said}");
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
            "{}  {:<24} {:<28} {status:<8} {}",
            key.id,
            key.user,
            key.roles.join(","),
            if key.strategies.is_empty() {
                "all strategies".to_string()
            } else {
                key.strategies.join(",")
            }
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
