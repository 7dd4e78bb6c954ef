//! Compiling `champion_challenger` steps: arms, weights and shadow arms.

use super::*;

impl Compiler<'_> {
    pub(super) fn experiment(
        &mut self,
        raw: &RawChampionChallenger,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Experiment> {
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
        Some(Experiment {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            key: key?,
            salt: raw.salt.clone(),
            arms,
            shadow,
            bucket_bounds,
        })
    }
}
