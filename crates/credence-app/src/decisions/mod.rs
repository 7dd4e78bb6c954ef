//! Deciding, storing, fetching and replaying decisions; idempotent retries.
//!
//! A decision is appended to the durable log before its response is built, so every 2xx
//! answer names a record that survives a crash. With an `Idempotency-Key`, the first request
//! for a key (the leader) decides; requests arriving while it runs wait for its answer, and
//! later ones read the stored record; the log's unique index on the key is the last word if
//! two processes race.

use crate::error::{AppError, ErrorCode};
use crate::replay::{self, DecisionDiff};
use crate::strategies::Strategies;
use crate::{mask, metrics as m, Clock};
use credence_engine::EvalOptions;
use credence_store::{DecisionQuery, DecisionSummary, Store, StoreError, StoredDecision};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

mod body;
mod record;
mod stages;

use body::InputBody;
pub use record::{
    body_with_id, new_id, new_record, read_record, request_fingerprint, RecordContext,
};
use stages::{Stage, Stages};

/// A decision ready to send: its id and its JSON body.
#[derive(Debug, Clone)]
pub struct DecisionBody {
    /// The decision's id.
    pub id: String,
    /// The body sent to the caller (the decision record's JSON).
    pub json: String,
    /// True when this answer is a stored decision returned for a repeated Idempotency-Key.
    pub replayed: bool,
    /// The decision itself when it was made now (not for a replayed answer).
    pub decision: Option<Arc<credence_engine::Decision>>,
}

/// One decision request as the HTTP layer hands it over.
pub struct DecideRequest<'a> {
    /// The strategy (product) to decide with; `None`: the default strategy.
    pub strategy: Option<&'a str>,
    /// The flow to decide.
    pub flow: &'a str,
    /// The request body: the flow's input as JSON.
    pub body: &'a [u8],
    /// The caller's Idempotency-Key, if any.
    pub idempotency_key: Option<String>,
    /// The language reason texts are given in (the strategy's first when absent).
    pub language: Option<String>,
    /// What a retry must repeat to count as the same request, when that is not `body`: an
    /// account drawdown's flow input holds live features, so its caller's request is compared.
    pub caller_request: Option<&'a [u8]>,
}

type Outcome = Option<Result<DecisionBody, AppError>>;

/// What deciding with one version gave: its flow, the language and options it ran with, the
/// decision, and the third-party answers it was made with.
struct Decided<'s> {
    flow: &'s credence_engine::Flow,
    language: String,
    options: EvalOptions,
    decision: credence_engine::Decision,
    data: credence_engine::data::DataRecord,
}

/// What appending a new decision came to: the race for an Idempotency-Key is told apart by
/// its own variant, not by an error code.
enum Committed {
    /// Recorded now; this is the answer.
    Now(DecisionBody),
    /// The log already holds a decision with this unique value (another process, or a
    /// cancelled leader, committed the same Idempotency-Key first).
    KeyTakenElsewhere {
        /// What was taken, as the store names it.
        what: String,
    },
}

struct InFlight {
    request_sha256: String,
    done: watch::Receiver<Outcome>,
}

enum Joined {
    Leader(watch::Sender<Outcome>),
    Follower(String, watch::Receiver<Outcome>),
}

/// Removes a leader's in-flight entry however the leader ends (also when its client leaves).
struct LeaderGuard<'a> {
    in_flight: &'a Mutex<HashMap<String, InFlight>>,
    key: String,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.in_flight.lock() {
            map.remove(&self.key);
        }
    }
}

/// A page of history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    /// The decisions on this page, newest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<DecisionSummary>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The result of a replay.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayResult {
    /// The id of the decision replayed.
    pub recorded_id: String,
    /// The strategy version that made the recorded decision.
    pub recorded_strategy_version: String,
    /// The strategy version the replay ran.
    pub replayed_strategy_version: String,
    /// The decision the replay produced (not stored).
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
    /// What differs between the recorded and the replayed decision.
    pub diff: DecisionDiff,
}

/// The decide, read, list and replay use cases: every decision recorded before it is answered.
pub struct Decisions {
    store: Arc<dyn Store>,
    shadow: crate::shadow::ShadowRunner,
    providers: Arc<dyn crate::providers::DataProviders>,
    strategies: Arc<Strategies>,
    cases: Arc<crate::cases::Cases>,
    clock: Arc<dyn Clock>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Counts decisions for the stage timing's sample (`stages`).
    stage_sample: std::sync::atomic::AtomicU64,
}

/// Most characters an Idempotency-Key may have.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

fn malformed(error: &serde_json::Error) -> AppError {
    AppError::new(
        ErrorCode::MalformedJson,
        format!("the body is not valid JSON: {error}; send one JSON object"),
    )
    .with_details(serde_json::json!({"line": error.line(), "column": error.column()}))
}

impl Decisions {
    /// The decision use cases over a store, the strategies, review cases, a clock and the data providers.
    pub fn new(
        store: Arc<dyn Store>,
        strategies: Arc<Strategies>,
        cases: Arc<crate::cases::Cases>,
        clock: Arc<dyn Clock>,
        providers: Arc<dyn crate::providers::DataProviders>,
    ) -> Self {
        Decisions {
            shadow: crate::shadow::ShadowRunner::new(store.clone()),
            store,
            providers,
            strategies,
            cases,
            clock,
            in_flight: Mutex::new(HashMap::new()),
            stage_sample: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Decides with the active strategy and appends the decision to the log.
    pub async fn decide(&self, request: DecideRequest<'_>) -> Result<DecisionBody, AppError> {
        let started = Instant::now();
        let mut stages = Stages::start(&self.stage_sample);
        let fingerprint =
            request_fingerprint(request.flow, request.caller_request.unwrap_or(request.body));
        stages.mark(Stage::Fingerprint);
        let Some(key) = request.idempotency_key.clone() else {
            return match self
                .decide_new(&request, fingerprint, started, &mut stages)
                .await?
            {
                Committed::Now(body) => Ok(body),
                // Without a key the only unique value is the fresh id: a clash is a fault.
                Committed::KeyTakenElsewhere { what } => Err(AppError::new(
                    ErrorCode::InvalidState,
                    format!("{what} already exists"),
                )),
            };
        };
        if key.is_empty()
            || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS
            || !key.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(AppError::parameter(
                "Idempotency-Key",
                format!("use 1–{MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (a UUID is typical)"),
            ));
        }
        let reused = || {
            AppError::new(
                ErrorCode::IdempotencyKeyReused,
                format!("Idempotency-Key {key} was already used for a different request; use a new key for a new request"),
            )
            .with_details(serde_json::json!({"field": "Idempotency-Key"}))
        };
        loop {
            let (leader_fingerprint, mut done) = match self.join(&key, &fingerprint)? {
                Joined::Leader(sender) => {
                    let guard = LeaderGuard {
                        in_flight: &self.in_flight,
                        key: key.clone(),
                    };
                    let result = self
                        .lead(&request, &key, &fingerprint, started, &mut stages)
                        .await;
                    let _ = sender.send(Some(result.clone()));
                    drop(guard);
                    return result;
                }
                Joined::Follower(leader_fingerprint, done) => (leader_fingerprint, done),
            };
            // Wait for the leader's outcome whatever its body: what was committed, not what is
            // in flight, decides whether this request is a retry or a reuse of the key.
            let waited = done
                .wait_for(Option::is_some)
                .await
                .map(|outcome| outcome.clone());
            match waited {
                Ok(outcome) => {
                    let outcome = outcome.unwrap_or_else(|| {
                        Err(AppError::new(
                            ErrorCode::Internal,
                            "idempotent leader vanished",
                        ))
                    });
                    if leader_fingerprint != fingerprint {
                        match outcome {
                            // The leader's request holds the key now.
                            Ok(_) => return Err(reused()),
                            // Nothing of the leader's was kept: this request may still lead.
                            Err(_) => continue,
                        }
                    }
                    return outcome.map(|body| {
                        metrics::counter!(m::IDEMPOTENT_REPLAYS_TOTAL).increment(1);
                        DecisionBody {
                            replayed: true,
                            decision: None,
                            ..body
                        }
                    });
                }
                // The leader was cancelled before answering: try again (perhaps as leader).
                Err(_) => continue,
            }
        }
    }

    /// Becomes the leader for `key`, or joins the request already leading it.
    fn join(&self, key: &str, fingerprint: &str) -> Result<Joined, AppError> {
        let mut map = self
            .in_flight
            .lock()
            .map_err(|_| AppError::new(ErrorCode::Internal, "idempotency table poisoned"))?;
        if let Some(entry) = map.get(key) {
            return Ok(Joined::Follower(
                entry.request_sha256.clone(),
                entry.done.clone(),
            ));
        }
        let (sender, receiver) = watch::channel(None);
        map.insert(
            key.to_string(),
            InFlight {
                request_sha256: fingerprint.to_string(),
                done: receiver,
            },
        );
        Ok(Joined::Leader(sender))
    }

    async fn lead(
        &self,
        request: &DecideRequest<'_>,
        key: &str,
        fingerprint: &str,
        started: Instant,
        stages: &mut Stages,
    ) -> Result<DecisionBody, AppError> {
        if let Some(stored) = self.store.decision_by_idempotency_key(key).await? {
            return self.stored_answer(stored, fingerprint, key);
        }
        stages.mark(Stage::Idempotency);
        match self
            .decide_new(request, fingerprint.to_string(), started, stages)
            .await?
        {
            Committed::Now(body) => Ok(body),
            // Another process (or a cancelled leader) committed the key first.
            Committed::KeyTakenElsewhere { what } => {
                match self.store.decision_by_idempotency_key(key).await? {
                    Some(stored) => self.stored_answer(stored, fingerprint, key),
                    None => Err(AppError::new(
                        ErrorCode::InvalidState,
                        format!("{what} already exists"),
                    )),
                }
            }
        }
    }

    fn stored_answer(
        &self,
        stored: StoredDecision,
        fingerprint: &str,
        key: &str,
    ) -> Result<DecisionBody, AppError> {
        if stored.record.request_sha256 != fingerprint {
            return Err(AppError::new(
                ErrorCode::IdempotencyKeyReused,
                format!("Idempotency-Key {key} was already used for a different request; use a new key for a new request"),
            )
            .with_details(serde_json::json!({"field": "Idempotency-Key"})));
        }
        metrics::counter!(m::IDEMPOTENT_REPLAYS_TOTAL).increment(1);
        Ok(DecisionBody {
            id: stored.record.id,
            json: stored.record.decision,
            replayed: true,
            decision: None,
        })
    }

    async fn decide_new(
        &self,
        request: &DecideRequest<'_>,
        fingerprint: String,
        started: Instant,
        stages: &mut Stages,
    ) -> Result<Committed, AppError> {
        let Some(body) = InputBody::parse(request.body).map_err(|e| malformed(&e))? else {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "the body must be a JSON object whose fields are the flow's inputs",
            ));
        };
        stages.mark(Stage::Parse);
        let active = self.strategies.resolve(request.strategy)?;
        let now = self.clock.now();
        let created_at_ms = now.timestamp_millis();
        let id = new_id(created_at_ms)?;
        let customer_id = body.str_field("customer_id").map(str::to_string);
        // On a ramp, the customer's stable bucket says which version decides.
        let rollout = active.rollout.clone();
        let on_candidate = rollout.as_ref().is_some_and(|r| {
            r.record.is_running()
                && !r.is_shadow()
                && crate::strategies::ramp::routes_to_candidate(
                    &r.record.id,
                    customer_id.as_deref().unwrap_or(&id),
                    r.percent(),
                )
        });
        let mut candidate_failed = None;
        stages.mark(Stage::Route);
        let (
            strategy,
            Decided {
                flow,
                language,
                options,
                decision,
                data,
            },
        ) = loop {
            let chosen = match (&rollout, on_candidate && candidate_failed.is_none()) {
                (Some(r), true) => &r.candidate,
                _ => &active.strategy,
            };
            match self.decide_with(chosen, request, &body, now, stages).await {
                Ok(decided) => break (chosen, decided),
                // A failing candidate never fails the customer: the live version decides,
                // and the failure counts against the candidate's guard rails.
                Err(error) if on_candidate && candidate_failed.is_none() => {
                    candidate_failed = Some(error);
                }
                Err(error) => return Err(error),
            }
        };
        let latency = started.elapsed();
        if let Some(r) = rollout
            .as_ref()
            .filter(|r| !r.is_shadow() && r.record.is_running())
        {
            use crate::strategies::ramp::Arm;
            let latency_us = latency.as_micros() as u64;
            if candidate_failed.is_some() {
                r.counters.observe(Arm::Candidate, None, latency_us);
            } else {
                let arm = if on_candidate {
                    Arm::Candidate
                } else {
                    Arm::Live
                };
                r.counters
                    .observe(arm, Some(decision.outcome.as_str()), latency_us);
            }
            if let Some(transition) = crate::strategies::due_transition(r, created_at_ms) {
                let strategies = self.strategies.clone();
                let r = r.clone();
                tokio::spawn(async move {
                    if let Err(error) = strategies
                        .apply_transition(&r, transition, created_at_ms)
                        .await
                    {
                        tracing::warn!(%error, rollout = %r.record.id, "cannot store the ramp's transition");
                    }
                });
            }
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let personal = |name: &str| {
                flow.schema
                    .fields
                    .iter()
                    .any(|(field, spec)| &**field == name && spec.personal)
            };
            tracing::debug!(decision_id = %id, input = %mask::masked_input(body.object(), personal), "decision input");
        }
        let record = new_record(
            request.flow,
            &decision,
            RecordContext {
                id: id.clone(),
                customer_id,
                idempotency_key: request.idempotency_key.clone(),
                request_sha256: fingerprint,
                language: language.clone(),
                created_at_ms,
                latency_us: latency.as_micros() as i64,
                // Stored as received: what the caller sent is what a replay re-reads.
                input: body.text(request.body),
            },
        )?;
        let json = record.decision.clone();
        stages.mark(Stage::Record);
        match self.store.append_decision(record).await {
            Ok(_) => {}
            Err(StoreError::Conflict { what }) => return Ok(Committed::KeyTakenElsewhere { what }),
            Err(other) => return Err(other.into()),
        }
        stages.mark(Stage::Commit);
        if let Some(r) = rollout
            .as_ref()
            .filter(|r| r.is_shadow() && r.record.is_running())
        {
            // After the record is durable, off the request's path: never delays the answer.
            self.shadow.submit(crate::shadow::ShadowJob {
                rollout: r.clone(),
                decision_id: id.clone(),
                flow: request.flow.to_string(),
                raw: body.object().clone(),
                options: options.clone(),
                data: data.offline_copy(),
                live: crate::shadow::comparable(&decision),
                live_version: active.version.clone(),
                created_at_ms,
            });
        }
        if let Some(referral) = &decision.referral {
            // The decision is durable already and is the record of the referral: its case is
            // stored behind the answer, not before it.
            let requested = decision.requested_amount;
            let facts = crate::cases::ReferralFacts::of(body.object(), &decision.reasons);
            self.cases
                .open_in_background(&id, referral, requested, facts, strategy, created_at_ms);
        }
        m::counter(
            m::DECISIONS_TOTAL,
            &[
                ("strategy", &active.name),
                ("flow", request.flow),
                ("outcome", decision.outcome.as_str()),
                ("arm", decision.arm.as_deref().unwrap_or_default()),
            ],
        )
        .increment(1);
        m::histogram(
            m::DECISION_SECONDS,
            &[("strategy", &active.name), ("flow", request.flow)],
        )
        .record(latency.as_secs_f64());
        tracing::debug!(decision_id = %id, flow = request.flow, outcome = decision.outcome.as_str(),
            latency_us = latency.as_micros() as u64, "decided");
        stages.mark(Stage::After);
        Ok(Committed::Now(DecisionBody {
            id,
            json,
            replayed: false,
            decision: Some(Arc::new(decision)),
        }))
    }

    /// Validates the input for one version and decides with it, fetching third-party data.
    async fn decide_with<'s>(
        &self,
        strategy: &'s credence_engine::CompiledStrategy,
        request: &DecideRequest<'_>,
        body: &InputBody<'_>,
        now: chrono::DateTime<chrono::Utc>,
        stages: &mut Stages,
    ) -> Result<Decided<'s>, AppError> {
        let flow = strategy.flow(request.flow)?;
        let language = match &request.language {
            Some(language) => language.clone(),
            None => strategy
                .languages()
                .first()
                .cloned()
                .unwrap_or_else(|| "en".into()),
        };
        let options = EvalOptions {
            as_of: now.date_naive(),
            language: language.clone(),
            full_trace: false,
        };
        let input = body.validate(strategy, request.flow)?;
        stages.mark(Stage::Validate);
        let (decision, data) = self
            .evaluate_online(strategy, request.flow, &input, &options)
            .await?;
        stages.mark(Stage::Decide);
        Ok(Decided {
            flow,
            language,
            options,
            decision,
            data,
        })
    }

    /// Evaluates, fetching each third-party answer the flow asks for (asynchronously: a slow
    /// provider holds this task, never a thread) and evaluating again with it. Returns the
    /// answers too: a shadow evaluation reuses them and buys nothing.
    async fn evaluate_online(
        &self,
        strategy: &credence_engine::CompiledStrategy,
        flow: &str,
        input: &credence_engine::ValidatedInput,
        options: &EvalOptions,
    ) -> Result<(credence_engine::Decision, credence_engine::data::DataRecord), AppError> {
        use credence_engine::data::{DataAnswer, DataRecord, Evaluation};
        let mut data = DataRecord::online();
        // Each round answers one or more data steps; a flow has far fewer than this.
        for _ in 0..64 {
            match strategy.evaluate(flow, input, options, &data)? {
                Evaluation::Decided(decision) => return Ok((*decision, data)),
                Evaluation::NeedsData(requests) => {
                    let mut fetches = Vec::with_capacity(requests.len());
                    for request in &requests {
                        let source = strategy.data_source(&request.source).ok_or_else(|| {
                            AppError::new(
                                ErrorCode::StrategyError,
                                format!("data source {} is not declared", request.source),
                            )
                        })?;
                        fetches.push(self.providers.fetch(source, &request.subject));
                    }
                    // Independent steps asked together are fetched concurrently.
                    let answers = futures_util::future::join_all(fetches).await;
                    for (request, fetched) in requests.into_iter().zip(answers) {
                        for call in &fetched.calls {
                            m::counter(
                                m::PROVIDER_CALLS_TOTAL,
                                &[("provider", &call.provider), ("status", call.status)],
                            )
                            .increment(1);
                        }
                        if fetched.cache_hit {
                            m::counter(
                                m::PROVIDER_CACHE_HITS_TOTAL,
                                &[("source", &request.source)],
                            )
                            .increment(1);
                        }
                        let meta =
                            crate::providers::fetch_meta(&fetched, request.consent.as_deref())
                                .map_err(|e| {
                                    AppError::new(
                                        ErrorCode::Internal,
                                        format!(
                                            "cannot record the fetch of {}: {e}",
                                            request.source
                                        ),
                                    )
                                })?;
                        data.insert(
                            request.step,
                            DataAnswer {
                                ok: fetched.ok,
                                values: fetched.values,
                                reason: fetched.reason,
                                meta: Some(meta),
                            },
                        );
                    }
                }
            }
        }
        Err(AppError::new(
            ErrorCode::StrategyError,
            "the flow kept asking for data; check its data steps",
        ))
    }

    /// A stored decision with its input and log position.
    pub async fn get(&self, id: &str) -> Result<serde_json::Value, AppError> {
        let stored = self
            .store
            .decision(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("there is no decision {id}")))?;
        let parse = |text: &str, what: &str| {
            serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
                AppError::new(
                    ErrorCode::Internal,
                    format!("stored {what} of {id} is unreadable: {e}"),
                )
            })
        };
        let mut body = parse(&stored.record.decision, "decision")?;
        let input = parse(&stored.record.input, "input")?;
        if let Some(map) = body.as_object_mut() {
            map.insert("input".into(), input);
            map.insert(
                "recorded".into(),
                serde_json::json!({
                    "at": chrono::DateTime::from_timestamp_millis(stored.record.created_at_ms)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    "latency_us": stored.record.latency_us,
                    "language": stored.record.language,
                    "idempotency_key": stored.record.idempotency_key,
                    "seq": stored.seq,
                    "hash": stored.hash,
                }),
            );
            if let Some(case) = self.cases.for_decision(id).await? {
                map.insert(
                    "review".into(),
                    serde_json::json!({
                        "case_id": case.case.id,
                        "status": case.status,
                        "queue": case.case.queue,
                        "pending_confirmation": case.case.pending,
                        "final_decision": case.case.decision,
                        "confirmed_by": case.case.confirmed_by,
                    }),
                );
            }
        }
        Ok(body)
    }

    /// A page of history, newest first.
    pub async fn list(&self, mut query: DecisionQuery) -> Result<DecisionPage, AppError> {
        let limit = query.limit;
        query.limit = limit + 1;
        let mut items = self.store.list_decisions(&query).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|d| d.seq.to_string())
        } else {
            None
        };
        Ok(DecisionPage { items, next_cursor })
    }

    /// Re-runs a stored decision's input, as of its recorded date, with its own version or
    /// another one.
    pub async fn replay(
        &self,
        id: &str,
        version: Option<String>,
    ) -> Result<ReplayResult, AppError> {
        let stored = self
            .store
            .decision(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("there is no decision {id}")))?;
        let record = stored.record;
        let version = version.unwrap_or_else(|| record.strategy_version.clone());
        let strategy = self.strategies.compiled(&version).await?;
        let raw: serde_json::Value =
            serde_json::from_str(&record.input).map_err(|e| malformed(&e))?;
        let as_of = chrono::NaiveDate::parse_from_str(&record.as_of, "%Y-%m-%d").map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("stored as_of {} is unreadable: {e}", record.as_of),
            )
        })?;
        let options = EvalOptions {
            as_of,
            language: record.language.clone(),
            full_trace: false,
        };
        let recorded = read_record(&record)?;
        let recorded_json = serde_json::to_value(&recorded).map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("cannot read the stored decision {id}: {e}"),
            )
        })?;
        // Third-party data comes from the record, never from a provider.
        let data = credence_engine::data::DataRecord::from_record(&recorded);
        let input = strategy.validate_input(&record.flow, &raw)?;
        let decision = match strategy.evaluate(&record.flow, &input, &options, &data)? {
            credence_engine::data::Evaluation::Decided(decision) => decision,
            credence_engine::data::Evaluation::NeedsData(requests) => {
                let steps: Vec<&str> = requests.iter().map(|r| r.step.as_str()).collect();
                return Err(AppError::new(
                    ErrorCode::Internal,
                    format!("replay asked for data step {}", steps.join(", ")),
                ));
            }
        };
        let replayed = serde_json::to_value(&decision).map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("cannot serialise the replay: {e}"),
            )
        })?;
        Ok(ReplayResult {
            recorded_id: record.id,
            recorded_strategy_version: record.strategy_version,
            replayed_strategy_version: version,
            diff: replay::diff(&recorded_json, &replayed),
            decision: replayed,
        })
    }
}
