//! The embedded store: group-committed appends form one verifiable chain, and a reused
//! idempotency key fails alone without taking its batch down; provider answers are kept until
//! they expire.

use credence_store::prelude::*;
use credence_store::{chain, NewDecision, ProviderAnswerRecord, SqliteStore, StoreError};
use std::sync::Arc;

fn decision(n: usize, key: Option<&str>) -> NewDecision {
    NewDecision {
        id: format!("dec_{n:06}"),
        flow: "application".into(),
        customer_id: Some(format!("C-{}", n % 7)),
        idempotency_key: key.map(str::to_string),
        request_sha256: chain::sha256_hex(n.to_string().as_bytes()),
        strategy: "consumer-loan".into(),
        strategy_version: "v1".into(),
        arm: None,
        outcome: "approve".into(),
        as_of: "2026-11-29".into(),
        language: "en".into(),
        created_at_ms: 1_800_000_000_000 + n as i64,
        latency_us: 30,
        input: format!("{{\"n\":{n}}}"),
        decision: "{\"outcome\":\"approve\"}".into(),
    }
}

/// A store's directory under the system's temporary directory, removed when dropped (by a
/// failing test too), so that runs leave nothing behind. Declared before the store, it is
/// dropped after it.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("credence-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_form_one_chain_that_survives_reopening() {
    let dir = temp_dir("chain");
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            let key = format!("key-{}", n % 150);
            tokio::spawn(async move { store.append_decision(decision(n, Some(&key))).await })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(receipt) => seqs.push(receipt.seq),
            Err(StoreError::Conflict { what }) => {
                assert!(what.contains("idempotency key"), "{what}");
                conflicts += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(conflicts, 50, "keys 0–49 were used twice");
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=150).collect::<Vec<i64>>(),
        "no gaps: failed writes took no seq"
    );
    let report = store.verify_chain().await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert_eq!(report.records, 150);
    drop(store);

    let reopened = SqliteStore::open(&dir).unwrap();
    let receipt = reopened
        .append_decision(decision(1000, None))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 151, "the chain continues where it ended");
    assert!(reopened.verify_chain().await.unwrap().verified());
    let stored = reopened.decision("dec_001000").await.unwrap().unwrap();
    assert_eq!(stored.record, decision(1000, None));
    // Records written before the restart come back through the index rebuilt from the log.
    // (Decision 77 holds a key no other task used: of 7 and 157, which share key-7, either may
    // have won the race.)
    let old = reopened.decision("dec_000077").await.unwrap().unwrap();
    assert_eq!(old.record.input, "{\"n\":77}");
    let by_key = reopened
        .decision_by_idempotency_key("key-149")
        .await
        .unwrap();
    assert_eq!(
        by_key.unwrap().record.idempotency_key.as_deref(),
        Some("key-149")
    );
    let history = reopened
        .list_decisions(&credence_store::DecisionQuery {
            customer_id: Some("C-3".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        history.len() > 10
            && history
                .iter()
                .all(|d| d.customer_id.as_deref() == Some("C-3"))
    );
    assert!(
        history.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    // A second appender on the same directory is refused while the first lives.
    let error = SqliteStore::open(&dir)
        .err()
        .expect("the directory is locked");
    assert!(
        error.to_string().contains("another credence process"),
        "{error}"
    );
}

#[tokio::test]
async fn provider_answers_are_kept_until_they_expire_and_the_newest_wins() {
    let dir = temp_dir("provider-answers");
    let answer = |subject: &str, fetched: i64, expires: i64, provider: &str| ProviderAnswerRecord {
        source_key: "bureau#0123456789abcdef0123456789abcdef".into(),
        subject: subject.into(),
        provider: provider.into(),
        values_json: format!("{{\"fetched\":{fetched}}}"),
        fetched_at_ms: fetched,
        expires_at_ms: expires,
    };
    {
        let store = SqliteStore::open(&dir).unwrap();
        store
            .put_provider_answers(
                vec![
                    answer("C-1", 1_000, 5_000, "primary"),
                    answer("C-2", 1_000, 2_000, "primary"),
                    // Already expired when it arrives: not kept.
                    answer("C-3", 100, 900, "primary"),
                ],
                1_000,
            )
            .await
            .unwrap();
        // A newer answer replaces the older; an older one arriving late does not.
        store
            .put_provider_answers(vec![answer("C-1", 1_500, 6_000, "backup")], 1_500)
            .await
            .unwrap();
        store
            .put_provider_answers(vec![answer("C-1", 1_200, 5_200, "primary")], 1_600)
            .await
            .unwrap();
    }
    // Reopened (as after a restart): what is unexpired, latest expiry first.
    let store = SqliteStore::open(&dir).unwrap();
    let kept = store.provider_answers(1_700, 10).await.unwrap();
    assert_eq!(
        kept,
        vec![
            answer("C-1", 1_500, 6_000, "backup"),
            answer("C-2", 1_000, 2_000, "primary")
        ]
    );
    assert_eq!(store.provider_answers(1_700, 1).await.unwrap().len(), 1);
    // Past C-2's expiry it is no longer read, and the next write deletes it.
    assert_eq!(store.provider_answers(2_000, 10).await.unwrap().len(), 1);
    store.put_provider_answers(Vec::new(), 2_000).await.unwrap();
    let count: i64 = rusqlite::Connection::open(dir.join(credence_store::DATABASE_FILE))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM provider_answers", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn referrals_without_a_case_are_found_among_the_newest_decisions_after_reopening() {
    let dir = temp_dir("referrals-without-case");
    {
        let store = SqliteStore::open(&dir).unwrap();
        // Decisions 1–6; 2, 4 and 6 referred; only 4 got its case before the "crash".
        for n in 1..=6 {
            let mut record = decision(n, None);
            if n % 2 == 0 {
                record.outcome = "refer".into();
            }
            store.append_decision(record).await.unwrap();
        }
        store
            .insert_case(credence_store::CaseRecord {
                id: "case_000004".into(),
                decision_id: "dec_000004".into(),
                strategy: "consumer-loan".into(),
                queue: "standard".into(),
                priority: 1,
                state: "open".into(),
                created_at_ms: 0,
                due_at_ms: 0,
                version: 1,
                body: "{}".into(),
            })
            .await
            .unwrap();
    }
    // Reopened: the decisions come back from the log into the index, and the gaps show.
    let store = SqliteStore::open(&dir).unwrap();
    assert_eq!(
        store.referrals_without_case(100).await.unwrap(),
        ["dec_000002", "dec_000006"]
    );
    // Only the newest three decisions looked at: decision 2 is older.
    assert_eq!(
        store.referrals_without_case(3).await.unwrap(),
        ["dec_000006"]
    );
}
