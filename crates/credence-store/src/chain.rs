//! The decision log's hash chain: how a record's hash is computed, and how a chain is checked.
//!
//! Each record's hash is SHA-256 over its position, every stored field and the previous
//! record's hash, each field length-prefixed so that no two different records encode alike.
//! Changing a byte of a record changes its hash; removing or reordering records breaks the
//! `prev_hash` links or the positions; removing the newest records is caught by a
//! checkpoint kept apart from the log (the newest indexed record's position and hash).

use crate::records::NewDecision;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of the record at `seq` whose predecessor's hash is `prev_hash`.
pub fn record_hash(seq: i64, prev_hash: &str, record: &NewDecision) -> String {
    record_hash_tagged(b"credence-decision-v1", None, seq, prev_hash, record)
}

/// The record hash under a domain `tag`, with the chain's owner (a node) hashed in when there
/// is one: the one-chain log's and the per-node chains' hashes share every field's encoding.
pub(crate) fn record_hash_tagged(
    tag: &[u8],
    node_id: Option<&str>,
    seq: i64,
    prev_hash: &str,
    record: &NewDecision,
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(tag);
    if let Some(node_id) = node_id {
        field(node_id.as_bytes());
    }
    field(&seq.to_be_bytes());
    field(prev_hash.as_bytes());
    field(record.id.as_bytes());
    field(record.flow.as_bytes());
    optional(&mut field, record.customer_id.as_deref());
    optional(&mut field, record.idempotency_key.as_deref());
    field(record.request_sha256.as_bytes());
    field(record.strategy.as_bytes());
    field(record.strategy_version.as_bytes());
    optional(&mut field, record.arm.as_deref());
    field(record.outcome.as_bytes());
    field(record.as_of.as_bytes());
    field(record.language.as_bytes());
    field(&record.created_at_ms.to_be_bytes());
    field(&record.latency_us.to_be_bytes());
    field(record.input.as_bytes());
    field(record.decision.as_bytes());
    lower_hex(&hasher.finalize())
}

fn optional(field: &mut impl FnMut(&[u8]), value: Option<&str>) {
    match value {
        // A one-byte tag keeps `None` and `Some("")` apart.
        None => field(&[0]),
        Some(text) => {
            field(&[1]);
            field(text.as_bytes());
        }
    }
}

/// Lower-case hex of SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    lower_hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`, two digits a byte. It is the same text as `hex::encode` (a
/// property test holds them together), written into a buffer of its final length: `hex::encode`
/// collects an iterator of `char`s, and a push a digit checks the capacity each time, which
/// took several times as long on the decision path (a request's fingerprint, each record's
/// hash and each provider cache key are hex).
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = vec![0u8; bytes.len() * 2];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    // Hex digits are ASCII: the text is always UTF-8.
    String::from_utf8(text).unwrap_or_default()
}

/// What `verify` found wrong first, if anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainProblem {
    /// The position where the chain first fails; 0 for a problem of the log as a whole (a
    /// cluster's checkpoints or node heads, [`crate::node_chain`]).
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// The outcome of checking a whole log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    /// Records checked.
    pub records: u64,
    /// The newest record's hash (the genesis hash for an empty log).
    pub head_hash: String,
    /// The first problem found; none when the whole chain holds.
    pub problem: Option<ChainProblem>,
}

impl ChainReport {
    /// Whether the whole chain holds.
    pub fn verified(&self) -> bool {
        self.problem.is_none()
    }
}

/// Checks records streamed in `seq` order, and that the log still holds a checkpoint
/// recorded elsewhere; pure, for any store.
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    records: u64,
    problem: Option<ChainProblem>,
    checkpoint: Option<(i64, String)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::with_checkpoint(None)
    }
}

impl ChainVerifier {
    /// A verifier that also requires record `seq` to exist with `hash`.
    pub fn with_checkpoint(checkpoint: Option<(i64, String)>) -> ChainVerifier {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
            records: 0,
            problem: None,
            checkpoint,
        }
    }

    /// Records that the next record could not be read at all.
    pub fn damaged(&mut self, reason: String) {
        if self.problem.is_none() {
            self.problem = Some(ChainProblem {
                seq: self.expected_seq,
                problem: format!("unreadable: {reason}: bytes were changed or cut"),
            });
        }
    }

    /// Feeds the next stored record; returns false once a problem is found (stop feeding).
    pub fn push(&mut self, seq: i64, record: &NewDecision, prev_hash: &str, hash: &str) -> bool {
        if self.problem.is_some() {
            return false;
        }
        let fail = |problem: String| Some(ChainProblem { seq, problem });
        if seq != self.expected_seq {
            self.problem = fail(format!(
                "expected record {} next, found record {seq}: records were removed or reordered",
                self.expected_seq
            ));
        } else if prev_hash != self.prev_hash {
            self.problem = fail(
                "its prev_hash does not match the previous record's hash: a record before it was changed, removed or reordered"
                    .to_string(),
            );
        } else if record_hash(seq, prev_hash, record) != hash {
            self.problem = fail(format!(
                "its contents do not match its hash: decision {} was changed after it was written",
                record.id
            ));
        } else if let Some((_, checkpoint_hash)) =
            self.checkpoint.as_ref().filter(|(s, _)| *s == seq)
        {
            if checkpoint_hash != hash {
                self.problem = fail(
                    "it differs from the checkpoint recorded in the index: the log was rewritten"
                        .to_string(),
                );
            }
        }
        if self.problem.is_some() {
            return false;
        }
        self.records += 1;
        self.expected_seq += 1;
        self.prev_hash = hash.to_string();
        true
    }

    /// Ends the check: the checkpoint, if any, must have been reached.
    pub fn finish(mut self) -> ChainReport {
        if self.problem.is_none() {
            if let Some((checkpoint_seq, _)) = &self.checkpoint {
                let last_seq = self.expected_seq - 1;
                if *checkpoint_seq > last_seq {
                    self.problem = Some(ChainProblem {
                        seq: last_seq + 1,
                        problem: format!(
                            "the index records {checkpoint_seq} decision(s) but the log holds {last_seq}: the newest records were removed"
                        ),
                    });
                }
            }
        }
        ChainReport {
            records: self.records,
            head_hash: self.prev_hash,
            problem: self.problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The table writes what the `hex` crate writes, for any bytes.
        #[test]
        fn lower_hex_is_hex_encode(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            proptest::prop_assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        }
    }

    fn record(id: &str) -> NewDecision {
        NewDecision {
            id: id.to_string(),
            flow: "application".into(),
            customer_id: Some("C-1".into()),
            idempotency_key: None,
            request_sha256: sha256_hex(b"{}"),
            strategy: "consumer-loan".into(),
            strategy_version: "abc".into(),
            arm: Some("champion".into()),
            outcome: "approve".into(),
            as_of: "2026-11-29".into(),
            language: "en".into(),
            created_at_ms: 1_800_000_000_000,
            latency_us: 40,
            input: "{\"customer_id\":\"C-1\"}".into(),
            decision: "{\"outcome\":\"approve\"}".into(),
        }
    }

    fn chain(n: usize) -> Vec<(i64, NewDecision, String, String)> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|i| {
                let r = record(&format!("dec_{i}"));
                let hash = record_hash(i as i64, &prev, &r);
                let row = (i as i64, r, prev.clone(), hash.clone());
                prev = hash;
                row
            })
            .collect()
    }

    fn verify(
        rows: &[(i64, NewDecision, String, String)],
        head: Option<(i64, String)>,
    ) -> ChainReport {
        let mut verifier = ChainVerifier::with_checkpoint(head);
        for (seq, r, prev, hash) in rows {
            if !verifier.push(*seq, r, prev, hash) {
                break;
            }
        }
        verifier.finish()
    }

    fn head(rows: &[(i64, NewDecision, String, String)]) -> Option<(i64, String)> {
        rows.last().map(|r| (r.0, r.3.clone()))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let report = verify(&rows, head(&rows));
        assert!(report.verified(), "{report:?}");
        assert_eq!(report.records, 5);
        assert!(verify(&[], None).verified());
    }

    /// Each kind of tampering, and the record where it must be caught.
    #[test]
    fn tampering_is_detected_where_it_happened() {
        type Tamper = fn(&mut Vec<(i64, NewDecision, String, String)>);
        let cases: [(&str, Tamper, i64); 6] = [
            ("changed input", |r| r[2].1.input.push(' '), 3),
            ("changed outcome", |r| r[3].1.outcome = "decline".into(), 4),
            (
                "None vs empty customer",
                |r| r[0].1.customer_id = Some(String::new()),
                1,
            ),
            (
                "removed record",
                |r| {
                    r.remove(1);
                },
                3,
            ),
            ("swapped records", |r| r.swap(1, 2), 3),
            ("changed hash", |r| r[4].3 = GENESIS_HASH.into(), 5),
        ];
        for (name, tamper, seq) in cases {
            let mut rows = chain(6);
            let original_head = head(&rows);
            tamper(&mut rows);
            let report = verify(&rows, original_head);
            let problem = report
                .problem
                .unwrap_or_else(|| panic!("{name}: not detected"));
            assert_eq!(problem.seq, seq, "{name}: {}", problem.problem);
        }
    }

    #[test]
    fn removing_the_newest_records_is_caught_by_the_checkpoint() {
        let mut rows = chain(4);
        let original_head = head(&rows);
        rows.truncate(2);
        let report = verify(&rows, original_head);
        assert!(report.problem.unwrap().problem.contains("index records 4"));
        // A log longer than its checkpoint is fine: the index lags the log.
        let rows = chain(5);
        assert!(verify(&rows, Some((3, rows[2].3.clone()))).verified());
        let mut rewritten = chain(5);
        rewritten[2].3 = "f".repeat(64);
        let report = verify(&chain(5), Some((3, rewritten[2].3.clone())));
        assert!(report.problem.unwrap().problem.contains("checkpoint"));
    }
}
