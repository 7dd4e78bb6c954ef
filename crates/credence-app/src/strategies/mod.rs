//! Strategies by name (one per product): versions, upload (compile + cases), maker-checker
//! approval, atomic activation, rollback, rollouts of candidates, and the compiled versions
//! the service decides with.
//!
//! Each package's `name` is a product strategy with its own activation history; any number
//! are active at once. The set of active strategies sits behind an `ArcSwap`: a request loads
//! one `Arc` at its start and decides with it to the end, so an activation never produces a
//! mixed or failed request; the swap happens only after the activation is durable. Every
//! process sharing a store follows the newest activations and rollouts through
//! [`Strategies::refresh`], so the CLI can activate against a data directory while a server
//! runs on it, and every node of a cluster follows the others.

use crate::error::{AppError, ErrorCode};
use crate::package_archive;
use arc_swap::ArcSwap;
use credence_engine::CompiledStrategy;
use credence_store::{NewAuditEvent, RolloutRecord, Store, StrategyRecord, StrategyState};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub mod ramp;
mod rollouts;

pub use rollouts::{due_transition, RolloutView, ShadowRequest};

/// A strategy's active version, with the rollout of a candidate running beside it, if any.
pub struct ActiveStrategy {
    /// The strategy's (package's) name.
    pub name: String,
    /// The version's content hash.
    pub version: String,
    /// The activation history entry that made it active.
    pub activation_seq: i64,
    /// The compiled strategy.
    pub strategy: Arc<CompiledStrategy>,
    /// A candidate in shadow or on a ramp.
    pub rollout: Option<Arc<LiveRollout>>,
}

/// A running rollout as requests see it: the candidate compiled, its plan, this node's counts.
pub struct LiveRollout {
    /// The stored rollout.
    pub record: RolloutRecord,
    /// The candidate, compiled.
    pub candidate: Arc<CompiledStrategy>,
    /// The validated ramp; `None` in shadow.
    pub ramp: Option<ramp::RampPlan>,
    /// What each version decided on this node since the ramp began.
    pub counters: Arc<ramp::RampCounters>,
}

impl LiveRollout {
    /// Whether the candidate only runs in shadow.
    pub fn is_shadow(&self) -> bool {
        self.ramp.is_none()
    }

    /// The share of customers the candidate decides for now, in percent (0 in shadow).
    pub fn percent(&self) -> u32 {
        self.ramp
            .as_ref()
            .and_then(|plan| plan.steps.get(usize::try_from(self.record.step).ok()?))
            .map_or(0, |step| step.percent)
    }
}

/// Every active strategy, and which one `POST /v1/decisions/{flow}` uses.
#[derive(Default)]
struct ActiveSet {
    by_name: BTreeMap<String, Arc<ActiveStrategy>>,
    default: Option<String>,
    /// What the set was built from: (name, activation seq, rollout id, rollout revision).
    signature: Vec<(String, i64, String, i64)>,
}

/// A version as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StrategyView {
    /// The version's content hash.
    pub version: String,
    /// The package's name: the strategy (product) the version belongs to.
    pub name: String,
    /// `draft` or `approved`.
    pub state: String,
    /// Whether it is its strategy's active version now.
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
    active: ArcSwap<ActiveSet>,
    /// The strategy `POST /v1/decisions/{flow}` uses when configured; otherwise the first
    /// strategy ever activated (the bundled example on a new data directory).
    configured_default: Mutex<Option<String>>,
    /// Each running ramp's counters on this node, by rollout id, with the step they count.
    counters: Mutex<HashMap<String, (Arc<ramp::RampCounters>, i64)>>,
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
            active: ArcSwap::from_pointee(ActiveSet::default()),
            configured_default: Mutex::new(None),
            counters: Mutex::new(HashMap::new()),
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

    /// The default strategy's active version, if any (one atomic load).
    pub fn active(&self) -> Option<Arc<ActiveStrategy>> {
        let set = self.active.load();
        set.default
            .as_ref()
            .and_then(|d| set.by_name.get(d).cloned())
    }

    /// A strategy's active version, if it has one.
    pub fn active_named(&self, name: &str) -> Option<Arc<ActiveStrategy>> {
        self.active.load().by_name.get(name).cloned()
    }

    /// Every active strategy, by name.
    pub fn active_all(&self) -> Vec<Arc<ActiveStrategy>> {
        self.active.load().by_name.values().cloned().collect()
    }

    /// The strategy `POST /v1/decisions/{flow}` decides with.
    pub fn default_name(&self) -> Option<String> {
        self.active.load().default.clone()
    }

    /// Makes `name` the default strategy (configuration); `None`: the first ever activated.
    pub async fn set_default(&self, name: Option<String>) -> Result<(), AppError> {
        if let Ok(mut configured) = self.configured_default.lock() {
            *configured = name;
        }
        self.rebuild(true).await.map(|_| ())
    }

    /// The active version of `name`, or of the default strategy: what a request decides with.
    pub fn resolve(&self, name: Option<&str>) -> Result<Arc<ActiveStrategy>, AppError> {
        match name {
            Some(name) => self.active_named(name).ok_or_else(|| {
                let active: Vec<String> = self.active.load().by_name.keys().cloned().collect();
                AppError::new(
                    ErrorCode::UnknownStrategy,
                    format!(
                        "no strategy named {name} is active; active strategies: {}",
                        if active.is_empty() {
                            "none".to_string()
                        } else {
                            active.join(", ")
                        }
                    ),
                )
                .with_details(serde_json::json!({"field": "strategy", "active": active}))
            }),
            None => self.active().ok_or_else(|| {
                AppError::new(
                    ErrorCode::NoActiveStrategy,
                    "no strategy version is active; upload, approve and activate one",
                )
            }),
        }
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

    /// Follows the newest activations and rollouts in the store; returns true when what
    /// requests decide with changed.
    pub async fn refresh(&self) -> Result<bool, AppError> {
        self.rebuild(false).await
    }

    /// Rebuilds the active set from the store when it changed (or when `force`).
    async fn rebuild(&self, force: bool) -> Result<bool, AppError> {
        let _guard = self.activation.lock().await;
        let actives = self.store.active_versions().await?;
        let rollouts: Vec<RolloutRecord> = self
            .store
            .rollouts(None, 1_000)
            .await?
            .into_iter()
            .filter(RolloutRecord::is_running)
            .collect();
        let signature: Vec<(String, i64, String, i64)> = actives
            .iter()
            .map(|a| {
                let rollout = rollouts.iter().find(|r| r.strategy == a.strategy);
                (
                    a.strategy.clone(),
                    a.seq,
                    rollout.map(|r| r.id.clone()).unwrap_or_default(),
                    rollout.map_or(0, |r| r.revision),
                )
            })
            .collect();
        let current = self.active.load_full();
        if !force && current.signature == signature {
            return Ok(false);
        }
        // Counters of rollouts that stopped running go (a resumed ramp counts afresh).
        if let Ok(mut counters) = self.counters.lock() {
            counters.retain(|id, _| rollouts.iter().any(|r| &r.id == id));
        }
        let mut by_name = BTreeMap::new();
        let mut failed = Vec::new();
        for activation in &actives {
            let rollout = rollouts
                .iter()
                .find(|r| r.strategy == activation.strategy && r.version != activation.version);
            let reuse = current.by_name.get(&activation.strategy).filter(|a| {
                a.activation_seq == activation.seq
                    && a.rollout
                        .as_ref()
                        .map(|r| (&r.record.id, r.record.revision))
                        == rollout.map(|r| (&r.id, r.revision))
            });
            let entry = match reuse {
                Some(same) => same.clone(),
                None => match self.entry(activation, rollout).await {
                    Ok(entry) => entry,
                    // One product that cannot be loaded (a version that no longer compiles
                    // under tightened limits) must not stop the others: it keeps what it had,
                    // and the next refresh tries again.
                    Err(error) => {
                        tracing::error!(strategy = %activation.strategy, version = %activation.version,
                            %error, "cannot load a strategy's active version");
                        failed.push(error);
                        match current.by_name.get(&activation.strategy) {
                            Some(kept) => kept.clone(),
                            None => continue,
                        }
                    }
                },
            };
            by_name.insert(activation.strategy.clone(), entry);
        }
        let configured = self.configured_default.lock().ok().and_then(|c| c.clone());
        let default = match configured {
            Some(name) => Some(name),
            None if by_name.len() <= 1 => by_name.keys().next().cloned(),
            // The first strategy ever activated: the bundled example on a new data directory.
            None => self
                .store
                .activations(None, u32::MAX)
                .await?
                .last()
                .map(|a| a.strategy.clone()),
        };
        let loaded_all = failed.is_empty();
        self.active.store(Arc::new(ActiveSet {
            by_name,
            default,
            // After a failure the signature matches nothing, so the next refresh tries again.
            signature: if loaded_all { signature } else { Vec::new() },
        }));
        match failed.into_iter().next() {
            Some(error) if !loaded_all => Err(error),
            _ => Ok(true),
        }
    }

    /// A strategy's active version made ready for requests, with its running rollout.
    async fn entry(
        &self,
        activation: &credence_store::Activation,
        rollout: Option<&RolloutRecord>,
    ) -> Result<Arc<ActiveStrategy>, AppError> {
        let strategy = self.compiled(&activation.version).await?;
        let live = match rollout {
            Some(record) => Some(self.live_rollout(record).await?),
            None => None,
        };
        Ok(Arc::new(ActiveStrategy {
            name: activation.strategy.clone(),
            version: activation.version.clone(),
            activation_seq: activation.seq,
            strategy,
            rollout: live,
        }))
    }

    /// A running rollout made ready for requests: its candidate compiled, its plan read, its
    /// counters (kept across refreshes; a new step counts from zero).
    async fn live_rollout(&self, record: &RolloutRecord) -> Result<Arc<LiveRollout>, AppError> {
        let candidate = self.compiled(&record.version).await?;
        let ramp = if record.mode == "ramp" {
            Some(
                serde_json::from_str::<ramp::RampPlan>(&record.plan).map_err(|e| {
                    AppError::new(
                        ErrorCode::Internal,
                        format!("stored plan of rollout {} is unreadable: {e}", record.id),
                    )
                })?,
            )
        } else {
            None
        };
        let counters = {
            let mut map = self
                .counters
                .lock()
                .map_err(|_| AppError::new(ErrorCode::Internal, "ramp counters poisoned"))?;
            let (counters, step) = map
                .entry(record.id.clone())
                .or_insert_with(|| (Arc::new(ramp::RampCounters::default()), record.step));
            if *step != record.step {
                counters.start_step();
                *step = record.step;
            }
            counters.clone()
        };
        Ok(Arc::new(LiveRollout {
            record: record.clone(),
            candidate,
            ramp,
            counters,
        }))
    }

    /// The stored record of a version, or 404 naming it.
    async fn record(&self, version: &str) -> Result<StrategyRecord, AppError> {
        self.store
            .strategy(version)
            .await?
            .ok_or_else(|| unknown_version(version))
    }

    async fn view(&self, record: StrategyRecord) -> StrategyView {
        let active = self
            .active_named(&record.name)
            .is_some_and(|a| a.version == record.version);
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

    /// Every version (of the strategies `visible` allows), newest first.
    pub async fn list(
        &self,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<StrategyView>, AppError> {
        let mut views = Vec::new();
        for record in self.store.strategies().await? {
            if visible(&record.name) {
                views.push(self.view(record).await);
            }
        }
        Ok(views)
    }

    /// The strategy (package name) a stored version belongs to.
    pub async fn name_of(&self, version: &str) -> Result<String, AppError> {
        Ok(self.record(version).await?.name)
    }

    /// Compiles an uploaded package and runs its cases; stores it as a draft if all pass and
    /// `may_write` allows its strategy (a key limited to other products is refused).
    pub async fn upload(
        &self,
        package: Vec<u8>,
        actor: &str,
        now_ms: i64,
        may_write: impl Fn(&str) -> Result<(), AppError>,
    ) -> Result<UploadOutcome, AppError> {
        self.add(package, actor, now_ms, StrategyState::Draft, may_write)
            .await
    }

    async fn add(
        &self,
        package: Vec<u8>,
        actor: &str,
        now_ms: i64,
        state: StrategyState,
        may_write: impl Fn(&str) -> Result<(), AppError>,
    ) -> Result<UploadOutcome, AppError> {
        let slot =
            self.compile_slot.acquire().await.map_err(|_| {
                AppError::new(ErrorCode::Unavailable, "the service is shutting down")
            })?;
        let compiled = compile_package(package.clone(), self.limits).await?;
        let compiled = Arc::new(compiled);
        may_write(compiled.name())?;
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
        if kind == "activate" {
            if let Some(running) = self.running_rollout(&record.name).await? {
                return Err(AppError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "strategy {} has rollout {} of version {} running; promote or abort it before activating another version",
                        record.name, running.id, running.version
                    ),
                ));
            }
        }
        // Compile before recording, so that a recorded activation is always servable.
        self.compiled(version).await?;
        let previous = self.active_named(&record.name).map(|a| a.version.clone());
        self.store
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
                    serde_json::json!({"strategy": record.name, "previous": previous}),
                ),
            )
            .await?;
        self.rebuild(false).await?;
        self.get(version).await
    }

    /// The running rollout of a strategy, if any.
    pub(crate) async fn running_rollout(
        &self,
        name: &str,
    ) -> Result<Option<RolloutRecord>, AppError> {
        Ok(self
            .store
            .rollouts(Some(name), 1_000)
            .await?
            .into_iter()
            .find(RolloutRecord::is_running))
    }

    /// Re-activates the version of strategy `name` that was active before the current one;
    /// a rollout running for it is aborted first.
    pub async fn rollback(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<StrategyView, AppError> {
        if self.running_rollout(name).await?.is_some() {
            self.abort(name, actor, now_ms, "rollback").await?;
        }
        let history = self.store.activations(Some(name), 1000).await?;
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
                    format!("strategy {name} has no earlier active version to roll back to"),
                )
            })?;
        self.switch_to(&previous, actor, now_ms, "rollback").await
    }

    /// Adds `package` as approved and activates it when its strategy (by name) has never been
    /// active in the store: a bundled product on a new store. Returns the version activated.
    pub async fn bootstrap_product(
        &self,
        package: Vec<u8>,
        now_ms: i64,
    ) -> Result<Option<String>, AppError> {
        let name = compile_package(package.clone(), self.limits)
            .await?
            .name()
            .to_string();
        if !self.store.activations(Some(&name), 1).await?.is_empty() {
            return Ok(None);
        }
        self.activate_as_system(package, now_ms).await.map(Some)
    }

    /// Adds `package` approved by `system` and activates it: a bundled strategy.
    async fn activate_as_system(&self, package: Vec<u8>, now_ms: i64) -> Result<String, AppError> {
        let outcome = self
            .add(package, "system", now_ms, StrategyState::Approved, |_| {
                Ok(())
            })
            .await?;
        let version = outcome.strategy.version;
        self.switch_to(&version, "system", now_ms, "bootstrap")
            .await?;
        Ok(version)
    }

    /// On a store with no active version, adds `package` as approved and activates it.
    pub async fn bootstrap(
        &self,
        package: Vec<u8>,
        now_ms: i64,
    ) -> Result<Option<String>, AppError> {
        if !self.store.activations(None, 1).await?.is_empty() {
            self.refresh().await?;
            return Ok(None);
        }
        self.activate_as_system(package, now_ms).await.map(Some)
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
                .upload(package(n), "alice", 1_000 + n as i64, |_| Ok(()))
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

    /// A two-step package named `name` (the features step repeated).
    fn named_package(name: &str, steps: usize) -> Vec<u8> {
        let mut source = credence_engine::PackageSource::new();
        source.insert(
            "strategy.yaml",
            format!("name: {name}\nlanguages: [en]\nreasons:\n  R1: {{en: one}}\nflows:\n  application: flows/a.yaml\n"),
        );
        let steps: String = (0..steps)
            .map(|i| format!("  - features: {{id: f{i}, values: {{k{i}: \"x + {i}\"}}}}\n"))
            .collect();
        source.insert(
            "flows/a.yaml",
            format!("input:\n  x: {{type: number}}\nsteps:\n{steps}outcome:\n  default: approve\n"),
        );
        package_archive::pack(&source).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_product_that_cannot_be_loaded_does_not_stop_the_others() {
        let store: Arc<dyn Store> = Arc::new(credence_store::MemoryStore::new());
        let loader = Strategies::new(store.clone());
        loader
            .bootstrap(named_package("small", 1), 1)
            .await
            .unwrap();
        loader
            .bootstrap_product(named_package("large", 30), 2)
            .await
            .unwrap();
        assert_eq!(loader.active_all().len(), 2);
        // A process whose limits the large product's version no longer meets.
        let limits = credence_engine::Limits {
            max_flow_steps: 10,
            ..credence_engine::Limits::default()
        };
        let strict = Strategies::with_limits(store, limits);
        assert!(strict.refresh().await.is_err(), "the failure is reported");
        let names: Vec<String> = strict.active_all().iter().map(|a| a.name.clone()).collect();
        assert_eq!(names, ["small"], "the other product is served");
        assert!(strict.resolve(Some("large")).is_err());
        // The next refresh tries again rather than taking the set as current.
        assert!(strict.refresh().await.is_err());
    }
}
