//! The decision log's durable form: append-only segment files of length-prefixed frames,
//! written by one thread that group-commits with one `fdatasync` per batch.
//!
//! Why not rows in SQLite: a decision is ~3 KB, and a B-tree commit rewrites whole pages of
//! the table and of every index it touches (the customer index at a random leaf per record),
//! then copies them again at checkpoint — about 16 KB written per decision, which made disk
//! writes, not deciding, the service's limit. Here a decision costs its own bytes, written
//! sequentially. The log is the source of truth; the SQLite index over it (ids, customers,
//! idempotency keys, frame positions) is written behind it in batches and rebuilt from the
//! log's tail at start, so it never has to be synced per decision.
//!
//! Frame: `u32 LE n` then `n` bytes: `u32 LE header length`, the header (JSON: every field
//! but the input and decision, plus `seq`, `prev_hash`, `hash`, `input_len`), the input bytes,
//! the decision bytes. Segment files are named by the first `seq` they hold and rotate at
//! [`SEGMENT_BYTES`].
//!
//! Segments are zero-filled ahead of the write position ([`PREALLOCATE_BYTES`] at a time):
//! syncing an overwrite of allocated blocks flushes data only, while syncing an append must
//! also commit the file's new size to the filesystem journal, which takes several times as long
//! (docs/benchmarks.md, "Measurements behind design choices"). A zero length prefix therefore marks the end of the
//! frames. The zeros are written and synced [`ZERO_FILL_CHUNK_BYTES`] at a time: a sync of
//! the file waits for every dirty page in it, so the log's own commits, running meanwhile, wait
//! for at most one chunk of zeros rather than for all of them (a whole preallocation at once
//! held commits up for tens of milliseconds).

use crate::chain::record_hash;
use crate::error::StoreError;
use crate::records::{NewDecision, StoredDecision};
use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// A segment is closed and a new one started once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest frame accepted when reading (a larger length prefix means damage).
const MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;
/// How far ahead of the write position a segment is zero-filled.
pub const PREALLOCATE_BYTES: u64 = 8 * 1024 * 1024;
/// Zeros written, then synced, at a time by the preallocator.
pub const ZERO_FILL_CHUNK_BYTES: u64 = 256 * 1024;

/// Where a frame lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePosition {
    /// The segment's first seq (its name).
    pub segment: i64,
    /// Where the frame starts in the segment.
    pub offset: u64,
    /// Bytes of the whole frame, length prefix included.
    pub length: u64,
}

impl FramePosition {
    /// Where the frame ends (the next frame's offset).
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// A frame's header as read back.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct FrameHeader {
    seq: i64,
    id: String,
    flow: String,
    customer_id: Option<String>,
    idempotency_key: Option<String>,
    request_sha256: String,
    strategy: String,
    strategy_version: String,
    arm: Option<String>,
    outcome: String,
    as_of: String,
    language: String,
    created_at_ms: i64,
    latency_us: i64,
    input_len: usize,
    prev_hash: String,
    hash: String,
}

/// A frame's header as serde writes it from borrowed fields: the reference [`encode`]'s own
/// writer is held to (the tests compare the two, strings needing escapes included).
#[cfg(test)]
#[derive(Serialize)]
struct FrameHeaderOut<'r> {
    seq: i64,
    id: &'r str,
    flow: &'r str,
    customer_id: Option<&'r str>,
    idempotency_key: Option<&'r str>,
    request_sha256: &'r str,
    strategy: &'r str,
    strategy_version: &'r str,
    arm: Option<&'r str>,
    outcome: &'r str,
    as_of: &'r str,
    language: &'r str,
    created_at_ms: i64,
    latency_us: i64,
    input_len: usize,
    prev_hash: &'r str,
    hash: &'r str,
}

#[cfg(test)]
impl<'r> FrameHeaderOut<'r> {
    fn of(stored: &'r StoredDecision) -> Self {
        let r = &stored.record;
        FrameHeaderOut {
            seq: stored.seq,
            id: &r.id,
            flow: &r.flow,
            customer_id: r.customer_id.as_deref(),
            idempotency_key: r.idempotency_key.as_deref(),
            request_sha256: &r.request_sha256,
            strategy: &r.strategy,
            strategy_version: &r.strategy_version,
            arm: r.arm.as_deref(),
            outcome: &r.outcome,
            as_of: &r.as_of,
            language: &r.language,
            created_at_ms: r.created_at_ms,
            latency_us: r.latency_us,
            input_len: r.input.len(),
            prev_hash: &stored.prev_hash,
            hash: &stored.hash,
        }
    }
}

/// Appends the frame of `stored` to `out`.
pub fn encode(stored: &StoredDecision, out: &mut Vec<u8>) {
    let r = &stored.record;
    let start = out.len();
    // The length prefixes, filled in once the header's length is known.
    out.extend_from_slice(&[0; 8]);
    write_header(stored, out);
    let header_len = out.len() - start - 8;
    out.extend_from_slice(r.input.as_bytes());
    out.extend_from_slice(r.decision.as_bytes());
    let body_len = out.len() - start - 4;
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&(header_len as u32).to_le_bytes());
}

/// Writes the header's JSON, byte for byte what serde_json writes for [`FrameHeader`]'s fields
/// in their order (held to it by the tests). Written by hand because every decision writes
/// one on the log writer's thread: serde_json's walk took ~8,700 instructions a header, most of
/// it its per-byte escape lookup on strings (ids, hashes) that never need escaping.
fn write_header(stored: &StoredDecision, out: &mut Vec<u8>) {
    let r = &stored.record;
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(number.format(stored.seq).as_bytes());
    let strings: [(&[u8], Option<&str>); 11] = [
        (b",\"id\":", Some(&r.id)),
        (b",\"flow\":", Some(&r.flow)),
        (b",\"customer_id\":", r.customer_id.as_deref()),
        (b",\"idempotency_key\":", r.idempotency_key.as_deref()),
        (b",\"request_sha256\":", Some(&r.request_sha256)),
        (b",\"strategy\":", Some(&r.strategy)),
        (b",\"strategy_version\":", Some(&r.strategy_version)),
        (b",\"arm\":", r.arm.as_deref()),
        (b",\"outcome\":", Some(&r.outcome)),
        (b",\"as_of\":", Some(&r.as_of)),
        (b",\"language\":", Some(&r.language)),
    ];
    for (key, value) in strings {
        out.extend_from_slice(key);
        match value {
            Some(text) => write_str(out, text),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"created_at_ms\":");
    out.extend_from_slice(number.format(r.created_at_ms).as_bytes());
    out.extend_from_slice(b",\"latency_us\":");
    out.extend_from_slice(number.format(r.latency_us).as_bytes());
    out.extend_from_slice(b",\"input_len\":");
    out.extend_from_slice(number.format(r.input.len()).as_bytes());
    out.extend_from_slice(b",\"prev_hash\":");
    write_str(out, &stored.prev_hash);
    out.extend_from_slice(b",\"hash\":");
    write_str(out, &stored.hash);
    out.push(b'}');
}

/// A JSON string: copied between quotes when nothing in it needs escaping (the usual case:
/// ids, codes, hex), else written by serde_json, so escapes are always serde_json's.
///
/// The test reads every byte rather than stopping at the first that needs escaping: without
/// the early exit the compiler tests sixteen bytes at a time, and a header's strings
/// (three of them 64 hex digits) cost ~1,000 instructions instead of ~4,700.
fn write_str(out: &mut Vec<u8>, text: &str) {
    let needs_escape = text.bytes().fold(false, |needs, byte| {
        needs | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if !needs_escape {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail, and a &str always serialises.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Decodes a frame body (the bytes after the length prefix).
pub fn decode(body: &[u8]) -> Result<StoredDecision, String> {
    let header_len = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("the frame is shorter than its header length")?;
    let header_bytes = body
        .get(4..4 + header_len)
        .ok_or("the frame is shorter than its header")?;
    let header: FrameHeader =
        serde_json::from_slice(header_bytes).map_err(|e| format!("unreadable header: {e}"))?;
    let rest = &body[4 + header_len..];
    if header.input_len > rest.len() {
        return Err("the frame is shorter than its input".into());
    }
    let (input, decision) = rest.split_at(header.input_len);
    let text = |bytes: &[u8], what: &str| {
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("the {what} is not UTF-8"))
    };
    Ok(StoredDecision {
        seq: header.seq,
        record: NewDecision {
            id: header.id,
            flow: header.flow,
            customer_id: header.customer_id,
            idempotency_key: header.idempotency_key,
            request_sha256: header.request_sha256,
            strategy: header.strategy,
            strategy_version: header.strategy_version,
            arm: header.arm,
            outcome: header.outcome,
            as_of: header.as_of,
            language: header.language,
            created_at_ms: header.created_at_ms,
            latency_us: header.latency_us,
            input: text(input, "input")?,
            decision: text(decision, "decision")?,
        },
        prev_hash: header.prev_hash,
        hash: header.hash,
    })
}

/// The file of the segment whose first record is `first_seq`.
pub fn segment_path(dir: &Path, first_seq: i64) -> PathBuf {
    dir.join(format!("decisions-{first_seq:020}.seg"))
}

/// The segments in a log directory, oldest first, by their first seq.
pub fn segments(dir: &Path) -> Result<Vec<i64>, StoreError> {
    let io = |e: std::io::Error| StoreError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let name = name.to_string_lossy();
        if let Some(number) = name
            .strip_prefix("decisions-")
            .and_then(|n| n.strip_suffix(".seg"))
        {
            if let Ok(first) = number.parse::<i64>() {
                found.push(first);
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// One step of reading a segment sequentially.
pub enum Scanned {
    Frame(Box<StoredDecision>, FramePosition),
    /// The bytes from `offset` on are not a whole, readable frame; `reason` says why.
    Damaged {
        offset: u64,
        reason: String,
    },
    End,
}

/// Reads a segment's frames in order from `offset`.
pub struct SegmentReader {
    segment: i64,
    reader: std::io::BufReader<File>,
    offset: u64,
    size: u64,
}

impl SegmentReader {
    /// A reader of `segment` from `offset` on.
    pub fn open(dir: &Path, segment: i64, offset: u64) -> Result<SegmentReader, StoreError> {
        let path = segment_path(dir, segment);
        let io = |e: std::io::Error| StoreError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut file = File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(SegmentReader {
            segment,
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            offset,
            size,
        })
    }

    /// The next frame, the end of the segment, or where and why it is damaged.
    pub fn next_frame(&mut self) -> Scanned {
        if self.offset >= self.size {
            return Scanned::End;
        }
        let damaged = |offset: u64, reason: &str| Scanned::Damaged {
            offset,
            reason: reason.to_string(),
        };
        let start = self.offset;
        if self.size - start < 4 {
            return damaged(start, "a frame's length is cut off");
        }
        let mut prefix = [0u8; 4];
        if self.reader.read_exact(&mut prefix).is_err() {
            return damaged(start, "a frame's length is unreadable");
        }
        let length = u32::from_le_bytes(prefix);
        if length == 0 {
            // Zero fill ahead of the write position: the end of the frames.
            return Scanned::End;
        }
        if length > MAX_FRAME_BYTES || u64::from(length) > self.size - start - 4 {
            return damaged(start, "a frame is longer than the rest of the file");
        }
        let mut body = vec![0u8; length as usize];
        if self.reader.read_exact(&mut body).is_err() {
            return damaged(start, "a frame is unreadable");
        }
        self.offset = start + 4 + u64::from(length);
        match decode(&body) {
            Ok(stored) => Scanned::Frame(
                Box::new(stored),
                FramePosition {
                    segment: self.segment,
                    offset: start,
                    length: 4 + u64::from(length),
                },
            ),
            Err(reason) => damaged(start, &reason),
        }
    }
}

/// Reads the frame at a known position.
pub fn read_at(dir: &Path, position: FramePosition) -> Result<StoredDecision, StoreError> {
    let path = segment_path(dir, position.segment);
    let io = |e: std::io::Error| StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut file = File::open(&path).map_err(io)?;
    file.seek(SeekFrom::Start(position.offset + 4))
        .map_err(io)?;
    let mut body = vec![0u8; position.length.saturating_sub(4) as usize];
    file.read_exact(&mut body).map_err(io)?;
    decode(&body).map_err(|reason| {
        StoreError::Corrupt(format!(
            "{} at byte {}: {reason}",
            path.display(),
            position.offset
        ))
    })
}

/// The open segment the writer appends to.
pub struct Appender {
    dir: PathBuf,
    segment: i64,
    file: File,
    /// End of the frames: where the next batch goes.
    size: u64,
    /// How far the file is zero-filled; grown ahead of `size` by the preallocator thread so
    /// that the writer never waits for it.
    allocated: Arc<AtomicU64>,
    grow: Option<mpsc::SyncSender<u64>>,
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes free for an unprivileged writer on the file system holding `dir` (`None` if unknown).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only into the struct it is given; `path` is a valid C string.
    unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stats) != 0 {
            return None;
        }
        Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
    }
}

/// The free space below which the zero fill waits instead of trying (and failing) to grow.
pub const RESUME_FILL_FREE_BYTES: u64 = 4 * ZERO_FILL_CHUNK_BYTES;

/// The zeros the fill writes from: static, so no fill allocates and clears a buffer of its own
/// (a fresh megabyte cleared for each quarter-megabyte chunk was about 5 % of the node's
/// user-space instructions per decision, SHA-256 aside).
static ZEROS: [u8; ZERO_FILL_CHUNK_BYTES as usize] = [0; ZERO_FILL_CHUNK_BYTES as usize];

fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut at = from;
    while at < to {
        let n = ZEROS.len().min((to - at) as usize);
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Zero-fills a segment up to each requested length, then publishes it in `allocated`.
///
/// When the device is full the fill stops: requests are then ignored until the file system
/// has [`RESUME_FILL_FREE_BYTES`] free again, so a failing fill never takes the space an
/// operator frees (at most one chunk is held by the attempt that failed).
fn run_preallocator(
    dir: PathBuf,
    file: File,
    allocated: Arc<AtomicU64>,
    requests: mpsc::Receiver<u64>,
) {
    crate::priority::lower_this_thread();
    let mut out_of_space = false;
    while let Ok(mut target) = requests.recv() {
        while let Ok(later) = requests.try_recv() {
            target = target.max(later);
        }
        if out_of_space {
            if free_bytes(&dir).is_some_and(|free| free < RESUME_FILL_FREE_BYTES) {
                continue;
            }
            out_of_space = false;
        }
        let mut from = allocated.load(Ordering::Acquire);
        while from < target {
            // One chunk written and synced before the next: the writer's commits never find
            // more than a chunk of zeros dirty in the file.
            let to = (from + ZERO_FILL_CHUNK_BYTES).min(target);
            if let Err(error) = write_zeros(&file, from, to).and_then(|()| file.sync_data()) {
                if crate::error::is_out_of_space(&error) {
                    out_of_space = true;
                    tracing::warn!(
                        "the decision log's zero fill stopped: no space left on the device"
                    );
                }
                break;
            }
            allocated.fetch_max(to, Ordering::AcqRel);
            from = to;
        }
    }
}

impl Appender {
    /// Opens a segment for appending at `size`, or creates the first one. Whatever follows
    /// `size` — an unacknowledged write a crash cut short — is zeroed.
    pub fn open(dir: &Path, segment: Option<(i64, u64)>) -> Result<Appender, StoreError> {
        let (segment, size) = segment.unwrap_or((1, 0));
        let path = segment_path(dir, segment);
        let io = |e: std::io::Error| StoreError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let length = file.metadata().map_err(io)?.len();
        let mut allocated = length.max(size + PREALLOCATE_BYTES);
        if let Err(error) = write_zeros(&file, size, allocated) {
            if !crate::error::is_out_of_space(&error) {
                return Err(io(error));
            }
            // A full device: open with what the file already holds (zeroed past `size`), so
            // the store serves reads and refuses appends until space is freed.
            tracing::warn!("opening the decision log on a full device: appends wait for space");
            allocated = length.max(size);
            write_zeros(&file, size, allocated).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        sync_dir(dir).map_err(io)?;
        file.seek(SeekFrom::Start(size)).map_err(io)?;
        let allocated = Arc::new(AtomicU64::new(allocated));
        let (grow, requests) = mpsc::sync_channel(4);
        let grow = match file.try_clone() {
            Ok(clone) => {
                let shared = allocated.clone();
                let dir = dir.to_path_buf();
                std::thread::Builder::new()
                    .name("credence-log-prealloc".into())
                    .spawn(move || run_preallocator(dir, clone, shared, requests))
                    .ok()
                    .map(|_| grow)
            }
            Err(_) => None,
        };
        Ok(Appender {
            dir: dir.to_path_buf(),
            segment,
            file,
            size,
            allocated,
            grow,
        })
    }

    /// Starts a new segment when the current one is full; `next_seq` names it. The full one
    /// is cut to its frames.
    pub fn rotate_if_full(&mut self, next_seq: i64) -> Result<(), StoreError> {
        if self.size < SEGMENT_BYTES {
            return Ok(());
        }
        // Stop the preallocator before cutting the file.
        self.grow = None;
        let _ = self
            .file
            .set_len(self.size)
            .and_then(|()| self.file.sync_all());
        *self = Appender::open(&self.dir, Some((next_seq, 0)))?;
        Ok(())
    }

    /// The segment being appended to (its first seq).
    pub fn segment(&self) -> i64 {
        self.segment
    }

    /// Bytes written to the segment so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `frames` (encoded back to back) and syncs them. On failure the bytes are zeroed
    /// again, so a refused batch leaves nothing behind.
    pub fn append_durably(&mut self, frames: &[u8]) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let path = segment_path(&self.dir, self.segment);
        let end = self.size + frames.len() as u64;
        let mut result = Ok(());
        let allocated = self.allocated.load(Ordering::Acquire);
        if end > allocated {
            // The preallocator fell behind: fill here (the size change needs a full sync).
            let mut target = end + PREALLOCATE_BYTES;
            result = write_zeros(&self.file, allocated, target).and_then(|()| self.file.sync_all());
            if result.as_ref().is_err_and(crate::error::is_out_of_space) {
                // Short of space: give back what the attempt took, and ask for this batch's
                // bytes only.
                let _ = self.file.set_len(allocated.max(self.size));
                target = end;
                result =
                    write_zeros(&self.file, allocated, target).and_then(|()| self.file.sync_all());
            }
            if result.is_ok() {
                self.allocated.fetch_max(target, Ordering::AcqRel);
            }
        } else if allocated - end < PREALLOCATE_BYTES / 2 {
            if let Some(grow) = &self.grow {
                let _ = grow.try_send(allocated + PREALLOCATE_BYTES);
            }
        }
        let result = result
            .and_then(|()| self.file.write_all_at(frames, self.size))
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.size = end;
                Ok(())
            }
            Err(error) => {
                let _ = write_zeros(&self.file, self.size, end);
                if crate::error::is_out_of_space(&error) {
                    // What a failed fill took past the published length is given back, so
                    // that space an operator frees is there for the next try.
                    let published = self.allocated.load(Ordering::Acquire);
                    let _ = self.file.set_len(published.max(self.size));
                    return Err(StoreError::Unavailable(
                        "the decision log cannot be written: no space left on the device".into(),
                    ));
                }
                Err(StoreError::Io {
                    path: path.display().to_string(),
                    message: format!("appending to the decision log: {error}"),
                })
            }
        }
    }
}

/// Whether every byte of a segment from `offset` on is zero (nothing was written there).
pub fn zeros_from(dir: &Path, segment: i64, offset: u64) -> bool {
    let Ok(mut file) = File::open(segment_path(dir, segment)) else {
        return false;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return true,
            Ok(n) => {
                if buffer[..n].iter().any(|b| *b != 0) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Hash of the next record given the tip; kept here so the writer and the tests agree.
pub fn chain_next(tip_seq: i64, tip_hash: &str, record: NewDecision) -> StoredDecision {
    let seq = tip_seq + 1;
    let hash = record_hash(seq, tip_hash, &record);
    StoredDecision {
        seq,
        record,
        prev_hash: tip_hash.to_string(),
        hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::GENESIS_HASH;

    fn record(n: i64) -> NewDecision {
        NewDecision {
            id: format!("dec_{n}"),
            flow: "application".into(),
            customer_id: (n % 2 == 0).then(|| format!("C-{n}")),
            idempotency_key: None,
            request_sha256: "00".into(),
            strategy: "s".into(),
            strategy_version: "v".into(),
            arm: None,
            outcome: "approve".into(),
            as_of: "2026-11-29".into(),
            language: "en".into(),
            created_at_ms: n,
            latency_us: 1,
            input: format!("{{\"n\": {n},\n \"text\": \"é\"}}"),
            decision: "{\"outcome\":\"approve\"}".into(),
        }
    }

    /// The header written from borrowed fields is the JSON of the header read back.
    #[test]
    fn the_written_header_is_the_read_header_s_json() {
        for n in [1, 2] {
            let mut stored = chain_next(0, GENESIS_HASH, record(n));
            stored.record.idempotency_key = (n == 2).then(|| "k\"1".to_string());
            stored.record.arm = (n == 2).then(|| "champion".to_string());
            let mut frame = Vec::new();
            encode(&stored, &mut frame);
            let header_len = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
            let written = &frame[8..8 + header_len];
            let read: FrameHeader = serde_json::from_slice(written).unwrap();
            assert_eq!(serde_json::to_vec(&read).unwrap(), written);
            assert_eq!(
                serde_json::to_vec(&FrameHeaderOut::of(&stored)).unwrap(),
                written
            );
            assert_eq!(read.idempotency_key, stored.record.idempotency_key);
        }
    }

    proptest::proptest! {
        /// The hand-written header is serde_json's, whatever the strings hold (quotes,
        /// backslashes, control characters, non-ASCII) and whatever the numbers.
        #[test]
        fn the_header_writer_writes_serde_json_s_text(
            texts in proptest::collection::vec("(\\PC|[\"\\\\\\x00-\\x1f\\x7f])*", 13),
            numbers in proptest::array::uniform3(proptest::num::i64::ANY),
            present in proptest::array::uniform3(proptest::bool::ANY),
        ) {
            let optional = |i: usize, text: &String| present[i].then(|| text.clone());
            let stored = StoredDecision {
                seq: numbers[0],
                record: NewDecision {
                    id: texts[0].clone(),
                    flow: texts[1].clone(),
                    customer_id: optional(0, &texts[2]),
                    idempotency_key: optional(1, &texts[3]),
                    request_sha256: texts[4].clone(),
                    strategy: texts[5].clone(),
                    strategy_version: texts[6].clone(),
                    arm: optional(2, &texts[7]),
                    outcome: texts[8].clone(),
                    as_of: texts[9].clone(),
                    language: texts[10].clone(),
                    created_at_ms: numbers[1],
                    latency_us: numbers[2],
                    input: texts[11].clone(),
                    decision: "{}".into(),
                },
                prev_hash: texts[12].clone(),
                hash: texts[0].clone(),
            };
            let mut header = Vec::new();
            write_header(&stored, &mut header);
            let reference = serde_json::to_vec(&FrameHeaderOut::of(&stored)).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&header),
                String::from_utf8_lossy(&reference)
            );
            let mut frame = Vec::new();
            encode(&stored, &mut frame);
            proptest::prop_assert_eq!(&decode(&frame[4..]).unwrap(), &stored);
        }
    }

    #[test]
    fn frames_round_trip_and_damage_is_reported_not_panicked() {
        let dir = std::env::temp_dir().join(format!("credence-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut appender = Appender::open(&dir, None).unwrap();
        let mut frames = Vec::new();
        let mut tip = (0, GENESIS_HASH.to_string());
        let mut stored = Vec::new();
        for n in 1..=3 {
            let s = chain_next(tip.0, &tip.1, record(n));
            tip = (s.seq, s.hash.clone());
            encode(&s, &mut frames);
            stored.push(s);
        }
        appender.append_durably(&frames).unwrap();
        let mut reader = SegmentReader::open(&dir, 1, 0).unwrap();
        let mut positions = Vec::new();
        for expected in &stored {
            match reader.next_frame() {
                Scanned::Frame(got, position) => {
                    assert_eq!(&*got, expected);
                    positions.push(position);
                }
                _ => panic!("frame {} missing", expected.seq),
            }
        }
        assert!(matches!(reader.next_frame(), Scanned::End));
        assert_eq!(read_at(&dir, positions[1]).unwrap(), stored[1]);

        // The zero fill after the frames reads as the end.
        let path = segment_path(&dir, 1);
        assert!(std::fs::metadata(&path).unwrap().len() >= PREALLOCATE_BYTES);
        assert!(zeros_from(&dir, 1, positions[2].end()));

        // A torn last frame reads as damage at its start, never as a frame.
        let mut torn = std::fs::read(&path).unwrap();
        let cut = positions[2].offset as usize + 20; // inside the header
        torn[cut..].iter_mut().for_each(|b| *b = 0);
        std::fs::write(&path, &torn).unwrap();
        let mut reader = SegmentReader::open(&dir, 1, positions[2].offset).unwrap();
        assert!(
            matches!(reader.next_frame(), Scanned::Damaged { offset, .. } if offset == positions[2].offset)
        );
        // Reopening for append zeroes the torn bytes.
        drop(appender);
        let appender = Appender::open(&dir, Some((1, positions[2].offset))).unwrap();
        assert_eq!(appender.size(), positions[2].offset);
        assert!(zeros_from(&dir, 1, positions[2].offset));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
