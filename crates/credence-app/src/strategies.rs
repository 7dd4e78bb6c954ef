//! Strategy versions: upload (compile + cases), maker-checker approval, atomic activation,
//! rollback, and the compiled versions the service decides with.
//!
//! The active strategy sits behind an `ArcSwap`: a request loads one `Arc` at its start and
//! decides with it to the end, so an activation never produces a mixed or failed request;
//! the swap happens only after the activation is durable. Every process sharing a data
//! directory follows the newest activation through [`Strategies::refresh`], so the CLI can
//! activate against a data directory while a server runs on it.

use crate::error::{AppError, ErrorCode};
use crate::package_archive;
use arc_swap::ArcSwapOption;
use credence_engine::CompiledStrategy;
use credence_store::{NewAuditEvent, Store, StrategyRecord, StrategyState};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The version requests are decided with.
pub struct ActiveStrategy {
    /// The version's content hash.
    pub version: String,
    /// The activation history entry that made it active.
    pub activation_seq: i64,
    /// The compiled strategy.
    pub strategy: Arc<CompiledStrategy>,
}

/// A version as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StrategyView {
    /// The version's content hash.
    pub version: String,
    /// The package's name.
    pub name: String,
    /// `draft` or `approved`.
    pub state: String,
    /// Whether requests are decided with this version now.
    pub active: bool,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When it was uploaded.
    pub uploaded_at_ms: i64,
    /// Who approved it (never its uploader).
    pub approved_by: Option<String>,
    /// When it was approved.
    pub approved_at_ms: Option<i64>,
    /// Embedded test cases that passed at upload.
    pub cases_passed: i64,
}

/// What an upload did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadOutcome {
    /// False when the same content was uploaded before (versions are content hashes).
    pub created: bool,
    /// The version.
    pub strategy: StrategyView,
    /// The flows it defines.
    pub flows: Vec<String>,
}

/// The strategy lifecycle: upload, approve (maker-checker), activate, roll back; and the active version.
pub struct Strategies {
    store: Arc<dyn Store>,
    active: ArcSwapOption<ActiveStrategy>,
    compiled: Mutex<CompiledCache>,
    /// Serialises activations in this process so the swap follows the durable order.
    activation: tokio::sync::Mutex<()>,
    /// What a package may make the engine do.
    limits: credence_engine::Limits,
    /// Packages compile (and run their cases) one at a time, so that concurrent uploads
    /// cannot multiply the peak memory one compilation takes.
    compile_slot: tokio::sync::Semaphore,
}

/// Compiled versions kept for reuse: at most [`COMPILED_VERSIONS_KEPT`], the least recently
/// used dropped first (the active version is also held by the active pointer, so dropping it
/// here frees nothing it needs). A dropped version is compiled again from its stored package.
struct CompiledCache {
    entries: HashMap<String, (Arc<CompiledStrategy>, u64)>,
    clock: u64,
}

/// How many compiled versions the cache keeps (the active one is also held by the active
/// pointer, whatever the cache drops).
pub const COMPILED_VERSIONS_KEPT: usize = 8;

impl CompiledCache {
    fn get(&mut self, version: &str) -> Option<Arc<CompiledStrategy>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(version).map(|(strategy, used)| {
            *used = clock;
            strategy.clone()
        })
    }

    fn insert(&mut self, version: String, strategy: Arc<CompiledStrategy>) {
        self.clock += 1;
        self.entries.insert(version, (strategy, self.clock));
        while self.entries.len() > COMPILED_VERSIONS_KEPT {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(version, _)| version.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn audit(
    actor: &str,
    action: &str,
    subject: &str,
    at_ms: i64,
    detail: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        at_ms,
        actor: actor.to_string(),
        action: action.to_string(),
        subject: subject.to_string(),
        detail,
    }
}

fn unknown_version(version: &str) -> AppError {
    AppError::new(
        ErrorCode::UnknownStrategyVersion,
        format!("there is no strategy version {version}; list versions with GET /v1/strategies"),
    )
    .with_details(serde_json::json!({"field": "version"}))
}

/// Compiles a package off the async threads.
async fn compile_package(
    package: Vec<u8>,
    limits: credence_engine::Limits,
) -> Result<CompiledStrategy, AppError> {
    tokio::task::spawn_blocking(move || {
        let source = package_archive::unpack(&package)?;
        credence_engine::compile_with_limits(&source, &limits).map_err(AppError::from)
    })
    .await
    .map_err(|e| AppError::new(ErrorCode::Internal, format!("compilation panicked: {e}")))?
}

impl Strategies {
    /// The lifecycle over a store, with the default limits on what a package may make the engine do.
    pub fn new(store: Arc<dyn Store>) -> Strategies {
        Self::with_limits(store, credence_engine::Limits::default())
    }

    /// Strategies whose packages are held to `limits` when they compile.
    pub fn with_limits(store: Arc<dyn Store>, limits: credence_engine::Limits) -> Strategies {
        Strategies {
            store,
            active: ArcSwapOption::empty(),
            compiled: Mutex::new(CompiledCache {
                entries: HashMap::new(),
                clock: 0,
            }),
            activation: tokio::sync::Mutex::new(()),
            limits,
            compile_slot: tokio::sync::Semaphore::new(1),
        }
    }

    /// How many compiled versions are kept in memory now (besides the active one).
    pub fn compiled_versions_kept(&self) -> usize {
        self.compiled.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Compiles a package when no other compilation runs in this process.
    async fn compile_one_at_a_time(&self, package: Vec<u8>) -> Result<CompiledStrategy, AppError> {
        let _slot =
            self.compile_slot.acquire().await.map_err(|_| {
                AppError::new(ErrorCode::Unavailable, "the service is shutting down")
            })?;
        compile_package(package, self.limits).await
    }

    /// The active version, if any (one atomic load).
    pub fn active(&self) -> Option<Arc<ActiveStrategy>> {
        self.active.load_full()
    }

    /// A version compiled, from the cache or from its stored package.
    pub async fn compiled(&self, version: &str) -> Result<Arc<CompiledStrategy>, AppError> {
        if let Some(strategy) = self.compiled.lock().ok().and_then(|mut c| c.get(version)) {
            return Ok(strategy);
        }
        let package = self
            .store
            .strategy_package(version)
            .await?
            .ok_or_else(|| unknown_version(version))?;
        let strategy = Arc::new(self.compile_one_at_a_time(package).await?);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(version.to_string(), strategy.clone());
        }
        Ok(strategy)
    }

    /// Follows the newest activation in the store; returns true when the active version changed.
    pub async fn refresh(&self) -> Result<bool, AppError> {
        let _guard = self.activation.lock().await;
        let Some(newest) = self.store.activations(1).await?.into_iter().next() else {
            return Ok(false);
        };
        if self
            .active()
            .is_some_and(|a| a.activation_seq >= newest.seq)
        {
            return Ok(false);
        }
        let strategy = self.compiled(&newest.version).await?;
        self.active.store(Some(Arc::new(ActiveStrategy {
            version: newest.version,
            activation_seq: newest.seq,
            strategy,
        })));
        Ok(true)
    }

    /// The stored record of a version, or 404 naming it.
    async fn record(&self, version: &str) -> Result<StrategyRecord, AppError> {
        self.store
            .strategy(version)
            .await?
            .ok_or_else(|| unknown_version(version))
    }

    async fn view(&self, record: StrategyRecord) -> StrategyView {
        let active = self.active().is_some_and(|a| a.version == record.version);
        StrategyView {
            version: record.version,
            name: record.name,
            state: record.state.as_str().to_string(),
            active,
            uploaded_by: record.uploaded_by,
            uploaded_at_ms: record.uploaded_at_ms,
            approved_by: record.approved_by,
            approved_at_ms: record.approved_at_ms,
            cases_passed: record.cases_passed,
        }
    }

    /// One version by its content hash.
    pub async fn get(&self, version: &str) -> Result<StrategyView, AppError> {
        let record = self.record(version).await?;
        Ok(self.view(record).await)
    }

    /// Every version, newest first.
    pub async fn list(&self) -> Result<Vec<StrategyView>, AppError> {
        let mut views = Vec::new();
        for record in self.store.strategies().await? {
            views.push(self.view(record).await);
        }
        Ok(views)
    }

    /// Compiles an uploaded package and runs its cases; stores it as a draft if all pass.
    pub async fn upload(
        &self,
        package: Vec<u8>,
        actor: &str,
        now_ms: i64,
    ) -> Result<UploadOutcome, AppError> {
        self.add(package, actor, now_ms, StrategyState::Draft).await
    }

    async fn add(
        &self,
        package: Vec<u8>,
        actor: &str,
        now_ms: i64,
        state: StrategyState,
    ) -> Result<UploadOutcome, AppError> {
        let slot =
            self.compile_slot.acquire().await.map_err(|_| {
                AppError::new(ErrorCode::Unavailable, "the service is shutting down")
            })?;
        let compiled = compile_package(package.clone(), self.limits).await?;
        let compiled = Arc::new(compiled);
        let for_cases = compiled.clone();
        let results = tokio::task::spawn_blocking(move || for_cases.run_cases())
            .await
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("cases panicked: {e}")))?;
        drop(slot);
        let failed: Vec<_> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| {
                serde_json::json!({
                    "case": r.name,
                    "file": r.file,
                    "flow": r.flow,
                    "error": r.error,
                    "mismatches": r.mismatches.iter().map(|m| serde_json::json!({
                        "field": m.field, "expected": m.expected, "got": m.got
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        if !failed.is_empty() {
            return Err(AppError::new(
                ErrorCode::PackageCasesFailed,
                format!(
                    "{} of the package's {} test case(s) failed; fix the strategy or the cases listed in details",
                    failed.len(),
                    results.len()
                ),
            )
            .with_details(serde_json::json!({ "failed_cases": failed })));
        }
        let version = compiled.version().to_string();
        let approved = state == StrategyState::Approved;
        let record = StrategyRecord {
            version: version.clone(),
            name: compiled.name().to_string(),
            state,
            uploaded_by: actor.to_string(),
            uploaded_at_ms: now_ms,
            approved_by: approved.then(|| actor.to_string()),
            approved_at_ms: approved.then_some(now_ms),
            cases_passed: results.len() as i64,
        };
        let created = self
            .store
            .insert_strategy(
                record,
                package,
                audit(
                    actor,
                    "strategy.upload",
                    &version,
                    now_ms,
                    serde_json::json!({"name": compiled.name(), "cases": results.len(), "state": state.as_str()}),
                ),
            )
            .await?;
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(version.clone(), compiled.clone());
        }
        Ok(UploadOutcome {
            created,
            strategy: self.get(&version).await?,
            flows: compiled.flow_names().map(str::to_string).collect(),
        })
    }

    /// Approves a draft; the approver must not be its uploader (maker-checker).
    pub async fn approve(
        &self,
        version: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<StrategyView, AppError> {
        let record = self.record(version).await?;
        if record.uploaded_by == actor {
            return Err(AppError::new(
                ErrorCode::MakerChecker,
                format!(
                    "{actor} uploaded version {version} and so cannot approve it; another approver must"
                ),
            ));
        }
        if record.state != StrategyState::Draft {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                format!("version {version} is already {}", record.state.as_str()),
            ));
        }
        self.store
            .approve_strategy(
                version,
                actor,
                now_ms,
                audit(
                    actor,
                    "strategy.approve",
                    version,
                    now_ms,
                    serde_json::json!({"uploaded_by": record.uploaded_by}),
                ),
            )
            .await?;
        self.get(version).await
    }

    /// Makes an approved version the active one.
    pub async fn activate(
        &self,
        version: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<StrategyView, AppError> {
        self.switch_to(version, actor, now_ms, "activate").await
    }

    async fn switch_to(
        &self,
        version: &str,
        actor: &str,
        now_ms: i64,
        kind: &str,
    ) -> Result<StrategyView, AppError> {
        let record = self.record(version).await?;
        if record.state != StrategyState::Approved {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                format!("version {version} is a draft; it must be approved by a second person before it can be activated"),
            ));
        }
        // Compile before recording, so that a recorded activation is always servable.
        let strategy = self.compiled(version).await?;
        let _guard = self.activation.lock().await;
        let previous = self.active().map(|a| a.version.clone());
        let activation = self
            .store
            .record_activation(
                version,
                actor,
                kind,
                now_ms,
                audit(
                    actor,
                    &format!("strategy.{kind}"),
                    version,
                    now_ms,
                    serde_json::json!({"previous": previous}),
                ),
            )
            .await?;
        self.active.store(Some(Arc::new(ActiveStrategy {
            version: version.to_string(),
            activation_seq: activation.seq,
            strategy,
        })));
        drop(_guard);
        self.get(version).await
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(&self, actor: &str, now_ms: i64) -> Result<StrategyView, AppError> {
        let history = self.store.activations(1000).await?;
        let current = history.first().map(|a| a.version.clone());
        // Walk back past every entry of the current version to the one before it.
        let previous = history
            .iter()
            .map(|a| &a.version)
            .find(|v| Some(*v) != current.as_ref())
            .cloned()
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidState,
                    "there is no earlier active version to roll back to",
                )
            })?;
        self.switch_to(&previous, actor, now_ms, "rollback").await
    }

    /// On a store with no active version, adds `package` as approved and activates it.
    pub async fn bootstrap(
        &self,
        package: Vec<u8>,
        now_ms: i64,
    ) -> Result<Option<String>, AppError> {
        if !self.store.activations(1).await?.is_empty() {
            self.refresh().await?;
            return Ok(None);
        }
        let outcome = self
            .add(package, "system", now_ms, StrategyState::Approved)
            .await?;
        let version = outcome.strategy.version;
        self.switch_to(&version, "system", now_ms, "bootstrap")
            .await?;
        Ok(Some(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-flow package whose version depends on `n`.
    fn package(n: usize) -> Vec<u8> {
        let mut source = credence_engine::PackageSource::new();
        source.insert(
            "strategy.yaml",
            "name: t\nlanguages: [en]\ncaps: {apr_max: 0.24}\nreasons:\n  R1: {en: one}\nflows:\n  application: flows/a.yaml\n",
        );
        source.insert(
            "flows/a.yaml",
            format!("input:\n  x: {{type: number}}\nsteps:\n  - features: {{id: f, values: {{k: \"x + {n}\"}}}}\noutcome:\n  default: approve\n"),
        );
        package_archive::pack(&source).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compiled_drafts_are_kept_in_a_bounded_cache_and_compiled_again_on_demand() {
        let dir = std::env::temp_dir().join(format!("credence-strategies-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(credence_store::SqliteStore::open(&dir).unwrap());
        let strategies = Strategies::new(store);
        let mut versions = Vec::new();
        for n in 0..20 {
            let outcome = strategies
                .upload(package(n), "alice", 1_000 + n as i64)
                .await
                .unwrap();
            versions.push(outcome.strategy.version.clone());
            assert!(strategies.compiled_versions_kept() <= COMPILED_VERSIONS_KEPT);
        }
        assert_eq!(strategies.compiled_versions_kept(), COMPILED_VERSIONS_KEPT);
        // The first draft was dropped from memory; asking for it compiles it again.
        let first = strategies.compiled(&versions[0]).await.unwrap();
        assert_eq!(first.version(), versions[0]);
        assert_eq!(strategies.compiled_versions_kept(), COMPILED_VERSIONS_KEPT);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
