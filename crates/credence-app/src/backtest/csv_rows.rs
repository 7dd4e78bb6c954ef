//! CSV records for the back-test: plain lines split by hand, anything quoted parsed by `csv-core`.
//!
//! Why not `csv::Reader` alone: its byte-at-a-time state machine was a noticeable share of a
//! back-test row's whole cost (measured in docs/benchmarks.md, "Back-testing"). Nearly every line
//! of a history file has no quote and no carriage return inside it; such a line's fields are
//! exactly the text between its commas, found eight bytes at a time (the line's end and any
//! quote or carriage return are found with `memchr`). A line that has either is handed to
//! `csv-core` (the `csv` crate's own parser, same settings: comma, double quote, `""` escapes,
//! any of `\r`, `\n`, `\r\n` ending a record), which may read on across line ends inside quotes.
//! Both paths skip empty lines and require every record to have the header's field count, as
//! `csv::Reader` does with `flexible(false)`; a property test holds the two readers together.

use crate::error::{AppError, ErrorCode};
use std::io::Read;

/// A CSV file's problem, as an `invalid_input` error.
fn bad_csv(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidInput, message)
}

/// One CSV record: its fields' text, each field followed by one separator byte (a comma), and
/// where each field ends. A plain line is its own text: its commas are the separators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvRecord {
    text: String,
    ends: Vec<u32>,
}

impl CsvRecord {
    /// Appends a field.
    pub fn push_field(&mut self, field: &str) {
        if !self.ends.is_empty() {
            self.text.push(',');
        }
        self.text.push_str(field);
        self.ends.push(self.text.len() as u32);
    }

    /// Appends a field written by `Display` (no intermediate string).
    pub fn push_display(&mut self, field: impl std::fmt::Display) {
        use std::fmt::Write;
        if !self.ends.is_empty() {
            self.text.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{field}");
        self.ends.push(self.text.len() as u32);
    }

    /// Empties the record, keeping its buffers for the next row.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The `index`th field (from 0).
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize + 1,
        };
        self.text.get(start..end)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the record has no field.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every field, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// A plain line (no quote, no carriage return) split at its commas. The commas are found
    /// eight bytes at a time: in a word of the line's bytes XOR-ed with commas, each zero byte
    /// is a comma, and `((x & 0x7f..) + 0x7f..) | x` has its high bit clear exactly in the
    /// zero bytes (no carry crosses a byte, so no false hit follows a true one).
    fn from_plain_line(line: &str) -> CsvRecord {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
        let bytes = line.as_bytes();
        let mut ends = Vec::with_capacity(bytes.len() / 4 + 1);
        let mut words = bytes.chunks_exact(8);
        let mut base = 0u32;
        for word in &mut words {
            let x = u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ COMMAS;
            let mut commas = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
            while commas != 0 {
                ends.push(base + commas.trailing_zeros() / 8);
                commas &= commas - 1;
            }
            base += 8;
        }
        for (offset, byte) in words.remainder().iter().enumerate() {
            if *byte == b',' {
                ends.push(base + offset as u32);
            }
        }
        ends.push(bytes.len() as u32);
        CsvRecord {
            text: line.to_string(),
            ends,
        }
    }
}

impl<'a> FromIterator<&'a str> for CsvRecord {
    fn from_iter<T: IntoIterator<Item = &'a str>>(fields: T) -> CsvRecord {
        let mut record = CsvRecord::default();
        for field in fields {
            record.push_field(field);
        }
        record
    }
}

/// Bytes read from the file at a time.
const READ_BYTES: usize = 1 << 20;

/// A stream of CSV records from any reader; the first non-empty record is the header.
pub struct CsvRows<R> {
    source: R,
    buffer: Vec<u8>,
    /// Unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    at_eof: bool,
    /// The file's line of the next record (1-based), for messages.
    line: u64,
    header_fields: Option<usize>,
    core: csv_core::Reader,
    /// The slow path's output: field bytes and field ends.
    core_text: Vec<u8>,
    core_ends: Vec<usize>,
}

impl<R: Read> CsvRows<R> {
    /// Records read from `source`.
    pub fn new(source: R) -> CsvRows<R> {
        CsvRows {
            source,
            buffer: vec![0; READ_BYTES],
            start: 0,
            end: 0,
            at_eof: false,
            line: 1,
            header_fields: None,
            core: csv_core::Reader::new(),
            core_text: vec![0; 1024],
            core_ends: vec![0; 64],
        }
    }

    /// The header: the first non-empty record, a leading UTF-8 byte-order mark dropped.
    pub fn header(&mut self) -> Result<CsvRecord, AppError> {
        self.fill()?;
        if self.buffer[self.start..self.end].starts_with(b"\xEF\xBB\xBF") {
            self.start += 3;
        }
        let (header, _) = self
            .next_record()?
            .ok_or_else(|| bad_csv("the file is empty: the first line must name the columns"))?;
        self.header_fields = Some(header.len());
        Ok(header)
    }

    /// The next record and the bytes it took, or `None` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<(CsvRecord, u64)>, AppError> {
        let mut consumed = 0u64;
        loop {
            // A whole line in the buffer (or the last line, unterminated).
            let newline = loop {
                match memchr::memchr(b'\n', &self.buffer[self.start..self.end]) {
                    Some(at) => break Some(self.start + at),
                    None if self.at_eof => break None,
                    None => self.read_more()?,
                }
            };
            let line_end = newline.unwrap_or(self.end);
            if newline.is_none() && self.start == self.end {
                return Ok(None);
            }
            let mut line = &self.buffer[self.start..line_end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if memchr::memchr2(b'"', b'\r', line).is_some() {
                return match self.next_record_quoted()? {
                    Some((record, bytes)) => Ok(Some((record, consumed + bytes))),
                    None => Ok(None),
                };
            }
            let taken = (line_end - self.start + usize::from(newline.is_some())) as u64;
            consumed += taken;
            let line_number = self.line;
            self.line += 1;
            if line.is_empty() {
                self.start = line_end + usize::from(newline.is_some());
                continue;
            }
            let text = std::str::from_utf8(line)
                .map_err(|e| bad_csv(format!("CSV line {line_number}: {e}")))?;
            let record = CsvRecord::from_plain_line(text);
            self.check_fields(record.len(), line_number)?;
            self.start = line_end + usize::from(newline.is_some());
            return Ok(Some((record, consumed)));
        }
    }

    /// One record through `csv-core`, from the start of the unread bytes.
    fn next_record_quoted(&mut self) -> Result<Option<(CsvRecord, u64)>, AppError> {
        use csv_core::ReadRecordResult as Result;
        let line_number = self.line;
        let (mut written, mut fields, mut consumed) = (0usize, 0usize, 0u64);
        loop {
            let input = &self.buffer[self.start..self.end];
            let (result, read, wrote, ended) = self.core.read_record(
                input,
                &mut self.core_text[written..],
                &mut self.core_ends[fields..],
            );
            self.line += memchr::memchr_iter(b'\n', &input[..read]).count() as u64;
            self.start += read;
            consumed += read as u64;
            written += wrote;
            fields += ended;
            match result {
                Result::InputEmpty => {
                    if self.at_eof {
                        continue; // an empty input tells the parser the data has ended
                    }
                    self.read_more()?;
                }
                Result::OutputFull => self.core_text.resize(self.core_text.len() * 2, 0),
                Result::OutputEndsFull => self.core_ends.resize(self.core_ends.len() * 2, 0),
                Result::Record => break,
                Result::End => return Ok(None),
            }
        }
        self.check_fields(fields, line_number)?;
        let text = std::str::from_utf8(&self.core_text[..written])
            .map_err(|e| bad_csv(format!("CSV line {line_number}: {e}")))?;
        let mut record = CsvRecord::default();
        let mut from = 0;
        for &to in &self.core_ends[..fields] {
            // The record's text is UTF-8, and its fields are whole characters of it.
            let field = text.get(from..to).ok_or_else(|| {
                bad_csv(format!(
                    "CSV line {line_number}: a field ends inside a character"
                ))
            })?;
            record.push_field(field);
            from = to;
        }
        Ok(Some((record, consumed)))
    }

    fn check_fields(&self, fields: usize, line_number: u64) -> Result<(), AppError> {
        match self.header_fields {
            Some(expected) if expected != fields => Err(bad_csv(format!(
                "CSV line {line_number}: {fields} fields, but the header names {expected} columns"
            ))),
            _ => Ok(()),
        }
    }

    /// Reads more of the source into the buffer, keeping the unread bytes.
    fn read_more(&mut self) -> Result<(), AppError> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            // A line longer than the buffer.
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        let read = self
            .source
            .read(&mut self.buffer[self.end..])
            .map_err(|e| bad_csv(format!("reading the CSV file: {e}")))?;
        if read == 0 {
            self.at_eof = true;
        }
        self.end += read;
        Ok(())
    }

    fn fill(&mut self) -> Result<(), AppError> {
        while self.end < 3 && !self.at_eof {
            self.read_more()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every record of `text` through `CsvRows`, header first; or the error's message.
    fn read_all(text: &[u8], chunk: usize) -> Result<Vec<Vec<String>>, String> {
        let mut rows = CsvRows::new(Chunked(text, chunk));
        let mut out = Vec::new();
        match rows.header() {
            Ok(header) => out.push(header.iter().map(str::to_string).collect()),
            Err(e) => return Err(e.message),
        }
        while let Some((record, _)) = rows.next_record().map_err(|e| e.message)? {
            out.push(record.iter().map(str::to_string).collect());
        }
        Ok(out)
    }

    /// The same through `csv::Reader`, as the back-test read files before.
    fn read_all_with_csv(text: &[u8]) -> Result<Vec<Vec<String>>, String> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .has_headers(false)
            .from_reader(text);
        let mut out = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| e.to_string())?;
            out.push(record.iter().map(str::to_string).collect());
        }
        Ok(out)
    }

    /// A reader that hands out at most `chunk` bytes a call, so records straddle reads.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_plain_quoted_and_odd_lines_as_the_csv_crate_does() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("a,b\n1,2\n", &[&["a", "b"], &["1", "2"]]),
            ("a,b\r\n1,2\r\n", &[&["a", "b"], &["1", "2"]]),
            ("a,b\n1,2", &[&["a", "b"], &["1", "2"]]),
            (
                "a,b\n\n1,2\n\n\n3,4\n",
                &[&["a", "b"], &["1", "2"], &["3", "4"]],
            ),
            ("a,b\n,\n", &[&["a", "b"], &["", ""]]),
            (
                "a,b\n\"x, y\",\"say \"\"hi\"\"\"\n",
                &[&["a", "b"], &["x, y", "say \"hi\""]],
            ),
            (
                "a,b\n\"two\nlines\",2\n3,4\n",
                &[&["a", "b"], &["two\nlines", "2"], &["3", "4"]],
            ),
            ("a,b\r1,2\r3,4", &[&["a", "b"], &["1", "2"], &["3", "4"]]),
            ("\u{feff}a,b\n1,2\n", &[&["a", "b"], &["1", "2"]]),
            ("a,b\nå,ü\n", &[&["a", "b"], &["å", "ü"]]),
        ];
        for (text, expected) in cases {
            for chunk in [1, 2, 7, 4096] {
                let rows = read_all(text.as_bytes(), chunk).unwrap();
                assert_eq!(&rows, expected, "{text:?} read {chunk} bytes at a time");
            }
        }
    }

    #[test]
    fn a_record_with_another_field_count_or_bad_text_names_its_line() {
        let error = read_all(b"a,b\n1,2\n1,2,3\n", 4096).unwrap_err();
        assert_eq!(
            error,
            "CSV line 3: 3 fields, but the header names 2 columns"
        );
        let error = read_all(b"a,b\n1,2\n\"1\",2,\"3\"\n", 4096).unwrap_err();
        assert_eq!(
            error,
            "CSV line 3: 3 fields, but the header names 2 columns"
        );
        let error = read_all(b"a,b\n1,\xff\n", 4096).unwrap_err();
        assert!(error.starts_with("CSV line 2: invalid utf-8"), "{error}");
        let error = read_all(b"", 4096).unwrap_err();
        assert!(error.contains("the file is empty"), "{error}");
    }

    proptest! {
        #[test]
        fn agrees_with_the_csv_crate(
            cells in proptest::collection::vec(
                proptest::collection::vec("[a,\"\r\n é¬]{0,4}|\"[a,\"\r\n¬]{0,4}\"", 3),
                1..6,
            ),
            endings in proptest::collection::vec(prop_oneof!["\n", "\r\n", "\r", "\n\n"], 6),
            chunk in 1usize..40,
        ) {
            let mut text = String::new();
            for (row, ending) in cells.iter().zip(endings.iter().cycle()) {
                text.push_str(&row.join(","));
                text.push_str(ending);
            }
            let expected = read_all_with_csv(text.as_bytes());
            let got = read_all(text.as_bytes(), chunk);
            match (expected, got) {
                (Ok(expected), Ok(got)) => prop_assert_eq!(got, expected, "{:?}", text),
                (Err(_), Err(_)) => {}
                // An input with no record at all: csv gives no rows, this reader no header.
                (Ok(expected), Err(_)) => prop_assert!(expected.is_empty(), "{:?}", text),
                (Err(e), Ok(got)) => prop_assert!(false, "{:?}: csv failed ({}), got {:?}", text, e, got),
            }
        }
    }
}
