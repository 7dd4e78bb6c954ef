//! Evaluating `champion_challenger` steps.

use super::*;

impl<'s> Run<'s> {
    /// A `champion_challenger` step: the arm by a stable hash (or forced in a shadow run),
    /// then its steps.
    pub(super) fn experiment(
        &mut self,
        experiment: &'s Experiment,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let lists = &self.strategy.lists;
        let key = experiment
            .key
            .eval(frame, lists)
            .map_err(|e| self.error(&experiment.id, e.to_string()))?;
        let key = match key.kind() {
            ValueRef::String(s) => s.to_string(),
            ValueRef::Number(n) => n.normalize().to_string(),
            _ => {
                return Err(self.error(
                    &experiment.id,
                    format!(
                        "the experiment key must be a string or number, got {}",
                        key.type_name()
                    ),
                ))
            }
        };
        let bucket = experiment_bucket(&experiment.salt, &key);
        let arm = match self.forced_arm {
            Some((id, arm)) if id == &*experiment.id => arm,
            _ => {
                let index = experiment
                    .bucket_bounds
                    .iter()
                    .position(|bound| bucket < *bound)
                    .unwrap_or(experiment.arms.len() - 1);
                &experiment.arms[index]
            }
        };
        if self.forced_arm.is_none() {
            self.shadow_arms
                .extend(experiment.shadow.iter().map(|s| (experiment, s)));
        }
        if self.arm.is_none() {
            self.arm = Some(arm.name.clone());
        }
        frame.set(experiment.slot, Value::string(&arm.name));
        self.record(
            &experiment.id,
            StepDetail::ChampionChallenger {
                arm: arm.name.clone(),
                bucket,
            },
            BTreeMap::new,
        );
        self.steps(&arm.steps, frame)?;
        Ok(())
    }
}
