//! Several nodes on one PostgreSQL: their chains, checkpoints and the check that catches tampering; idempotency keys across nodes; one process per node id.

use credence_store::prelude::*;
use credence_store::*;
use credence_store_postgres::{PostgresOptions, PostgresStore};

fn decision(node: &str, n: i64, key: Option<&str>) -> NewDecision {
    NewDecision {
        id: format!("dec_{node}_{n:05}"),
        flow: "application".into(),
        customer_id: Some(format!("C-{}", n % 7)),
        idempotency_key: key.map(str::to_string),
        request_sha256: chain::sha256_hex(&n.to_be_bytes()),
        strategy: "consumer-loan".into(),
        strategy_version: "v1".into(),
        arm: None,
        outcome: "approve".into(),
        as_of: "2026-12-06".into(),
        language: "en".into(),
        created_at_ms: 1_796_551_200_000 + n,
        latency_us: 40,
        input: format!("{{\"n\":{n}}}"),
        decision: "{\"outcome\":\"approve\"}".into(),
    }
}

async fn database(test: &str) -> Option<PostgresOptions> {
    let cluster = credence_throwaway_postgres::require(test)?;
    let mut options = PostgresOptions::new(cluster.fresh_database(test));
    options.checkpoint_every_ms = 100;
    Some(options)
}

/// Nodes `node-a` and `node-b` on one database.
async fn two_nodes(options: &PostgresOptions) -> (PostgresStore, PostgresStore) {
    let a = PostgresStore::connect_node(options, Some("node-a"))
        .await
        .unwrap();
    let b = PostgresStore::connect_node(options, Some("node-b"))
        .await
        .unwrap();
    (a, b)
}

async fn sql(options: &PostgresOptions, statement: &str) -> u64 {
    let (client, connection) = tokio_postgres::connect(&options.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.execute(statement, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_append_concurrently_and_any_tampering_fails_the_check() {
    let Some(options) = database("tampering").await else {
        return;
    };
    let (a, b) = two_nodes(&options).await;
    let mut tasks = Vec::new();
    for (store, node) in [(a.clone(), "a"), (b.clone(), "b")] {
        for chunk in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in (chunk * 50)..(chunk * 50 + 50) {
                    store
                        .append_decision(decision(node, n, None))
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    a.checkpoint_now().await.unwrap();
    let admin = PostgresStore::connect(&options).await.unwrap();
    let report = admin.verify_chain().await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert_eq!(report.records, 400);
    let heads = admin.node_heads().await.unwrap();
    assert_eq!(
        heads
            .iter()
            .map(|h| (h.node_id.as_str(), h.node_seq))
            .collect::<Vec<_>>(),
        [("node-a", 200), ("node-b", 200)]
    );
    // An administrative store reads but does not append.
    let refused = admin
        .append_decision(decision("x", 1, None))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Precondition { .. }),
        "{refused}"
    );

    // Each tampering on a copy of the log, undone before the next.
    let tamperings: [(&str, &str, &str, &str); 3] = [
        (
            "a changed byte",
            "UPDATE decisions SET input = '{\"n\":8}' WHERE id = 'dec_a_00007'",
            "UPDATE decisions SET input = '{\"n\":7}' WHERE id = 'dec_a_00007'",
            "contents do not match",
        ),
        (
            "a deleted row",
            "WITH gone AS (DELETE FROM decisions WHERE id = 'dec_b_00010' RETURNING *) \
             INSERT INTO deleted SELECT * FROM gone",
            "INSERT INTO decisions SELECT * FROM deleted",
            "records were removed",
        ),
        (
            "a node's newest records deleted",
            "WITH gone AS (DELETE FROM decisions WHERE node_id = 'node-b' AND node_seq > 190 RETURNING *) \
             INSERT INTO deleted SELECT * FROM gone",
            "INSERT INTO decisions SELECT * FROM deleted",
            "newest records were removed",
        ),
    ];
    sql(&options, "CREATE TABLE deleted (LIKE decisions)").await;
    for (name, tamper, undo, words) in tamperings {
        sql(&options, "DELETE FROM deleted").await;
        assert!(sql(&options, tamper).await > 0, "{name}: nothing changed");
        let report = admin.verify_chain().await.unwrap();
        let problem = report
            .problem
            .unwrap_or_else(|| panic!("{name}: not detected"));
        assert!(
            problem.problem.contains(words),
            "{name}: {}",
            problem.problem
        );
        sql(&options, undo).await;
        assert!(
            admin.verify_chain().await.unwrap().verified(),
            "{name}: undone"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_taken_once_across_nodes() {
    let Some(options) = database("keys").await else {
        return;
    };
    let (a, b) = two_nodes(&options).await;
    // Both nodes race for the same 50 keys.
    let race = |store: PostgresStore, node: &'static str| {
        tokio::spawn(async move {
            let mut won = Vec::new();
            for n in 0..50 {
                let key = format!("key-{n}");
                match store.append_decision(decision(node, n, Some(&key))).await {
                    Ok(_) => won.push(n),
                    Err(StoreError::Conflict { what }) => assert!(what.contains(&key), "{what}"),
                    Err(other) => panic!("{other}"),
                }
            }
            won
        })
    };
    let (won_a, won_b) = (race(a.clone(), "a"), race(b.clone(), "b"));
    let (won_a, won_b) = (won_a.await.unwrap(), won_b.await.unwrap());
    assert_eq!(won_a.len() + won_b.len(), 50, "each key taken exactly once");
    for n in 0..50 {
        let stored = b
            .decision_by_idempotency_key(&format!("key-{n}"))
            .await
            .unwrap()
            .unwrap();
        let winner = if won_a.contains(&n) { "a" } else { "b" };
        assert_eq!(stored.record.id, format!("dec_{winner}_{n:05}"));
    }
    assert!(a.verify_chain().await.unwrap().verified());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_live_process_per_node_id() {
    let Some(options) = database("node_ids").await else {
        return;
    };
    let first = PostgresStore::connect_node(&options, Some("node-a"))
        .await
        .unwrap();
    let error = PostgresStore::connect_node(&options, Some("node-a"))
        .await
        .err()
        .expect("a second process as node-a");
    assert!(
        error.to_string().contains("in use by a live process"),
        "{error}"
    );
    let bad = PostgresStore::connect_node(&options, Some("a b"))
        .await
        .err()
        .unwrap();
    assert!(bad.to_string().contains("--node-id"), "{bad}");
    // Without an id: the host's name, then HOST-2 while the first is alive.
    let x = PostgresStore::connect_node(&options, None).await.unwrap();
    let y = PostgresStore::connect_node(&options, None).await.unwrap();
    let (x, y) = (
        x.node_id().unwrap().to_string(),
        y.node_id().unwrap().to_string(),
    );
    assert_eq!(y, format!("{x}-2"));
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_months_and_the_rest_still_verifies() {
    let Some(options) = database("retention").await else {
        return;
    };
    let store = PostgresStore::connect_node(&options, Some("node-a"))
        .await
        .unwrap();
    // 2025-01 and the current month (2026-12): one node's chain across both.
    let january_2025 = 1_735_689_600_000;
    let now = 1_796_551_200_000;
    for n in 0..20 {
        let mut record = decision("a", n, Some(&format!("key-{n}")));
        record.created_at_ms = if n < 12 { january_2025 + n } else { now + n };
        store.append_decision(record).await.unwrap();
    }
    store.checkpoint_now().await.unwrap();
    assert!(store.verify_chain().await.unwrap().verified());
    assert!(store.drop_months_before(now, 24).await.unwrap().is_empty());
    let dropped = store.drop_months_before(now, 12).await.unwrap();
    assert_eq!(dropped, [("2025-01".to_string(), 12)]);
    let report = store.verify_chain().await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert_eq!(report.records, 8);
    assert!(store
        .decision_by_idempotency_key("key-3")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .decision_by_idempotency_key("key-15")
        .await
        .unwrap()
        .is_some());
    // The chain goes on after the cut, and tampering is still caught.
    store
        .append_decision(decision("a", 99, None))
        .await
        .unwrap();
    assert!(store.verify_chain().await.unwrap().verified());
    sql(&options, "UPDATE log_retention SET node_seq = node_seq - 1").await;
    assert!(!store.verify_chain().await.unwrap().verified());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_resumes_its_chain_after_its_connections_are_cut() {
    let Some(options) = database("connections_cut").await else {
        return;
    };
    let node = PostgresStore::connect_node(&options, Some("node-a"))
        .await
        .unwrap();
    for n in 0..5 {
        node.append_decision(decision("a", n, None)).await.unwrap();
    }
    // Every connection of the node is cut (a database restart, a network blip).
    let cut = sql(
        &options,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    assert!(cut > 0);
    // Appends are refused (retryable) until the writer has reconnected, then succeed; none is
    // half-written.
    let started = std::time::Instant::now();
    let mut n = 5;
    while n < 10 {
        match node.append_decision(decision("a", n, None)).await {
            Ok(_) => n += 1,
            Err(StoreError::Unavailable(_) | StoreError::Commit(_)) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "never recovered"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    node.writable().await.unwrap();
    let report = node.verify_chain().await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert_eq!(report.records, 10);
    // The node still holds its id: a second process cannot take it.
    let error = PostgresStore::connect_node(&options, Some("node-a"))
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("in use"), "{error}");
}
