//! The decision log of a cluster: one hash chain per node, bound together by chained checkpoints, and the check of both — pure, for any store that many processes append to.
//!
//! A single chain head shared by every node would serialise them all on one row, so each node
//! chains its own records (`node_id`, `node_seq` from 1, `prev_hash`), hashed with
//! [`node_record_hash`] (the node's id is hashed in, so a record cannot move to another
//! node's chain). Every few seconds one node writes a **checkpoint**: the head (sequence and
//! hash) of every node's chain at that moment, chained to the previous checkpoint by its hash.
//!
//! What [`ClusterVerifier`] proves, given the checkpoints, every record in (node, sequence)
//! order and the heads the nodes last recorded:
//! - a changed record breaks its own hash; a removed or reordered record breaks its node's
//!   sequence or the next record's `prev_hash`;
//! - a changed, removed or reordered checkpoint breaks the checkpoint chain;
//! - a node's newest records removed (up to its head in the newest checkpoint) or a node's
//!   whole chain dropped fails the newest checkpoint's claim; after that checkpoint, the
//!   node's recorded head must still be its chain's end.
//!
//! Records written after the newest checkpoint are protected by the chain and the recorded
//! heads only: an attacker able to rewrite both could remove them, which is why checkpoints
//! come every few seconds and why an operator keeps the newest checkpoint's hash elsewhere.
//! Records dropped by retention leave an anchor (the last dropped record's sequence and hash)
//! where the node's remaining chain starts.

use crate::chain::{record_hash_tagged, ChainProblem, ChainReport, GENESIS_HASH};
use crate::records::NewDecision;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The hash of `node_id`'s record number `node_seq`, whose predecessor in that node's chain
/// has `prev_hash`.
pub fn node_record_hash(
    node_id: &str,
    node_seq: i64,
    prev_hash: &str,
    record: &NewDecision,
) -> String {
    record_hash_tagged(
        b"credence-node-decision-v1",
        Some(node_id),
        node_seq,
        prev_hash,
        record,
    )
}

/// One node's chain head: its newest record's sequence and hash (0 and the genesis hash for
/// a node with no records).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeHead {
    /// The node.
    pub node_id: String,
    /// Its newest record's sequence in its chain.
    pub node_seq: i64,
    /// That record's hash.
    pub hash: String,
}

/// A checkpoint as stored: the heads of every node's chain, chained to the previous
/// checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its position in the checkpoint chain, from 1.
    pub seq: i64,
    /// The node that wrote it.
    pub written_by: String,
    /// When.
    pub at_ms: i64,
    /// Every node's head, in node order.
    pub heads: Vec<NodeHead>,
    /// The previous checkpoint's hash (the genesis hash for the first).
    pub prev_hash: String,
    /// This checkpoint's hash ([`checkpoint_hash`]).
    pub hash: String,
}

/// The hash of a checkpoint's contents.
pub fn checkpoint_hash(
    seq: i64,
    prev_hash: &str,
    written_by: &str,
    at_ms: i64,
    heads: &[NodeHead],
) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(b"credence-checkpoint-v1");
    field(&seq.to_be_bytes());
    field(prev_hash.as_bytes());
    field(written_by.as_bytes());
    field(&at_ms.to_be_bytes());
    field(&(heads.len() as u64).to_be_bytes());
    for head in heads {
        field(head.node_id.as_bytes());
        field(&head.node_seq.to_be_bytes());
        field(head.hash.as_bytes());
    }
    hex::encode(hasher.finalize())
}

struct NodeState {
    expected_seq: i64,
    prev_hash: String,
}

/// Checks a cluster's log: feed [`ClusterVerifier::checkpoint`] every checkpoint in order,
/// then [`ClusterVerifier::record`] every record in (node, sequence) order, then
/// [`ClusterVerifier::finish`] with the heads the nodes recorded.
pub struct ClusterVerifier {
    anchors: BTreeMap<String, (i64, String)>,
    nodes: BTreeMap<String, NodeState>,
    checkpoint_seq: i64,
    checkpoint_hash: String,
    newest_heads: BTreeMap<String, (i64, String)>,
    records: u64,
    problem: Option<ChainProblem>,
}

impl ClusterVerifier {
    /// A verifier whose node chains start after the given retention anchors (the last record
    /// of each node that retention dropped), and whose checkpoint chain starts after
    /// `checkpoint_anchor` (the last checkpoint dropped, if any).
    pub fn new(anchors: Vec<NodeHead>, checkpoint_anchor: Option<(i64, String)>) -> Self {
        let (checkpoint_seq, checkpoint_hash) =
            checkpoint_anchor.unwrap_or((0, GENESIS_HASH.to_string()));
        ClusterVerifier {
            anchors: anchors
                .into_iter()
                .map(|a| (a.node_id, (a.node_seq, a.hash)))
                .collect(),
            nodes: BTreeMap::new(),
            checkpoint_seq,
            checkpoint_hash,
            newest_heads: BTreeMap::new(),
            records: 0,
            problem: None,
        }
    }

    fn fail(&mut self, seq: i64, problem: String) -> bool {
        if self.problem.is_none() {
            self.problem = Some(ChainProblem { seq, problem });
        }
        false
    }

    /// Feeds the next checkpoint; false once a problem is found.
    pub fn checkpoint(&mut self, checkpoint: &Checkpoint) -> bool {
        if self.problem.is_some() {
            return false;
        }
        let seq = checkpoint.seq;
        if seq != self.checkpoint_seq + 1 {
            return self.fail(0, format!(
                "checkpoint {} expected next, found checkpoint {seq}: checkpoints were removed or reordered",
                self.checkpoint_seq + 1
            ));
        }
        if checkpoint.prev_hash != self.checkpoint_hash {
            return self.fail(0, format!(
                "checkpoint {seq}'s prev_hash does not match checkpoint {}'s hash: a checkpoint was changed or removed",
                self.checkpoint_seq
            ));
        }
        let expected = checkpoint_hash(
            seq,
            &checkpoint.prev_hash,
            &checkpoint.written_by,
            checkpoint.at_ms,
            &checkpoint.heads,
        );
        if expected != checkpoint.hash {
            return self.fail(
                0,
                format!("checkpoint {seq}'s contents do not match its hash: it was changed"),
            );
        }
        let mut heads = BTreeMap::new();
        for head in &checkpoint.heads {
            heads.insert(head.node_id.clone(), (head.node_seq, head.hash.clone()));
        }
        let shrunk =
            self.newest_heads
                .iter()
                .find_map(|(node, (before, _))| match heads.get(node) {
                    None => Some(format!("node {node} is missing from checkpoint {seq}")),
                    Some((now, _)) if now < before => Some(format!(
                        "node {node}'s head went back from {before} to {now} in checkpoint {seq}"
                    )),
                    Some(_) => None,
                });
        if let Some(problem) = shrunk {
            return self.fail(0, format!("{problem}: the checkpoint chain was rewritten"));
        }
        self.newest_heads = heads;
        self.checkpoint_seq = seq;
        self.checkpoint_hash = checkpoint.hash.clone();
        true
    }

    /// Feeds the next record (in node, then sequence, order); `seq` is its position in the
    /// whole log, for the report. False once a problem is found.
    pub fn record(
        &mut self,
        seq: i64,
        node_id: &str,
        node_seq: i64,
        prev_hash: &str,
        hash: &str,
        record: &NewDecision,
    ) -> bool {
        if self.problem.is_some() {
            return false;
        }
        if !self.nodes.contains_key(node_id) {
            let start = self
                .anchors
                .get(node_id)
                .cloned()
                .unwrap_or((0, GENESIS_HASH.to_string()));
            self.nodes.insert(
                node_id.to_string(),
                NodeState {
                    expected_seq: start.0 + 1,
                    prev_hash: start.1,
                },
            );
        }
        let state = &self.nodes[node_id];
        if node_seq != state.expected_seq {
            let expected = state.expected_seq;
            return self.fail(seq, format!(
                "node {node_id}: expected record {expected} next, found record {node_seq}: records were removed or reordered"
            ));
        }
        if prev_hash != state.prev_hash {
            return self.fail(seq, format!(
                "node {node_id} record {node_seq}: its prev_hash does not match the previous record's hash: a record before it was changed, removed or reordered"
            ));
        }
        if node_record_hash(node_id, node_seq, prev_hash, record) != hash {
            return self.fail(seq, format!(
                "node {node_id} record {node_seq}: its contents do not match its hash: decision {} was changed after it was written",
                record.id
            ));
        }
        if let Some((claimed_seq, claimed_hash)) = self.newest_heads.get(node_id) {
            if *claimed_seq == node_seq && claimed_hash != hash {
                return self.fail(seq, format!(
                    "node {node_id} record {node_seq} differs from checkpoint {}: the node's chain was rewritten",
                    self.checkpoint_seq
                ));
            }
        }
        let state = self.nodes.get_mut(node_id).expect("inserted above");
        state.expected_seq += 1;
        state.prev_hash = hash.to_string();
        self.records += 1;
        true
    }

    /// Ends the check: every node the newest checkpoint names must reach its head there, and
    /// each node's chain must end at the head it recorded (`recorded_heads`).
    pub fn finish(mut self, recorded_heads: &[NodeHead]) -> ChainReport {
        if self.problem.is_none() {
            let claims: Vec<(String, i64)> = self
                .newest_heads
                .iter()
                .map(|(node, (seq, _))| (node.clone(), *seq))
                .collect();
            for (node, claimed) in claims {
                let (end, _) = last(&self.nodes, &self.anchors, &node);
                if end < claimed {
                    let problem = if end == 0 {
                        format!("node {node}'s whole chain is missing, though checkpoint {} names it at record {claimed}", self.checkpoint_seq)
                    } else {
                        format!("node {node}'s chain ends at record {end}, but checkpoint {} names record {claimed}: the newest records were removed", self.checkpoint_seq)
                    };
                    self.fail(0, problem);
                    break;
                }
            }
        }
        if self.problem.is_none() {
            for head in recorded_heads {
                let (end, end_hash) = last(&self.nodes, &self.anchors, &head.node_id);
                if end != head.node_seq || end_hash != head.hash {
                    let problem = format!(
                        "node {}'s chain ends at record {end}, but the node recorded its head at record {}: records were removed or the head was changed",
                        head.node_id, head.node_seq
                    );
                    self.fail(0, problem);
                    break;
                }
            }
            for node in self.nodes.keys() {
                if !recorded_heads.iter().any(|h| &h.node_id == node) {
                    let problem = format!("node {node} has records but no recorded head: the node's registration was removed");
                    self.problem = Some(ChainProblem { seq: 0, problem });
                    break;
                }
            }
        }
        ChainReport {
            records: self.records,
            head_hash: self.checkpoint_hash,
            problem: self.problem,
        }
    }
}

fn last(
    nodes: &BTreeMap<String, NodeState>,
    anchors: &BTreeMap<String, (i64, String)>,
    node: &str,
) -> (i64, String) {
    nodes
        .get(node)
        .map(|s| (s.expected_seq - 1, s.prev_hash.clone()))
        .or_else(|| anchors.get(node).cloned())
        .unwrap_or((0, GENESIS_HASH.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> NewDecision {
        NewDecision {
            id: id.to_string(),
            flow: "application".into(),
            customer_id: Some("C-1".into()),
            idempotency_key: None,
            request_sha256: crate::chain::sha256_hex(b"{}"),
            strategy: "consumer-loan".into(),
            strategy_version: "abc".into(),
            arm: None,
            outcome: "approve".into(),
            as_of: "2026-12-06".into(),
            language: "en".into(),
            created_at_ms: 1_800_000_000_000,
            latency_us: 40,
            input: "{}".into(),
            decision: "{\"outcome\":\"approve\"}".into(),
        }
    }

    /// A stored row: (seq, node, node_seq, prev, hash, record).
    type Row = (i64, String, i64, String, String, NewDecision);

    /// Two nodes, `a` with 4 records and `b` with 3, interleaved in the global order.
    fn log() -> Vec<Row> {
        let mut rows = Vec::new();
        let mut heads: BTreeMap<&str, (i64, String)> = BTreeMap::new();
        for (seq, node) in ["a", "b", "a", "a", "b", "a", "b"].into_iter().enumerate() {
            let (n, prev) = heads.get(node).cloned().unwrap_or((0, GENESIS_HASH.into()));
            let r = record(&format!("dec_{seq}"));
            let hash = node_record_hash(node, n + 1, &prev, &r);
            rows.push((
                seq as i64 + 1,
                node.to_string(),
                n + 1,
                prev,
                hash.clone(),
                r,
            ));
            heads.insert(node, (n + 1, hash));
        }
        rows
    }

    fn heads_of(rows: &[Row]) -> Vec<NodeHead> {
        let mut heads: BTreeMap<String, NodeHead> = BTreeMap::new();
        for (_, node, n, _, hash, _) in rows {
            heads.insert(
                node.clone(),
                NodeHead {
                    node_id: node.clone(),
                    node_seq: *n,
                    hash: hash.clone(),
                },
            );
        }
        heads.into_values().collect()
    }

    fn checkpoints(rows: &[Row], cuts: &[usize]) -> Vec<Checkpoint> {
        let mut prev = GENESIS_HASH.to_string();
        cuts.iter()
            .enumerate()
            .map(|(i, cut)| {
                let heads = heads_of(&rows[..*cut]);
                let seq = i as i64 + 1;
                let hash = checkpoint_hash(seq, &prev, "a", 10 * seq, &heads);
                let c = Checkpoint {
                    seq,
                    written_by: "a".into(),
                    at_ms: 10 * seq,
                    heads,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                c
            })
            .collect()
    }

    fn verify(rows: &[Row], checkpoints: &[Checkpoint], recorded: &[NodeHead]) -> ChainReport {
        let mut verifier = ClusterVerifier::new(Vec::new(), None);
        for c in checkpoints {
            verifier.checkpoint(c);
        }
        let mut sorted = rows.to_vec();
        sorted.sort_by(|x, y| (&x.1, x.2).cmp(&(&y.1, y.2)));
        for (seq, node, n, prev, hash, r) in &sorted {
            verifier.record(*seq, node, *n, prev, hash, r);
        }
        verifier.finish(recorded)
    }

    #[test]
    fn an_intact_cluster_log_verifies() {
        let rows = log();
        let report = verify(&rows, &checkpoints(&rows, &[3, 6, 7]), &heads_of(&rows));
        assert!(report.verified(), "{report:?}");
        assert_eq!(report.records, 7);
        assert!(verify(&[], &[], &[]).verified());
    }

    /// Each kind of tampering, and words the problem must contain.
    #[test]
    fn tampering_anywhere_is_detected() {
        type Tamper = fn(&mut Vec<Row>, &mut Vec<Checkpoint>, &mut Vec<NodeHead>);
        let cases: [(&str, Tamper, &str); 9] = [
            (
                "changed byte",
                |r, _, _| r[2].5.input.push(' '),
                "contents do not match",
            ),
            (
                "deleted row",
                |r, _, _| {
                    r.remove(2);
                },
                "records were removed",
            ),
            (
                "moved to another node",
                |r, _, _| r[6].1 = "a".into(),
                "node a",
            ),
            (
                "newest records of a node deleted",
                |r, _, h| {
                    r.truncate(5);
                    h.retain(|h| h.node_id != "b");
                    h.push(NodeHead {
                        node_id: "b".into(),
                        node_seq: 1,
                        hash: r[1].4.clone(),
                    });
                },
                "newest records were removed",
            ),
            (
                "newest record after the newest checkpoint deleted",
                |r, c, _| {
                    r.pop();
                    c.pop();
                },
                "recorded its head",
            ),
            (
                "a node's chain dropped",
                |r, _, h| {
                    r.retain(|x| x.1 != "b");
                    h.retain(|h| h.node_id != "b");
                },
                "whole chain is missing",
            ),
            (
                "checkpoint changed",
                |_, c, _| c[1].at_ms += 1,
                "checkpoint 2's contents",
            ),
            (
                "checkpoint deleted",
                |_, c, _| {
                    c.remove(1);
                },
                "checkpoint 2 expected",
            ),
            (
                "node's registration removed",
                |_, _, h| {
                    h.retain(|h| h.node_id != "b");
                },
                "no recorded head",
            ),
        ];
        for (name, tamper, words) in cases {
            let mut rows = log();
            let mut cps = checkpoints(&rows, &[3, 6, 7]);
            let mut recorded = heads_of(&rows);
            tamper(&mut rows, &mut cps, &mut recorded);
            let report = verify(&rows, &cps, &recorded);
            let problem = report
                .problem
                .unwrap_or_else(|| panic!("{name}: not detected"));
            assert!(
                problem.problem.contains(words),
                "{name}: {}",
                problem.problem
            );
        }
    }

    #[test]
    fn a_chain_resumes_after_its_retention_anchor() {
        let rows = log();
        let anchor = NodeHead {
            node_id: "a".into(),
            node_seq: 2,
            hash: rows[2].4.clone(),
        };
        let kept: Vec<Row> = rows
            .iter()
            .filter(|r| !(r.1 == "a" && r.2 <= 2))
            .cloned()
            .collect();
        let mut verifier = ClusterVerifier::new(vec![anchor], None);
        let mut sorted = kept.clone();
        sorted.sort_by(|x, y| (&x.1, x.2).cmp(&(&y.1, y.2)));
        for (seq, node, n, prev, hash, r) in &sorted {
            verifier.record(*seq, node, *n, prev, hash, r);
        }
        let report = verifier.finish(&heads_of(&rows));
        assert!(report.verified(), "{report:?}");
        assert_eq!(report.records, 5);
    }
}
