//! Decision tables with DMN hit policies, indexed per column so large tables are not scanned row by row.
//!
//! Each input column whose cells are simple tests (`-`, literals, comparisons, intervals) gets
//! an index: the rows of each literal, and the rows covering each elementary interval between
//! the column's numeric bounds (a bitset per interval for small tables, a segment tree for large
//! ones, so that building stays O(n log n) in rows). A lookup intersects one bitset per column and then only checks, with
//! ZEN, the few cells no index could answer. Matching order is row order, so hit policies see
//! exactly what a linear scan would have seen.

mod compile;
mod eval;
mod overlap;
pub(crate) mod raw;
mod rows_csv;

use crate::value::{Constant, ValueSource};
use credence_expr::{
    Expr, Frame, Literal, NamedLists, SimpleTest, Slot, UnaryTest, Value, ValueRef,
};
pub(crate) use raw::*;
use rust_decimal::Decimal;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

type Bits = Vec<u64>;

fn bits_with(rows: usize) -> Bits {
    vec![0; rows.div_ceil(64)]
}

fn set_bit(bits: &mut [u64], row: usize) {
    bits[row / 64] |= 1 << (row % 64);
}

/// Rows of a column that a literal or a stretch of numbers selects: a bitset where that is
/// small (few rows, or many of them selected), else the row numbers, so that a column of
/// 100,000 distinct literals costs 100,000 row numbers rather than 100,000 bitsets.
#[derive(Debug, Clone)]
enum RowSet {
    Dense(Bits),
    Sparse(Vec<u32>),
}

impl RowSet {
    fn from_rows(selected: &[u32], rows: usize, allow_dense: bool) -> RowSet {
        if allow_dense && rows.div_ceil(64) <= 2 * selected.len().max(1) {
            let mut bits = bits_with(rows);
            for &row in selected {
                set_bit(&mut bits, row as usize);
            }
            RowSet::Dense(bits)
        } else {
            RowSet::Sparse(selected.to_vec())
        }
    }

    fn or_into(&self, out: &mut [u64]) {
        match self {
            RowSet::Dense(bits) => or_into(out, bits),
            RowSet::Sparse(selected) => {
                for &row in selected {
                    set_bit(out, row as usize);
                }
            }
        }
    }
}

/// Which rows' intervals cover each segment of a column's number line.
///
/// A row's interval covers a contiguous run of segments (found by binary search of its two
/// bounds). With few rows and bounds, every segment keeps a bitset (one OR per lookup); past
/// [`DENSE_SEGMENT_WORDS`] words, a segment tree holds each run at O(log n) nodes, so building
/// is O(n log n) in rows and a lookup ORs the rows on one leaf-to-root path.
#[derive(Debug, Clone)]
enum Segments {
    None,
    Dense(Vec<Bits>),
    /// `nodes[1]` is the root over `leaves` segments (a power of two); leaf `s` is
    /// `nodes[leaves + s]`.
    Tree {
        leaves: usize,
        nodes: Vec<Vec<u32>>,
    },
}

/// The largest segments × rows bitset grid kept dense, in 64-bit words (4 MiB).
const DENSE_SEGMENT_WORDS: usize = 1 << 19;

/// Index of one input column.
#[derive(Debug, Clone)]
struct ColumnIndex {
    /// Rows whose cell matches anything, or that the index cannot answer (checked later).
    always: Bits,
    /// Rows by the number or boolean their cell names.
    by_literal: HashMap<Key, RowSet>,
    /// Rows by the string their cell names: apart from numbers and booleans, so that a string
    /// value is looked up as the `&str` it is, without a key allocated per evaluation.
    by_string: HashMap<Box<str>, RowSet>,
    /// Sorted distinct numeric bounds; segment `2k` is below `bounds[k]`, `2k+1` is it exactly.
    bounds: Vec<Decimal>,
    /// The rows covering each of the `2 * bounds.len() + 1` segments.
    segments: Segments,
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
    /// `dense_words`: the largest bitset grid kept dense (0 keeps nothing dense, for tests).
    fn build(cells: &[&UnaryTest], rows: usize, dense_words: usize) -> ColumnIndex {
        let mut always = bits_with(rows);
        let mut by_literal: HashMap<Key, Vec<u32>> = HashMap::new();
        let mut bounds = Vec::new();
        let mut ranges: Vec<(u32, &credence_expr::Interval)> = Vec::new();
        for (row, cell) in cells.iter().enumerate() {
            match cell.simple() {
                Some(SimpleTest::Any) | None => set_bit(&mut always, row),
                Some(SimpleTest::OneOf(literals)) => {
                    for literal in literals {
                        let selected = by_literal.entry(Key::of_literal(literal)).or_default();
                        if selected.last() != Some(&(row as u32)) {
                            selected.push(row as u32);
                        }
                    }
                }
                Some(SimpleTest::Range(interval)) => {
                    bounds.extend(interval.low.map(|(b, _)| b));
                    bounds.extend(interval.high.map(|(b, _)| b));
                    ranges.push((row as u32, interval));
                }
            }
        }
        bounds.sort();
        bounds.dedup();
        let segment_count = 2 * bounds.len() + 1;
        // Each range row's run of segments, first and last inclusive; empty runs are dropped.
        let runs: Vec<(u32, usize, usize)> = ranges
            .iter()
            .filter_map(|&(row, interval)| {
                let (first, last) = segment_run(&bounds, interval);
                (first <= last).then_some((row, first, last))
            })
            .collect();
        let segments = if ranges.is_empty() {
            Segments::None
        } else if segment_count.saturating_mul(rows.div_ceil(64)) <= dense_words {
            let mut grid = vec![bits_with(rows); segment_count];
            for &(row, first, last) in &runs {
                for bits in &mut grid[first..=last] {
                    set_bit(bits, row as usize);
                }
            }
            Segments::Dense(grid)
        } else {
            let leaves = segment_count.next_power_of_two();
            let mut nodes = vec![Vec::new(); 2 * leaves];
            for &(row, first, last) in &runs {
                // The canonical cover of [first, last]: O(log n) nodes.
                let (mut low, mut high) = (first + leaves, last + leaves + 1);
                while low < high {
                    if low % 2 == 1 {
                        nodes[low].push(row);
                        low += 1;
                    }
                    if high % 2 == 1 {
                        high -= 1;
                        nodes[high].push(row);
                    }
                    low /= 2;
                    high /= 2;
                }
            }
            Segments::Tree { leaves, nodes }
        };
        let mut index = ColumnIndex {
            always,
            by_literal: HashMap::new(),
            by_string: HashMap::new(),
            bounds,
            segments,
        };
        for (key, selected) in by_literal {
            let selected = RowSet::from_rows(&selected, rows, dense_words > 0);
            match key {
                Key::String(text) => index.by_string.insert(text.into_boxed_str(), selected),
                other => index.by_literal.insert(other, selected),
            };
        }
        index
    }

    /// Rows whose cell may match `value` (exact except for rows the index cannot answer).
    fn candidates_into(&self, value: &Value, out: &mut [u64]) {
        out.copy_from_slice(&self.always);
        let selected = match value.kind() {
            ValueRef::Number(n) => self.by_literal.get(&Key::Number(n.normalize())),
            ValueRef::String(s) => self.by_string.get(s),
            ValueRef::Bool(b) => self.by_literal.get(&Key::Bool(b)),
            _ => None,
        };
        if let Some(selected) = selected {
            selected.or_into(out);
        }
        let Some(x) = value.as_number() else {
            return;
        };
        let x = &x;
        let segment = || match self.bounds.binary_search(x) {
            Ok(k) => 2 * k + 1,
            Err(k) => 2 * k,
        };
        match &self.segments {
            Segments::None => {}
            Segments::Dense(grid) => or_into(out, &grid[segment()]),
            Segments::Tree { leaves, nodes } => {
                let mut node = leaves + segment();
                while node >= 1 {
                    for &row in &nodes[node] {
                        set_bit(out, row as usize);
                    }
                    node /= 2;
                }
            }
        }
    }
}

/// The first and last segment an interval covers (first > last when it covers none). Segment
/// `2k + 1` is `bounds[k]` itself and segment `2k` the open stretch below it; each of the
/// interval's ends is one of `bounds`.
fn segment_run(bounds: &[Decimal], interval: &credence_expr::Interval) -> (usize, usize) {
    let position = |b: &Decimal| bounds.binary_search(b).unwrap_or_else(|k| k);
    let first = match interval.low {
        None => 0,
        Some((low, true)) => 2 * position(&low) + 1,
        Some((low, false)) => 2 * position(&low) + 2,
    };
    let last = match interval.high {
        None => 2 * bounds.len(),
        Some((high, true)) => 2 * position(&high) + 1,
        Some((high, false)) => 2 * position(&high),
    };
    (first, last)
}

fn or_into(out: &mut [u64], bits: &[u64]) {
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
    pub value: Value,
}

impl DecisionTable {
    pub fn new(definition: TableDefinition) -> DecisionTable {
        Self::with_dense_limit(definition, DENSE_SEGMENT_WORDS)
    }

    /// A table whose indexes keep bitsets only up to `dense_words` words (0: none), so tests
    /// can hold the sparse forms to a linear scan on small tables.
    pub(crate) fn with_dense_limit(
        definition: TableDefinition,
        dense_words: usize,
    ) -> DecisionTable {
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
                ColumnIndex::build(&column_cells, rows, dense_words)
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

    /// Evaluates the table. A `unique` table with two matching rows is an error (a defect in the
    /// strategy, not a business outcome).
    pub fn evaluate(&self, frame: &mut Frame, lists: &NamedLists) -> Result<TableResult, String> {
        // Scratch on the stack for tables of up to four inputs and 256 rows, which is most.
        let mut values: SmallVec<[Value; 4]> = SmallVec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            values.push(input.eval(frame, lists).map_err(|e| e.to_string())?);
        }
        let rows = self.cells.len();
        let words = rows.div_ceil(64);
        let mut candidates: SmallVec<[u64; 4]> = smallvec::smallvec![u64::MAX; words];
        if !rows.is_multiple_of(64) {
            if let Some(last) = candidates.last_mut() {
                *last = (1u64 << (rows % 64)) - 1;
            }
        }
        let mut column_bits: SmallVec<[u64; 4]> = smallvec::smallvec![0; words];
        for (index, value) in self.indexes.iter().zip(&values) {
            index.candidates_into(value, &mut column_bits);
            for (c, b) in candidates.iter_mut().zip(&column_bits) {
                *c &= b;
            }
        }
        let stop_at_first = self.hit_policy == HitPolicy::First;
        let mut matched: SmallVec<[usize; 4]> = SmallVec::new();
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
        self.apply_hit_policy(matched.into_vec(), frame, lists)
    }

    #[cfg(test)]
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

    fn residual_match(&self, row: usize, values: &[Value], frame: &mut Frame) -> bool {
        self.residual[row]
            .iter()
            .all(|&column| self.cells[row][column].test(&values[column], frame))
    }

    fn row_object(
        &self,
        row: usize,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Value, String> {
        Value::try_object(
            self.output_names
                .iter()
                .zip(&self.outputs[row])
                .map(|(name, source)| {
                    let value = source.eval(frame, lists).map_err(|e| e.to_string())?;
                    Ok((name.as_str(), value))
                }),
        )
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
                    None => Value::NULL,
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
                    value: Value::list(list),
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
                        value: Value::list(list),
                    });
                };
                let mut numbers = Vec::with_capacity(matched.len());
                for &row in &matched {
                    let value = self.outputs[row][0]
                        .eval(frame, lists)
                        .map_err(|e| e.to_string())?;
                    match value.kind() {
                        ValueRef::Number(n) => numbers.push(n),
                        ValueRef::Null => {}
                        _ => {
                            return Err(format!(
                                "table {} collects with {aggregation:?} but row {} gives {}",
                                self.id,
                                row + 1,
                                value.type_name()
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
                let object = Value::object([(
                    self.output_names[0].as_str(),
                    aggregate.map_or(Value::NULL, Value::number),
                )]);
                Ok(TableResult {
                    rows: matched,
                    value: object,
                })
            }
        }
    }
}

step_kind!(DecisionTable, key: "table", raw: RawTable, compile: table, evaluate: table);
