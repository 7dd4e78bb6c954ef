//! Compiles a package source into an immutable `CompiledStrategy`: parse, check every name and cell, index tables, hash.
//!
//! Compilation collects every problem it can find (with file and step path) instead of
//! stopping at the first, so an analyst fixes a package in one round.

use crate::cases::{Expectation, TestCase};
use crate::data::{
    DataAnswer, DataField, DataFieldKind, DataRecord, DataSource, FailurePolicy, Provider,
};
use crate::decision::Outcome;
use crate::error::{CompileProblem, EngineError};
use crate::format::*;
use crate::limits::{check_yaml_nodes, Limits, YamlRefusal};
use crate::matrix::{Axis, Matrix};
use crate::schema::{FieldSpec, InputSchema, RESERVED_NAMES};
use crate::scorecard::{Bin, BinTest, Calibration, Characteristic, Scorecard};
use crate::source::PackageSource;
use crate::table::{DecisionTable, TableDefinition};
use crate::value::{Constant, ValueSource};
use chrono::NaiveDate;
use credence_expr::{Expr, ExprCompiler, Interval, NameTable, NamedLists, Slot};
use credence_model::Model;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The manifest file every package has at its root.
pub const MANIFEST: &str = "strategy.yaml";

/// Hard caps on every offer.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub apr_max: Option<Decimal>,
    pub limit_max: Option<Decimal>,
    pub limit_min: Option<Decimal>,
    pub term_months_max: Option<u32>,
    pub below_limit_min_reason: Option<Arc<str>>,
}

/// How referred cases are reviewed (the manifest's `review` section, with defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSettings {
    /// Queue name → SLA in minutes.
    pub queues: BTreeMap<String, u32>,
    pub default_sla_minutes: u32,
    pub claim_minutes: u32,
    /// Approvals and counter-offers with a limit above this need a second reviewer.
    pub four_eyes_above: Option<Decimal>,
    /// The lowest APR a reviewer may set (the highest is `caps.apr_max`).
    pub apr_min: Option<Decimal>,
}

/// A compiled strategy: immutable, `Send + Sync`, identified by the hash of its content.
#[derive(Debug)]
pub struct CompiledStrategy {
    pub(crate) name: Arc<str>,
    pub(crate) label: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) currency: String,
    pub(crate) languages: Vec<String>,
    pub(crate) max_reasons: usize,
    pub(crate) caps: Caps,
    pub(crate) review: ReviewSettings,
    pub(crate) reasons: BTreeMap<Arc<str>, BTreeMap<String, String>>,
    pub(crate) lists: NamedLists,
    pub(crate) flows: BTreeMap<String, Flow>,
    pub(crate) cases: Vec<TestCase>,
    pub(crate) version: Arc<str>,
    /// Every name the strategy's expressions and steps use, by slot.
    pub(crate) names: NameTable,
    pub(crate) today: Slot,
    pub(crate) data_sources: BTreeMap<String, Arc<DataSource>>,
}

#[derive(Debug)]
pub struct Flow {
    pub name: Arc<str>,
    /// The slot of each input field, in schema order.
    pub input_slots: Vec<Slot>,
    pub description: Option<String>,
    pub schema: InputSchema,
    pub steps: Vec<Step>,
    pub outcome: OutcomeSpec,
    /// Every step of the flow, nested ones included: the most a trace can hold, reserved once
    /// per decision instead of grown.
    pub trace_capacity: usize,
}

/// Steps in `steps` and in every branch case and experiment arm below them.
fn count_steps(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|step| {
            1 + match step {
                Step::Branch { cases, .. } => cases.iter().map(|c| count_steps(&c.steps)).sum(),
                Step::Experiment(experiment) => {
                    experiment.arms.iter().map(|a| count_steps(&a.steps)).sum()
                }
                _ => 0,
            }
        })
        .sum()
}

#[derive(Debug)]
pub enum Step {
    Features {
        id: Arc<str>,
        /// Name, slot and expression of each feature, in dependency order.
        order: Vec<(String, Slot, Expr)>,
    },
    RuleSet {
        id: Arc<str>,
        slot: Slot,
        stop_on_first_decline: bool,
        rules: Vec<Rule>,
    },
    Table(DecisionTable),
    Matrix(Matrix),
    Scorecard(Scorecard),
    Model(ModelStep),
    Branch {
        id: Arc<str>,
        slot: Slot,
        cases: Vec<BranchCase>,
    },
    Experiment(Experiment),
    Data(DataStep),
}

/// A `data` step: a source's answer for the subject, when `when` holds.
#[derive(Debug)]
pub struct DataStep {
    pub id: Arc<str>,
    pub slot: Slot,
    pub source: Arc<DataSource>,
    pub when: Option<Expr>,
    pub subject: Expr,
    pub consent: Option<Expr>,
    /// True when this step directly follows other data steps and reads none of their answers:
    /// online, its request is then made together with theirs (the calls run concurrently).
    pub fetch_with_previous: bool,
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Features { id, .. } | Step::RuleSet { id, .. } | Step::Branch { id, .. } => id,
            Step::Table(t) => &t.id,
            Step::Matrix(m) => &m.id,
            Step::Scorecard(s) => &s.id,
            Step::Model(m) => &m.id,
            Step::Experiment(e) => &e.id,
            Step::Data(d) => &d.id,
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub when: Expr,
    pub outcome: RawRuleOutcome,
    pub reason: Arc<str>,
    /// The scorecard whose ranked reasons explain this rule's outcome.
    pub explain_with: Option<String>,
    pub actions: Vec<crate::decision::AccountAction>,
}

#[derive(Debug)]
pub struct ModelStep {
    pub id: Arc<str>,
    pub slot: Slot,
    pub model: Arc<Model>,
    /// One expression per model feature, in the model's feature order.
    pub inputs: Vec<Expr>,
    /// The reason code of each model feature, if it has one.
    pub reasons: Vec<Option<Arc<str>>>,
    /// The model's name, version, SHA-256, format and objective, as every trace names them
    /// (shared, not copied per decision).
    pub identity: ModelIdentity,
}

#[derive(Debug)]
pub struct ModelIdentity {
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub sha256: Arc<str>,
    pub format: Arc<str>,
    pub objective: Arc<str>,
}

#[derive(Debug)]
pub struct BranchCase {
    pub name: Arc<str>,
    pub when: Option<Expr>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Experiment {
    pub id: Arc<str>,
    pub slot: Slot,
    pub key: Expr,
    pub salt: String,
    pub arms: Vec<Arm>,
    pub shadow: Vec<Arm>,
    /// Bucket upper bounds (exclusive) out of 10,000, one per arm.
    pub bucket_bounds: Vec<u32>,
}

#[derive(Debug)]
pub struct Arm {
    pub name: Arc<str>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct OutcomeSpec {
    pub default: Outcome,
    pub limit: Option<Expr>,
    pub apr: Option<Expr>,
    pub term_months: Option<Expr>,
    pub requested_amount: Option<Expr>,
    pub refer_queue: Option<ValueSource>,
    pub refer_priority: Option<Expr>,
    pub adverse: Vec<AdverseSpec>,
}

/// When an approval worsens the customer's terms, and the reasons it then gives.
#[derive(Debug)]
pub struct AdverseSpec {
    pub when: Expr,
    pub reason: Arc<str>,
    pub explain_with: Option<String>,
}

/// Compiles a package under the default [`Limits`]. Every problem found is returned together.
pub fn compile(source: &PackageSource) -> Result<CompiledStrategy, EngineError> {
    compile_with_limits(source, &Limits::default())
}

/// Compiles a package, refusing whatever goes over `limits` (bytes, YAML nodes, table rows,
/// expression and flow steps) before anything is evaluated. Every problem found is returned
/// together.
pub fn compile_with_limits(
    source: &PackageSource,
    limits: &Limits,
) -> Result<CompiledStrategy, EngineError> {
    let mut used_files = BTreeSet::new();
    let mut problems = Vec::new();
    let max_text = limits.max_text_file_bytes;
    let manifest_text = match read_text(source, MANIFEST, &mut used_files, max_text) {
        Ok(text) => text,
        Err(problem) => return Err(EngineError::Compile(vec![problem])),
    };
    let manifest: RawManifest = match parse_yaml(MANIFEST, manifest_text, limits) {
        Ok(m) => m,
        Err(problem) => return Err(EngineError::Compile(vec![problem])),
    };

    // Manifest-level parts: reason texts, caps, lists and models.
    let review: ReviewSettings;
    let (caps, lists, models) = {
        let mut problem =
            |location: String, message: String| problems.push(CompileProblem { location, message });

        // Reasons: every code needs text in every declared language.
        if manifest.languages.is_empty() {
            problem(
                format!("{MANIFEST}: languages"),
                "declare at least one language, e.g. [en]".into(),
            );
        }
        for (code, texts) in &manifest.reasons {
            for language in &manifest.languages {
                if texts.get(language).is_none_or(|t| t.trim().is_empty()) {
                    problem(
                    format!("{MANIFEST}: reasons.{code}"),
                    format!("no text in language \"{language}\"; every reason needs one per declared language"),
                );
                }
            }
        }

        let caps = compile_caps(&manifest.caps, &manifest.reasons, &mut problem);
        review = compile_review(&manifest.review, &mut problem);

        // Lists.
        let mut lists = NamedLists::new();
        for (name, path) in &manifest.lists {
            match read_text(source, path, &mut used_files, max_text) {
                Ok(text) => lists.insert(
                    name,
                    text.lines().filter(|l| !l.trim_start().starts_with('#')),
                ),
                Err(p) => problem(format!("{MANIFEST}: lists.{name}"), p.to_string()),
            }
        }

        // Models.
        let mut models = HashMap::new();
        for (name, path) in &manifest.models {
            match source.bytes(path) {
                Some(bytes) => {
                    used_files.insert(path.clone());
                    match Model::load(path, bytes) {
                        Ok(model) => {
                            models.insert(name.clone(), Arc::new(model));
                        }
                        Err(e) => problem(format!("{MANIFEST}: models.{name}"), e.to_string()),
                    }
                }
                None => problem(
                    format!("{MANIFEST}: models.{name}"),
                    format!("file {path} is not in the package"),
                ),
            }
        }
        (caps, lists, models)
    };
    let data_sources = compile_data_sources(&manifest, &mut problems);

    let mut flows = BTreeMap::new();
    let mut flow_files = BTreeSet::new();
    let (names, today) = {
        let mut compiler = Compiler {
            exprs: ExprCompiler::with_limits(&lists, limits.expression),
            limits,
            flow_steps: 0,
            reasons: &manifest.reasons,
            models: &models,
            data_sources: &data_sources,
            source,
            problems: &mut problems,
            file: String::new(),
            step_ids: HashSet::new(),
            explainer_ids: HashSet::new(),
            used_files: &mut flow_files,
        };
        if manifest.flows.is_empty() {
            compiler.problem(
                format!("{MANIFEST}: flows"),
                "declare at least one flow, e.g. application: flows/application.yaml".into(),
            );
        }
        for (flow_name, path) in &manifest.flows {
            let text = match read_text(source, path, compiler.used_files, max_text) {
                Ok(t) => t,
                Err(p) => {
                    compiler.problems.push(CompileProblem {
                        location: format!("{MANIFEST}: flows.{flow_name}"),
                        message: p.message,
                    });
                    continue;
                }
            };
            let raw: RawFlow = match parse_yaml(path, text, limits) {
                Ok(f) => f,
                Err(problem) => {
                    compiler.problems.push(problem);
                    continue;
                }
            };
            compiler.file = path.clone();
            compiler.step_ids.clear();
            compiler.explainer_ids.clear();
            if let Some(flow) = compiler.flow(flow_name, raw) {
                flows.insert(flow_name.clone(), flow);
            }
        }
        let today = compiler.exprs.slot("today");
        (compiler.exprs.names(), today)
    };

    used_files.extend(flow_files);

    // Embedded test cases.
    let mut cases = Vec::new();
    for path in &manifest.tests {
        let text = match read_text(source, path, &mut used_files, max_text) {
            Ok(t) => t,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let raw: Vec<RawTestCase> = match parse_yaml(path, text, limits) {
            Ok(c) => c,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        compile_cases(
            path,
            raw,
            &flows,
            &manifest.reasons,
            &mut cases,
            &mut problems,
        );
    }

    if !problems.is_empty() {
        return Err(EngineError::Compile(problems));
    }

    let mut hasher = Sha256::new();
    for path in &used_files {
        let bytes = source.bytes(path).unwrap_or_default();
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let version = hex::encode(hasher.finalize());

    Ok(CompiledStrategy {
        name: manifest.name.into(),
        label: manifest.label,
        description: manifest.description,
        currency: manifest.currency,
        languages: manifest.languages,
        max_reasons: manifest.max_reasons.max(1),
        caps,
        review,
        reasons: manifest
            .reasons
            .into_iter()
            .map(|(code, texts)| (Arc::from(code), texts))
            .collect(),
        lists,
        flows,
        cases,
        version: version.into(),
        names,
        today,
        data_sources,
    })
}

/// Data sources: providers with names unique across sources (each has its own circuit
/// breaker), sane timeouts, fields with pointers and well-typed defaults, a failure policy
/// with a known reason code.
fn compile_data_sources(
    manifest: &RawManifest,
    problems: &mut Vec<CompileProblem>,
) -> BTreeMap<String, Arc<DataSource>> {
    let mut problem =
        |location: String, message: String| problems.push(CompileProblem { location, message });
    let mut provider_names = HashSet::new();
    let mut sources = BTreeMap::new();
    for (name, raw) in &manifest.data_sources {
        let at = |field: &str| format!("{MANIFEST}: data_sources.{name}.{field}");
        let before = provider_names.len();
        if raw.providers.is_empty() {
            problem(
                at("providers"),
                "list at least one provider (a waterfall is tried in order)".into(),
            );
        }
        let mut providers = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let path = at(&format!("providers[{i}] ({})", p.name));
            if !provider_names.insert(p.name.clone()) {
                problem(
                    path.clone(),
                    format!(
                        "provider name {} is used twice; each provider has its own circuit breaker",
                        p.name
                    ),
                );
            }
            if !(1..=60_000).contains(&p.timeout_ms) {
                problem(
                    path.clone(),
                    format!("timeout_ms {} is outside 1–60000", p.timeout_ms),
                );
            }
            if p.retries > 5 {
                problem(path.clone(), "retries: at most 5".into());
            }
            if !p.url.contains("{subject}") {
                problem(path.clone(), "the url must contain {subject}".into());
            }
            let secret_free = |text: &str| {
                !text.to_ascii_lowercase().contains("bearer ") || text.contains("{secret:")
            };
            for (header, value) in &p.headers {
                if !secret_free(value) {
                    problem(path.clone(), format!("header {header} holds a credential; write {{secret:NAME}} and set NAME in the environment or the secrets file"));
                }
            }
            let cost = p.cost.as_ref().and_then(|c| {
                let parsed = decimal_setting(c);
                if parsed.is_none() {
                    problem(path.clone(), format!("cost {} is not a number", c.0));
                }
                parsed
            });
            providers.push(Provider {
                name: p.name.clone(),
                url: p.url.clone(),
                headers: p
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                timeout_ms: p.timeout_ms,
                retries: p.retries,
                cost,
            });
        }
        let _ = before;
        if raw.fields.is_empty() {
            problem(at("fields"), "map at least one response field".into());
        }
        let mut fields = Vec::new();
        for (field, f) in &raw.fields {
            let path = at(&format!("fields.{field}"));
            if !is_identifier(field) {
                problem(
                    path.clone(),
                    "field names are letters, digits and _ and start with a letter".into(),
                );
            }
            if !f.pointer.is_empty() && !f.pointer.starts_with('/') {
                problem(
                    path.clone(),
                    format!(
                        "pointer {:?} must start with / (RFC 6901), e.g. /report/inquiries_12m",
                        f.pointer
                    ),
                );
            }
            let kind = match f.kind {
                RawDataFieldType::Number => DataFieldKind::Number,
                RawDataFieldType::Integer => DataFieldKind::Integer,
                RawDataFieldType::String => DataFieldKind::String,
                RawDataFieldType::Boolean => DataFieldKind::Boolean,
            };
            let default = match &f.default {
                None => None,
                // `default: null`: an absent field is simply missing, not a failure.
                Some(serde_json::Value::Null) => Some(serde_json::Value::Null),
                Some(value) => match crate::data::map_response(
                    &[DataField {
                        name: field.clone(),
                        pointer: String::new(),
                        kind,
                        default: None,
                    }],
                    value,
                ) {
                    Ok(mut mapped) => mapped.remove(field),
                    Err(_) => {
                        problem(
                            path.clone(),
                            format!("default {value} is not {}", crate::data::kind_name(kind)),
                        );
                        None
                    }
                },
            };
            fields.push(DataField {
                name: field.clone(),
                pointer: f.pointer.clone(),
                kind,
                default,
            });
        }
        let reason = |problem: &mut dyn FnMut(String, String)| -> Option<Arc<str>> {
            match &raw.on_failure.reason {
                Some(code) if manifest.reasons.contains_key(code) => Some(code.as_str().into()),
                Some(code) => {
                    problem(
                        at("on_failure.reason"),
                        format!("unknown reason code {code}; declare it under reasons"),
                    );
                    None
                }
                None => {
                    problem(
                        at("on_failure.reason"),
                        "a refer or decline policy needs a reason code".into(),
                    );
                    None
                }
            }
        };
        let on_failure = match raw.on_failure.outcome.as_str() {
            "refer" => reason(&mut problem).map(FailurePolicy::Refer),
            "decline" => reason(&mut problem).map(FailurePolicy::Decline),
            "continue" => Some(FailurePolicy::Continue),
            other => {
                problem(
                    at("on_failure.outcome"),
                    format!("must be refer, decline or continue, got {other}"),
                );
                None
            }
        };
        if let Some(on_failure) = on_failure {
            sources.insert(
                name.clone(),
                Arc::new(DataSource {
                    name: name.as_str().into(),
                    subject_field: raw.subject.as_str().into(),
                    consent_field: raw.consent.as_deref().map(Arc::from),
                    providers,
                    fields,
                    cache_ttl_seconds: raw.cache_ttl_seconds,
                    breaker_failures: raw.circuit_breaker.failures.max(1),
                    breaker_open_seconds: raw.circuit_breaker.open_seconds,
                    on_failure,
                }),
            );
        }
    }
    sources
}

fn read_text<'s>(
    source: &'s PackageSource,
    path: &str,
    used: &mut BTreeSet<String>,
    max_bytes: usize,
) -> Result<&'s str, CompileProblem> {
    let bytes = source.bytes(path).ok_or_else(|| CompileProblem {
        location: path.to_string(),
        message: format!("file {path} is not in the package"),
    })?;
    used.insert(path.to_string());
    check_text_size(path, bytes, max_bytes).map_err(|message| CompileProblem {
        location: path.to_string(),
        message,
    })?;
    std::str::from_utf8(bytes).map_err(|e| CompileProblem {
        location: path.to_string(),
        message: format!("not UTF-8 text: {e}"),
    })
}

/// Holds an input field to the lengths expressions are bounded by: an undeclared maximum
/// becomes the limit, a declared one above it is refused.
fn bound_field(
    mut spec: FieldSpec,
    limits: &credence_expr::ExprLimits,
) -> Result<FieldSpec, String> {
    use crate::schema::FieldKind;
    let cap = |declared: Option<usize>, limit: u64, what: &str, setting: &str| {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        match declared {
            Some(n) if n > limit => Err(format!(
                "{what} {n} is above the limit of {limit} (raise limits.{setting} if it must be)"
            )),
            Some(n) => Ok(Some(n)),
            None => Ok(Some(limit)),
        }
    };
    spec.kind = match spec.kind {
        FieldKind::String {
            min_length,
            max_length,
        } => FieldKind::String {
            min_length,
            max_length: cap(
                max_length,
                limits.max_string_chars,
                "max_length",
                "string_chars",
            )?,
        },
        FieldKind::List {
            items,
            min_items,
            max_items,
        } => FieldKind::List {
            items: Box::new(bound_field(*items, limits)?),
            min_items,
            max_items: cap(max_items, limits.max_list_items, "max_items", "list_items")?,
        },
        other => other,
    };
    Ok(spec)
}

fn check_text_size(path: &str, bytes: &[u8], max_bytes: usize) -> Result<(), String> {
    if bytes.len() > max_bytes {
        return Err(format!(
            "{path} has {} bytes; a text file may have at most {max_bytes} (split it, or raise limits.text_file_bytes)",
            bytes.len()
        ));
    }
    Ok(())
}

/// Parses one YAML file of the package after counting its nodes, aliases expanded, against
/// the limit: a small file that expands to millions of nodes is refused before it is built.
fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<T, CompileProblem> {
    match check_yaml_nodes(text, limits.max_yaml_nodes) {
        Ok(()) => {}
        Err(YamlRefusal::Yaml(e)) => return Err(yaml_problem(file, &e)),
        Err(YamlRefusal::TooManyNodes(message)) => {
            return Err(CompileProblem {
                location: file.to_string(),
                message,
            })
        }
    }
    serde_yaml_ng::from_str(text).map_err(|e| yaml_problem(file, &e))
}

fn yaml_problem(file: &str, error: &serde_yaml_ng::Error) -> CompileProblem {
    let location = match error.location() {
        Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
        None => file.to_string(),
    };
    CompileProblem {
        location,
        message: error.to_string(),
    }
}

fn decimal_setting(n: &YamlNumber) -> Option<Decimal> {
    crate::schema::parse_decimal_text(&n.0)
}

fn compile_caps(
    raw: &RawCaps,
    reasons: &BTreeMap<String, BTreeMap<String, String>>,
    problem: &mut impl FnMut(String, String),
) -> Caps {
    let mut number = |n: &Option<YamlNumber>, field: &str| -> Option<Decimal> {
        let n = n.as_ref()?;
        match decimal_setting(n) {
            Some(d) if d >= Decimal::ZERO => Some(d),
            _ => {
                problem(
                    format!("{MANIFEST}: caps.{field}"),
                    format!("must be a non-negative number, got {}", n.0),
                );
                None
            }
        }
    };
    let caps = Caps {
        apr_max: number(&raw.apr_max, "apr_max"),
        limit_max: number(&raw.limit_max, "limit_max"),
        limit_min: number(&raw.limit_min, "limit_min"),
        term_months_max: raw.term_months_max,
        below_limit_min_reason: raw.below_limit_min_reason.as_deref().map(Arc::from),
    };
    if caps.limit_min.is_some() {
        match &caps.below_limit_min_reason {
            None => problem(
                format!("{MANIFEST}: caps.below_limit_min_reason"),
                "limit_min needs the reason code given when an offer falls below it".into(),
            ),
            Some(code) if !reasons.contains_key(&**code) => problem(
                format!("{MANIFEST}: caps.below_limit_min_reason"),
                format!("unknown reason code {code}; declare it under reasons"),
            ),
            _ => {}
        }
    }
    if let (Some(min), Some(max)) = (caps.limit_min, caps.limit_max) {
        if min > max {
            problem(
                format!("{MANIFEST}: caps"),
                format!("limit_min {min} is above limit_max {max}"),
            );
        }
    }
    caps
}

fn compile_review(
    raw: &crate::format::RawReview,
    problem: &mut impl FnMut(String, String),
) -> ReviewSettings {
    let mut positive = |value: Option<u32>, field: &str, default: u32| match value {
        Some(0) => {
            problem(
                format!("{MANIFEST}: review.{field}"),
                "must be at least 1 minute".into(),
            );
            default
        }
        Some(minutes) => minutes,
        None => default,
    };
    let default_sla_minutes = positive(raw.default_sla_minutes, "default_sla_minutes", 240);
    let claim_minutes = positive(raw.claim_minutes, "claim_minutes", 15);
    let mut queues = BTreeMap::new();
    for (name, queue) in &raw.queues {
        let minutes = positive(
            Some(queue.sla_minutes),
            &format!("queues.{name}.sla_minutes"),
            default_sla_minutes,
        );
        queues.insert(name.clone(), minutes);
    }
    let mut number =
        |n: &Option<YamlNumber>, field: &str| match n.as_ref().map(|n| (n, decimal_setting(n))) {
            None => None,
            Some((_, Some(value))) if !value.is_sign_negative() => Some(value),
            Some((n, _)) => {
                problem(
                    format!("{MANIFEST}: review.{field}"),
                    format!("must be a non-negative number, got {}", n.0),
                );
                None
            }
        };
    ReviewSettings {
        queues,
        default_sla_minutes,
        claim_minutes,
        four_eyes_above: number(&raw.four_eyes_above, "four_eyes_above"),
        apr_min: number(&raw.apr_min, "apr_min"),
    }
}

/// Names visible at a point of a flow.
#[derive(Clone, Default)]
struct Scope {
    names: BTreeSet<String>,
}

struct Compiler<'a> {
    exprs: ExprCompiler<'a>,
    limits: &'a Limits,
    /// The worst-case steps of the flow being compiled so far (see `Limits::max_flow_steps`).
    flow_steps: u64,
    reasons: &'a BTreeMap<String, BTreeMap<String, String>>,
    models: &'a HashMap<String, Arc<Model>>,
    data_sources: &'a BTreeMap<String, Arc<DataSource>>,
    source: &'a PackageSource,
    problems: &'a mut Vec<CompileProblem>,
    file: String,
    step_ids: HashSet<String>,
    /// Scorecard and model steps compiled so far in this flow that can explain a rule.
    explainer_ids: HashSet<String>,
    used_files: &'a mut BTreeSet<String>,
}

impl Compiler<'_> {
    fn problem(&mut self, location: String, message: String) {
        self.problems.push(CompileProblem { location, message });
    }

    fn at(&self, path: &str) -> String {
        format!("{}: {path}", self.file)
    }

    /// Compiles an expression and checks that every name it reads is in scope.
    fn expr(&mut self, text: &str, path: &str, scope: &Scope) -> Option<Expr> {
        match self.exprs.compile(text) {
            Ok(expr) => {
                self.flow_steps = self.flow_steps.saturating_add(expr.step_bound());
                self.check_references(expr.references(), path, scope);
                Some(expr)
            }
            Err(e) => {
                self.problem(self.at(path), e.to_string());
                None
            }
        }
    }

    fn check_references(&mut self, references: &[String], path: &str, scope: &Scope) {
        for name in references {
            if !scope.names.contains(name) {
                let known: Vec<&str> = scope.names.iter().map(String::as_str).collect();
                let hint = closest(name, &known)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.problem(
                    self.at(path),
                    format!("unknown name `{name}`{hint}; a name must be an input field, `today`, or defined by an earlier step"),
                );
            }
        }
    }

    fn reason(&mut self, code: &str, path: &str) {
        if !self.reasons.contains_key(code) {
            self.problem(
                self.at(path),
                format!("unknown reason code {code}; declare it under reasons in {MANIFEST}"),
            );
        }
    }

    fn flow(&mut self, name: &str, raw: RawFlow) -> Option<Flow> {
        let problems_before = self.problems.len();
        self.flow_steps = 0;
        let mut fields = Vec::new();
        let mut input_slots = Vec::new();
        let mut scope = Scope::default();
        for reserved in RESERVED_NAMES {
            scope.names.insert(reserved.to_string());
        }
        for (field_name, raw_field) in &raw.input {
            let path = format!("input.{field_name}");
            if RESERVED_NAMES.contains(&field_name.as_str()) {
                self.problem(
                    self.at(&path),
                    format!("`{field_name}` is supplied by the engine's clock; rename the field"),
                );
                continue;
            }
            if !is_identifier(field_name) {
                self.problem(
                    self.at(&path),
                    "field names are letters, digits and _ and start with a letter".into(),
                );
                continue;
            }
            let compiled = FieldSpec::compile(raw_field)
                .and_then(|spec| bound_field(spec, &self.limits.expression));
            match compiled {
                Ok(spec) => {
                    input_slots.push(self.exprs.slot(field_name));
                    fields.push((Arc::from(field_name.as_str()), spec));
                    scope.names.insert(field_name.clone());
                }
                Err(message) => self.problem(self.at(&path), message),
            }
        }
        let steps = self.steps(&raw.steps, "steps", &mut scope);
        let outcome = self.outcome(&raw.outcome, &scope);
        if self.flow_steps > self.limits.max_flow_steps {
            self.problem(
                format!("{}: flow {name}", self.file),
                format!(
                    "one decision may take up to {} expression steps, and a flow may take at most {} (simplify the largest expressions or tables, or raise limits.flow_steps)",
                    self.flow_steps, self.limits.max_flow_steps
                ),
            );
        }
        if self.problems.len() > problems_before {
            return None;
        }
        Some(Flow {
            name: name.into(),
            trace_capacity: count_steps(&steps),
            input_slots,
            description: raw.description,
            schema: InputSchema {
                fields,
                additional_fields: raw.additional_fields,
            },
            steps,
            outcome: outcome?,
        })
    }

    fn define(&mut self, name: &str, path: &str, scope: &mut Scope) {
        if !is_identifier(name) {
            self.problem(self.at(path), format!("`{name}` is not a valid name: use letters, digits and _, starting with a letter"));
        } else if scope.names.contains(name) {
            self.problem(
                self.at(path),
                format!("`{name}` is already defined earlier in the flow"),
            );
        } else {
            scope.names.insert(name.to_string());
        }
    }

    fn steps(&mut self, raw: &[RawStep], path: &str, scope: &mut Scope) -> Vec<Step> {
        let mut steps = Vec::with_capacity(raw.len());
        for (i, raw_step) in raw.iter().enumerate() {
            let step_path = format!("{path}[{i}]");
            if let Some(step) = self.step(raw_step, &step_path, scope) {
                steps.push(step);
            }
        }
        mark_concurrent_fetches(&mut steps);
        steps
    }

    fn step(&mut self, raw: &RawStep, path: &str, scope: &mut Scope) -> Option<Step> {
        let raw = &raw.0;
        let (kind, id) = match raw {
            RawStepKind::Features(s) => ("features", &s.id),
            RawStepKind::RuleSet(s) => ("rule_set", &s.id),
            RawStepKind::Table(s) => ("table", &s.id),
            RawStepKind::Matrix(s) => ("matrix", &s.id),
            RawStepKind::Scorecard(s) => ("scorecard", &s.id),
            RawStepKind::Model(s) => ("model", &s.id),
            RawStepKind::Branch(s) => ("branch", &s.id),
            RawStepKind::ChampionChallenger(s) => ("champion_challenger", &s.id),
            RawStepKind::Data(s) => ("data", &s.id),
        };
        let path = format!("{path} ({kind} {id})");
        if !self.step_ids.insert(id.clone()) {
            self.problem(
                self.at(&path),
                format!("step id {id} is used twice in this flow"),
            );
        }
        match raw {
            RawStepKind::Features(s) => self.features(s, &path, scope),
            RawStepKind::RuleSet(s) => self.rule_set(s, &path, scope),
            RawStepKind::Table(s) => self.table(s, &path, scope),
            RawStepKind::Matrix(s) => self.matrix(s, &path, scope),
            RawStepKind::Scorecard(s) => self.scorecard(s, &path, scope),
            RawStepKind::Model(s) => self.model(s, &path, scope),
            RawStepKind::Branch(s) => self.branch(s, &path, scope),
            RawStepKind::ChampionChallenger(s) => self.experiment(s, &path, scope),
            RawStepKind::Data(s) => self.data_step(s, &path, scope),
        }
    }

    /// A data step: its source must be declared, and the source's subject (and consent) fields
    /// must be in scope where the step runs.
    fn data_step(&mut self, raw: &RawDataStep, path: &str, scope: &mut Scope) -> Option<Step> {
        let Some(source) = self.data_sources.get(&raw.source).cloned() else {
            let known: Vec<&str> = self.data_sources.keys().map(String::as_str).collect();
            self.problem(
                self.at(&format!("{path}.source")),
                format!(
                    "no data source {}; declare it under data_sources in {MANIFEST} (declared: {})",
                    raw.source,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        let when = match &raw.when {
            Some(text) => Some(self.expr(text, &format!("{path}.when"), scope)?),
            None => None,
        };
        let subject = self.expr(
            &source.subject_field,
            &format!("{path} (subject of {})", raw.source),
            scope,
        )?;
        let consent = match &source.consent_field {
            Some(field) => {
                Some(self.expr(field, &format!("{path} (consent of {})", raw.source), scope)?)
            }
            None => None,
        };
        self.define(&raw.id, path, scope);
        Some(Step::Data(DataStep {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            source,
            when,
            subject,
            consent,
            fetch_with_previous: false,
        }))
    }

    /// Derived features: evaluated in dependency order; a cycle is an error naming its members.
    fn features(&mut self, raw: &RawFeatures, path: &str, scope: &mut Scope) -> Option<Step> {
        let own: BTreeSet<&str> = raw.values.keys().map(String::as_str).collect();
        let mut inner_scope = scope.clone();
        for name in &own {
            self.define(name, &format!("{path}.values.{name}"), &mut inner_scope);
        }
        let mut compiled: BTreeMap<&str, Expr> = BTreeMap::new();
        for (name, text) in &raw.values {
            if let Some(expr) = self.expr(text, &format!("{path}.values.{name}"), &inner_scope) {
                compiled.insert(name, expr);
            }
        }
        // Topological order (Kahn), ties broken by name for determinism.
        let mut order = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < compiled.len() {
            let ready: Vec<&str> = compiled
                .iter()
                .filter(|(name, _)| !done.contains(*name))
                .filter(|(_, expr)| {
                    expr.references()
                        .iter()
                        .all(|r| !own.contains(r.as_str()) || done.contains(r.as_str()))
                })
                .map(|(name, _)| *name)
                .collect();
            if ready.is_empty() {
                let cycle: Vec<&str> = compiled
                    .keys()
                    .filter(|n| !done.contains(*n))
                    .copied()
                    .collect();
                self.problem(
                    self.at(&format!("{path}.values")),
                    format!(
                        "these features depend on each other in a cycle: {}",
                        cycle.join(", ")
                    ),
                );
                return None;
            }
            for name in ready {
                done.insert(name);
                order.push((
                    name.to_string(),
                    self.exprs.slot(name),
                    compiled[name].clone(),
                ));
            }
        }
        *scope = inner_scope;
        (compiled.len() == raw.values.len()).then(|| Step::Features {
            id: raw.id.as_str().into(),
            order,
        })
    }

    fn rule_set(&mut self, raw: &RawRuleSet, path: &str, scope: &mut Scope) -> Option<Step> {
        let mut rules = Vec::new();
        let mut ids = HashSet::new();
        for (i, rule) in raw.rules.iter().enumerate() {
            let rule_path = format!("{path}.rules[{i}] ({})", rule.id);
            if !ids.insert(rule.id.as_str()) {
                self.problem(
                    self.at(&rule_path),
                    format!("rule id {} is used twice", rule.id),
                );
            }
            self.reason(&rule.reason, &rule_path);
            if let Some(scorecard) = &rule.explain_with {
                if !self.explainer_ids.contains(scorecard) {
                    self.problem(
                        self.at(&format!("{rule_path}.explain_with")),
                        format!("{scorecard} is not a scorecard step, or a model step with reasons, that runs before this rule"),
                    );
                }
            }
            if let Some(when) = self.expr(&rule.when, &format!("{rule_path}.when"), scope) {
                rules.push(Rule {
                    id: rule.id.as_str().into(),
                    when,
                    outcome: rule.outcome,
                    reason: rule.reason.as_str().into(),
                    explain_with: rule.explain_with.clone(),
                    actions: rule.actions.clone(),
                });
            }
        }
        self.define(&raw.id, path, scope);
        Some(Step::RuleSet {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            stop_on_first_decline: raw.stop_on_first_decline,
            rules,
        })
    }

    /// Checks outputs named `outcome` and `reason`: literal outcomes must be known and a
    /// literal decline or refer needs a literal reason code.
    fn check_outcome_cells(
        &mut self,
        outcome: Option<&ValueSource>,
        reason: Option<&ValueSource>,
        path: &str,
    ) {
        if let Some(ValueSource::Constant(c)) = outcome {
            let text = c.as_str().unwrap_or_default();
            match Outcome::parse(text) {
                None => self.problem(
                    self.at(path),
                    format!("outcome must be approve, refer or decline, got {c:?}"),
                ),
                Some(Outcome::Decline | Outcome::Refer) => {
                    match reason.and_then(ValueSource::constant) {
                        Some(Constant::String(code)) => self.reason(code, path),
                        Some(Constant::Null) | None
                            if reason.is_none_or(|r| r.constant().is_some()) =>
                        {
                            self.problem(
                                self.at(path),
                                format!("a {text} needs a reason code in the `reason` output"),
                            )
                        }
                        _ => {}
                    }
                }
                Some(Outcome::Approve) => {}
            }
        }
    }

    fn table(&mut self, raw: &RawTable, path: &str, scope: &mut Scope) -> Option<Step> {
        let before = self.problems.len();
        if raw.outputs.is_empty() {
            self.problem(self.at(path), "a table needs at least one output".into());
        }
        if raw.aggregation.is_some() && raw.hit_policy != HitPolicy::Collect {
            self.problem(
                self.at(path),
                "aggregation applies only with hit_policy: collect".into(),
            );
        }
        if raw.hit_policy == HitPolicy::Priority && raw.output_priority.is_empty() {
            self.problem(self.at(path), "hit_policy priority needs output_priority: the first output's values, highest first".into());
        }
        let inputs: Vec<Expr> = raw
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, text)| self.expr(text, &format!("{path}.inputs[{i}]"), scope))
            .collect();
        let mut rows: Vec<Vec<serde_yaml_ng::Value>> = raw.rows.clone();
        if let Some(file) = &raw.rows_file {
            self.used_files.insert(file.clone());
            let checked = self.source.bytes(file).map(|bytes| {
                check_text_size(file, bytes, self.limits.max_text_file_bytes).map(|()| bytes)
            });
            match checked {
                Some(Err(message)) => {
                    self.problem(self.at(&format!("{path}.rows_file")), message);
                }
                Some(Ok(bytes)) => {
                    match parse_rows_csv(
                        bytes,
                        raw.inputs.len() + raw.outputs.len(),
                        self.limits.max_table_rows.saturating_sub(rows.len()),
                    ) {
                        Ok(more) => rows.extend(more),
                        Err(e) => self.problem(
                            self.at(&format!("{path}.rows_file")),
                            format!("{file}: {e}"),
                        ),
                    }
                }
                None => self.problem(
                    self.at(&format!("{path}.rows_file")),
                    format!("file {file} is not in the package"),
                ),
            }
        }
        if rows.len() > self.limits.max_table_rows {
            self.problem(
                self.at(path),
                format!(
                    "has {} rows; a table may have at most {} (raise limits.table_rows if the table is right)",
                    rows.len(),
                    self.limits.max_table_rows
                ),
            );
            return None;
        }
        let width = raw.inputs.len() + raw.outputs.len();
        let mut cells = Vec::with_capacity(rows.len());
        let mut outputs = Vec::with_capacity(rows.len());
        let outcome_column = raw.outputs.iter().position(|o| o == "outcome");
        let reason_column = raw.outputs.iter().position(|o| o == "reason");
        for (r, row) in rows.iter().enumerate() {
            let row_path = format!("{path}.rows[{r}]");
            if row.len() != width {
                self.problem(
                    self.at(&row_path),
                    format!(
                        "has {} cells; the table has {} inputs and {} outputs",
                        row.len(),
                        raw.inputs.len(),
                        raw.outputs.len()
                    ),
                );
                continue;
            }
            let mut row_cells = Vec::with_capacity(raw.inputs.len());
            for (c, cell) in row[..raw.inputs.len()].iter().enumerate() {
                let text = match cell {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    serde_yaml_ng::Value::Bool(b) => b.to_string(),
                    serde_yaml_ng::Value::Null => "-".into(),
                    _ => {
                        self.problem(
                            self.at(&format!("{row_path}[{c}]")),
                            "an input cell is a unary test written as text".into(),
                        );
                        continue;
                    }
                };
                match self.exprs.compile_unary(&text) {
                    Ok(test) => {
                        self.flow_steps = self.flow_steps.saturating_add(test.step_bound());
                        row_cells.push(test)
                    }
                    Err(e) => self.problem(self.at(&format!("{row_path}[{c}]")), e.to_string()),
                }
            }
            let mut row_outputs = Vec::with_capacity(raw.outputs.len());
            for (c, cell) in row[raw.inputs.len()..].iter().enumerate() {
                let cell_path = format!("{row_path}[{}]", raw.inputs.len() + c);
                match ValueSource::compile(cell, &mut self.exprs) {
                    Ok(v) => {
                        self.check_references(v.references(), &cell_path, scope);
                        row_outputs.push(v)
                    }
                    Err(e) => self.problem(self.at(&cell_path), e),
                }
            }
            if row_cells.len() == raw.inputs.len() && row_outputs.len() == raw.outputs.len() {
                if let Some(oc) = outcome_column {
                    self.check_outcome_cells(
                        row_outputs.get(oc),
                        reason_column.and_then(|rc| row_outputs.get(rc)),
                        &row_path,
                    );
                }
                if let (Some(rc), None) = (reason_column, outcome_column) {
                    if let Some(Constant::String(code)) = row_outputs[rc].constant() {
                        let code = code.to_string();
                        self.reason(&code, &row_path);
                    }
                }
                cells.push(row_cells);
                outputs.push(row_outputs);
            }
        }
        let output_priority: Vec<Constant> = raw
            .output_priority
            .iter()
            .filter_map(crate::value::constant_from_yaml)
            .collect();
        self.define(&raw.id, path, scope);
        if self.problems.len() > before {
            return None;
        }
        Some(Step::Table(DecisionTable::new(TableDefinition {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            hit_policy: raw.hit_policy,
            aggregation: raw.aggregation,
            inputs,
            output_names: raw.outputs.clone(),
            cells,
            outputs,
            output_priority,
        })))
    }

    fn axis(&mut self, raw: &RawAxis, path: &str, scope: &Scope) -> Option<Axis> {
        let value = self.expr(&raw.value, &format!("{path}.value"), scope);
        let mut bands = Vec::new();
        if raw.bands.is_empty() {
            self.problem(self.at(path), "needs at least one band".into());
        }
        for (i, band) in raw.bands.iter().enumerate() {
            match self.exprs.compile_unary(&band.test) {
                Ok(test) => {
                    self.flow_steps = self.flow_steps.saturating_add(test.step_bound());
                    bands.push((band.label.as_str().into(), test))
                }
                Err(e) => self.problem(self.at(&format!("{path}.bands[{i}]")), e.to_string()),
            }
        }
        Some(Axis {
            value: value?,
            bands,
        })
    }

    fn matrix(&mut self, raw: &RawMatrix, path: &str, scope: &mut Scope) -> Option<Step> {
        let before = self.problems.len();
        let rows = self.axis(&raw.rows, &format!("{path}.rows"), scope);
        let columns = self.axis(&raw.columns, &format!("{path}.columns"), scope);
        let mut cells: Vec<(String, Vec<Vec<ValueSource>>)> = Vec::new();
        if raw.cells.is_empty() {
            self.problem(
                self.at(&format!("{path}.cells")),
                "needs at least one output grid".into(),
            );
        }
        for (output, grid) in &raw.cells {
            let grid_path = format!("{path}.cells.{output}");
            if grid.len() != raw.rows.bands.len() {
                self.problem(
                    self.at(&grid_path),
                    format!(
                        "has {} rows; the matrix has {} row bands",
                        grid.len(),
                        raw.rows.bands.len()
                    ),
                );
                continue;
            }
            let mut compiled_grid = Vec::new();
            for (r, row) in grid.iter().enumerate() {
                if row.len() != raw.columns.bands.len() {
                    self.problem(
                        self.at(&format!("{grid_path}[{r}]")),
                        format!(
                            "has {} cells; the matrix has {} column bands",
                            row.len(),
                            raw.columns.bands.len()
                        ),
                    );
                    continue;
                }
                let mut compiled_row = Vec::new();
                for (c, cell) in row.iter().enumerate() {
                    match ValueSource::compile(cell, &mut self.exprs) {
                        Ok(v) => {
                            self.check_references(
                                v.references(),
                                &format!("{grid_path}[{r}][{c}]"),
                                scope,
                            );
                            compiled_row.push(v)
                        }
                        Err(e) => self.problem(self.at(&format!("{grid_path}[{r}][{c}]")), e),
                    }
                }
                compiled_grid.push(compiled_row);
            }
            cells.push((output.clone(), compiled_grid));
        }
        if self.problems.len() == before {
            let grid = |name: &str| cells.iter().find(|(n, _)| n == name).map(|(_, g)| g);
            if let Some(outcomes) = grid("outcome") {
                let reasons = grid("reason");
                for (r, row) in outcomes.iter().enumerate() {
                    for (c, cell) in row.iter().enumerate() {
                        let reason = reasons.map(|g| &g[r][c]);
                        let cell_path = format!("{path}.cells.outcome[{r}][{c}]");
                        self.check_outcome_cells(Some(cell), reason, &cell_path);
                    }
                }
            } else if let Some(reasons) = grid("reason") {
                for row in reasons {
                    for cell in row {
                        if let Some(Constant::String(code)) = cell.constant() {
                            let code = code.to_string();
                            self.reason(&code, &format!("{path}.cells.reason"));
                        }
                    }
                }
            }
        }
        self.define(&raw.id, path, scope);
        if self.problems.len() > before {
            return None;
        }
        Some(Step::Matrix(Matrix {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            rows: rows?,
            columns: columns?,
            cells,
        }))
    }

    fn scorecard(&mut self, raw: &RawScorecard, path: &str, scope: &mut Scope) -> Option<Step> {
        let before = self.problems.len();
        let from_file;
        let body = match &raw.file {
            None => &raw.body,
            Some(file) => {
                if raw.body.base_points.is_some()
                    || raw.body.calibration.is_some()
                    || !raw.body.characteristics.is_empty()
                {
                    self.problem(
                        self.at(path),
                        "write the scorecard either inline or in `file`, not both".into(),
                    );
                }
                let parsed = match self.source.bytes(file).map(std::str::from_utf8) {
                    None => Err(format!("file {file} is not in the package")),
                    Some(Err(e)) => Err(format!("{file} is not UTF-8 text: {e}")),
                    Some(Ok(text)) => {
                        check_text_size(file, text.as_bytes(), self.limits.max_text_file_bytes)
                            .and_then(|()| {
                                parse_yaml::<RawScorecardBody>(file, text, self.limits)
                                    .map_err(|problem| problem.to_string())
                            })
                    }
                };
                match parsed {
                    Ok(parsed) => {
                        self.used_files.insert(file.clone());
                        from_file = parsed;
                        &from_file
                    }
                    Err(message) => {
                        self.problem(self.at(&format!("{path}.file")), message);
                        return None;
                    }
                }
            }
        };
        let base_points = match &body.base_points {
            None => Decimal::ZERO,
            Some(n) => decimal_setting(n).unwrap_or_else(|| {
                self.problem(
                    self.at(&format!("{path}.base_points")),
                    format!("must be a number, got {}", n.0),
                );
                Decimal::ZERO
            }),
        };
        let calibration = body.calibration.as_ref().and_then(|c| {
            Calibration::new(c.score, c.odds, c.pdo)
                .map_err(|e| self.problem(self.at(&format!("{path}.calibration")), e))
                .ok()
        });
        let mut characteristics = Vec::new();
        let mut names = HashSet::new();
        for (i, raw_char) in body.characteristics.iter().enumerate() {
            let char_path = format!("{path}.characteristics[{i}] ({})", raw_char.name);
            if !names.insert(raw_char.name.as_str()) {
                self.problem(self.at(&char_path), "characteristic name used twice".into());
            }
            self.reason(&raw_char.reason, &char_path);
            let value = self.expr(&raw_char.value, &format!("{char_path}.value"), scope);
            let mut bins = Vec::new();
            let mut ranges: Vec<(Interval, usize)> = Vec::new();
            let (mut missing, mut otherwise) = (0, 0);
            for (b, raw_bin) in raw_char.bins.iter().enumerate() {
                let bin_path = format!("{char_path}.bins[{b}]");
                let forms = [
                    raw_bin.range.is_some(),
                    raw_bin.values.is_some(),
                    raw_bin.missing,
                    raw_bin.otherwise,
                ]
                .iter()
                .filter(|f| **f)
                .count();
                if forms != 1 {
                    self.problem(
                        self.at(&bin_path),
                        "a bin is exactly one of: range, values, missing: true, else: true".into(),
                    );
                    continue;
                }
                let Some(points) = decimal_setting(&raw_bin.points) else {
                    self.problem(
                        self.at(&bin_path),
                        format!("points must be a number, got {}", raw_bin.points.0),
                    );
                    continue;
                };
                let (test, default_label) = if let Some(range) = &raw_bin.range {
                    match Interval::parse(range) {
                        Some(interval) => {
                            ranges.push((interval.clone(), b));
                            (BinTest::Range(interval), range.clone())
                        }
                        None => {
                            self.problem(
                                self.at(&bin_path),
                                format!("range {range} is not an interval like [0..12) or (-inf..500]: brackets give each end's closedness"),
                            );
                            continue;
                        }
                    }
                } else if let Some(values) = &raw_bin.values {
                    let constants: Vec<Constant> = values
                        .iter()
                        .filter_map(crate::value::constant_from_yaml)
                        .collect();
                    if constants.len() != values.len() || constants.is_empty() {
                        self.problem(
                            self.at(&bin_path),
                            "values is a non-empty list of single values".into(),
                        );
                        continue;
                    }
                    let label = constants
                        .iter()
                        .map(|c| match c {
                            Constant::String(s) => s.to_string(),
                            Constant::Number(n) => n.to_string(),
                            Constant::Bool(b) => b.to_string(),
                            Constant::Null => "null".into(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    (BinTest::Values(constants), label)
                } else if raw_bin.missing {
                    missing += 1;
                    (BinTest::Missing, "missing".to_string())
                } else {
                    otherwise += 1;
                    (BinTest::Else, "else".to_string())
                };
                bins.push(Bin {
                    test,
                    points,
                    label: raw_bin.label.clone().unwrap_or(default_label).into(),
                    shortfall_rank: 0,
                });
            }
            if missing > 1 || otherwise > 1 {
                self.problem(
                    self.at(&char_path),
                    "at most one missing bin and one else bin".into(),
                );
            }
            for (x, (a, ai)) in ranges.iter().enumerate() {
                for (b, bi) in &ranges[x + 1..] {
                    if intervals_overlap(a, b) {
                        self.problem(
                            self.at(&char_path),
                            format!("bins {ai} and {bi} overlap; each value must fall in one bin"),
                        );
                    }
                }
            }
            if bins.is_empty() {
                self.problem(self.at(&char_path), "needs at least one bin".into());
                continue;
            }
            let max_points = bins.iter().map(|b| b.points).max().unwrap_or_default();
            if let Some(value) = value {
                characteristics.push(Characteristic {
                    name: raw_char.name.as_str().into(),
                    value,
                    reason: raw_char.reason.as_str().into(),
                    bins,
                    max_points,
                });
            }
        }
        self.define(&raw.id, path, scope);
        self.explainer_ids.insert(raw.id.clone());
        if self.problems.len() > before {
            return None;
        }
        crate::scorecard::rank_shortfalls(&mut characteristics);
        Some(Step::Scorecard(Scorecard {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            base_points,
            calibration,
            characteristics,
        }))
    }

    fn model(&mut self, raw: &RawModelStep, path: &str, scope: &mut Scope) -> Option<Step> {
        let Some(model) = self.models.get(&raw.model).cloned() else {
            self.problem(
                self.at(&format!("{path}.model")),
                format!(
                    "no model named {}; declare it under models in {MANIFEST}",
                    raw.model
                ),
            );
            return None;
        };
        let features = &model.metadata().features;
        let mut inputs = Vec::new();
        for feature in features {
            match raw.inputs.get(feature) {
                Some(text) => {
                    inputs.extend(self.expr(text, &format!("{path}.inputs.{feature}"), scope))
                }
                None => self.problem(
                    self.at(&format!("{path}.inputs")),
                    format!(
                        "model {} needs feature {feature}; map it to an expression",
                        raw.model
                    ),
                ),
            }
        }
        for name in raw.inputs.keys() {
            if !features.contains(name) {
                self.problem(
                    self.at(&format!("{path}.inputs.{name}")),
                    format!(
                        "model {} has no feature {name}; its features are {}",
                        raw.model,
                        features.join(", ")
                    ),
                );
            }
        }
        for (feature, code) in &raw.reasons {
            let reason_path = format!("{path}.reasons.{feature}");
            if !features.contains(feature) {
                self.problem(
                    self.at(&reason_path),
                    format!("model {} has no feature {feature}", raw.model),
                );
            }
            self.reason(code, &reason_path);
        }
        if !raw.reasons.is_empty() && model.objective().classes() > 1 {
            self.problem(
                self.at(&format!("{path}.reasons")),
                format!(
                    "model {} is a multi-class model ({} classes): reason codes rank features by how far they push one score towards bad, which a multi-class model does not have; remove reasons, or explain the decision with a scorecard or a binary model",
                    raw.model,
                    model.objective().classes()
                ),
            );
        } else if !raw.reasons.is_empty() && !model.has_contributions() {
            self.problem(
                self.at(&format!("{path}.reasons")),
                format!(
                    "model {} has linear trees, for which TreeSHAP (and so reason codes) is not defined; remove reasons, or retrain without linear_tree",
                    raw.model
                ),
            );
        }
        let reasons = features
            .iter()
            .map(|f| raw.reasons.get(f).map(|code| Arc::from(code.as_str())))
            .collect();
        self.define(&raw.id, path, scope);
        if !raw.reasons.is_empty() {
            self.explainer_ids.insert(raw.id.clone());
        }
        (inputs.len() == features.len()).then(|| {
            let metadata = model.metadata();
            let identity = ModelIdentity {
                name: metadata.name.as_str().into(),
                version: metadata.version.as_str().into(),
                sha256: metadata.sha256.as_str().into(),
                format: metadata.format.as_str().into(),
                objective: metadata.objective.as_str().into(),
            };
            Step::Model(ModelStep {
                id: raw.id.as_str().into(),
                slot: self.exprs.slot(&raw.id),
                model,
                inputs,
                reasons,
                identity,
            })
        })
    }

    fn branch(&mut self, raw: &RawBranch, path: &str, scope: &mut Scope) -> Option<Step> {
        let mut cases = Vec::new();
        let mut union = scope.clone();
        for (i, case) in raw.cases.iter().enumerate() {
            let case_path = format!("{path}.cases[{i}] ({})", case.name);
            let when = match &case.when {
                Some(text) => self.expr(text, &format!("{case_path}.when"), scope),
                None if i + 1 == raw.cases.len() => None,
                None => {
                    self.problem(
                        self.at(&case_path),
                        "only the last case may omit `when` (it is the else case)".into(),
                    );
                    None
                }
            };
            let mut case_scope = scope.clone();
            let steps = self.steps(&case.steps, &format!("{case_path}.steps"), &mut case_scope);
            union.names.extend(case_scope.names);
            cases.push(BranchCase {
                name: case.name.as_str().into(),
                when,
                steps,
            });
        }
        *scope = union;
        self.define(&raw.id, path, scope);
        Some(Step::Branch {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            cases,
        })
    }

    fn experiment(
        &mut self,
        raw: &RawChampionChallenger,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Step> {
        let key = self.expr(&raw.key, &format!("{path}.key"), scope);
        if raw.arms.is_empty() {
            self.problem(self.at(path), "needs at least one arm".into());
        }
        let total: u32 = raw.arms.iter().map(|a| a.weight).sum();
        if total == 0 && !raw.arms.is_empty() {
            self.problem(
                self.at(path),
                "arm weights must add up to more than 0".into(),
            );
        }
        let mut union = scope.clone();
        let mut compile_arms = |compiler: &mut Self, arms: &[RawArm], kind: &str| -> Vec<Arm> {
            arms.iter()
                .enumerate()
                .map(|(i, arm)| {
                    let mut arm_scope = scope.clone();
                    let steps = compiler.steps(
                        &arm.steps,
                        &format!("{path}.{kind}[{i}] ({}).steps", arm.name),
                        &mut arm_scope,
                    );
                    union.names.extend(arm_scope.names);
                    Arm {
                        name: arm.name.as_str().into(),
                        steps,
                    }
                })
                .collect()
        };
        let arms = compile_arms(self, &raw.arms, "arms");
        let shadow = compile_arms(self, &raw.shadow, "shadow");
        let mut names = HashSet::new();
        for arm in arms.iter().chain(&shadow) {
            if !names.insert(arm.name.clone()) {
                self.problem(
                    self.at(path),
                    format!("arm name {} is used twice", arm.name),
                );
            }
        }
        // Cumulative bucket bounds out of 10,000.
        let mut bucket_bounds = Vec::new();
        let mut cumulative = 0u64;
        for arm in &raw.arms {
            cumulative += arm.weight as u64;
            bucket_bounds.push((cumulative * 10_000 / total.max(1) as u64) as u32);
        }
        *scope = union;
        self.define(&raw.id, path, scope);
        Some(Step::Experiment(Experiment {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            key: key?,
            salt: raw.salt.clone(),
            arms,
            shadow,
            bucket_bounds,
        }))
    }

    fn outcome(&mut self, raw: &RawOutcome, scope: &Scope) -> Option<OutcomeSpec> {
        let before = self.problems.len();
        let default = Outcome::parse(&raw.default).or_else(|| {
            self.problem(
                self.at("outcome.default"),
                format!("must be approve, refer or decline, got {}", raw.default),
            );
            None
        });
        let optional = |compiler: &mut Self, text: &Option<String>, field: &str| -> Option<Expr> {
            text.as_ref()
                .and_then(|t| compiler.expr(t, &format!("outcome.{field}"), scope))
        };
        let limit = optional(self, &raw.limit, "limit");
        let apr = optional(self, &raw.apr, "apr");
        let term_months = optional(self, &raw.term_months, "term_months");
        let requested_amount = optional(self, &raw.requested_amount, "requested_amount");
        let (refer_queue, refer_priority) = match &raw.refer {
            Some(refer) => {
                let queue = match ValueSource::compile(
                    &serde_yaml_ng::Value::String(refer.queue.clone()),
                    &mut self.exprs,
                ) {
                    Ok(q) => {
                        self.check_references(q.references(), "outcome.refer.queue", scope);
                        Some(q)
                    }
                    Err(e) => {
                        self.problem(self.at("outcome.refer.queue"), e);
                        None
                    }
                };
                (queue, optional(self, &refer.priority, "refer.priority"))
            }
            None => (None, None),
        };
        let mut adverse = Vec::new();
        for (i, entry) in raw.adverse.iter().enumerate() {
            let path = format!("outcome.adverse[{i}]");
            self.reason(&entry.reason, &path);
            if let Some(step) = &entry.explain_with {
                if !self.explainer_ids.contains(step) {
                    self.problem(
                        self.at(&format!("{path}.explain_with")),
                        format!("{step} is not a scorecard step, or a model step with reasons, in this flow"),
                    );
                }
            }
            if let Some(when) = optional(
                self,
                &Some(entry.when.clone()),
                &format!("adverse[{i}].when"),
            ) {
                adverse.push(AdverseSpec {
                    when,
                    reason: entry.reason.as_str().into(),
                    explain_with: entry.explain_with.clone(),
                });
            }
        }
        if self.problems.len() > before {
            return None;
        }
        Some(OutcomeSpec {
            adverse,
            default: default?,
            limit,
            apr,
            term_months,
            requested_amount,
            refer_queue,
            refer_priority,
        })
    }
}

fn intervals_overlap(a: &Interval, b: &Interval) -> bool {
    // a ends before b starts, or b ends before a starts → no overlap.
    let ends_before = |x: &Interval, y: &Interval| match (x.high, y.low) {
        (Some((h, h_in)), Some((l, l_in))) => h < l || (h == l && !(h_in && l_in)),
        _ => false,
    };
    !(ends_before(a, b) || ends_before(b, a))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            name,
            "true" | "false" | "null" | "and" | "or" | "not" | "in"
        )
}

/// The known name nearest to a misspelt one, if it is close.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// A CSV of table rows: a header line, then one row per line; cells as in YAML rows.
/// The rows of a table's CSV file, refused once there are more than `max_rows` (so that a file
/// over the row limit is not built in full before it is refused).
fn parse_rows_csv(
    bytes: &[u8],
    width: usize,
    max_rows: usize,
) -> Result<Vec<Vec<serde_yaml_ng::Value>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() == max_rows {
            return Err(format!(
                "has more than {max_rows} rows; a table may have at most {max_rows} more besides its inline rows (raise limits.table_rows if the table is right)"
            ));
        }
        let cells = split_csv_line(line);
        if cells.len() != width {
            return Err(format!(
                "line {} has {} cells, expected {width}",
                n + 1,
                cells.len()
            ));
        }
        rows.push(
            cells
                .into_iter()
                .map(|cell| match crate::schema::parse_decimal_text(&cell) {
                    Some(_) if !cell.trim().is_empty() => {
                        serde_yaml_ng::from_str(&cell).unwrap_or(serde_yaml_ng::Value::String(cell))
                    }
                    _ => serde_yaml_ng::Value::String(cell),
                })
                .collect(),
        );
    }
    Ok(rows)
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if current.trim().is_empty() => quoted = true,
            (false, ',') => cells.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    cells.push(current.trim().to_string());
    cells
}

fn compile_cases(
    path: &str,
    raw: Vec<RawTestCase>,
    flows: &BTreeMap<String, Flow>,
    reasons: &BTreeMap<String, BTreeMap<String, String>>,
    cases: &mut Vec<TestCase>,
    problems: &mut Vec<CompileProblem>,
) {
    let mut by_name: HashMap<String, (serde_json::Map<String, serde_json::Value>, Option<String>)> =
        cases
            .iter()
            .map(|c: &TestCase| {
                (
                    c.name.clone(),
                    (
                        c.input.as_object().cloned().unwrap_or_default(),
                        Some(c.as_of.to_string()),
                    ),
                )
            })
            .collect();
    for case in raw {
        let location = format!("{path}: case {}", case.name);
        let mut problem = |message: String| {
            problems.push(CompileProblem {
                location: location.clone(),
                message,
            })
        };
        if by_name.contains_key(&case.name) {
            problem("case name used twice".into());
            continue;
        }
        if !flows.contains_key(&case.flow) {
            problem(format!("unknown flow {}", case.flow));
            continue;
        }
        let (mut input, mut as_of) = match &case.extends {
            Some(parent) => match by_name.get(parent) {
                Some(p) => p.clone(),
                None => {
                    problem(format!("extends {parent}, which is not an earlier case"));
                    continue;
                }
            },
            None => (serde_json::Map::new(), None),
        };
        for (k, v) in case.input {
            input.insert(k, v);
        }
        if case.as_of.is_some() {
            as_of = case.as_of.clone();
        }
        let Some(as_of_date) = as_of
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            problem("needs as_of: the date the case is decided on (YYYY-MM-DD), here or in the case it extends".into());
            continue;
        };
        let expect = &case.expect;
        let Some(outcome) = Outcome::parse(&expect.outcome) else {
            problem(format!(
                "expect.outcome must be approve, refer or decline, got {}",
                expect.outcome
            ));
            continue;
        };
        let decimal = |n: &Option<YamlNumber>| n.as_ref().map(decimal_setting);
        let (limit, apr) = (decimal(&expect.limit), decimal(&expect.apr));
        if matches!(limit, Some(None)) || matches!(apr, Some(None)) {
            problem("expect.limit and expect.apr are numbers".into());
            continue;
        }
        for code in expect
            .reasons
            .iter()
            .flatten()
            .chain(expect.flags.iter().flatten())
        {
            if !reasons.contains_key(code) {
                problem(format!("expects unknown reason code {code}"));
            }
        }
        // Data answers: a case's own, else those of the case it extends.
        let mut data = match &case.extends {
            Some(parent) => cases
                .iter()
                .find(|c| &c.name == parent)
                .map(|c| c.data.clone())
                .unwrap_or_default(),
            None => DataRecord::offline(),
        };
        for (step, answer) in &case.data {
            match answer {
                serde_json::Value::Object(values) => data.insert(
                    step.clone(),
                    DataAnswer {
                        ok: true,
                        values: std::sync::Arc::new(
                            values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        ),
                        reason: None,
                        meta: serde_json::json!({"source": "test case"}),
                    },
                ),
                serde_json::Value::String(s) if s == "unavailable" => data.insert(
                    step.clone(),
                    DataAnswer {
                        ok: false,
                        values: Default::default(),
                        reason: Some("unavailable in this test case".into()),
                        meta: serde_json::Value::Null,
                    },
                ),
                other => problem(format!(
                    "data.{step}: give the step's values as a mapping, or `unavailable`; got {other}"
                )),
            }
        }
        by_name.insert(case.name.clone(), (input.clone(), as_of.clone()));
        cases.push(TestCase {
            name: case.name,
            file: path.to_string(),
            flow: case.flow,
            as_of: as_of_date,
            input: serde_json::Value::Object(input),
            data,
            expect: Expectation {
                outcome,
                limit: limit.flatten(),
                apr: apr.flatten(),
                term_months: expect.term_months,
                reasons: expect.reasons.clone(),
                flags: expect.flags.clone(),
                arm: expect.arm.clone(),
                counter_offer: expect.counter_offer,
                refer_queue: expect.refer_queue.clone(),
                actions: expect.actions.clone(),
            },
        });
    }
}

/// Marks each data step that follows other data steps without reading their answers: such a
/// run of adjacent steps is fetched at once (one round trip of latency, not one per step).
fn mark_concurrent_fetches(steps: &mut [Step]) {
    let mut run: Vec<Arc<str>> = Vec::new();
    for step in steps.iter_mut() {
        let Step::Data(data) = step else {
            run.clear();
            continue;
        };
        let reads_run = std::iter::once(&data.subject)
            .chain(data.when.as_ref())
            .chain(data.consent.as_ref())
            .flat_map(|expr| expr.references())
            .any(|name| run.iter().any(|id| id.as_ref() == name));
        if reads_run {
            run.clear();
        }
        data.fetch_with_previous = !run.is_empty();
        run.push(data.id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_suggestions() {
        assert!(is_identifier("monthly_income"));
        assert!(!is_identifier("1st"));
        assert!(!is_identifier("and"));
        assert_eq!(
            closest("montly_income", &["monthly_income", "age"]),
            Some("monthly_income")
        );
        assert_eq!(closest("zzz", &["monthly_income"]), None);
    }

    #[test]
    fn overlapping_bins() {
        let i = |s: &str| Interval::parse(s).unwrap();
        assert!(!intervals_overlap(&i("[0..12)"), &i("[12..24)")));
        assert!(intervals_overlap(&i("[0..12]"), &i("[12..24)")));
        assert!(intervals_overlap(&i("(-inf..12)"), &i("[6..24)")));
        assert!(!intervals_overlap(&i("(-inf..0]"), &i("(0..inf)")));
    }

    #[test]
    fn csv_rows() {
        assert_eq!(
            split_csv_line(r#""""A"",""B""", > 600,plain"#),
            vec![r#""A","B""#, "> 600", "plain"]
        );
    }
}
