//! Compact JSON text of any `Serialize` value, byte for byte what `serde_json::to_writer` writes, with less work for the records every decision writes.
//!
//! Why not serde_json itself: a decision record is some 2,600 bytes in about 250 short
//! strings (keys, codes, step ids, decimals), and serde_json writes each through `io::Write`:
//! the opening quote, every run between escapes and the closing quote are separate writes, and
//! it looks every byte up in its escape table. Writing a record took about 48,000 instructions,
//! a sixth of a served decision; with this writer, which appends to a `Vec<u8>` directly,
//! reserves a string's room once and looks for bytes that need escaping eight at a time, it
//! took about 37,700, and about 29,700 since a clean string is copied with one capacity check
//! and short ones as words ([`push_quoted`]; `tools/load/instructions_per_decision.sh`; the
//! rest is serde's own walk of the decision and decimals printed as text).
//!
//! Its output is serde_json's compact output exactly (same escapes, `zmij` for floats, `null`
//! for non-finite ones, integer and boolean map keys quoted, `RawValue` written as it is); the
//! property tests below hold the two together on arbitrary values and on the example's
//! decisions. Where serde_json would refuse something (a map key that is not a string or a
//! number), this writer refuses too and [`to_vec`] asks serde_json, so errors stay serde_json's.

use serde::ser::{self, Serialize};
use std::fmt::Display;

/// The compact JSON of `value`, as `serde_json::to_vec` writes it.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    append(&mut out, value)?;
    Ok(out)
}

/// Appends the compact JSON of `value` to `out`; on an error `out` is as it was.
pub fn append<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let start = out.len();
    if value.serialize(Writer { out: &mut *out }).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    let refused = serde_json::to_writer(&mut *out, value);
    if refused.is_err() {
        out.truncate(start);
    }
    refused
}

/// The name `serde_json::value::RawValue` serialises under: its one field is JSON text to copy.
pub(crate) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A construct serde_json would refuse or write differently; [`append`] then asks serde_json.
#[derive(Debug)]
pub struct Unsupported;

impl Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not written by the compact writer")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: Display>(_: T) -> Self {
        Unsupported
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

/// What a byte becomes inside a JSON string (0: itself), as serde_json escapes it.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `word` is a control character, `"` or `\`.
#[inline(always)]
fn needs_escape(word: u64) -> bool {
    escape_flags(word) != 0
}

/// The high bit of the bytes of `word` (little-endian) flagged as a control character, `"` or
/// `\`. The two classic tests, exact as answers to "any byte?": a byte below 0x20 borrows into
/// its high bit when 0x20 is taken from it (`hasless`); a byte equal to `"` or `\` is zero
/// after the xor (`haszero`). A borrow can flag a byte above a true hit, never below one or
/// without one: the lowest flag is exact.
#[inline(always)]
fn escape_flags(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = has_zero(word ^ (ONES * b'"' as u64));
    let backslash = has_zero(word ^ (ONES * b'\\' as u64));
    (below_space | quote | backslash) & HIGHS
}

/// Where the first byte of `bytes` that a JSON string must escape (a control character, `"`
/// or `\`) is, eight bytes at a time: where a string's text ends when it is read in place
/// (`credence-app`'s flat read of request bodies).
pub fn first_escape(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    for (index, chunk) in (&mut words).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let flags = escape_flags(u64::from_le_bytes(word));
        if flags != 0 {
            return Some(index * 8 + flags.trailing_zeros() as usize / 8);
        }
    }
    let tail = bytes.len() - words.remainder().len();
    words
        .remainder()
        .iter()
        .position(|&byte| ESCAPE[usize::from(byte)] != 0)
        .map(|at| tail + at)
}

/// Appends `text` as a JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if any_needs_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        write_escaped(out, bytes);
        out.push(b'"');
    } else {
        push_quoted(out, bytes);
    }
}

/// Appends `"`, `bytes`, `"` with one capacity check. A record writes some 240 strings, most
/// of them keys and codes under 16 bytes: pushed byte, slice and byte, each with its own
/// capacity check and the slice through a call to `memcpy`, a string took about 100
/// instructions. Here a string of up to 16 bytes is copied as two overlapping words (or
/// halves, or single bytes), longer ones by `copy_nonoverlapping`. The property tests below
/// hold the output to serde_json's for strings of every length up to three words.
#[inline(always)]
fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    out.reserve(len + 2);
    let start = out.len();
    // SAFETY: `reserve` left room for `len + 2` bytes after `start`, and every write below lands
    // in `start..start + len + 2` of `out`'s allocation; every read is within `bytes` (the
    // reads of a case overlap and cover `0..len` between them; each arm's range of `len` is
    // `copy_two_words`'s bound for its word). The new length is exactly what was written.
    unsafe {
        let quote = out.as_mut_ptr().add(start);
        quote.write(b'"');
        let to = quote.add(1);
        let from = bytes.as_ptr();
        match len {
            0 => {}
            1..=3 => {
                to.write(*from);
                to.add(len / 2).write(*from.add(len / 2));
                to.add(len - 1).write(*from.add(len - 1));
            }
            4..=7 => copy_two_words::<u32>(from, to, len),
            8..=16 => copy_two_words::<u64>(from, to, len),
            _ => std::ptr::copy_nonoverlapping(from, to, len),
        }
        to.add(len).write(b'"');
        out.set_len(start + len + 2);
    }
}

/// Copies `len` bytes from `from` to `to` as two words `W` that overlap: the first `W` and the
/// last.
///
/// # Safety
/// `size_of::<W>() <= len <= 2 * size_of::<W>()`, `from` readable and `to` writable for `len`
/// bytes (the reads and writes are unaligned).
#[inline(always)]
unsafe fn copy_two_words<W: Copy>(from: *const u8, to: *mut u8, len: usize) {
    let width = std::mem::size_of::<W>();
    // SAFETY: the caller's bounds put both words within `0..len` of each side.
    unsafe {
        let (first, last) = (
            from.cast::<W>().read_unaligned(),
            from.add(len - width).cast::<W>().read_unaligned(),
        );
        to.cast::<W>().write_unaligned(first);
        to.add(len - width).cast::<W>().write_unaligned(last);
    }
}

/// Whether any byte of `bytes` needs escaping, tested a word at a time: whole words, then the
/// last eight bytes (overlapping the words before); a string shorter than a word is read as
/// (overlapping) halves, padded with a letter.
#[inline(always)]
fn any_needs_escape(bytes: &[u8]) -> bool {
    let len = bytes.len();
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    if len >= 8 {
        let mut at = 0;
        while at + 8 < len {
            if needs_escape(word_at(at)) {
                return true;
            }
            at += 8;
        }
        return needs_escape(word_at(len - 8));
    }
    const FILL: u64 = ONES * b'a' as u64;
    let word = match len {
        0 => FILL,
        1 => FILL << 8 | u64::from(bytes[0]),
        2 | 3 => {
            let first = u64::from(u16::from_le_bytes([bytes[0], bytes[1]]));
            let last = u64::from(u16::from_le_bytes([bytes[len - 2], bytes[len - 1]]));
            FILL << 32 | last << 16 | first
        }
        _ => {
            let first = u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
            let last = u64::from(u32::from_le_bytes([
                bytes[len - 4],
                bytes[len - 3],
                bytes[len - 2],
                bytes[len - 1],
            ]));
            last << 32 | first
        }
    };
    needs_escape(word)
}

/// `bytes` with what needs escaping escaped, byte by byte (the rare string that needs it).
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run_start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape != 0 {
            out.extend_from_slice(&bytes[run_start..at]);
            write_escape(out, escape, byte);
            run_start = at + 1;
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
}

fn write_escape(out: &mut Vec<u8>, escape: u8, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match escape {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(byte >> 4) as usize],
            HEX[(byte & 0xf) as usize],
        ]),
        other => out.extend_from_slice(&[b'\\', other]),
    }
}

fn write_integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

/// A sequence or map being written: whether an item has been written yet.
struct Compound<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    /// Closing bytes: `]`, `}`, or `]}` / `}}` for a variant's.
    close: &'static [u8],
}

impl Compound<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
    }

    fn finish(self) -> Result {
        self.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'o> ser::Serializer for Writer<'o> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Compound<'o>;
    type SerializeTupleStruct = Compound<'o>;
    type SerializeTupleVariant = Compound<'o>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = StructWriter<'o>;
    type SerializeStructVariant = Compound<'o>;

    fn serialize_bool(self, v: bool) -> Result {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result {
        write_integer(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result {
        if v.is_finite() {
            self.out
                .extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
        } else {
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result {
        if v.is_finite() {
            self.out
                .extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
        } else {
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        self.out.push(b'[');
        for (i, byte) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_integer(self.out, *byte);
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> Result {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(Writer {
            out: &mut *self.out,
        })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'o>> {
        self.out.push(b'[');
        Ok(Compound {
            out: self.out,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'o>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'o>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'o>> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            out: self.out,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'o>> {
        self.out.push(b'{');
        Ok(Compound {
            out: self.out,
            first: true,
            close: b"}",
        })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<StructWriter<'o>> {
        if name == RAW_VALUE_TOKEN {
            return Ok(StructWriter::Raw(self.out));
        }
        self.out.push(b'{');
        Ok(StructWriter::Fields(Compound {
            out: self.out,
            first: true,
            close: b"}",
        }))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'o>> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            out: self.out,
            first: true,
            close: b"}}",
        })
    }
    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result {
        self.serialize_str(&value.to_string())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        self.separate();
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result {
        self.separate();
        key.serialize(KeyWriter {
            out: &mut *self.out,
        })?;
        self.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result {
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result {
        self.separate();
        write_str(self.out, key);
        self.out.push(b':');
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> Result {
        self.finish()
    }
}

/// A struct's fields, or a `RawValue`'s text.
enum StructWriter<'o> {
    Fields(Compound<'o>),
    Raw(&'o mut Vec<u8>),
}

impl ser::SerializeStruct for StructWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result {
        match self {
            StructWriter::Fields(fields) => {
                ser::SerializeStructVariant::serialize_field(fields, key, value)
            }
            StructWriter::Raw(out) => value.serialize(RawWriter { out }),
        }
    }
    fn end(self) -> Result {
        match self {
            StructWriter::Fields(fields) => fields.finish(),
            StructWriter::Raw(_) => Ok(()),
        }
    }
}

/// Writes a map key as serde_json does: strings as they are; numbers, booleans and characters
/// quoted; anything else refused (serde_json refuses it too, and [`append`] lets it say so).
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn quoted(self, text: &str) -> Result {
        self.out.push(b'"');
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'"');
        Ok(())
    }
}

/// The methods of a serializer that refuse what they are given: the writer hands it to
/// serde_json. `scalars` refuses one argument of each given type; `others` refuses the rest of
/// serde's data model (options, units, variants, sequences, maps, structs, bytes).
macro_rules! refuse {
    (scalars: $($method:ident($kind:ty)),* $(,)?) => {
        $(fn $method(self, _: $kind) -> Result {
            Err(Unsupported)
        })*
    };
    (others) => {
        type SerializeSeq = ser::Impossible<(), Unsupported>;
        type SerializeTuple = ser::Impossible<(), Unsupported>;
        type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
        type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
        type SerializeMap = ser::Impossible<(), Unsupported>;
        type SerializeStruct = ser::Impossible<(), Unsupported>;
        type SerializeStructVariant = ser::Impossible<(), Unsupported>;

        fn serialize_bytes(self, _: &[u8]) -> Result {
            Err(Unsupported)
        }
        fn serialize_none(self) -> Result {
            Err(Unsupported)
        }
        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result {
            Err(Unsupported)
        }
        fn serialize_unit(self) -> Result {
            Err(Unsupported)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result {
            Err(Unsupported)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result {
            Err(Unsupported)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
            Err(Unsupported)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
            Err(Unsupported)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct> {
            Err(Unsupported)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant> {
            Err(Unsupported)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
            Err(Unsupported)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
            Err(Unsupported)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant> {
            Err(Unsupported)
        }
    };
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    refuse!(others);

    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_char(self, v: char) -> Result {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bool(self, v: bool) -> Result {
        self.quoted(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_i16(self, v: i16) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_i32(self, v: i32) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_i64(self, v: i64) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_i128(self, v: i128) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_u8(self, v: u8) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_u16(self, v: u16) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_u32(self, v: u32) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_u64(self, v: u64) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_u128(self, v: u128) -> Result {
        self.quoted(itoa::Buffer::new().format(v))
    }
    fn serialize_f32(self, v: f32) -> Result {
        if !v.is_finite() {
            return Err(Unsupported);
        }
        self.quoted(zmij::Buffer::new().format_finite(v))
    }
    fn serialize_f64(self, v: f64) -> Result {
        if !v.is_finite() {
            return Err(Unsupported);
        }
        self.quoted(zmij::Buffer::new().format_finite(v))
    }
}

/// A `RawValue`'s field: its JSON text, copied as it is.
struct RawWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl ser::Serializer for RawWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    refuse!(others);
    refuse!(scalars: serialize_bool(bool), serialize_i8(i8), serialize_i16(i16),
        serialize_i32(i32), serialize_i64(i64), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_f32(f32), serialize_f64(f64),
        serialize_char(char));

    fn serialize_str(self, v: &str) -> Result {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn same_as_serde_json<T: Serialize + ?Sized + std::fmt::Debug>(value: &T) {
        let expected = serde_json::to_vec(value).unwrap();
        let written = to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected),
            "{value:?}"
        );
    }

    #[derive(serde::Serialize, Debug)]
    enum Shape {
        Unit,
        Newtype(i32),
        Tuple(u8, String),
        Struct { a: Option<f64>, b: Vec<bool> },
    }

    #[derive(serde::Serialize, Debug)]
    struct Holder {
        #[serde(flatten)]
        shape: BTreeMap<String, i64>,
        raw: Box<serde_json::value::RawValue>,
        unit: (),
        bytes: serde_bytes_like::Bytes,
        character: char,
        float: f32,
        nan: f64,
        big: i128,
        keys: BTreeMap<u16, &'static str>,
        bool_keys: BTreeMap<bool, u8>,
        shapes: Vec<Shape>,
    }

    /// `serialize_bytes` without a dependency: a byte slice serialised as bytes.
    mod serde_bytes_like {
        #[derive(Debug)]
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    /// A map with keys of any type (floats and wide integers have no `Ord` for a `BTreeMap`).
    #[derive(Debug)]
    struct Keys<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Keys<K, V> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    #[test]
    fn every_construct_is_written_as_serde_json_writes_it() {
        let holder = Holder {
            shape: [("x".to_string(), 1), ("y\n".to_string(), -2)].into(),
            raw: serde_json::value::RawValue::from_string("{\"kept\": [1, 2]}".into()).unwrap(),
            unit: (),
            bytes: serde_bytes_like::Bytes(vec![0, 7, 255]),
            character: '"',
            float: 0.1,
            nan: f64::NAN,
            big: -170141183460469231731687303715884105728,
            keys: [(3, "three"), (10, "ten")].into(),
            bool_keys: [(false, 0), (true, 1)].into(),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(-5),
                Shape::Tuple(9, "t\u{7f}é\u{1}".into()),
                Shape::Struct {
                    a: Some(f64::INFINITY),
                    b: vec![true, false],
                },
                Shape::Struct { a: None, b: vec![] },
            ],
        };
        same_as_serde_json(&holder);
        same_as_serde_json(&Keys(vec![(0.5, 1), (-1e300, 2), (3.0, 3)]));
        same_as_serde_json(&Keys(vec![(i128::MIN, 'c'), (7, '\n')]));
        same_as_serde_json(&Some(1e300));
        same_as_serde_json("");
        same_as_serde_json(&Vec::<u8>::new());
    }

    #[test]
    fn what_serde_json_refuses_it_refuses_with_serde_json_error() {
        let map: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        let ours = to_vec(&map).unwrap_err().to_string();
        let theirs = serde_json::to_vec(&map).unwrap_err().to_string();
        assert_eq!(ours, theirs);
        let infinite_key = Keys(vec![(f64::INFINITY, 1)]);
        let ours = to_vec(&infinite_key).unwrap_err().to_string();
        assert_eq!(
            ours,
            serde_json::to_vec(&infinite_key).unwrap_err().to_string()
        );
        let mut out = b"[1,".to_vec();
        assert!(append(&mut out, &map).is_err());
        assert_eq!(out, b"[1,", "a refused value leaves the output as it was");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            // Text dense in what needs escaping, and bytes beside it at every alignment.
            "[\"\\\\\u{0}-\u{1f}a\u{7f}é中😀]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Each byte value at each position of a word, among neighbours of every kind.
    #[test]
    fn the_word_test_is_exact_for_every_byte_at_every_position() {
        for fill in [b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa0, 0xff] {
            for position in 0..8 {
                for byte in 0..=255u8 {
                    let mut word = [fill; 8];
                    word[position] = byte;
                    let expected = word.iter().any(|b| ESCAPE[*b as usize] != 0);
                    assert_eq!(needs_escape(u64::from_le_bytes(word)), expected, "{word:?}");
                }
            }
        }
    }

    proptest! {
        /// The word-at-a-time search finds what a byte-by-byte one finds.
        #[test]
        fn the_first_escape_byte_is_found(bytes in prop::collection::vec(
            prop_oneof![4 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 2 => 0x80u8..=0xff],
            0..40,
        )) {
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(first_escape(&bytes), expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn values_are_written_as_serde_json_writes_them(value in json_value()) {
            let expected = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(to_vec(&value).unwrap(), expected);
        }

        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in any::<String>(), prefix in "[a-z]{0,9}") {
            let text = format!("{prefix}{text}");
            let mut out = Vec::new();
            write_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
        }

        /// Strings of every length up to three words, with one byte that may need escaping anywhere.
        #[test]
        fn short_strings_are_escaped_as_serde_json_escapes_them(
            length in 0usize..24, at in 0usize..24, byte in 0u8..0x80, fill in "[a-zé]"
        ) {
            let mut text: String = fill.repeat(length);
            if length > 0 && text.is_char_boundary(at % text.len()) {
                text.insert(at % text.len(), char::from(byte));
            }
            let mut out = Vec::new();
            write_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
        }

        /// Strings that need no escaping, every byte different from its neighbours, at every
        /// length the word copies handle and past them, after text already in the buffer.
        #[test]
        fn clean_strings_are_copied_whole_after_what_was_written(
            text in "[a-zA-Z0-9 _.-]{0,40}", before in "[a-z]{0,9}"
        ) {
            let mut out = before.clone().into_bytes();
            write_str(&mut out, &text);
            let mut expected = before.into_bytes();
            expected.extend(serde_json::to_vec(&text).unwrap());
            prop_assert_eq!(out, expected);
        }

        /// Every byte value at every position of an eight-byte word.
        #[test]
        fn the_word_test_finds_every_byte_that_needs_escaping(word in any::<[u8; 8]>()) {
            let expected = word.iter().any(|b| ESCAPE[*b as usize] != 0);
            prop_assert_eq!(needs_escape(u64::from_le_bytes(word)), expected);
        }
    }
}
