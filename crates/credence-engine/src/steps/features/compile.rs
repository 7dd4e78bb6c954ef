//! Compiling `features` steps: derived values in dependency order.

use super::*;

impl Compiler<'_> {
    /// Derived features: evaluated in dependency order; a cycle is an error naming its members.
    pub(super) fn features(
        &mut self,
        raw: &RawFeatures,
        path: &str,
        scope: &mut Scope,
    ) -> Option<FeaturesStep> {
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
        (compiled.len() == raw.values.len()).then(|| FeaturesStep {
            id: raw.id.as_str().into(),
            order,
        })
    }
}
