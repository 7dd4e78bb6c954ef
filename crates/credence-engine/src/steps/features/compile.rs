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
        // Names whose expression failed were reported already: what depends on them waits
        // for nothing, so that one mistake is one problem, not a false cycle.
        let failed: BTreeSet<&str> = own
            .iter()
            .filter(|name| !compiled.contains_key(*name))
            .copied()
            .collect();
        // Topological order (Kahn), ties broken by name for determinism.
        let mut order = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < compiled.len() {
            let ready: Vec<&str> = compiled
                .iter()
                .filter(|(name, _)| !done.contains(*name))
                .filter(|(_, expr)| {
                    expr.references().iter().all(|r| {
                        let r = r.as_str();
                        !own.contains(r) || done.contains(r) || failed.contains(r)
                    })
                })
                .map(|(name, _)| *name)
                .collect();
            if ready.is_empty() {
                let waiting: BTreeSet<&str> = compiled
                    .keys()
                    .filter(|n| !done.contains(*n))
                    .copied()
                    .collect();
                let cycle = cycle_among(&waiting, &compiled);
                self.problem(
                    self.at_text(
                        &format!("{path}.values.{}", cycle[0]),
                        compiled[cycle[0]].text(),
                    ),
                    format!(
                        "these features depend on each other in a cycle: {}; break it by computing one of them from inputs or earlier steps",
                        cycle.join(" → ")
                    ),
                );
                // Later steps still know the names: no second problem for each use of them.
                *scope = inner_scope;
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

/// One cycle among `waiting` (features none of which can go first), in dependency order and
/// closed on its first member (`a → b → a`): walking from the first waiting feature along
/// references to other waiting features must come back to a feature already walked; the walk
/// from there is the cycle. Features that only depend on a cycle are not on it.
fn cycle_among<'n>(
    waiting: &BTreeSet<&'n str>,
    compiled: &BTreeMap<&'n str, Expr>,
) -> Vec<&'n str> {
    let mut walk: Vec<&str> = Vec::new();
    let mut current = match waiting.iter().next() {
        Some(first) => *first,
        None => return Vec::new(),
    };
    loop {
        if let Some(start) = walk.iter().position(|n| *n == current) {
            let mut cycle = walk[start..].to_vec();
            cycle.push(current);
            return cycle;
        }
        walk.push(current);
        let next = compiled[current]
            .references()
            .iter()
            .filter_map(|r| waiting.get(r.as_str()).copied())
            .min();
        match next {
            Some(next) => current = next,
            // Cannot happen (a waiting feature waits on another waiting one); stay truthful.
            None => return walk,
        }
    }
}
