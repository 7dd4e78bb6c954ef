//! The per-evaluation scratch: values by slot, mirrored lazily into the ZEN context, and a reusable VM.
//!
//! Every name a strategy uses (inputs, features, step results, hoisted-call results) gets a
//! [`Slot`] when it is compiled, so evaluation reads and writes a vector instead of hashing
//! names. The ZEN VM still looks names up in a map; a value is copied into that map only when an
//! expression that runs on the VM reads it, which, with the direct evaluator, is rare.

use crate::Variable;
use std::collections::HashMap;
use std::sync::Arc;
use zen_expression::variable::VariableMap;
use zen_expression::vm::VM;
use zen_expression::Scope;

/// A name's position in a strategy's slot table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u32);

impl Slot {
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

    pub fn find(&self, name: &str) -> Option<Slot> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

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
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Per-evaluation scratch. Not `Send` (ZEN variables are reference-counted): keep one per thread.
pub struct Frame {
    names: NameTable,
    values: Vec<Variable>,
    /// Whether `values[i]` is what the ZEN context holds under its name.
    in_context: Vec<bool>,
    /// Slots set since the last reset (repeats allowed), so a reset clears only those: a
    /// strategy has several times more names than one evaluation sets.
    touched: Vec<u32>,
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
    pub fn new() -> Self {
        Frame::with_names(&NameTable::default())
    }

    pub fn with_names(names: &NameTable) -> Self {
        let context = Variable::from_object(VariableMap::with_capacity(8));
        let mut frame = Frame {
            names: NameTable::default(),
            values: Vec::new(),
            in_context: Vec::new(),
            touched: Vec::new(),
            scope: Scope::new(context.clone()),
            context,
            vm: VM::new(),
        };
        frame.reset(names);
        frame
    }

    /// Starts a new evaluation: every name null, the VM's buffers kept.
    pub fn reset(&mut self, names: &NameTable) {
        let same_names = Arc::ptr_eq(&self.names.0, &names.0);
        if same_names && self.values.len() == names.len() {
            // Every slot not set since the last reset is still null and in the context.
            for index in self.touched.drain(..) {
                self.values[index as usize] = Variable::Null;
                self.in_context[index as usize] = true;
            }
        } else {
            if !same_names {
                self.names = names.clone();
            }
            self.touched.clear();
            self.values.clear();
            self.values.resize(names.len(), Variable::Null);
            self.in_context.clear();
            self.in_context.resize(names.len(), true);
        }
        // An absent name reads as null in ZEN too, so an empty context agrees with all-null values.
        let cleared = match &self.context {
            Variable::Object(object) => object.try_borrow_mut().map(|mut map| map.clear()).is_ok(),
            _ => false,
        };
        if !cleared {
            self.context = Variable::from_object(VariableMap::with_capacity(8));
        }
        self.scope = Scope::new(self.context.clone());
    }

    /// Sets a slot's value.
    pub fn set(&mut self, slot: Slot, value: Variable) {
        let index = slot.index();
        if index >= self.values.len() {
            self.values.resize(index + 1, Variable::Null);
            self.in_context.resize(index + 1, true);
        }
        self.values[index] = value;
        self.in_context[index] = false;
        self.touched.push(slot.0);
    }

    /// Reads a slot (null when never set).
    pub fn get(&self, slot: Slot) -> Variable {
        self.values
            .get(slot.index())
            .cloned()
            .unwrap_or(Variable::Null)
    }

    /// A slot's value by reference (`None` for a slot past the frame's names, which reads as null).
    pub(crate) fn slot_value(&self, slot: Slot) -> Option<&Variable> {
        self.values.get(slot.index())
    }

    /// Sets a value by name; `false` when the strategy has no such name. For tests and tools:
    /// the engine sets by slot.
    pub fn set_named(&mut self, name: &str, value: Variable) -> bool {
        match self.names.0.iter().position(|n| n.as_ref() == name) {
            Some(index) => {
                self.set(Slot(index as u32), value);
                true
            }
            None => false,
        }
    }

    /// Reads `root.a.b`: null where a value on the way is not an object or lacks the field.
    pub(crate) fn get_path(&self, root: Slot, rest: &[Arc<str>]) -> Variable {
        let Some(first) = self.values.get(root.index()) else {
            return Variable::Null;
        };
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
            if index < self.values.len() && !self.in_context[index] {
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
            if !self.in_context[index] {
                if let Some(name) = self.names.0.get(index) {
                    map.insert_str(name, value.clone());
                }
                self.in_context[index] = true;
            }
        }
    }
}

fn field(value: &Variable, name: &str) -> Variable {
    match value {
        Variable::Object(object) => object
            .borrow()
            .get_str(name)
            .cloned()
            .unwrap_or(Variable::Null),
        _ => Variable::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_clears_every_slot_set_since_the_last_one() {
        let mut names = Names::default();
        let (a, b, c) = (names.slot("a"), names.slot("b"), names.slot("c"));
        let table = names.table();
        let mut frame = Frame::with_names(&table);
        for round in 0..3 {
            for slot in [a, b, c] {
                assert_eq!(frame.get(slot), Variable::Null, "round {round}");
            }
            frame.set(a, Variable::Bool(true));
            frame.set(c, Variable::Bool(true));
            frame.set(c, Variable::Bool(false));
            frame.sync(&[("a".into(), a)]);
            assert_eq!(frame.get(c), Variable::Bool(false));
            frame.reset(&table);
            assert!(frame.in_context.iter().all(|fresh| *fresh));
        }

        // Another strategy's names: a full reset to their length.
        let mut other = Names::default();
        let d = other.slot("d");
        other.slot("e");
        frame.set(b, Variable::Bool(true));
        frame.reset(&other.table());
        assert_eq!(frame.values.len(), 2);
        assert_eq!(frame.get(d), Variable::Null);
        assert!(frame.set_named("e", Variable::Bool(true)));
    }
}
