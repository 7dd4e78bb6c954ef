//! Decision tables with DMN hit policies, indexed per column so large tables are not scanned row by row.
//!
//! Each input column whose cells are simple tests (`-`, literals, comparisons, intervals) gets
//! an index: a bitset of rows per literal, and a bitset per elementary interval between the
//! column's numeric bounds. A lookup intersects one bitset per column and then only checks, with
//! ZEN, the few cells no index could answer. Matching order is row order, so hit policies see
//! exactly what a linear scan would have seen.

use crate::format::{Aggregation, HitPolicy};
use crate::value::{Constant, ValueSource};
use credence_expr::{Expr, Frame, Literal, NamedLists, SimpleTest, Slot, UnaryTest, Variable};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

type Bits = Vec<u64>;

fn bits_with(rows: usize) -> Bits {
    vec![0; rows.div_ceil(64)]
}

fn set_bit(bits: &mut Bits, row: usize) {
    bits[row / 64] |= 1 << (row % 64);
}

/// Index of one input column.
#[derive(Debug, Clone)]
struct ColumnIndex {
    /// Rows whose cell matches anything, or that the index cannot answer (checked later).
    always: Bits,
    by_literal: HashMap<Key, Bits>,
    /// Sorted distinct numeric bounds; segment `2k` is below `bounds[k]`, `2k+1` is it exactly.
    bounds: Vec<Decimal>,
    /// One bitset per segment, `2 * bounds.len() + 1` of them; empty when no ranges.
    segments: Vec<Bits>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Number(Decimal),
    String(String),
    Bool(bool),
}

impl Key {
    fn of_literal(literal: &Literal) -> Key {
        match literal {
            Literal::Number(n) => Key::Number(n.normalize()),
            Literal::String(s) => Key::String(s.clone()),
            Literal::Bool(b) => Key::Bool(*b),
        }
    }
}

impl ColumnIndex {
    fn build(cells: &[&UnaryTest], rows: usize) -> ColumnIndex {
        let mut index = ColumnIndex {
            always: bits_with(rows),
            by_literal: HashMap::new(),
            bounds: Vec::new(),
            segments: Vec::new(),
        };
        for cell in cells {
            if let Some(SimpleTest::Range(interval)) = cell.simple() {
                index.bounds.extend(interval.low.map(|(b, _)| b));
                index.bounds.extend(interval.high.map(|(b, _)| b));
            }
        }
        index.bounds.sort();
        index.bounds.dedup();
        if cells
            .iter()
            .any(|c| matches!(c.simple(), Some(SimpleTest::Range(_))))
        {
            index.segments = vec![bits_with(rows); 2 * index.bounds.len() + 1];
        }
        for (row, cell) in cells.iter().enumerate() {
            match cell.simple() {
                Some(SimpleTest::Any) | None => set_bit(&mut index.always, row),
                Some(SimpleTest::OneOf(literals)) => {
                    for literal in literals {
                        let bits = index
                            .by_literal
                            .entry(Key::of_literal(literal))
                            .or_insert_with(|| bits_with(rows));
                        set_bit(bits, row);
                    }
                }
                Some(SimpleTest::Range(interval)) => {
                    // A segment is inside the interval when a representative point of it is.
                    for segment in 0..index.segments.len() {
                        if index.segment_inside(segment, interval) {
                            set_bit(&mut index.segments[segment], row);
                        }
                    }
                }
            }
        }
        index
    }

    fn segment_inside(&self, segment: usize, interval: &credence_expr::Interval) -> bool {
        let k = segment / 2;
        if segment % 2 == 1 {
            return interval.contains(self.bounds[k]);
        }
        // Open segment between bounds[k-1] and bounds[k] (unbounded at the ends).
        let low = k.checked_sub(1).map(|i| self.bounds[i]);
        let high = self.bounds.get(k).copied();
        let point = match (low, high) {
            (Some(l), Some(h)) => (l + h) / Decimal::TWO,
            (Some(l), None) => l + Decimal::ONE,
            (None, Some(h)) => h - Decimal::ONE,
            (None, None) => Decimal::ZERO,
        };
        interval.contains(point)
    }

    /// Rows whose cell may match `value` (exact except for rows the index cannot answer).
    fn candidates_into(&self, value: &Variable, out: &mut Bits) {
        out.copy_from_slice(&self.always);
        let key = match value {
            Variable::Number(n) => Some(Key::Number(n.normalize())),
            Variable::String(s) => Some(Key::String(s.to_string())),
            Variable::Bool(b) => Some(Key::Bool(*b)),
            _ => None,
        };
        if let Some(bits) = key.as_ref().and_then(|k| self.by_literal.get(k)) {
            or_into(out, bits);
        }
        if let (Variable::Number(x), false) = (value, self.segments.is_empty()) {
            let segment = match self.bounds.binary_search(x) {
                Ok(k) => 2 * k + 1,
                Err(k) => 2 * k,
            };
            or_into(out, &self.segments[segment]);
        }
    }
}

fn or_into(out: &mut Bits, bits: &Bits) {
    for (o, b) in out.iter_mut().zip(bits) {
        *o |= b;
    }
}

/// A compiled decision table.
#[derive(Debug, Clone)]
pub struct DecisionTable {
    pub id: Arc<str>,
    pub slot: Slot,
    pub hit_policy: HitPolicy,
    pub aggregation: Option<Aggregation>,
    pub inputs: Vec<Expr>,
    pub output_names: Vec<String>,
    /// `rows × inputs` cells.
    cells: Vec<Vec<UnaryTest>>,
    /// `rows × outputs` values.
    pub outputs: Vec<Vec<ValueSource>>,
    /// For the priority hit policy: the first output's values, highest priority first.
    pub output_priority: Vec<Constant>,
    indexes: Vec<ColumnIndex>,
    /// Per row: the input columns whose cell the index cannot decide.
    residual: Vec<Vec<usize>>,
}

/// The checked parts a table is built from.
pub struct TableDefinition {
    pub id: Arc<str>,
    /// Where the table publishes its result.
    pub slot: Slot,
    pub hit_policy: HitPolicy,
    pub aggregation: Option<Aggregation>,
    pub inputs: Vec<Expr>,
    pub output_names: Vec<String>,
    /// `rows × inputs` cells.
    pub cells: Vec<Vec<UnaryTest>>,
    /// `rows × outputs` values.
    pub outputs: Vec<Vec<ValueSource>>,
    /// For the priority hit policy: the first output's values, highest priority first.
    pub output_priority: Vec<Constant>,
}

/// What a table lookup matched.
#[derive(Debug, Clone)]
pub struct TableResult {
    /// Matched rows (0-based) in the order the hit policy returns them.
    pub rows: Vec<usize>,
    /// The output object: one row's outputs, a list of them, or the aggregate.
    pub value: Variable,
}

impl DecisionTable {
    pub fn new(definition: TableDefinition) -> DecisionTable {
        let TableDefinition {
            id,
            slot,
            hit_policy,
            aggregation,
            inputs,
            output_names,
            cells,
            outputs,
            output_priority,
        } = definition;
        let rows = cells.len();
        let indexes = (0..inputs.len())
            .map(|column| {
                let column_cells: Vec<&UnaryTest> = cells.iter().map(|row| &row[column]).collect();
                ColumnIndex::build(&column_cells, rows)
            })
            .collect();
        let residual = cells
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, cell)| cell.simple().is_none())
                    .map(|(column, _)| column)
                    .collect()
            })
            .collect();
        DecisionTable {
            id,
            slot,
            hit_policy,
            aggregation,
            inputs,
            output_names,
            cells,
            outputs,
            output_priority,
            indexes,
            residual,
        }
    }

    pub fn row_count(&self) -> usize {
        self.cells.len()
    }

    /// Evaluates the table. A `unique` table with two matching rows is an error (a defect in the
    /// strategy, not a business outcome).
    pub fn evaluate(&self, frame: &mut Frame, lists: &NamedLists) -> Result<TableResult, String> {
        let mut values = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            values.push(input.eval(frame, lists).map_err(|e| e.to_string())?);
        }
        let rows = self.cells.len();
        let mut candidates = vec![u64::MAX; rows.div_ceil(64)];
        if !rows.is_multiple_of(64) {
            if let Some(last) = candidates.last_mut() {
                *last = (1u64 << (rows % 64)) - 1;
            }
        }
        let mut column_bits = bits_with(rows);
        for (index, value) in self.indexes.iter().zip(&values) {
            index.candidates_into(value, &mut column_bits);
            for (c, b) in candidates.iter_mut().zip(&column_bits) {
                *c &= b;
            }
        }
        let stop_at_first = self.hit_policy == HitPolicy::First;
        let mut matched = Vec::new();
        'words: for (word_index, word) in candidates.iter().enumerate() {
            let mut word = *word;
            while word != 0 {
                let row = word_index * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if self.residual_match(row, &values, frame) {
                    matched.push(row);
                    if stop_at_first {
                        break 'words;
                    }
                }
            }
        }
        self.apply_hit_policy(matched, frame, lists)
    }

    /// Evaluates by testing every cell of every row in order, without the index: the reference
    /// the index is checked against.
    pub fn evaluate_linear(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<TableResult, String> {
        let mut values = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            values.push(input.eval(frame, lists).map_err(|e| e.to_string())?);
        }
        let mut matched = Vec::new();
        for (row, cells) in self.cells.iter().enumerate() {
            if cells
                .iter()
                .zip(&values)
                .all(|(cell, value)| cell.test(value, frame))
            {
                matched.push(row);
                if self.hit_policy == HitPolicy::First {
                    break;
                }
            }
        }
        self.apply_hit_policy(matched, frame, lists)
    }

    fn residual_match(&self, row: usize, values: &[Variable], frame: &mut Frame) -> bool {
        self.residual[row]
            .iter()
            .all(|&column| self.cells[row][column].test(&values[column], frame))
    }

    fn row_object(
        &self,
        row: usize,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Variable, String> {
        let object = Variable::empty_object();
        if let Variable::Object(map) = &object {
            for (name, source) in self.output_names.iter().zip(&self.outputs[row]) {
                let value = source.eval(frame, lists).map_err(|e| e.to_string())?;
                map.borrow_mut().insert_str(name, value);
            }
        }
        Ok(object)
    }

    fn apply_hit_policy(
        &self,
        mut matched: Vec<usize>,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<TableResult, String> {
        match self.hit_policy {
            HitPolicy::First | HitPolicy::Unique | HitPolicy::Priority => {
                if self.hit_policy == HitPolicy::Unique && matched.len() > 1 {
                    return Err(format!(
                        "table {} has hit policy unique but rows {} all match; make the rows exclusive or use `first`",
                        self.id,
                        matched.iter().map(|r| (r + 1).to_string()).collect::<Vec<_>>().join(", ")
                    ));
                }
                if self.hit_policy == HitPolicy::Priority && matched.len() > 1 {
                    let rank = |row: usize| -> usize {
                        self.outputs[row]
                            .first()
                            .and_then(ValueSource::constant)
                            .and_then(|c| self.output_priority.iter().position(|p| p == c))
                            .unwrap_or(usize::MAX)
                    };
                    let best = matched
                        .iter()
                        .copied()
                        .min_by_key(|&r| (rank(r), r))
                        .unwrap_or(matched[0]);
                    matched = vec![best];
                }
                let value = match matched.first() {
                    Some(&row) => self.row_object(row, frame, lists)?,
                    None => Variable::Null,
                };
                Ok(TableResult {
                    rows: matched,
                    value,
                })
            }
            HitPolicy::RuleOrder => {
                let mut list = Vec::with_capacity(matched.len());
                for &row in &matched {
                    list.push(self.row_object(row, frame, lists)?);
                }
                Ok(TableResult {
                    rows: matched,
                    value: Variable::from_array(list),
                })
            }
            HitPolicy::Collect => {
                let Some(aggregation) = self.aggregation else {
                    let mut list = Vec::with_capacity(matched.len());
                    for &row in &matched {
                        list.push(self.row_object(row, frame, lists)?);
                    }
                    return Ok(TableResult {
                        rows: matched,
                        value: Variable::from_array(list),
                    });
                };
                let mut numbers = Vec::with_capacity(matched.len());
                for &row in &matched {
                    let value = self.outputs[row][0]
                        .eval(frame, lists)
                        .map_err(|e| e.to_string())?;
                    match value {
                        Variable::Number(n) => numbers.push(n),
                        Variable::Null => {}
                        other => {
                            return Err(format!(
                                "table {} collects with {aggregation:?} but row {} gives {}",
                                self.id,
                                row + 1,
                                other.type_name()
                            ))
                        }
                    }
                }
                let aggregate = match aggregation {
                    Aggregation::Count => Some(Decimal::from(matched.len())),
                    Aggregation::Sum => Some(numbers.iter().sum()),
                    Aggregation::Min => numbers.iter().min().copied(),
                    Aggregation::Max => numbers.iter().max().copied(),
                };
                let object = Variable::empty_object();
                if let Variable::Object(map) = &object {
                    map.borrow_mut().insert_str(
                        &self.output_names[0],
                        aggregate.map_or(Variable::Null, Variable::Number),
                    );
                }
                Ok(TableResult {
                    rows: matched,
                    value: object,
                })
            }
        }
    }
}
