//! The `credence` binary: parses the command line, reads files, and calls the library crates.
//!
//! Exit codes: 0 success; 1 a failed check (a `validate` case, `audit verify`); 2 bad input or usage;
//! 3 a defect of the strategy found while deciding.

mod admin;
mod backtest;
mod database;
mod log_export;

mod model_score;
mod monitor;
mod os;
mod portfolio;
mod serve;
mod strategy_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use credence_app::SystemClock;
use credence_engine::{Clock, CompiledStrategy, EngineError, EvalOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The service allocates small, short-lived buffers from many threads at once (requests,
// provider answers, log records); glibc's allocator took a large share of the server's CPU
// under load there (docs/benchmarks.md). mimalloc's thread-local free lists remove most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "credence",
    version,
    about = "Real-time credit decisioning and in-loan risk management",
    after_help = "Exit codes: 0 success; 1 a failed check (a `validate` case, `audit verify`); 2 bad input or usage; 3 a defect of the strategy found while deciding.\nThe strategy package format is documented in docs/strategy-format.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one input (or one per line of a JSON Lines file) with a strategy package.
    Decide {
        /// The strategy package directory (holds strategy.yaml).
        #[arg(long)]
        strategy: PathBuf,
        /// The flow to run, e.g. application or drawdown.
        #[arg(long)]
        flow: String,
        /// Include the full trace: every intermediate value and the validated input.
        #[arg(long)]
        trace: bool,
        /// Decide as of this date (YYYY-MM-DD) instead of today (UTC): replays use the recorded date.
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        /// Language of reason texts (one the strategy declares).
        #[arg(long, default_value = "en")]
        lang: String,
        /// Read the input as JSON Lines (one input per line) even where a line is malformed;
        /// without it a file is one JSON document when it parses as one (pretty-printed or
        /// not), and JSON Lines when it does not and its first line is a JSON value of its own.
        #[arg(long)]
        jsonl: bool,
        /// A JSON file (one input) or JSON Lines file (one input per line); `-` reads standard input.
        input: String,
    },
    /// Compile a strategy package and run its embedded test cases.
    Validate {
        /// The strategy package directory.
        dir: PathBuf,
    },
    /// Work with model files (XGBoost JSON, LightGBM text, logistic regression).
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Run the decision service (HTTP). On a new data directory it activates the bundled
    /// example strategy. Precedence: flags, then environment variables, then --config, then
    /// defaults.
    Serve(serve::ServeArgs),
    /// Issue, list and revoke API keys in a data directory.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage review workbench users: create, list, disable, enable, reset a password.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Check the decision log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The decision log on PostgreSQL: export a month to Parquet, drop old months.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Bring a PostgreSQL database's schema up to date (nodes also do it when they start) and
    /// print its version.
    Migrate {
        #[command(flatten)]
        database: database::DatabaseArgs,
    },
    /// Strategies by name (one per product): list, show, upload, approve, activate, roll back;
    /// run a candidate in shadow or on a ramp, promote, abort, resume — on a server or a data
    /// directory.
    Strategy {
        #[command(subcommand)]
        command: strategy_cmd::StrategyCommand,
    },
    /// Compare a shadow rollout's candidate with the live version.
    Shadow {
        #[command(subcommand)]
        command: strategy_cmd::ShadowCommand,
    },
    /// Generate realistic data for demos, tests and benchmarks.
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// Serve simulated bureau, income-verification and liability providers (answers derived
    /// from the Lending Club data), with latency and failure injection, for demos and tests.
    SimProviders(credence_provider_sim::SimArgs),
    /// Evaluate historical rows (CSV, JSON Lines, or a data directory's decision log) under a
    /// strategy and an optional challenger: rates, swap set, bad rates, expected loss,
    /// breakdowns, reason codes; a summary JSON, an HTML report and a diff of changed rows.
    Backtest(Box<backtest::BacktestArgs>),
    /// Monitoring: drift (PSI/CSI), score performance (KS, AUC, Gini) and vintages from CSV
    /// files; rates, drift, overrides, vintages and roll rates of a data directory.
    Monitor {
        #[command(subcommand)]
        command: monitor::MonitorCommand,
    },
    /// Run in-loan flows over the whole portfolio of a data directory.
    Portfolio {
        #[command(subcommand)]
        command: PortfolioCommand,
    },
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// Account histories (repayments, misses, drawdowns, bureau alerts; some customers
    /// deteriorate), written into a data directory or fed through a server's API. Ends with one
    /// JSON line of counts.
    Portfolio(portfolio::SimulateArgs),
}

#[derive(Subcommand)]
enum PortfolioCommand {
    /// Run account_review (or early_warning) over every active account and apply the changes
    /// (or, with --dry-run, only count them). Ends with one JSON line: accounts reviewed and the
    /// count of each action.
    Review(portfolio::ReviewArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a key; the key is the last line printed (shown once, stored only as a hash).
    Create {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// decide, review, analyst, approver or admin; repeat or comma-separate for several.
        #[arg(long, required = true)]
        role: Vec<String>,
        /// Whom the key belongs to [default: the role and the key id].
        #[arg(long)]
        user: Option<String>,
        /// Limit the key to this strategy (product); repeat or comma-separate for several
        /// [default: every strategy].
        #[arg(long = "strategy")]
        strategies: Vec<String>,
    },
    /// List keys (ids, users, roles; never secrets).
    List {
        #[command(flatten)]
        place: admin::PlaceArgs,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// The key's id: the 12 hex digits after `cred_` (as `keys list` shows them).
        id: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a workbench user; the password is read from standard input (one line).
    Create {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// The name the user signs in with (1–64 letters, digits, '.', '_', '-', '@').
        #[arg(long)]
        username: String,
        /// reviewer or senior_reviewer.
        #[arg(long)]
        role: String,
        /// Limit the user to this strategy's (product's) cases; repeat or comma-separate for
        /// several [default: every strategy].
        #[arg(long = "strategy")]
        strategies: Vec<String>,
    },
    /// List workbench users: name, role, active or disabled, strategies.
    List {
        #[command(flatten)]
        place: admin::PlaceArgs,
    },
    /// Disable a user: sign-ins are refused and their sessions end at once.
    Disable {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// The user's sign-in name.
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// The user's sign-in name.
        #[arg(long)]
        username: String,
    },
    /// Give a user a new password, read from standard input (one line).
    ResetPassword {
        #[command(flatten)]
        place: admin::PlaceArgs,
        /// The user's sign-in name.
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the decision log's hash chain; exits 0 only when every record verifies.
    Verify {
        #[command(flatten)]
        place: admin::PlaceArgs,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Write one month's decisions (UTC), in log order, to a Parquet file: every stored field,
    /// the node chain's hashes, the input and the decision as JSON text. `credence backtest
    /// --input FILE.parquet` reads it back like a data directory's log.
    Export {
        #[command(flatten)]
        database: database::DatabaseArgs,
        /// The month, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// The Parquet file to write.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Drop the months older than the newest N (the current month counts), whole partitions
    /// at a time; each node's chain then starts after its last dropped record, so the rest
    /// still verifies. Export a month first to keep it in the data lake.
    Retain {
        #[command(flatten)]
        database: database::DatabaseArgs,
        /// Months to keep, e.g. 25.
        #[arg(long, value_name = "N")]
        keep_months: u32,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Score every row of a CSV; writes `margin,prediction` (what the library's `predict()`
    /// returns), `probability` where the objective gives one, and reasons, per row, in input order.
    Score {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// A CSV whose header names the model's features (extra columns are ignored). An empty
        /// cell is a missing value; a categorical feature is its integer category code.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the scores.
        #[arg(long)]
        output: PathBuf,
        /// Add `reason_1..N`: the N features pushing the score most towards bad (TreeSHAP).
        #[arg(long, value_name = "N", default_value_t = 0)]
        explain: usize,
        /// Score all trees, also those after an early-stopping best iteration.
        #[arg(long)]
        all_trees: bool,
    },
}

/// An error that ends the command with a given exit code.
#[derive(Debug)]
struct Exit {
    code: u8,
    message: String,
}

impl Exit {
    fn bad_input(message: impl Into<String>) -> Exit {
        Exit {
            code: 2,
            message: message.into(),
        }
    }

    /// A defect of the strategy, not of the input (a `unique` table with two rows matching, a
    /// step that cannot evaluate): exit code 3, for the package's author rather than its caller.
    fn strategy_defect(message: impl Into<String>) -> Exit {
        Exit {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Exit {
    fn from(error: anyhow::Error) -> Exit {
        Exit::bad_input(format!("{error:#}"))
    }
}

/// A command whose output is cut short (`credence monitor log … | head`) ends quietly, as Unix
/// tools do, rather than panicking on a closed pipe: SIGPIPE goes back to its default, which
/// the Rust runtime sets to ignored. Not for the long-running servers, whose sockets report a
/// closed peer as an error to handle.
fn quiet_on_closed_pipe(command: &Command) {
    if matches!(command, Command::Serve(_) | Command::SimProviders(_)) {
        return;
    }
    #[cfg(unix)]
    // SAFETY: signal(2) with SIG_DFL changes only this process's disposition of SIGPIPE,
    // before any thread of ours writes anywhere.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_on_closed_pipe(&cli.command);
    let result = match cli.command {
        Command::Decide {
            strategy,
            flow,
            trace,
            as_of,
            lang,
            jsonl,
            input,
        } => decide(
            &strategy,
            &flow,
            trace,
            as_of.as_deref(),
            &lang,
            jsonl,
            &input,
        ),
        Command::Validate { dir } => validate(&dir),
        Command::Model {
            command:
                ModelCommand::Score {
                    model,
                    input,
                    output,
                    explain,
                    all_trees,
                },
        } => model_score::score(
            &model,
            &input,
            &output,
            &model_score::ScoreOptions { explain, all_trees },
        )
        .map(|rows| {
            eprintln!("scored {rows} rows into {}", output.display());
            0
        })
        .map_err(Exit::from),
        Command::Serve(args) => serve::run(args).map(|()| 0).map_err(Exit::from),
        Command::Simulate {
            command: SimulateCommand::Portfolio(args),
        } => portfolio::simulate(args).map(|()| 0).map_err(Exit::from),
        Command::SimProviders(args) => credence_provider_sim::run(args)
            .map(|()| 0)
            .map_err(Exit::from),
        Command::Monitor { command } => monitor::run(command).map(|()| 0).map_err(Exit::from),
        Command::Backtest(args) => backtest::run(*args).map(|()| 0).map_err(Exit::from),
        Command::Portfolio {
            command: PortfolioCommand::Review(args),
        } => portfolio::review(args).map(|()| 0).map_err(Exit::from),
        Command::Keys { command } => match command {
            KeysCommand::Create {
                place,
                role,
                user,
                strategies,
            } => admin::keys_create(&place, &role, user, &strategies),
            KeysCommand::List { place } => admin::keys_list(&place),
            KeysCommand::Revoke { place, id } => admin::keys_revoke(&place, &id),
        }
        .map(|()| 0)
        .map_err(Exit::from),
        Command::Users { command } => match command {
            UsersCommand::Create {
                place,
                username,
                role,
                strategies,
            } => admin::users_create(&place, &username, &role, &strategies),
            UsersCommand::List { place } => admin::users_list(&place),
            UsersCommand::Disable { place, username } => {
                admin::users_change(&place, &username, admin::UserChange::Disable)
            }
            UsersCommand::Enable { place, username } => {
                admin::users_change(&place, &username, admin::UserChange::Enable)
            }
            UsersCommand::ResetPassword { place, username } => {
                admin::users_change(&place, &username, admin::UserChange::ResetPassword)
            }
        }
        .map(|()| 0)
        .map_err(Exit::from),
        Command::Audit {
            command: AuditCommand::Verify { place },
        } => admin::audit_verify(&place)
            .map(|verified| if verified { 0 } else { 1 })
            .map_err(Exit::from),
        Command::Log { command } => match command {
            LogCommand::Export {
                database,
                month,
                output,
            } => log_export::export(&database, &month, &output).map(|count| {
                eprintln!(
                    "exported {count} decision(s) of {month} to {}",
                    output.display()
                );
                0
            }),
            LogCommand::Retain {
                database,
                keep_months,
            } => log_export::retain(&database, keep_months).map(|()| 0),
        }
        .map_err(Exit::from),
        Command::Migrate { database } => migrate(&database).map_err(Exit::from),
        Command::Strategy { command } => strategy_cmd::run(command).map(|()| 0).map_err(Exit::from),
        Command::Shadow { command } => strategy_cmd::run_shadow(command)
            .map(|()| 0)
            .map_err(Exit::from),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(exit) => {
            eprintln!("error: {}", exit.message);
            ExitCode::from(exit.code)
        }
    }
}

fn migrate(database: &database::DatabaseArgs) -> anyhow::Result<u8> {
    let Some(options) = database.postgres()? else {
        anyhow::bail!("credence migrate brings a PostgreSQL schema up to date: give --database-url (the embedded store migrates itself when opened)");
    };
    let version = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            let store = credence_store_postgres::PostgresStore::connect(&options)
                .await
                .with_context(|| format!("opening {}", options.redacted_url()))?;
            anyhow::Ok(store.schema_version().await?)
        })?;
    println!("{} is at schema version {version}", options.redacted_url());
    Ok(0)
}

fn load_strategy(dir: &Path) -> Result<CompiledStrategy, Exit> {
    let source = credence_app::package_dir::read(dir).map_err(|e| Exit::bad_input(e.message))?;
    credence_engine::compile(&source)
        .map_err(|e| Exit::bad_input(format!("{}: {e}", dir.display())))
}

fn decide(
    strategy_dir: &Path,
    flow: &str,
    trace: bool,
    as_of: Option<&str>,
    language: &str,
    jsonl: bool,
    input: &str,
) -> Result<u8, Exit> {
    let strategy = load_strategy(strategy_dir)?;
    strategy
        .flow(flow)
        .map_err(|e| Exit::bad_input(e.to_string()))?;
    let as_of = match as_of {
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            Exit::bad_input(format!(
                "--as-of must be a date written YYYY-MM-DD, got {text}"
            ))
        })?,
        None => SystemClock.today(),
    };
    let options = EvalOptions {
        as_of,
        language: language.to_string(),
        full_trace: trace,
    };
    let text = read_input(input)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let lines = match input_shape(&text, jsonl) {
        InputShape::Document(value) => {
            let decision = strategy
                .decide_json(flow, &value, &options)
                .map_err(|e| engine_exit(&e, input))?;
            let json =
                serde_json::to_string_pretty(&decision).context("serialising the decision")?;
            writeln!(out, "{json}").context("writing to standard output")?;
            return Ok(0);
        }
        InputShape::Malformed(error) => {
            return Err(Exit::bad_input(format!(
                "{}: malformed JSON at line {}, column {}: {error}; a file holds one JSON document, or one per line (JSON Lines)",
                display_input(input),
                error.line(),
                error.column()
            )))
        }
        InputShape::Lines(lines) => lines,
    };
    let mut failed = 0usize;
    for (number, line) in lines {
        let result = serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))
            .and_then(|value| {
                strategy
                    .decide_json(flow, &value, &options)
                    .map_err(|e| e.to_string())
            });
        let json = match result {
            Ok(decision) => serde_json::to_string(&decision).context("serialising the decision")?,
            Err(message) => {
                failed += 1;
                eprintln!(
                    "error: {} line {}: {message}",
                    display_input(input),
                    number + 1
                );
                serde_json::json!({"line": number + 1, "error": message}).to_string()
            }
        };
        writeln!(out, "{json}").context("writing to standard output")?;
    }
    if failed > 0 {
        return Err(Exit::bad_input(format!(
            "{failed} line(s) could not be decided"
        )));
    }
    Ok(0)
}

/// What an input file holds.
enum InputShape<'t> {
    /// One JSON document (pretty-printed or not).
    Document(serde_json::Value),
    /// JSON Lines: the non-empty lines, with their numbers from 0.
    Lines(Vec<(usize, &'t str)>),
    /// Neither: one document with this error (its line and column are the file's).
    Malformed(serde_json::Error),
}

/// One JSON document when the text parses as one; JSON Lines when `jsonl` says so, or when it
/// does not parse and its first non-empty line is a JSON value of its own (a pretty-printed
/// document's first line, `{`, is not); otherwise the document's own parse error, which names
/// the line and column of the mistake.
fn input_shape(text: &str, jsonl: bool) -> InputShape<'_> {
    let lines = || -> Vec<(usize, &str)> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect()
    };
    if jsonl {
        return InputShape::Lines(lines());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => InputShape::Document(value),
        Err(error) => {
            let lines = lines();
            let first_is_a_value = lines
                .first()
                .is_some_and(|(_, l)| serde_json::from_str::<serde_json::Value>(l).is_ok());
            if lines.len() > 1 && first_is_a_value {
                InputShape::Lines(lines)
            } else {
                InputShape::Malformed(error)
            }
        }
    }
}

fn display_input(input: &str) -> &str {
    if input == "-" {
        "standard input"
    } else {
        input
    }
}

/// An engine error: a defect of the strategy (exit 3) when evaluation failed with a valid input,
/// else bad input (exit 2).
fn engine_exit(error: &EngineError, input: &str) -> Exit {
    let message = format!("{}: {error}", display_input(input));
    match error {
        EngineError::Evaluation { .. } | EngineError::NotValidatedForFlow { .. } => {
            Exit::strategy_defect(format!(
                "{message}; this is a defect of the strategy package, not of the input"
            ))
        }
        _ => Exit::bad_input(message),
    }
}

fn read_input(input: &str) -> Result<String, Exit> {
    let mut text = String::new();
    if input == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Exit::bad_input(format!("cannot read standard input: {e}")))?;
    } else {
        text = std::fs::read_to_string(input)
            .map_err(|e| Exit::bad_input(format!("cannot read {input}: {e}")))?;
    }
    Ok(text)
}

fn validate(dir: &Path) -> Result<u8, Exit> {
    let strategy = load_strategy(dir)?;
    let results = strategy.run_cases();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let write = |out: &mut std::io::StdoutLock, line: String| -> Result<(), Exit> {
        writeln!(out, "{line}")
            .map_err(|e| Exit::bad_input(format!("writing to standard output: {e}")))
    };
    write(
        &mut out,
        format!(
            "strategy {} version {} — {} flow(s), {} case(s)",
            strategy.name(),
            strategy.version(),
            strategy.flow_names().count(),
            results.len()
        ),
    )?;
    let mut failed = 0;
    for result in &results {
        if result.passed() {
            write(
                &mut out,
                format!("  ok    {} ({})", result.name, result.flow),
            )?;
            continue;
        }
        failed += 1;
        write(
            &mut out,
            format!("  FAIL  {} ({}, {})", result.name, result.flow, result.file),
        )?;
        if let Some(error) = &result.error {
            write(&mut out, format!("        {error}"))?;
        }
        for mismatch in &result.mismatches {
            write(
                &mut out,
                format!(
                    "        {}: expected {}, got {}",
                    mismatch.field, mismatch.expected, mismatch.got
                ),
            )?;
        }
    }
    write(
        &mut out,
        format!(
            "cases: {} passed, {} failed",
            results.len() - failed,
            failed
        ),
    )?;
    Ok(if failed > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "credence", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }
}
