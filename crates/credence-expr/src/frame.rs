//! The per-evaluation scratch: values by slot, mirrored lazily into the ZEN context, and a reusable VM.
//!
//! Every name a strategy uses (inputs, features, step results, hoisted-call results) gets a
//! [`Slot`] when it is compiled, so evaluation reads and writes a vector instead of hashing
//! names. The ZEN VM still looks names up in a map; a value is copied into that map only when an
//! expression that runs on the VM reads it, which, with the direct evaluator, is rare.
//!
//! Starting an evaluation does not visit the slots: each slot carries the number of the
//! evaluation that last set it, and a slot set in an earlier one reads as null. Its old value
//! stays until the slot is next set; an object nothing else holds is then refilled in place
//! rather than built again. A frame is per thread and holds at most one value per name.

use crate::{Value, Variable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use zen_expression::variable::{MapIter, VariableMap};
use zen_expression::vm::VM;
use zen_expression::Scope;

/// A name's position in a strategy's slot table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u32);

impl Slot {
    /// The slot's position in a frame.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The names of one strategy, each with its slot; built while compiling.
#[derive(Debug, Clone, Default)]
pub struct Names {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, Slot>,
}

impl Names {
    /// The slot of a name, registering it on first use.
    pub fn slot(&mut self, name: &str) -> Slot {
        if let Some(slot) = self.index.get(name) {
            return *slot;
        }
        let slot = Slot(self.names.len() as u32);
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.index.insert(name, slot);
        slot
    }

    /// The slot of `name`, if it has one.
    pub fn find(&self, name: &str) -> Option<Slot> {
        self.index.get(name).copied()
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The table frames are reset with: every name by slot.
    pub fn table(&self) -> NameTable {
        NameTable(self.names.as_slice().into())
    }
}

/// An immutable snapshot of a strategy's names, shared by its frames.
#[derive(Debug, Clone, Default)]
pub struct NameTable(Arc<[Arc<str>]>);

impl NameTable {
    /// How many names there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Per-evaluation scratch. Not `Send` (ZEN variables are reference-counted): keep one per thread.
pub struct Frame {
    names: NameTable,
    /// By slot, the last value set; current only where `set_in[i]` is `evaluation`.
    values: Vec<Variable>,
    /// By slot, the evaluation that last set it (0: never).
    set_in: Vec<u32>,
    /// By slot, whether the ZEN context holds the slot's current value (meaningful for
    /// current slots; a slot not set in this evaluation is null, which the context holds by
    /// not having the name).
    in_context: Vec<bool>,
    /// The number of the current evaluation, from 1.
    evaluation: u32,
    /// What a slot not set in this evaluation reads as.
    null: Variable,
    context: Variable,
    pub(crate) scope: Scope,
    pub(crate) vm: VM,
}

impl Default for Frame {
    fn default() -> Self {
        Frame::new()
    }
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Self {
        Frame::with_names(&NameTable::default())
    }

    /// A frame with room for every name of `names`.
    pub fn with_names(names: &NameTable) -> Self {
        let context = Variable::from_object(VariableMap::with_capacity(8));
        let mut frame = Frame {
            names: NameTable::default(),
            values: Vec::new(),
            set_in: Vec::new(),
            in_context: Vec::new(),
            evaluation: 0,
            null: Variable::Null,
            scope: Scope::new(context.clone()),
            context,
            vm: VM::new(),
        };
        frame.reset(names);
        frame
    }

    /// Starts a new evaluation: every name null, the VM's buffers kept.
    pub fn reset(&mut self, names: &NameTable) {
        // An absent name reads as null in ZEN too, so an empty context agrees with all-null
        // values. Clearing it drops its copies of objects, so that the slots' objects are held
        // by nothing else and can be refilled.
        let cleared = match &self.context {
            Variable::Object(object) => object.try_borrow_mut().map(|mut map| map.clear()).is_ok(),
            _ => false,
        };
        if !cleared {
            self.context = Variable::from_object(VariableMap::with_capacity(8));
        }
        self.scope = Scope::new(self.context.clone());
        let same_names = Arc::ptr_eq(&self.names.0, &names.0);
        if same_names && self.values.len() == names.len() && self.evaluation < u32::MAX {
            // Every slot set so far was set in an earlier evaluation: null from now on.
            self.evaluation += 1;
        } else {
            if !same_names {
                self.names = names.clone();
            }
            self.values.clear();
            self.values.resize(names.len(), Variable::Null);
            self.set_in.clear();
            self.set_in.resize(names.len(), 0);
            self.in_context.clear();
            self.in_context.resize(names.len(), true);
            self.evaluation = 1;
        }
    }

    /// Whether the slot at `index` was set in this evaluation.
    #[inline]
    fn is_current(&self, index: usize) -> bool {
        self.set_in.get(index) == Some(&self.evaluation)
    }

    /// Sets a slot to an object of `entries`, in their order.
    ///
    /// A step builds an object of the same fields in the same order every time, so the object
    /// the slot held in the previous evaluation (kept at reset when nothing else held it) is
    /// refilled in place: its keys are compared, not allocated again, and its storage is
    /// reused. Where the fields differ from the previous ones, the object is rebuilt; either
    /// way it ends up holding exactly `entries`.
    pub fn set_object<'n>(
        &mut self,
        slot: Slot,
        entries: impl IntoIterator<Item = (&'n str, Value)>,
    ) {
        let entries = entries.into_iter().map(|(name, value)| (name, value.0));
        // The object the slot last held, if nothing else holds it (not the ZEN context, cleared
        // at reset, nor a value handed out): refilled in place.
        let spare = match self.values.get_mut(slot.index()) {
            Some(held @ Variable::Object(_)) => match std::mem::replace(held, Variable::Null) {
                Variable::Object(object)
                    if Rc::strong_count(&object) == 1 && Rc::weak_count(&object) == 0 =>
                {
                    Some(object)
                }
                _ => None,
            },
            _ => None,
        };
        let object = match spare {
            Some(object) => {
                refill(&mut object.borrow_mut(), entries);
                object
            }
            None => {
                let mut map = VariableMap::new();
                for (name, value) in entries {
                    map.insert_str(name, value);
                }
                Rc::new(RefCell::new(map))
            }
        };
        self.set_variable(slot, Variable::Object(object));
    }

    /// Sets a slot's value.
    #[inline]
    pub fn set(&mut self, slot: Slot, value: Value) {
        self.set_variable(slot, value.0);
    }

    /// [`Frame::set`] in the evaluator's own value type.
    pub(crate) fn set_variable(&mut self, slot: Slot, value: Variable) {
        let index = slot.index();
        if index >= self.values.len() {
            self.values.resize(index + 1, Variable::Null);
            self.set_in.resize(index + 1, 0);
            self.in_context.resize(index + 1, true);
        }
        self.values[index] = value;
        self.set_in[index] = self.evaluation;
        self.in_context[index] = false;
    }

    /// Reads a slot (null when never set).
    #[inline]
    pub fn get(&self, slot: Slot) -> Value {
        Value(self.get_variable(slot))
    }

    pub(crate) fn get_variable(&self, slot: Slot) -> Variable {
        self.slot_value(slot).clone()
    }

    /// A slot's value by reference (null for a slot not set in this evaluation, or past the
    /// frame's names).
    #[inline]
    pub(crate) fn slot_value(&self, slot: Slot) -> &Variable {
        let index = slot.index();
        match self.values.get(index) {
            Some(value) if self.is_current(index) => value,
            _ => &self.null,
        }
    }

    /// Sets a value by name; `false` when the strategy has no such name. For tests and tools:
    /// the engine sets by slot.
    pub fn set_named(&mut self, name: &str, value: Value) -> bool {
        match self.names.0.iter().position(|n| n.as_ref() == name) {
            Some(index) => {
                self.set_variable(Slot(index as u32), value.0);
                true
            }
            None => false,
        }
    }

    /// Reads `root.a.b`: null where a value on the way is not an object or lacks the field.
    pub(crate) fn get_path(&self, root: Slot, rest: &[FieldName]) -> Variable {
        let first = self.slot_value(root);
        let Some((last, middle)) = rest.split_last() else {
            return first.clone();
        };
        // Fields are read through borrows; only values inside nested objects are held on the way.
        let mut inner: Option<Variable> = None;
        for segment in middle {
            inner = Some(field(inner.as_ref().unwrap_or(first), segment));
        }
        field(inner.as_ref().unwrap_or(first), last)
    }

    /// Copies the given slots into the ZEN context where it is stale.
    pub(crate) fn sync(&mut self, slots: &[(Arc<str>, Slot)]) {
        let Variable::Object(object) = &self.context else {
            return;
        };
        let mut map = object.borrow_mut();
        for (name, slot) in slots {
            let index = slot.index();
            if self.is_current(index) && !self.in_context[index] {
                map.insert_str(name, self.values[index].clone());
                self.in_context[index] = true;
            }
        }
    }

    /// Copies every stale slot into the ZEN context (before a ZEN program that may read any name).
    pub(crate) fn sync_all(&mut self) {
        let Variable::Object(object) = &self.context else {
            return;
        };
        let mut map = object.borrow_mut();
        for (index, value) in self.values.iter().enumerate() {
            if self.set_in[index] == self.evaluation && !self.in_context[index] {
                if let Some(name) = self.names.0.get(index) {
                    map.insert_str(name, value.clone());
                }
                self.in_context[index] = true;
            }
        }
    }
}

/// Makes `map` hold exactly `entries`, in their order, replacing values in place while its keys
/// are the entries' names in order.
fn refill<'n>(map: &mut VariableMap, entries: impl IntoIterator<Item = (&'n str, Variable)>) {
    let mut entries = entries.into_iter();
    let mut matched = 0usize;
    let mut pending = None;
    let mut diverged = false;
    for (key, value) in map.iter_mut() {
        match entries.next() {
            Some((name, new)) if key.as_str() == name => {
                *value = new;
                matched += 1;
            }
            other => {
                pending = other;
                diverged = true;
                break;
            }
        }
    }
    if diverged {
        // Keep the matched prefix, then add the rest by name.
        let held = std::mem::take(map);
        map.extend(held.into_iter().take(matched));
    } else {
        pending = entries.next();
    }
    for (name, value) in pending.into_iter().chain(entries) {
        map.insert_str(name, value);
    }
}

fn field(value: &Variable, name: &FieldName) -> Variable {
    let Variable::Object(object) = value else {
        return Variable::Null;
    };
    let map = object.borrow();
    let MapIter::Small(entries) = map.iter() else {
        return map.get_str(&name.name).cloned().unwrap_or(Variable::Null);
    };
    let entries = entries.as_slice();
    let hint = name.position.load(Ordering::Relaxed) as usize;
    if let Some((key, value)) = entries.get(hint) {
        if key.as_str() == &*name.name {
            return value.clone();
        }
    }
    match entries
        .iter()
        .position(|(key, _)| key.as_str() == &*name.name)
    {
        Some(position) => {
            name.position.store(position as u32, Ordering::Relaxed);
            entries[position].1.clone()
        }
        None => Variable::Null,
    }
}

/// A field read from an object (`liabilities.open_accounts`), with the position it was last
/// found at. A step builds its object with the same fields in the same order every time, so
/// the remembered position nearly always holds the field and the search by name is skipped.
/// The position is only a hint: a wrong one costs a search, never a wrong value. It is shared
/// by the threads evaluating the same compiled expression (relaxed atomics: any stored value
/// is a valid hint).
#[derive(Debug)]
pub(crate) struct FieldName {
    pub(crate) name: Arc<str>,
    position: AtomicU32,
}

impl FieldName {
    pub(crate) fn new(name: &str) -> FieldName {
        FieldName {
            name: Arc::from(name),
            position: AtomicU32::new(0),
        }
    }
}

impl Clone for FieldName {
    fn clone(&self) -> FieldName {
        FieldName {
            name: self.name.clone(),
            position: AtomicU32::new(self.position.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries of ZEN variables as the frame takes them.
    fn wrap<'n>(
        entries: impl IntoIterator<Item = (&'n str, Variable)>,
    ) -> impl Iterator<Item = (&'n str, Value)> {
        entries
            .into_iter()
            .map(|(name, value)| (name, Value(value)))
    }

    #[test]
    fn a_reset_clears_every_slot_set_since_the_last_one() {
        let mut names = Names::default();
        let (a, b, c) = (names.slot("a"), names.slot("b"), names.slot("c"));
        let table = names.table();
        let mut frame = Frame::with_names(&table);
        for round in 0..3 {
            for slot in [a, b, c] {
                assert_eq!(frame.get_variable(slot), Variable::Null, "round {round}");
            }
            frame.set_variable(a, Variable::Bool(true));
            frame.set_variable(c, Variable::Bool(true));
            frame.set_variable(c, Variable::Bool(false));
            frame.sync(&[("a".into(), a)]);
            assert_eq!(frame.get_variable(c), Variable::Bool(false));
            frame.reset(&table);
            assert!((0..3).all(|index| !frame.is_current(index)));
        }

        // Past the last evaluation number, every slot is cleared and the count starts again.
        frame.set_variable(c, Variable::Bool(true));
        frame.evaluation = u32::MAX;
        frame.set_in[c.index()] = u32::MAX;
        assert_eq!(frame.get_variable(c), Variable::Bool(true));
        frame.reset(&table);
        assert_eq!(
            (frame.evaluation, frame.get_variable(c)),
            (1, Variable::Null)
        );
        assert!(frame.set_in.iter().all(|&set_in| set_in == 0));

        // Another strategy's names: a full reset to their length.
        let mut other = Names::default();
        let d = other.slot("d");
        other.slot("e");
        frame.set_variable(b, Variable::Bool(true));
        frame.reset(&other.table());
        assert_eq!(frame.values.len(), 2);
        assert_eq!(frame.get_variable(d), Variable::Null);
        assert!(frame.set_named("e", Value(Variable::Bool(true))));
    }

    fn keys_and_values(value: &Variable) -> Vec<(String, Variable)> {
        let Variable::Object(object) = value else {
            panic!("not an object: {value:?}")
        };
        let map = object.borrow();
        map.iter()
            .map(|(key, value)| (key.as_str().to_string(), value.clone()))
            .collect()
    }

    fn number(n: i64) -> Variable {
        Variable::Number(n.into())
    }

    /// Each case: the object's fields in one evaluation, then in the next; the second object
    /// must hold exactly its own fields, in order, whatever the first held.
    #[test]
    fn a_refilled_object_holds_exactly_the_new_fields() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("same fields", &["a", "b", "c"], &["a", "b", "c"]),
            ("one more", &["a", "b"], &["a", "b", "c"]),
            ("one fewer", &["a", "b", "c"], &["a", "b"]),
            ("one renamed", &["a", "b", "c"], &["a", "x", "c"]),
            ("reordered", &["a", "b", "c"], &["c", "b", "a"]),
            ("none before", &[], &["a"]),
            ("none after", &["a", "b"], &[]),
            (
                "past the map's inline size",
                &["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10"],
                &[
                    "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11",
                ],
            ),
        ];
        let mut names = Names::default();
        let slot = names.slot("step");
        let table = names.table();
        for (case, first, second) in cases {
            let mut frame = Frame::with_names(&table);
            let entries = |fields: &'static [&'static str], base: i64| {
                fields
                    .iter()
                    .enumerate()
                    .map(move |(i, name)| (*name, number(base + i as i64)))
            };
            frame.set_object(slot, wrap(entries(first, 0)));
            frame.reset(&table);
            let kept = match frame.values[slot.index()] {
                Variable::Object(ref object) => Rc::as_ptr(object),
                _ => panic!("{case}: the object is kept"),
            };
            frame.set_object(slot, wrap(entries(second, 100)));
            match frame.values[slot.index()] {
                Variable::Object(ref object) => {
                    assert_eq!(Rc::as_ptr(object), kept, "{case}: refilled in place")
                }
                _ => panic!("{case}: an object"),
            }
            let expected: Vec<(String, Variable)> = entries(second, 100)
                .map(|(name, value)| (name.to_string(), value))
                .collect();
            assert_eq!(
                keys_and_values(&frame.get_variable(slot)),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn an_object_held_elsewhere_is_never_refilled() {
        let mut names = Names::default();
        let slot = names.slot("step");
        let table = names.table();
        let mut frame = Frame::with_names(&table);
        frame.set_object(slot, wrap([("a", number(1))]));
        let kept_by_caller = frame.get_variable(slot);
        frame.reset(&table);
        frame.set_object(slot, wrap([("a", number(2))]));
        assert_eq!(keys_and_values(&kept_by_caller), [("a".into(), number(1))]);
        assert_eq!(
            keys_and_values(&frame.get_variable(slot)),
            [("a".into(), number(2))]
        );
    }

    #[test]
    fn a_stale_field_position_still_finds_the_field() {
        let mut names = Names::default();
        let slot = names.slot("step");
        let table = names.table();
        let mut frame = Frame::with_names(&table);
        let b = FieldName::new("b");
        let missing = FieldName::new("z");
        for (round, fields) in [&["a", "b"][..], &["b"], &["x", "y", "b"], &["a"]]
            .iter()
            .enumerate()
        {
            frame.reset(&table);
            let value = number(round as i64);
            frame.set_object(slot, wrap(fields.iter().map(|name| (*name, value.clone()))));
            let expected = if fields.contains(&"b") {
                value
            } else {
                Variable::Null
            };
            assert_eq!(
                frame.get_path(slot, std::slice::from_ref(&b)),
                expected,
                "round {round}"
            );
            assert_eq!(
                frame.get_path(slot, std::slice::from_ref(&missing)),
                Variable::Null
            );
        }
    }
}
