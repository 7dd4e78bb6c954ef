//! Universal Binary JSON (UBJSON, the format XGBoost writes for `save_model("*.ubj")`) read into a `serde_json::Value`.
//!
//! Written here rather than taken from a crate: none of the UBJSON crates is kept up, and the
//! format is small. The reader follows UBJSON draft 12 as XGBoost writes it (and the rest of
//! the draft, so that a file from another writer reads too): `{`/`}` objects whose keys are
//! length-prefixed strings, `[`/`]` arrays with the optional `$type` and `#count` markers (XGBoost
//! writes its `f32` and integer vectors as typed arrays), the integer markers `i U I l L`,
//! floats `d` (f32) and `D` (f64), `S` strings, `C` chars, `H` high-precision numbers (kept as
//! their decimal text), `T F Z` and the no-op `N`. All numbers are big-endian.
//!
//! A file is hostile input like any other: nesting is bounded, and every count is checked against
//! the bytes left before anything is allocated, so a forged count cannot exhaust memory.
//! A property test writes random JSON values as UBJSON and reads them back.

use serde_json::{Map, Number, Value};

/// Deeper nesting than any model file has; a guard against stack exhaustion.
const MAX_DEPTH: usize = 128;

/// Reads one UBJSON value filling the whole of `bytes`. The error names the byte offset.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    if reader.at != bytes.len() {
        return Err(format!(
            "{} bytes after the end of the value at byte {}",
            bytes.len() - reader.at,
            reader.at
        ));
    }
    Ok(value)
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, problem: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{problem} at byte {}", self.at))
    }

    fn byte(&mut self) -> Result<u8, String> {
        let Some(&b) = self.bytes.get(self.at) else {
            return self.fail("unexpected end of the file");
        };
        self.at += 1;
        Ok(b)
    }

    /// The next marker, skipping the no-op `N`.
    fn marker(&mut self) -> Result<u8, String> {
        loop {
            let b = self.byte()?;
            if b != b'N' {
                return Ok(b);
            }
        }
    }

    fn peek_marker(&mut self) -> Result<u8, String> {
        while self.bytes.get(self.at) == Some(&b'N') {
            self.at += 1;
        }
        match self.bytes.get(self.at) {
            Some(&b) => Ok(b),
            None => self.fail("unexpected end of the file"),
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some(slice) = self.bytes.get(self.at..self.at + N) else {
            return self.fail("unexpected end of the file");
        };
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// An integer of the type `marker` names, as i64 (`None`: not an integer marker).
    fn integer(&mut self, marker: u8) -> Result<Option<i64>, String> {
        Ok(Some(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.take()?)),
            b'U' => i64::from(self.byte()?),
            b'I' => i64::from(i16::from_be_bytes(self.take()?)),
            b'l' => i64::from(i32::from_be_bytes(self.take()?)),
            b'L' => i64::from_be_bytes(self.take()?),
            _ => return Ok(None),
        }))
    }

    /// A length: an integer marker and a non-negative value no larger than the bytes left
    /// could hold at `min_bytes_each` per item.
    fn length(&mut self, min_bytes_each: usize) -> Result<usize, String> {
        let marker = self.marker()?;
        let Some(n) = self.integer(marker)? else {
            return self.fail(format!(
                "expected a length, found marker `{}`",
                char::from(marker)
            ));
        };
        let left = self.bytes.len() - self.at;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bytes_each) <= left => Ok(n),
            _ => self.fail(format!(
                "length {n} is negative or longer than the {left} bytes left"
            )),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.length(1)?;
        let slice = &self.bytes[self.at..self.at + n];
        let text = std::str::from_utf8(slice)
            .map_err(|e| format!("a string is not UTF-8 ({e}) at byte {}", self.at))?;
        self.at += n;
        Ok(text.to_string())
    }

    fn float(&self, x: f64) -> Result<Value, String> {
        match Number::from_f64(x) {
            Some(n) => Ok(Value::Number(n)),
            None => self.fail(format!("the number {x} is not finite")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        let marker = self.marker()?;
        self.value_of(marker, depth)
    }

    /// The value whose type marker has been read.
    fn value_of(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        if let Some(n) = self.integer(marker)? {
            return Ok(Value::Number(n.into()));
        }
        match marker {
            b'Z' => Ok(Value::Null),
            b'T' => Ok(Value::Bool(true)),
            b'F' => Ok(Value::Bool(false)),
            b'd' => {
                let x = f64::from(f32::from_be_bytes(self.take()?));
                self.float(x)
            }
            b'D' => {
                let x = f64::from_be_bytes(self.take()?);
                self.float(x)
            }
            b'S' => Ok(Value::String(self.string()?)),
            b'C' => Ok(Value::String(char::from(self.byte()?).to_string())),
            b'H' => {
                let text = self.string()?;
                match serde_json::from_str::<Number>(&text) {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => self.fail(format!("`{text}` is not a number")),
                }
            }
            b'[' | b'{' if depth >= MAX_DEPTH => {
                self.fail(format!("nesting deeper than {MAX_DEPTH}"))
            }
            b'[' => self.array(depth + 1),
            b'{' => self.object(depth + 1),
            other => self.fail(format!("unknown marker `{}`", other.escape_ascii())),
        }
    }

    /// The optional `$type` and `#count` of a container just opened.
    fn container_header(&mut self) -> Result<(Option<u8>, Option<usize>), String> {
        let mut element_type = None;
        if self.peek_marker()? == b'$' {
            self.at += 1;
            element_type = Some(self.byte()?);
            if self.peek_marker()? != b'#' {
                return self.fail("a typed container must give its count (`#`)");
            }
        }
        if let Some(t @ (b'Z' | b'T' | b'F' | b'N')) = element_type {
            // Elements of no bytes: a count could not be checked against the file's size.
            return self.fail(format!(
                "a container typed `{}` (elements without bytes) is not read",
                char::from(t)
            ));
        }
        let mut count = None;
        if self.peek_marker()? == b'#' {
            self.at += 1;
            // Every element takes at least one byte.
            count = Some(self.length(1)?);
        }
        Ok((element_type, count))
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        let (element_type, count) = self.container_header()?;
        let mut items = Vec::new();
        match count {
            Some(n) => {
                items.reserve(n.min(1 << 20));
                for _ in 0..n {
                    let marker = match element_type {
                        Some(t) => t,
                        None => self.marker()?,
                    };
                    items.push(self.value_of(marker, depth)?);
                }
            }
            None => loop {
                let marker = self.marker()?;
                if marker == b']' {
                    break;
                }
                items.push(self.value_of(marker, depth)?);
            },
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let (element_type, count) = self.container_header()?;
        let mut map = Map::new();
        let mut entry = |reader: &mut Self| -> Result<(), String> {
            let key = reader.string()?;
            let marker = match element_type {
                Some(t) => t,
                None => reader.marker()?,
            };
            let value = reader.value_of(marker, depth)?;
            map.insert(key, value);
            Ok(())
        };
        match count {
            Some(n) => {
                for _ in 0..n {
                    entry(self)?;
                }
            }
            None => loop {
                if self.peek_marker()? == b'}' {
                    self.at += 1;
                    break;
                }
                entry(self)?;
            },
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UBJSON writer for the tests, in the styles XGBoost and other writers use: containers
    /// with and without counts, integers in their smallest marker.
    fn write(value: &Value, counted: bool, out: &mut Vec<u8>) {
        let length = |n: usize, out: &mut Vec<u8>| {
            out.push(b'L');
            out.extend((n as i64).to_be_bytes());
        };
        match value {
            Value::Null => out.push(b'Z'),
            Value::Bool(b) => out.push(if *b { b'T' } else { b'F' }),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    if let Ok(i) = i8::try_from(i) {
                        out.push(b'i');
                        out.extend(i.to_be_bytes());
                    } else if let Ok(i) = i32::try_from(i) {
                        out.push(b'l');
                        out.extend(i.to_be_bytes());
                    } else {
                        out.push(b'L');
                        out.extend(i.to_be_bytes());
                    }
                } else {
                    out.push(b'D');
                    out.extend(n.as_f64().unwrap().to_be_bytes());
                }
            }
            Value::String(s) => {
                out.push(b'S');
                length(s.len(), out);
                out.extend(s.as_bytes());
            }
            Value::Array(items) => {
                out.push(b'[');
                if counted {
                    out.push(b'#');
                    length(items.len(), out);
                }
                for item in items {
                    write(item, counted, out);
                }
                if !counted {
                    out.push(b']');
                }
            }
            Value::Object(map) => {
                out.push(b'{');
                if counted {
                    out.push(b'#');
                    length(map.len(), out);
                }
                for (key, item) in map {
                    length(key.len(), out);
                    out.extend(key.as_bytes());
                    write(item, counted, out);
                }
                if !counted {
                    out.push(b'}');
                }
            }
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Number(i.into())),
            (-1e300f64..1e300).prop_map(|x| Value::Number(Number::from_f64(x).unwrap())),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_back_what_was_written(value in json(), counted in any::<bool>()) {
            let mut bytes = Vec::new();
            write(&value, counted, &mut bytes);
            prop_assert_eq!(from_slice(&bytes), Ok(value));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = from_slice(&bytes);
        }
    }

    /// An XGBoost model read from UBJSON scores exactly as the same model read from JSON.
    #[test]
    fn a_model_scores_the_same_from_ubjson_and_json() {
        let json = include_str!("../tests/fixtures/xgb_missing/model.json");
        let value: Value = serde_json::from_str(json).unwrap();
        let mut ubj = Vec::new();
        write(&value, true, &mut ubj);
        let from_json = crate::Model::load("m.json", json.as_bytes()).unwrap();
        let from_ubj = crate::Model::load("m.ubj", &ubj).unwrap();
        assert_eq!(from_ubj.metadata().features, from_json.metadata().features);
        let n = from_json.metadata().features.len();
        for seed in 0..200u32 {
            let row: Vec<f64> = (0..n)
                .map(|i| {
                    let v = seed.wrapping_mul(2_654_435_761).rotate_left(i as u32 * 7) % 5000;
                    if v % 11 == 0 {
                        f64::NAN
                    } else {
                        f64::from(v)
                    }
                })
                .collect();
            assert_eq!(from_ubj.predict(&row), from_json.predict(&row), "{row:?}");
        }
    }

    #[test]
    fn typed_arrays_as_xgboost_writes_them() {
        // {"a": [$d#L 2: 0.5f32, -1.25f32], "b": [$U#L 3: 1 2 3]}
        let mut bytes = vec![b'{', b'L'];
        bytes.extend(1i64.to_be_bytes());
        bytes.extend(b"a[$d#L");
        bytes.extend(2i64.to_be_bytes());
        bytes.extend(0.5f32.to_be_bytes());
        bytes.extend((-1.25f32).to_be_bytes());
        bytes.push(b'L');
        bytes.extend(1i64.to_be_bytes());
        bytes.extend(b"b[$U#L");
        bytes.extend(3i64.to_be_bytes());
        bytes.extend([1, 2, 3]);
        bytes.push(b'}');
        assert_eq!(
            from_slice(&bytes),
            Ok(serde_json::json!({"a": [0.5, -1.25], "b": [1, 2, 3]}))
        );
    }

    #[test]
    fn hostile_files_are_refused_without_allocating() {
        let mut huge = b"[$d#L".to_vec();
        huge.extend(i64::MAX.to_be_bytes());
        let error = from_slice(&huge).unwrap_err();
        assert!(error.contains("longer than the 0 bytes left"), "{error}");

        let mut nulls = b"[$Z#L".to_vec();
        nulls.extend(i64::MAX.to_be_bytes());
        assert!(from_slice(&nulls)
            .unwrap_err()
            .contains("elements without bytes"));

        let deep = vec![b'['; 10_000];
        assert!(from_slice(&deep).unwrap_err().contains("nesting deeper"));

        let mut nan = vec![b'D'];
        nan.extend(f64::NAN.to_be_bytes());
        assert!(from_slice(&nan).unwrap_err().contains("not finite"));
        assert!(from_slice(b"Zi").unwrap_err().contains("bytes after"));
    }
}
