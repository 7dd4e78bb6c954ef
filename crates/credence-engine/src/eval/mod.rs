//! Evaluates a compiled flow on validated input: runs the steps, assembles the outcome under the caps, records the trace.
//!
//! Evaluation is pure: no I/O, and time only through `EvalOptions::as_of`, which the caller
//! takes from its injected clock. The same input, strategy version and `as_of` give the same
//! decision, byte for byte once serialised.
//!
//! This module holds the run that step kinds evaluate in (its trace, contributions,
//! explainers, data requests); each step kind evaluates in its own folder
//! (`steps/<kind>/eval.rs`, behind `steps::StepKind`), `outcome` assembles the decision and
//! `cases` runs a package's embedded test cases.

mod cases;
mod outcome;

use crate::compile::{CompiledStrategy, Flow};
use crate::data::{DataRecord, DataRequest, DataUse, Evaluation};
use crate::decision::*;
use crate::error::EngineError;
use crate::schema::ValidatedInput;
use crate::steps::{Arm, DataStep, Experiment, ModelStep, Step};
use crate::value::value_decimal;
use chrono::NaiveDate;
use credence_expr::{Frame, Slot, Truth, Value, ValueRef};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The one source of time: the engine reads only the date it is handed, and everything above it
/// (the service, the command line) asks a `Clock`. The real one reads the system clock and lives
/// with the adapters (`credence_service::SystemClock`); tests and replays fix one.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> chrono::DateTime<chrono::Utc>;

    /// Today's date, in UTC.
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// A clock that always answers the same date, at midnight UTC (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub NaiveDate);

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    fn today(&self) -> NaiveDate {
        self.0
    }
}

/// How to evaluate: the date, the language of reason texts, and how much trace to keep.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The date the decision is made as of (from the caller's clock).
    pub as_of: NaiveDate,
    /// The language of reason texts.
    pub language: String,
    /// Keep every intermediate value in the trace (and the input).
    pub full_trace: bool,
}

impl EvalOptions {
    /// Options for deciding as of a date, in English, with a compact trace.
    pub fn new(as_of: NaiveDate) -> Self {
        EvalOptions {
            as_of,
            language: "en".into(),
            full_trace: false,
        }
    }
}

impl Default for EvalOptions {
    /// A fixed date (2000-01-01), never the wall clock: callers that want "today" pass a clock's date.
    fn default() -> Self {
        EvalOptions::new(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default())
    }
}

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::new());
}

pub(crate) struct Contribution<'s> {
    pub(crate) outcome: Outcome,
    pub(crate) reason: Option<Arc<str>>,
    /// A scorecard whose ranked reasons follow `reason`.
    pub(crate) explain_with: Option<&'s str>,
}

/// Reasons a step can give when a rule names it in `explain_with`.
pub(crate) enum Explainer<'s> {
    /// A scorecard's reasons, ranked when it was evaluated.
    Ranked(Vec<Arc<str>>),
    /// A model step and the features it scored: TreeSHAP runs only if asked.
    Model {
        step: &'s ModelStep,
        features: Vec<f64>,
    },
}

impl Explainer<'_> {
    /// Reason codes, most adverse first.
    pub(crate) fn ranked_reasons(&self) -> Vec<Arc<str>> {
        match self {
            Explainer::Ranked(codes) => codes.clone(),
            Explainer::Model { step, features } => {
                let contributions = step
                    .model
                    .contributions(features, step.model.default_tree_limit());
                // Sum the features pushing towards bad, per reason code; rank by that sum.
                let mut by_code: Vec<(Arc<str>, f64, usize)> = Vec::new();
                for (position, (reason, value)) in
                    step.reasons.iter().zip(&contributions).enumerate()
                {
                    let Some(code) = reason.as_ref().filter(|_| *value > 0.0) else {
                        continue;
                    };
                    match by_code.iter_mut().find(|(c, _, _)| c == code) {
                        Some(entry) => entry.1 += value,
                        None => by_code.push((code.clone(), *value, position)),
                    }
                }
                by_code.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
                by_code.into_iter().map(|(code, _, _)| code).collect()
            }
        }
    }
}

/// The state of one run through a flow: what step kinds evaluate in.
pub(crate) struct Run<'s> {
    pub(crate) strategy: &'s CompiledStrategy,
    pub(crate) flow: &'s Flow,
    pub(crate) full: bool,
    pub(crate) steps: Vec<TraceStep>,
    pub(crate) contributions: Vec<Contribution<'s>>,
    pub(crate) flags: Vec<Arc<str>>,
    pub(crate) actions: Vec<AccountAction>,
    /// What can explain a rule's outcome, by step id: ranked scorecard reasons, or a model's
    /// inputs, explained (by TreeSHAP) only if a decline or referral asks for it.
    pub(crate) explainers: Vec<(&'s str, Explainer<'s>)>,
    pub(crate) arm: Option<Arc<str>>,
    /// In a shadow run: the experiment and the arm to take instead of the hashed one.
    pub(crate) forced_arm: Option<(&'s str, &'s Arm)>,
    /// The answers of data steps this run may use.
    pub(crate) data: &'s DataRecord,
    /// Set when a data step needs an answer the record lacks (online): the run unwinds and
    /// `run` returns the requests instead of a decision.
    pub(crate) needs: Vec<DataRequest>,
    pub(crate) data_uses: Vec<DataUse>,
    pub(crate) shadow_arms: Vec<(&'s Experiment, &'s Arm)>,
}

impl CompiledStrategy {
    /// The strategy's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its display label, if the package gives one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
    /// Its description, if the package gives one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The currency its amounts are in.
    pub fn currency(&self) -> &str {
        &self.currency
    }
    /// The content hash of the package: the strategy's version.
    /// The hard caps every offer passes through.
    pub fn caps(&self) -> &crate::compile::Caps {
        &self.caps
    }

    /// How referred cases are reviewed.
    pub fn review(&self) -> &crate::compile::ReviewSettings {
        &self.review
    }

    /// Every reason code the strategy declares.
    pub fn reason_codes(&self) -> impl Iterator<Item = &str> {
        self.reasons.keys().map(|code| &**code)
    }

    /// The codes a decline may give: every declared code but those the steps give only to
    /// refer or flag ("we need to review it" is no reason to decline). A reviewer's decline
    /// picks from these.
    pub fn decline_reason_codes(&self) -> impl Iterator<Item = &str> {
        self.reasons
            .keys()
            .filter(|code| !self.referral_only_reasons.contains(*code))
            .map(|code| &**code)
    }

    /// Whether the steps give `code` only to refer or flag.
    pub fn is_referral_only_reason(&self, code: &str) -> bool {
        self.referral_only_reasons.contains(code)
    }

    /// A declared data source, for the caller that fetches what evaluation asks for.
    pub fn data_source(&self, name: &str) -> Option<&Arc<crate::data::DataSource>> {
        self.data_sources.get(name)
    }

    /// Every data source the package declares, by name.
    pub fn data_sources(&self) -> impl Iterator<Item = &Arc<crate::data::DataSource>> {
        self.data_sources.values()
    }

    /// The version: the SHA-256 of every file the package uses.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// The languages its reason texts are written in.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }
    /// The names of its flows.
    pub fn flow_names(&self) -> impl Iterator<Item = &str> {
        self.flows.keys().map(String::as_str)
    }

    /// A flow by name; unknown names are an error listing the known ones.
    pub fn flow(&self, name: &str) -> Result<&Flow, EngineError> {
        self.flows
            .get(name)
            .ok_or_else(|| EngineError::UnknownFlow {
                flow: name.to_string(),
                available: self.flows.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Validates raw JSON against a flow's schema.
    pub fn validate_input(
        &self,
        flow: &str,
        raw: &serde_json::Value,
    ) -> Result<ValidatedInput, EngineError> {
        let flow_spec = self.flow(flow)?;
        let mut input =
            flow_spec
                .schema
                .validate(raw)
                .map_err(|violations| EngineError::InvalidInput {
                    flow: flow.to_string(),
                    violations,
                })?;
        input.validated_for = Some((self.version.clone(), flow_spec.name.clone()));
        Ok(input)
    }

    /// [`CompiledStrategy::validate_input`] for an object given as its entries, in the order
    /// written, when it passes: `Ok(None)` when a key repeats or a field is refused, and
    /// `validate_input` on the parsed object then reports every violation. Saves building a
    /// map of the entries for the input that nearly every request is.
    pub fn validate_input_entries<'e, V: Into<crate::schema::RawInput<'e>>>(
        &self,
        flow: &str,
        entries: impl IntoIterator<Item = (&'e str, V)>,
    ) -> Result<Option<ValidatedInput>, EngineError> {
        let flow_spec = self.flow(flow)?;
        Ok(flow_spec.schema.validate_entries(entries).map(|mut input| {
            input.validated_for = Some((self.version.clone(), flow_spec.name.clone()));
            input
        }))
    }

    /// Validates a flow's input read field by field through `lookup` (None: absent), for
    /// callers whose input is not JSON text: only the fields the flow declares are asked for,
    /// and every violation is listed as by [`CompiledStrategy::validate_input`].
    pub fn validate_fields<'v>(
        &self,
        flow: &str,
        lookup: impl FnMut(&str) -> Option<std::borrow::Cow<'v, serde_json::Value>>,
    ) -> Result<ValidatedInput, EngineError> {
        let flow_spec = self.flow(flow)?;
        let (fields, violations) = flow_spec.schema.validate_declared(lookup);
        if !violations.is_empty() {
            return Err(EngineError::InvalidInput {
                flow: flow.to_string(),
                violations,
            });
        }
        Ok(ValidatedInput {
            fields,
            validated_for: Some((self.version.clone(), flow_spec.name.clone())),
        })
    }

    /// Validates and decides.
    pub fn decide_json(
        &self,
        flow: &str,
        raw: &serde_json::Value,
        options: &EvalOptions,
    ) -> Result<Decision, EngineError> {
        let input = self.validate_input(flow, raw)?;
        self.decide(flow, &input, options)
    }

    /// Decides on validated input, offline: a `data` step uses no answer and fails by its
    /// source's policy (the CLI, embedded cases without data).
    pub fn decide(
        &self,
        flow_name: &str,
        input: &ValidatedInput,
        options: &EvalOptions,
    ) -> Result<Decision, EngineError> {
        match self.evaluate(flow_name, input, options, &DataRecord::offline())? {
            Evaluation::Decided(decision) => Ok(*decision),
            Evaluation::NeedsData(requests) => Err(EngineError::Evaluation {
                flow: flow_name.to_string(),
                step: requests.first().map(|r| r.step.clone()).unwrap_or_default(),
                message: "an offline evaluation asked for data".into(),
            }),
        }
    }

    /// Evaluates with the answers in `data`: a decision, or (online) the data requests the
    /// record cannot answer — the first unanswered step plus the adjacent steps that may be
    /// fetched with it. Evaluate again once the answers are in the record.
    pub fn evaluate(
        &self,
        flow_name: &str,
        input: &ValidatedInput,
        options: &EvalOptions,
        data: &DataRecord,
    ) -> Result<Evaluation, EngineError> {
        let flow = self.flow(flow_name)?;
        let validated_here =
            input
                .validated_for
                .as_ref()
                .is_some_and(|(version, validated_flow)| {
                    *version == self.version && *validated_flow == flow.name
                });
        if !validated_here {
            return Err(EngineError::NotValidatedForFlow {
                flow: flow_name.to_string(),
            });
        }
        if !self.languages.iter().any(|l| l == &options.language) {
            return Err(EngineError::UnknownLanguage {
                language: options.language.clone(),
                available: self.languages.join(", "),
            });
        }
        let evaluation = FRAME.with(|frame| match frame.try_borrow_mut() {
            Ok(mut frame) => self.run(flow, input, options, None, &mut frame, data),
            // Re-entrant use on this thread (not expected): use a fresh frame.
            Err(_) => self.run(flow, input, options, None, &mut Frame::new(), data),
        })?;
        Ok(match evaluation {
            Evaluation::Decided(mut decision) => {
                if options.full_trace {
                    decision.trace.input = Some(input.to_json());
                }
                Evaluation::Decided(decision)
            }
            needs => needs,
        })
    }

    fn run<'s>(
        &'s self,
        flow: &'s Flow,
        input: &ValidatedInput,
        options: &EvalOptions,
        forced_arm: Option<(&'s str, &'s Arm)>,
        frame: &mut Frame,
        data: &'s DataRecord,
    ) -> Result<Evaluation, EngineError> {
        frame.reset(&self.names);
        for ((_, value), slot) in input.fields.iter().zip(&flow.input_slots) {
            frame.set(*slot, value.to_value());
        }
        frame.set(self.today, Value::date(options.as_of));
        let mut run = Run {
            strategy: self,
            flow,
            full: options.full_trace,
            steps: Vec::with_capacity(flow.trace_capacity),
            contributions: Vec::with_capacity(8),
            flags: Vec::new(),
            actions: Vec::new(),
            explainers: Vec::new(),
            arm: None,
            forced_arm,
            shadow_arms: Vec::new(),
            data,
            needs: Vec::new(),
            data_uses: Vec::new(),
        };
        if let Err(error) = run.steps(&flow.steps, frame) {
            return if run.needs.is_empty() {
                Err(error)
            } else {
                Ok(Evaluation::NeedsData(std::mem::take(&mut run.needs)))
            };
        }
        let as_of = credence_expr::functions::format_date(options.as_of);
        let mut decision = run.assemble(frame, options, as_of)?;
        if forced_arm.is_none() && !run.shadow_arms.is_empty() {
            let mut shadow_frame = Frame::new();
            // Shadow arms never fetch: they use what the champion's run was given.
            let offline = data.offline_copy();
            for (experiment, arm) in run.shadow_arms {
                let Evaluation::Decided(shadow) = self.run(
                    flow,
                    input,
                    options,
                    Some((&*experiment.id, arm)),
                    &mut shadow_frame,
                    &offline,
                )?
                else {
                    continue;
                };
                decision.shadow.push(ShadowDecision {
                    arm: arm.name.clone(),
                    outcome: shadow.outcome,
                    limit: shadow.limit,
                    apr: shadow.apr,
                    reason_codes: shadow.reasons.into_iter().map(|r| r.code).collect(),
                });
            }
        }
        Ok(Evaluation::Decided(Box::new(decision)))
    }

    /// The reason's text in a language, falling back to the first declared language.
    pub fn reason_text(&self, code: &str, language: &str) -> String {
        self.reasons
            .get(code)
            .and_then(|texts| {
                texts
                    .get(language)
                    .or_else(|| self.languages.first().and_then(|l| texts.get(l)))
            })
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }
}

/// A recorded data value as an expression value of its field's type.
pub(crate) fn data_value(
    kind: crate::data::DataFieldKind,
    json: &serde_json::Value,
) -> Option<Value> {
    use crate::data::DataFieldKind as K;
    use std::str::FromStr;
    match (kind, json) {
        (K::Number | K::Integer, serde_json::Value::Number(_)) => {
            crate::schema::json_decimal(json).map(Value::number)
        }
        (K::Number, serde_json::Value::String(s)) => Decimal::from_str(s).ok().map(Value::number),
        (K::String, serde_json::Value::String(s)) => Some(Value::string(s)),
        (K::Boolean, serde_json::Value::Bool(b)) => Some(Value::bool(*b)),
        (_, serde_json::Value::Null) => Some(Value::NULL),
        _ => None,
    }
}

/// A model score as a decimal for expressions, to 12 places (a binary-to-decimal conversion
/// of the full f64 costs more than the rest of a scorecard).
pub(crate) fn probability_decimal(x: f64) -> Decimal {
    if !x.is_finite() || x.abs() >= 1e15 {
        return Decimal::from_f64(x).unwrap_or_default();
    }
    Decimal::from_i128_with_scale((x * 1e12).round() as i128, 12).normalize()
}

/// The stable bucket, 0–9999, of a key under a salt: XXH64 (seed 0) of the bytes
/// `salt ":" key`, modulo 10,000. XXH64 is fast, well specified and available in every data
/// tool (Python `xxhash`, Spark, ClickHouse), so analysts can recompute arms from history.
pub fn experiment_bucket(salt: &str, key: &str) -> u32 {
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(key.as_bytes());
    (hasher.digest() % 10_000) as u32
}

impl<'s> Run<'s> {
    pub(crate) fn error(&self, step: &str, message: impl Into<String>) -> EngineError {
        EngineError::Evaluation {
            flow: self.flow.name.to_string(),
            step: step.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn record(
        &mut self,
        step: &Arc<str>,
        detail: StepDetail,
        values: impl FnOnce() -> BTreeMap<String, serde_json::Value>,
    ) {
        let values = self.full.then(values);
        self.steps.push(TraceStep {
            step: step.clone(),
            detail,
            values,
        });
    }

    pub(crate) fn contribute_from_object(&mut self, object: &Value) {
        let outcome = object
            .field("outcome")
            .and_then(|v| v.as_str().and_then(Outcome::parse));
        if let Some(outcome) = outcome {
            let reason = object
                .field("reason")
                .and_then(|v| v.as_str().map(Arc::from));
            self.contributions.push(Contribution {
                outcome,
                reason,
                explain_with: None,
            });
        }
    }

    /// Evaluates a condition: `true` holds; `false` and null (missing data) do not; anything
    /// else is a defect in the strategy.
    pub(crate) fn condition(
        &self,
        expr: &credence_expr::Expr,
        frame: &mut Frame,
        step: &str,
        what: impl Fn() -> String,
    ) -> Result<bool, EngineError> {
        let truth = expr
            .eval_truth(frame, &self.strategy.lists)
            .map_err(|e| self.error(step, format!("{}: {e}", what())))?;
        match truth {
            Truth::True => Ok(true),
            Truth::False | Truth::Null => Ok(false),
            Truth::Other(value) => Err(self.error(
                step,
                format!(
                    "{}: `when` must give true or false, got {}",
                    what(),
                    value.type_name()
                ),
            )),
        }
    }

    /// Publishes a table's or matrix's result: its outcome contribution, its slot, its trace.
    pub(crate) fn publish(
        &mut self,
        frame: &mut Frame,
        id: &Arc<str>,
        slot: Slot,
        value: Value,
        detail: StepDetail,
    ) {
        self.contribute_from_object(&value);
        let json = self.full.then(|| value.to_json());
        frame.set(slot, value);
        self.record(id, detail, || {
            BTreeMap::from([(id.to_string(), json.unwrap_or_default())])
        });
    }

    pub(crate) fn steps(
        &mut self,
        steps: &'s [Step],
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        for (i, step) in steps.iter().enumerate() {
            if let Err(error) = self.step(step, frame) {
                if matches!(step, Step::Data(_)) && !self.needs.is_empty() {
                    // Ask for the following data steps' answers in the same round.
                    for next in &steps[i + 1..] {
                        match next {
                            Step::Data(data) if data.fetch_with_previous => {
                                if let Some(request) = self.pending_request(data, frame) {
                                    self.needs.push(request);
                                }
                            }
                            _ => break,
                        }
                    }
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// The request a data step would make now, if it is active, has a subject and has no
    /// answer in an online record; `None` otherwise (it is then decided when the step runs).
    pub(crate) fn pending_request(
        &self,
        step: &DataStep,
        frame: &mut Frame,
    ) -> Option<DataRequest> {
        let lists = &self.strategy.lists;
        if !self.data.is_online() || self.data.get(&step.id).is_some() {
            return None;
        }
        if let Some(when) = &step.when {
            if !matches!(
                when.eval(frame, lists).as_ref().map(Value::kind),
                Ok(ValueRef::Bool(true))
            ) {
                return None;
            }
        }
        let subject = match step.subject.eval(frame, lists).ok()?.kind() {
            ValueRef::String(s) if !s.is_empty() => s.to_string(),
            ValueRef::Number(n) => n.normalize().to_string(),
            _ => return None,
        };
        Some(DataRequest {
            step: step.id.to_string(),
            source: step.source.name.to_string(),
            subject,
            consent: self.consent(step, frame),
        })
    }

    pub(crate) fn consent(&self, step: &DataStep, frame: &mut Frame) -> Option<String> {
        let consent = step
            .consent
            .as_ref()?
            .eval(frame, &self.strategy.lists)
            .ok()?;
        consent.as_str().map(str::to_string)
    }
}
