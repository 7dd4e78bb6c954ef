//! Step kinds: each kind of flow step in a folder of its own, behind one trait.
//!
//! A kind's folder holds its shape as written (`raw.rs`), its compiled form and the
//! [`StepKind`] implementation (`mod.rs`), how it compiles (`compile.rs`, with the
//! [`Compiler`]'s names, scopes and expressions) and how it evaluates (`eval.rs`, in the
//! [`Run`] of one decision). This file registers the kinds: the [`RawStepKind`] a flow file
//! names, the compiled [`Step`] a flow holds, and the two dispatches between them. Adding a
//! step kind is a new folder and one line in each of those four places, in the manner of
//! ZEN's node handlers.

/// Implements [`StepKind`] for a kind: its key, its raw form (which has an `id`), and the
/// [`Compiler`] and [`Run`] methods, in the kind's `compile.rs` and `eval.rs`, that compile and
/// evaluate it.
macro_rules! step_kind {
    ($kind:ty, key: $key:literal, raw: $raw:ty, compile: $compile:ident, evaluate: $evaluate:ident) => {
        impl $crate::steps::StepKind for $kind {
            const KEY: &'static str = $key;
            type Raw = $raw;

            fn raw_id(raw: &$raw) -> &str {
                &raw.id
            }

            fn compile(
                raw: &$raw,
                compiler: &mut $crate::compile::Compiler<'_>,
                path: &str,
                scope: &mut $crate::compile::Scope,
            ) -> Option<Self> {
                compiler.$compile(raw, path, scope)
            }

            #[inline]
            fn evaluate<'s>(
                &'s self,
                run: &mut $crate::eval::Run<'s>,
                frame: &mut credence_expr::Frame,
            ) -> Result<(), $crate::error::EngineError> {
                run.$evaluate(self, frame)
            }
        }
    };
}

pub(crate) mod branch;
pub(crate) mod data;
pub(crate) mod experiment;
pub(crate) mod features;
pub(crate) mod matrix;
pub(crate) mod model;
pub(crate) mod rule_set;
pub(crate) mod scorecard;
pub(crate) mod table;

pub(crate) use branch::BranchStep;
pub(crate) use data::DataStep;
pub(crate) use experiment::{Arm, Experiment};
pub(crate) use features::FeaturesStep;
pub(crate) use matrix::Matrix;
pub(crate) use model::ModelStep;
pub(crate) use rule_set::RuleSetStep;
pub(crate) use scorecard::Scorecard;
pub(crate) use table::DecisionTable;

use crate::compile::{Compiler, Scope};
use crate::error::EngineError;
use crate::eval::Run;
use credence_expr::Frame;
use serde::Deserialize;

/// What the step kinds' files share: the compiler and the run they work in, and the types
/// they read and produce.
pub(crate) mod prelude {
    pub(crate) use super::Step;
    pub(crate) use crate::compile::{
        check_text_size, decimal_setting, intervals_overlap, parse_yaml, Compiler, ReasonUse,
        Scope, MANIFEST,
    };
    pub(crate) use crate::data::{DataRequest, DataSource, DataUse, FailurePolicy};
    pub(crate) use crate::decision::*;
    pub(crate) use crate::error::EngineError;
    pub(crate) use crate::eval::{
        data_value, experiment_bucket, probability_decimal, Contribution, Explainer, Run,
    };

    pub(crate) use crate::value::{decimal_to_json, Constant, ValueSource};
    pub(crate) use credence_expr::{Expr, Frame, Slot, Value, ValueRef};
    pub(crate) use credence_model::{Model, Prediction};
    pub(crate) use rust_decimal::prelude::ToPrimitive;
    pub(crate) use rust_decimal::Decimal;
    pub(crate) use std::collections::{BTreeMap, BTreeSet, HashSet};
    pub(crate) use std::sync::Arc;
}

/// What a step kind is: how it is written, compiled and evaluated.
pub(crate) trait StepKind: Sized {
    /// The key that introduces the step in a flow file (`- rule_set: {...}`).
    const KEY: &'static str;
    /// The step as written.
    type Raw;
    /// The id the flow file gives the step.
    fn raw_id(raw: &Self::Raw) -> &str;
    /// Compiles the step at `path` (for messages) with the names in `scope`, defining its
    /// own names there. Problems go to the compiler; `None` when there were any.
    fn compile(
        raw: &Self::Raw,
        compiler: &mut Compiler<'_>,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Self>;
    /// Evaluates the step: reads and sets slots of `frame`, records its trace step, adds its
    /// contributions to the run.
    fn evaluate<'s>(&'s self, run: &mut Run<'s>, frame: &mut Frame) -> Result<(), EngineError>;
}

/// A step: exactly one kind, written as a single-key map (`- rule_set: {...}`).
#[derive(Debug)]
pub struct RawStep(pub RawStepKind);

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_yaml_ng::with::singleton_map::deserialize(deserializer).map(RawStep)
    }
}

/// Every step kind as written, under its key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawStepKind {
    /// `features`.
    Features(features::raw::RawFeatures),
    /// `rule_set`.
    RuleSet(rule_set::raw::RawRuleSet),
    /// `table`.
    Table(table::raw::RawTable),
    /// `matrix`.
    Matrix(matrix::raw::RawMatrix),
    /// `scorecard`.
    Scorecard(scorecard::raw::RawScorecard),
    /// `model`.
    Model(model::raw::RawModelStep),
    /// `branch`.
    Branch(branch::raw::RawBranch),
    /// `champion_challenger`.
    ChampionChallenger(experiment::raw::RawChampionChallenger),
    /// `data`.
    Data(data::raw::RawDataStep),
}

/// A compiled step of a flow.
#[derive(Debug)]
pub enum Step {
    /// Derived values.
    Features(FeaturesStep),
    /// Rules with outcomes and reasons.
    RuleSet(RuleSetStep),
    /// A decision table.
    Table(DecisionTable),
    /// A decision matrix.
    Matrix(Matrix),
    /// A points scorecard.
    Scorecard(Scorecard),
    /// A tree-ensemble or scorecard model.
    Model(ModelStep),
    /// A choice between nested steps.
    Branch(BranchStep),
    /// A champion/challenger experiment.
    Experiment(Experiment),
    /// A call to a third-party data source.
    Data(DataStep),
}

impl Compiler<'_> {
    /// Compiles one step of a flow (`path` locates it), whatever its kind.
    pub(crate) fn step(&mut self, raw: &RawStep, path: &str, scope: &mut Scope) -> Option<Step> {
        match &raw.0 {
            RawStepKind::Features(r) => self
                .step_of::<FeaturesStep>(r, path, scope)
                .map(Step::Features),
            RawStepKind::RuleSet(r) => self
                .step_of::<RuleSetStep>(r, path, scope)
                .map(Step::RuleSet),
            RawStepKind::Table(r) => self
                .step_of::<DecisionTable>(r, path, scope)
                .map(Step::Table),
            RawStepKind::Matrix(r) => self.step_of::<Matrix>(r, path, scope).map(Step::Matrix),
            RawStepKind::Scorecard(r) => self
                .step_of::<Scorecard>(r, path, scope)
                .map(Step::Scorecard),
            RawStepKind::Model(r) => self.step_of::<ModelStep>(r, path, scope).map(Step::Model),
            RawStepKind::Branch(r) => self.step_of::<BranchStep>(r, path, scope).map(Step::Branch),
            RawStepKind::ChampionChallenger(r) => self
                .step_of::<Experiment>(r, path, scope)
                .map(Step::Experiment),
            RawStepKind::Data(r) => self.step_of::<DataStep>(r, path, scope).map(Step::Data),
        }
    }

    /// A step of kind `K`: its location named by kind and id, its id unique in the flow.
    fn step_of<K: StepKind>(&mut self, raw: &K::Raw, path: &str, scope: &mut Scope) -> Option<K> {
        let id = K::raw_id(raw);
        let path = format!("{path} ({} {id})", K::KEY);
        if !self.step_ids.insert(id.to_string()) {
            self.problem(
                self.at(&path),
                format!("step id {id} is used twice in this flow"),
            );
        }
        K::compile(raw, self, &path, scope)
    }
}

impl<'s> Run<'s> {
    /// Evaluates one step, whatever its kind.
    pub(crate) fn step(&mut self, step: &'s Step, frame: &mut Frame) -> Result<(), EngineError> {
        match step {
            Step::Features(s) => StepKind::evaluate(s, self, frame),
            Step::RuleSet(s) => StepKind::evaluate(s, self, frame),
            Step::Table(s) => StepKind::evaluate(s, self, frame),
            Step::Matrix(s) => StepKind::evaluate(s, self, frame),
            Step::Scorecard(s) => StepKind::evaluate(s, self, frame),
            Step::Model(s) => StepKind::evaluate(s, self, frame),
            Step::Branch(s) => StepKind::evaluate(s, self, frame),
            Step::Experiment(s) => StepKind::evaluate(s, self, frame),
            Step::Data(s) => StepKind::evaluate(s, self, frame),
        }
    }
}

/// Steps in `steps` and in every branch case and experiment arm below them.
pub(crate) fn count_steps(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|step| {
            1 + match step {
                Step::Branch(branch) => branch.cases.iter().map(|c| count_steps(&c.steps)).sum(),
                Step::Experiment(experiment) => {
                    experiment.arms.iter().map(|a| count_steps(&a.steps)).sum()
                }
                _ => 0,
            }
        })
        .sum()
}
