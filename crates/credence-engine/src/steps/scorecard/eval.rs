//! Evaluating `scorecard` steps.

use super::*;
use crate::steps::prelude::*;

impl<'s> Run<'s> {
    /// A `scorecard` step: each characteristic's bin, the score and its calibration.
    pub(super) fn scorecard(
        &mut self,
        scorecard: &'s Scorecard,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let lists = &self.strategy.lists;
        let result = scorecard
            .evaluate(frame, lists, self.full)
            .map_err(|e| self.error(&scorecard.id, e))?;
        frame.set_object(
            scorecard.slot,
            [
                ("score", Value::number(result.score)),
                (
                    "pd",
                    result
                        .probability_of_default
                        .map_or(Value::NULL, |pd| Value::number(probability_decimal(pd))),
                ),
            ],
        );
        let values = if self.full {
            let mut values = BTreeMap::new();
            for (c, v) in scorecard.characteristics.iter().zip(&result.values) {
                values.insert(c.name.to_string(), v.to_json());
            }
            values.insert("score".into(), decimal_to_json(result.score));
            values
        } else {
            BTreeMap::new()
        };
        self.explainers
            .push((&*scorecard.id, Explainer::Ranked(result.ranked_reasons)));
        self.record(
            &scorecard.id,
            StepDetail::Scorecard {
                score: result.score,
                probability_of_default: result.probability_of_default,
                bins: result.bins,
            },
            || values,
        );
        Ok(())
    }
}
