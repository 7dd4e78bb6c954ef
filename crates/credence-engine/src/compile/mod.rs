//! Compiles a package source into an immutable `CompiledStrategy`: parse, check every name and cell, index tables, hash.
//!
//! Compilation collects every problem it can find (with file and step path) instead of
//! stopping at the first, so an analyst fixes a package in one round.
//!
//! This module holds the compiled strategy's types, the package-level steps and the
//! `Compiler` core (names, scopes, expressions, flows) that step kinds compile with: each step
//! kind compiles in its own folder (`steps/<kind>/compile.rs`, behind `steps::StepKind`),
//! beside `outcome`, `sources` (reading files within limits) and `test_cases` here.

mod outcome;
mod sources;
mod test_cases;

use sources::*;
pub(crate) use sources::{check_text_size, decimal_setting, parse_yaml};
use test_cases::*;

use crate::cases::{Expectation, TestCase};
use crate::data::{
    DataAnswer, DataField, DataFieldKind, DataRecord, DataSource, FailurePolicy, Provider,
};
use crate::decision::Outcome;
use crate::error::{CompileProblem, EngineError};
use crate::format::*;
use crate::limits::{check_yaml_nodes, Limits, YamlRefusal};
use crate::schema::{FieldSpec, InputSchema, RESERVED_NAMES};
use crate::source::PackageSource;
use crate::steps::{count_steps, RawStep, Step};
use crate::value::ValueSource;
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
    /// The highest APR any offer may carry.
    pub apr_max: Option<Decimal>,
    /// The highest limit any offer may carry.
    pub limit_max: Option<Decimal>,
    /// The lowest limit an approval may carry (below it, the approval becomes a decline).
    pub limit_min: Option<Decimal>,
    /// The longest term any offer may carry.
    pub term_months_max: Option<u32>,
    /// The reason given when an approval falls below `limit_min`.
    pub below_limit_min_reason: Option<Arc<str>>,
}

/// How referred cases are reviewed (the manifest's `review` section, with defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSettings {
    /// Queue name → SLA in minutes.
    pub queues: BTreeMap<String, u32>,
    /// The SLA of a queue that declares none.
    pub default_sla_minutes: u32,
    /// How long a reviewer's claim on a case lasts.
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
    /// Codes the steps give only to refer or flag: not reasons for a decline.
    pub(crate) referral_only_reasons: BTreeSet<Arc<str>>,
    pub(crate) lists: NamedLists,
    pub(crate) flows: BTreeMap<String, Flow>,
    pub(crate) cases: Vec<TestCase>,
    pub(crate) version: Arc<str>,
    /// Every name the strategy's expressions and steps use, by slot.
    pub(crate) names: NameTable,
    pub(crate) today: Slot,
    pub(crate) data_sources: BTreeMap<String, Arc<DataSource>>,
}

/// A compiled flow: its input schema, its steps and how its outcome is assembled.
#[derive(Debug)]
pub struct Flow {
    /// The flow's name.
    pub name: Arc<str>,
    /// The slot of each input field, in schema order.
    pub(crate) input_slots: Vec<Slot>,
    /// What the flow is for, as the package says.
    pub description: Option<String>,
    /// The input schema.
    pub schema: InputSchema,
    pub(crate) steps: Vec<Step>,
    pub(crate) outcome: OutcomeSpec,
    /// Every step of the flow, nested ones included: the most a trace can hold, reserved once
    /// per decision instead of grown.
    pub(crate) trace_capacity: usize,
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

        // The name is the product strategy's identity: in URLs, permissions and metric labels.
        if !is_strategy_name(&manifest.name) {
            problem(
                format!("{MANIFEST}: name"),
                format!(
                    "`{}` is not a valid strategy name: use 1–64 lower-case letters, digits, - and _, starting with a letter or digit (e.g. card-line)",
                    manifest.name
                ),
            );
        }
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
                    let at = line_and_column(manifest_text, &format!("{code}:"))
                        .map(|(line, column)| format!(":{line}:{column}"))
                        .unwrap_or_default();
                    problem(
                    format!("{MANIFEST}{at}: reasons.{code}"),
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
    let (names, today, mut reason_uses) = {
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
            file_text: String::new(),
            step_ids: HashSet::new(),
            explainer_ids: HashSet::new(),
            used_files: &mut flow_files,
            reason_uses: BTreeMap::new(),
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
            compiler.file_text = text.to_string();
            compiler.step_ids.clear();
            compiler.explainer_ids.clear();
            if let Some(flow) = compiler.flow(flow_name, raw) {
                flows.insert(flow_name.clone(), flow);
            }
        }
        let today = compiler.exprs.slot("today");
        (
            compiler.exprs.names(),
            today,
            std::mem::take(&mut compiler.reason_uses),
        )
    };

    used_files.extend(flow_files);

    // Embedded test cases. A case of a flow that is declared but failed to compile is not
    // checked; its file says so once, rather than once per case.
    let declared_flows: BTreeSet<String> = manifest.flows.keys().cloned().collect();
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
            &declared_flows,
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

    for source in data_sources.values() {
        let (code, used_for) = match &source.on_failure {
            crate::data::FailurePolicy::Refer(code) => (code, ReasonUse::Refer),
            crate::data::FailurePolicy::Decline(code) => (code, ReasonUse::Decline),
            crate::data::FailurePolicy::Continue => continue,
        };
        reason_uses
            .entry(code.to_string())
            .or_default()
            .insert(used_for);
    }
    if let Some(code) = &caps.below_limit_min_reason {
        reason_uses
            .entry(code.to_string())
            .or_default()
            .insert(ReasonUse::Decline);
    }
    let referral_only_reasons = reason_uses
        .into_iter()
        .filter(|(_, uses)| {
            uses.iter()
                .all(|u| matches!(u, ReasonUse::Refer | ReasonUse::Flag))
        })
        .map(|(code, _)| Arc::from(code))
        .collect();

    Ok(CompiledStrategy {
        referral_only_reasons,
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

/// Names visible at a point of a flow.
#[derive(Clone, Default)]
pub(crate) struct Scope {
    pub(crate) names: BTreeSet<String>,
}

/// The state of compiling one package: what step kinds compile with.
pub(crate) struct Compiler<'a> {
    pub(crate) exprs: ExprCompiler<'a>,
    pub(crate) limits: &'a Limits,
    /// The worst-case steps of the flow being compiled so far (see `Limits::max_flow_steps`).
    pub(crate) flow_steps: u64,
    pub(crate) reasons: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub(crate) models: &'a HashMap<String, Arc<Model>>,
    pub(crate) data_sources: &'a BTreeMap<String, Arc<DataSource>>,
    pub(crate) source: &'a PackageSource,
    pub(crate) problems: &'a mut Vec<CompileProblem>,
    pub(crate) file: String,
    /// The flow file's text, to find an expression's line and column in.
    pub(crate) file_text: String,
    pub(crate) step_ids: HashSet<String>,
    /// Scorecard and model steps compiled so far in this flow that can explain a rule.
    pub(crate) explainer_ids: HashSet<String>,
    pub(crate) used_files: &'a mut BTreeSet<String>,
    /// Every code a step gives, with the outcomes it is given for (see [`ReasonUse`]).
    pub(crate) reason_uses: BTreeMap<String, BTreeSet<ReasonUse>>,
}

/// What a step gives a reason code for: the outcome of a rule, cell or policy, or an
/// explanation (a scorecard's or model's ranked reasons, an adverse-terms entry) that only
/// declines and worsened terms quote. A reviewer's decline may cite any code used for a
/// decline or an explanation, or not used by any step; not one that only refers or flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ReasonUse {
    Decline,
    Refer,
    Flag,
    Explain,
    /// A table or matrix reason without a literal outcome beside it.
    Unknown,
}

impl Compiler<'_> {
    pub(crate) fn problem(&mut self, location: String, message: String) {
        self.problems.push(CompileProblem { location, message });
    }

    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}: {path}", self.file)
    }

    /// [`Compiler::at`] with the line and column of `text` in the flow file when it can be
    /// found there (`flows/a.yaml:12:19: steps[0] …`): where an editor should jump.
    pub(crate) fn at_text(&self, path: &str, text: &str) -> String {
        match line_and_column(&self.file_text, text) {
            Some((line, column)) => format!("{}:{line}:{column}: {path}", self.file),
            None => self.at(path),
        }
    }

    /// Compiles an expression and checks that every name it reads is in scope.
    pub(crate) fn expr(&mut self, text: &str, path: &str, scope: &Scope) -> Option<Expr> {
        match self.exprs.compile(text) {
            Ok(expr) => {
                self.flow_steps = self.flow_steps.saturating_add(expr.step_bound());
                self.check_references_in(expr.references(), path, scope, Some(text));
                Some(expr)
            }
            Err(e) => {
                self.problem(self.at_text(path, text), e.to_string());
                None
            }
        }
    }

    pub(crate) fn check_references(&mut self, references: &[String], path: &str, scope: &Scope) {
        self.check_references_in(references, path, scope, None)
    }

    /// [`Compiler::check_references`] of an expression whose text locates the problem.
    pub(crate) fn check_references_in(
        &mut self,
        references: &[String],
        path: &str,
        scope: &Scope,
        text: Option<&str>,
    ) {
        for name in references {
            if !scope.names.contains(name) {
                let known: Vec<&str> = scope.names.iter().map(String::as_str).collect();
                let hint = closest(name, &known)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                let location = match text {
                    Some(text) => self.at_text(path, text),
                    None => self.at(path),
                };
                self.problem(
                    location,
                    format!("unknown name `{name}`{hint}; a name must be an input field, `today`, or defined by an earlier step"),
                );
            }
        }
    }

    pub(crate) fn reason(&mut self, code: &str, path: &str, used_for: ReasonUse) {
        self.reason_uses
            .entry(code.to_string())
            .or_default()
            .insert(used_for);
        if !self.reasons.contains_key(code) {
            self.problem(
                self.at(path),
                format!("unknown reason code {code}; declare it under reasons in {MANIFEST}"),
            );
        }
    }

    pub(crate) fn flow(&mut self, name: &str, raw: RawFlow) -> Option<Flow> {
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

    pub(crate) fn define(&mut self, name: &str, path: &str, scope: &mut Scope) {
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

    pub(crate) fn steps(&mut self, raw: &[RawStep], path: &str, scope: &mut Scope) -> Vec<Step> {
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
}

pub(crate) fn intervals_overlap(a: &Interval, b: &Interval) -> bool {
    // a ends before b starts, or b ends before a starts → no overlap.
    let ends_before = |x: &Interval, y: &Interval| match (x.high, y.low) {
        (Some((h, h_in)), Some((l, l_in))) => h < l || (h == l && !(h_in && l_in)),
        _ => false,
    };
    !(ends_before(a, b) || ends_before(b, a))
}

/// The 1-based line and column (in characters) where `needle` first appears in `text`.
fn line_and_column(text: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.trim().is_empty() {
        return None;
    }
    let at = text.find(needle)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    Some((line, column))
}

/// Whether `name` may name a strategy: 1–64 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn is_strategy_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
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
}
