//! Arrow record batches as back-test rows: each cell printed as the text a Parquet row's cell is read as (numbers in their shortest exact form, decimals exactly, dates as YYYY-MM-DD, nulls as empty cells), so that Arrow rows take the CSV path — typed by the flow's schema, `step.field` columns as recorded provider answers — and decide exactly as `credence backtest` decides the same rows from a file.

use super::*;
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};

/// The header of a batch: its column names, as a CSV header would hold them.
pub fn header_of(schema: &arrow_schema::Schema) -> CsvRecord {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

/// Prints a batch's rows as records.
pub struct BatchRows<'b> {
    batch: &'b RecordBatch,
    formatters: Vec<Cell<'b>>,
}

/// How a column's cells print.
enum Cell<'b> {
    /// Floating point: the shortest text that reads back as the same number, without a
    /// trailing `.0` (`6000`, `0.1`), so a whole number held as a float (pandas turns integer
    /// columns with gaps into floats) still reads as an integer field.
    Float64(&'b arrow_array::Float64Array),
    Float32(&'b arrow_array::Float32Array),
    /// Text as it is; integers in decimal.
    Utf8(&'b arrow_array::StringArray),
    LargeUtf8(&'b arrow_array::LargeStringArray),
    Int64(&'b arrow_array::Int64Array),
    Int32(&'b arrow_array::Int32Array),
    /// Everything else as Arrow prints it.
    Other(ArrayFormatter<'b>),
}

/// The options every batch is printed with: nulls are empty cells.
static FORMAT: FormatOptions<'static> = FormatOptions::new().with_null("");

impl<'b> BatchRows<'b> {
    /// Formatters for each column of `batch`; a column of a type that has no text form (a
    /// map, a union) is an `invalid_input` error naming it.
    pub fn new(batch: &'b RecordBatch) -> Result<BatchRows<'b>, AppError> {
        let formatters = batch
            .columns()
            .iter()
            .zip(batch.schema_ref().fields())
            .map(|(column, field)| {
                use arrow_array::cast::AsArray;
                use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
                // The common types print without a formatter's dynamic dispatch.
                if let Some(floats) = column.as_primitive_opt::<Float64Type>() {
                    return Ok(Cell::Float64(floats));
                }
                if let Some(floats) = column.as_primitive_opt::<Float32Type>() {
                    return Ok(Cell::Float32(floats));
                }
                if let Some(text) = column.as_string_opt::<i32>() {
                    return Ok(Cell::Utf8(text));
                }
                if let Some(text) = column.as_string_opt::<i64>() {
                    return Ok(Cell::LargeUtf8(text));
                }
                if let Some(numbers) = column.as_primitive_opt::<Int64Type>() {
                    return Ok(Cell::Int64(numbers));
                }
                if let Some(numbers) = column.as_primitive_opt::<Int32Type>() {
                    return Ok(Cell::Int32(numbers));
                }
                ArrayFormatter::try_new(column.as_ref(), &FORMAT)
                    .map(Cell::Other)
                    .map_err(|e| {
                        AppError::new(
                            ErrorCode::InvalidInput,
                            format!(
                                "column {} of type {} cannot be read as an input: {e}",
                                field.name(),
                                field.data_type()
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchRows { batch, formatters })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the batch has no row.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    /// Row `row` into `record` (cleared first, its buffers reused).
    pub fn record_into(&self, row: usize, record: &mut CsvRecord) {
        record.clear();
        for (formatter, column) in self.formatters.iter().zip(self.batch.columns()) {
            if column.is_null(row) {
                record.push_field("");
                continue;
            }
            match formatter {
                Cell::Float64(floats) => push_float(record, floats.value(row)),
                // An f32's own shortest text (`0.1`), not that of its f64 widening.
                Cell::Float32(floats) => match floats.value(row) {
                    v if v.is_nan() => record.push_field(""),
                    v => record.push_display(v),
                },
                Cell::Utf8(text) => record.push_field(text.value(row)),
                Cell::LargeUtf8(text) => record.push_field(text.value(row)),
                Cell::Int64(numbers) => {
                    record.push_field(itoa::Buffer::new().format(numbers.value(row)))
                }
                Cell::Int32(numbers) => {
                    record.push_field(itoa::Buffer::new().format(numbers.value(row)))
                }
                Cell::Other(formatter) => record.push_display(formatter.value(row)),
            }
        }
    }
}

/// A float as its shortest round-trip text (Rust's `Display`: no exponent, no trailing `.0`);
/// NaN is a missing value (an empty cell), as pandas uses it.
fn push_float(record: &mut CsvRecord, value: f64) {
    if value.is_nan() {
        record.push_field("");
    } else {
        let mut buffer = zmij::Buffer::new();
        match display_text(&mut buffer, value) {
            Some(text) => record.push_field(text),
            None => record.push_display(value),
        }
    }
}

/// `value`'s `Display` text written by `zmij`, several times faster than `core::fmt`'s float
/// printing (a visible share of typing a batch's cells), where the two are sure to agree; `None`
/// (print with `Display`) elsewhere.
///
/// Both write the shortest digits that read back as the same number. With at most 15
/// significant digits those digits are unique (two 15-digit decimals are further apart than a
/// double's spacing), so the texts agree; with 16 or 17 two candidates can both read back, and
/// the two break a tie differently (`1793255143432689.25` is `…689.3` to `Display`, `…689.2`
/// to `zmij`). `zmij` also writes `6000.0` where `Display` writes `6000`, and an exponent
/// (`1e16`, `1e-7`) where `Display` writes every digit. A property test holds the texts equal.
fn display_text(buffer: &mut zmij::Buffer, value: f64) -> Option<&str> {
    if !value.is_finite() {
        return None;
    }
    let text = buffer.format_finite(value);
    let text = text.strip_suffix(".0").unwrap_or(text);
    let digits = text.trim_start_matches(['-', '0', '.']);
    let mut significant = 0;
    for byte in digits.bytes() {
        match byte {
            b'0'..=b'9' => significant += 1,
            b'.' => {}
            _ => return None, // an exponent
        }
    }
    (significant <= 15).then_some(text)
}

/// Record batches in memory as a back-test's rows (the Python package's back-test).
pub struct BatchesSource {
    batches: std::collections::VecDeque<RecordBatch>,
    pending: std::collections::VecDeque<CsvRecord>,
}

impl BatchesSource {
    /// The rows of `batches`, in order.
    pub fn new(batches: Vec<RecordBatch>) -> BatchesSource {
        BatchesSource {
            batches: batches.into(),
            pending: std::collections::VecDeque::new(),
        }
    }
}

impl RowSource for BatchesSource {
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Ok(Some((RawRow::Csv(record), 1)));
            }
            let Some(batch) = self.batches.pop_front() else {
                return Ok(None);
            };
            let rows = BatchRows::new(&batch)?;
            for row in 0..rows.len() {
                let mut record = CsvRecord::default();
                rows.record_into(row, &mut record);
                self.pending.push_back(record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    };
    use std::sync::Arc;

    #[test]
    fn floats_print_as_display_prints_them() {
        let mut buffer = zmij::Buffer::new();
        let cases = [
            0.0,
            -0.0,
            0.1,
            1.0,
            6000.0,
            3650.5,
            -12.25,
            1e15,
            1e16,
            1e-7,
            123456789.125,
            0.30000000000000004,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for value in cases {
            let ours = display_text(&mut buffer, value).map(str::to_string);
            if let Some(text) = ours {
                assert_eq!(text, value.to_string(), "{value:e}");
            }
        }
        assert_eq!(display_text(&mut buffer, 6000.0), Some("6000"));
        assert_eq!(display_text(&mut buffer, 1e16), None);
        assert_eq!(display_text(&mut buffer, 0.000123), Some("0.000123"));
        assert_eq!(display_text(&mut buffer, -3650.25), Some("-3650.25"));
        // A tie between two 17-digit texts, which the two printers break differently.
        assert_eq!(
            display_text(&mut buffer, 1_793_255_143_432_689.0 + 0.25),
            None
        );
        assert_eq!(display_text(&mut buffer, 0.30000000000000004), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Any bits (mostly exponent forms, left to `Display`), every magnitude `zmij` writes
        /// without an exponent, and money-like values with a few decimals.
        #[test]
        fn any_float_prints_as_display_prints_it(
            bits in proptest::prelude::any::<u64>(),
            plain in 1e-5f64..1e16,
            negative in proptest::prelude::any::<bool>(),
            scaled in -1e9f64..1e9,
        ) {
            let mut buffer = zmij::Buffer::new();
            let plain = if negative { -plain } else { plain };
            for value in [f64::from_bits(bits), plain, scaled, (scaled * 100.0).round() / 100.0] {
                if let Some(text) = display_text(&mut buffer, value) {
                    proptest::prop_assert_eq!(text, value.to_string());
                }
            }
        }
    }

    #[test]
    fn cells_print_as_a_parquet_row_reads_them() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "amount",
                Arc::new(Float64Array::from(vec![Some(6000.0), Some(0.1), None])),
            ),
            (
                "count",
                Arc::new(Int64Array::from(vec![Some(3), None, Some(-1)])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a,b"), Some(""), None])),
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from(vec![Some(123_456), None, Some(5)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![Some(20_000), None, Some(0)])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let rows = BatchRows::new(&batch).unwrap();
        let mut record = CsvRecord::default();
        let mut printed = Vec::new();
        for row in 0..rows.len() {
            rows.record_into(row, &mut record);
            printed.push(record.iter().map(str::to_string).collect::<Vec<_>>());
        }
        assert_eq!(
            printed,
            [
                ["6000", "3", "a,b", "1234.56", "2024-10-04"],
                ["0.1", "", "", "", ""],
                ["", "-1", "", "0.05", "1970-01-01"],
            ]
        );
        assert_eq!(
            header_of(&batch.schema()).iter().collect::<Vec<_>>(),
            ["amount", "count", "name", "price", "day"]
        );
    }
}
