//! The log record of a decision: its id, the request's fingerprint and the record every path
//! that decides appends.

use crate::error::{AppError, ErrorCode};
use credence_engine::DecisionRecord;
use credence_store::NewDecision;

/// The decision as the API returns and the log stores it: its [`DecisionRecord`].
pub fn body_with_id(id: &str, decision: &credence_engine::Decision) -> Result<String, AppError> {
    DecisionRecord::write(id, decision).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("cannot serialise the decision: {e}"),
        )
    })
}

/// A stored decision's record; a record this build cannot read is an internal error naming it.
pub fn read_record(stored: &NewDecision) -> Result<DecisionRecord, AppError> {
    DecisionRecord::parse(&stored.decision).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("stored decision {}: {e}", stored.id),
        )
    })
}

/// The fingerprint of a request: SHA-256 of the flow, a line feed and the caller's bytes. It
/// tells a retry from a different request reusing an idempotency key.
pub fn request_fingerprint(flow: &str, caller_request: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(flow.len() + 1 + caller_request.len());
    bytes.extend_from_slice(flow.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(caller_request);
    credence_store::chain::sha256_hex(&bytes)
}

/// What a decision's log record holds besides the decision itself.
pub struct RecordContext {
    /// The decision's id (`new_id`).
    pub id: String,
    /// The customer the input names, if any (for history by customer).
    pub customer_id: Option<String>,
    /// The caller's Idempotency-Key, if any.
    pub idempotency_key: Option<String>,
    /// `request_fingerprint` of what the caller sent.
    pub request_sha256: String,
    /// The language of reason texts.
    pub language: String,
    /// When the request was received.
    pub created_at_ms: i64,
    /// Time from the request to the decision, before the log commit.
    pub latency_us: i64,
    /// The input as received: what a replay re-reads.
    pub input: String,
}

/// The log record of a decision: the one builder every path that decides uses.
pub fn new_record(
    flow: &str,
    decision: &credence_engine::Decision,
    context: RecordContext,
) -> Result<NewDecision, AppError> {
    let json = body_with_id(&context.id, decision)?;
    Ok(NewDecision {
        id: context.id,
        flow: flow.to_string(),
        customer_id: context.customer_id,
        idempotency_key: context.idempotency_key,
        request_sha256: context.request_sha256,
        strategy: decision.strategy.to_string(),
        strategy_version: decision.strategy_version.to_string(),
        arm: decision.arm.as_deref().map(str::to_string),
        outcome: decision.outcome.as_str().to_string(),
        as_of: decision.as_of.clone(),
        language: context.language,
        created_at_ms: context.created_at_ms,
        latency_us: context.latency_us,
        input: context.input,
        decision: json,
    })
}

/// Random bytes drawn from the operating system per call of `getrandom`: ids take 8 each, so
/// one system call serves 64 ids (a call per id cost a kernel entry on every decision).
const RANDOM_POOL_BYTES: usize = 512;

thread_local! {
    /// This thread's unused random bytes, from the operating system's generator.
    static RANDOM_POOL: std::cell::RefCell<(usize, [u8; RANDOM_POOL_BYTES])> =
        const { std::cell::RefCell::new((RANDOM_POOL_BYTES, [0; RANDOM_POOL_BYTES])) };
}

/// Eight bytes from the operating system's generator, through this thread's pool: each byte
/// is used once.
fn random_u64() -> Result<u64, AppError> {
    RANDOM_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (used, bytes) = &mut *pool;
        if *used + 8 > RANDOM_POOL_BYTES {
            getrandom::fill(bytes)
                .map_err(|e| AppError::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
            *used = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[*used..*used + 8]);
        // Spent bytes are wiped: what was handed out is not kept in memory.
        bytes[*used..*used + 8].fill(0);
        *used += 8;
        Ok(u64::from_be_bytes(word))
    })
}

/// A new decision id: `dec_` + the time in hex (at least 12 digits) + 64 random bits (16).
/// Written digit by digit: `format!` cost ten times as much on every decision.
pub fn new_id(now_ms: i64) -> Result<String, AppError> {
    let mut id = String::with_capacity(4 + 12 + 16);
    id.push_str("dec_");
    push_hex(&mut id, now_ms.max(0) as u64, 12);
    push_hex(&mut id, random_u64()?, 16);
    Ok(id)
}

/// `value` in lower-case hex, zero-padded to `min_digits`, as `{:0min_digits$x}` writes it.
fn push_hex(out: &mut String, value: u64, min_digits: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let significant = (64 - value.leading_zeros() as usize).div_ceil(4);
    for digit in (0..significant.max(min_digits).max(1)).rev() {
        let nibble = value.checked_shr(4 * digit as u32).unwrap_or(0) & 0xf;
        out.push(char::from(DIGITS[nibble as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct_and_keep_their_shape_across_pool_refills() {
        let count = RANDOM_POOL_BYTES / 8 * 3 + 5;
        let ids: Vec<String> = (0..count).map(|_| new_id(0x1234).unwrap()).collect();
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), count);
        for id in &ids {
            assert_eq!(id.len(), 4 + 12 + 16, "{id}");
            assert!(id.starts_with("dec_000000001234"), "{id}");
            assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }

    proptest::proptest! {
        #[test]
        fn hex_digits_are_what_format_writes(value: u64, min_digits in 0usize..20) {
            let mut written = String::new();
            push_hex(&mut written, value, min_digits);
            proptest::prop_assert_eq!(written, format!("{value:0min_digits$x}"));
        }
    }

    #[test]
    fn a_fingerprint_tells_flows_and_bodies_apart() {
        let a = request_fingerprint("application", b"{}");
        assert_eq!(a, request_fingerprint("application", b"{}"));
        assert_ne!(a, request_fingerprint("drawdown", b"{}"));
        assert_ne!(a, request_fingerprint("application", b"{ }"));
        assert_eq!(a.len(), 64);
    }
}
