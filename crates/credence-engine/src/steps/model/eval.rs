//! Evaluating `model` steps: features, the prediction and its outputs, the explainer for reason codes.

use super::*;

impl<'s> Run<'s> {
    /// A `model` step: the features mapped, the model scored, its outputs published.
    pub(super) fn model_step(
        &mut self,
        step: &'s ModelStep,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let lists = &self.strategy.lists;
        let mut features = Vec::with_capacity(step.inputs.len());
        let mut values = BTreeMap::new();
        for (name, expr) in step.model.metadata().features.iter().zip(&step.inputs) {
            let value = expr
                .eval(frame, lists)
                .map_err(|e| self.error(&step.id, format!("feature {name}: {e}")))?;
            let x = match value.kind() {
                ValueRef::Null => f64::NAN,
                ValueRef::Number(n) => n.to_f64().unwrap_or(f64::NAN),
                ValueRef::Bool(b) => f64::from(u8::from(b)),
                _ => {
                    return Err(self.error(
                        &step.id,
                        format!("feature {name} must be a number, got {}", value.type_name()),
                    ))
                }
            };
            if self.full {
                values.insert(name.clone(), value.to_json());
            }
            features.push(x);
        }
        let prediction = step.model.predict(&features);
        let number =
            |x: Option<f64>| x.map_or(Value::NULL, |x| Value::number(probability_decimal(x)));
        let probability = prediction.as_ref().and_then(|p| step.model.probability(p));
        let (margin, output) = match &prediction {
            Some(p) => (p.margin(), p.output()),
            None => (None, None),
        };
        let (class_probabilities, predicted_class) = match &prediction {
            Some(Prediction::Classes {
                probabilities,
                predicted_class,
                ..
            }) => (Some(probabilities.clone()), Some(*predicted_class)),
            _ => (None, None),
        };
        let classes = class_probabilities.as_ref().map_or(Value::NULL, |ps| {
            Value::list(ps.iter().map(|p| number(Some(*p))).collect())
        });
        frame.set_object(
            step.slot,
            [
                ("probability", number(probability)),
                ("margin", number(margin)),
                ("prediction", number(output)),
                ("class_probabilities", classes),
                ("predicted_class", number(predicted_class.map(|c| c as f64))),
            ],
        );
        let identity = &step.identity;
        self.record(
            &step.id,
            StepDetail::Model {
                model: identity.name.clone(),
                model_version: identity.version.clone(),
                model_sha256: identity.sha256.clone(),
                model_format: identity.format.clone(),
                objective: identity.objective.clone(),
                probability,
                margin,
                prediction: output,
                class_probabilities,
                predicted_class,
            },
            || values,
        );
        if step.reasons.iter().any(Option::is_some) {
            self.explainers
                .push((&*step.id, Explainer::Model { step, features }));
        }
        Ok(())
    }
}
