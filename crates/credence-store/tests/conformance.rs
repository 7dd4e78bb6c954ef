//! The store conformance suite: each aggregate's contract written once against the traits and run against every implementation (SQLite, in-memory, PostgreSQL).
//!
//! A new implementation is added with one line at the bottom (`conformance!(name, factory)`);
//! every test then runs against it. What a store does beyond the contract (SQLite's recovery
//! after a crash, its group commit) is tested beside the implementation.

use credence_store::prelude::*;
use credence_store::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A store under test, and whatever must live as long as it (a temporary folder).
struct Subject {
    store: Arc<dyn Store>,
    dir: Option<std::path::PathBuf>,
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn sqlite(test: &str) -> Option<Subject> {
    let dir = std::env::temp_dir().join(format!(
        "credence-conformance-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Some(Subject {
        store: Arc::new(SqliteStore::open(&dir).unwrap()),
        dir: Some(dir),
    })
}

fn memory(_test: &str) -> Option<Subject> {
    Some(Subject {
        store: Arc::new(MemoryStore::new()),
        dir: None,
    })
}

/// A node on a fresh database of the process's throwaway PostgreSQL (none: the test skips).
fn postgres(test: &str) -> Option<Subject> {
    let cluster = credence_throwaway_postgres::require(test)?;
    let url = cluster.fresh_database(test);
    let options = credence_store_postgres::PostgresOptions::new(url);
    let store = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(
            credence_store_postgres::PostgresStore::connect_node(&options, Some("conformance")),
        )
    })
    .unwrap();
    Some(Subject {
        store: Arc::new(store),
        dir: None,
    })
}

fn audit(action: &str, subject: &str) -> NewAuditEvent {
    NewAuditEvent {
        at_ms: 1_000,
        actor: "tester".into(),
        action: action.into(),
        subject: subject.into(),
        detail: serde_json::json!({"why": action}),
    }
}

fn decision(n: i64, outcome: &str, key: Option<&str>) -> NewDecision {
    NewDecision {
        id: format!("dec_{n:04}"),
        flow: if n % 2 == 0 {
            "application"
        } else {
            "drawdown"
        }
        .into(),
        customer_id: Some(format!("C-{}", n % 3)),
        idempotency_key: key.map(str::to_string),
        request_sha256: chain::sha256_hex(&n.to_be_bytes()),
        strategy: if n % 3 == 0 {
            "card-line"
        } else {
            "consumer-loan"
        }
        .into(),
        strategy_version: "v1".into(),
        arm: (n % 4 == 0).then(|| "challenger".to_string()),
        outcome: outcome.into(),
        as_of: "2026-12-06".into(),
        language: "en".into(),
        created_at_ms: 1_000 * n,
        latency_us: 40,
        input: format!("{{\"n\":{n}}}"),
        decision: format!("{{\"outcome\":\"{outcome}\"}}"),
    }
}

/// Polls `check` until it holds (what the SQLite store indexes behind its answers becomes
/// visible within a second); fails with the last value after 10 s.
async fn eventually<T: std::fmt::Debug>(
    mut read: impl AsyncFnMut() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let started = Instant::now();
    loop {
        let value = read().await;
        if check(&value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never held: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn decisions_form_a_chain_and_idempotency_keys_are_unique(store: &dyn Store) {
    let mut previous = chain::GENESIS_HASH.to_string();
    for n in 1..=6 {
        let key = format!("key-{n}");
        let receipt = store
            .append_decision(decision(n, "approve", Some(&key)))
            .await
            .unwrap();
        assert_eq!(receipt.seq, n);
        let stored = store
            .decision(&format!("dec_{n:04}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.seq, &stored.prev_hash, &stored.hash),
            (n, &previous, &receipt.hash)
        );
        assert_ne!(stored.hash, previous);
        previous = receipt.hash;
    }
    let error = store
        .append_decision(decision(7, "approve", Some("key-3")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { what } if what.contains("key-3")),
        "{error}"
    );
    assert!(store.decision("dec_0007").await.unwrap().is_none());
    let by_key = store.decision_by_idempotency_key("key-3").await.unwrap();
    assert_eq!(by_key.map(|d| d.record.id), Some("dec_0003".to_string()));
    assert!(store.decision("dec_9999").await.unwrap().is_none());
    let report = store.verify_chain().await.unwrap();
    assert!(report.verified(), "{report:?}");
    store.writable().await.unwrap();
}

async fn decision_lists_are_newest_first_and_filtered(store: &dyn Store) {
    for n in 1..=9 {
        store
            .append_decision(decision(n, "approve", None))
            .await
            .unwrap();
    }
    let ids = |items: Vec<DecisionSummary>| items.into_iter().map(|d| d.seq).collect::<Vec<_>>();
    let query = |f: fn(&mut DecisionQuery)| {
        let mut q = DecisionQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = store.list_decisions(&query(|_| {})).await.unwrap();
    assert_eq!(ids(all.clone()), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(all[0].arm, None);
    assert_eq!(all[1].arm.as_deref(), Some("challenger"));
    assert_eq!(
        (all[0].strategy.as_str(), all[1].strategy.as_str()),
        ("card-line", "consumer-loan")
    );
    let cases: Vec<(DecisionQuery, Vec<i64>)> = vec![
        (query(|q| q.limit = 3), vec![9, 8, 7]),
        (query(|q| q.before_seq = Some(4)), vec![3, 2, 1]),
        (
            query(|q| q.flow = Some("application".into())),
            vec![8, 6, 4, 2],
        ),
        (query(|q| q.customer_id = Some("C-1".into())), vec![7, 4, 1]),
        (
            query(|q| q.strategy = Some("card-line".into())),
            vec![9, 6, 3],
        ),
        (
            query(|q| {
                q.strategy = Some("consumer-loan".into());
                q.flow = Some("application".into());
            }),
            vec![8, 4, 2],
        ),
        (query(|q| q.strategy_version = Some("v2".into())), vec![]),
        (
            query(|q| {
                q.from_ms = Some(3_000);
                q.to_ms = Some(6_000);
            }),
            vec![5, 4, 3],
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(
            ids(store.list_decisions(&q).await.unwrap()),
            expected,
            "{q:?}"
        );
    }
}

fn strategy(version: &str, at_ms: i64) -> StrategyRecord {
    StrategyRecord {
        version: version.into(),
        name: "consumer-loan".into(),
        state: StrategyState::Draft,
        uploaded_by: "analyst".into(),
        uploaded_at_ms: at_ms,
        approved_by: None,
        approved_at_ms: None,
        cases_passed: 12,
    }
}

async fn strategies_go_from_draft_to_approved_to_active(store: &dyn Store) {
    let inserted = store
        .insert_strategy(
            strategy("v1", 10),
            b"package-1".to_vec(),
            audit("upload", "v1"),
        )
        .await
        .unwrap();
    assert!(inserted);
    let again = store
        .insert_strategy(strategy("v1", 11), b"other".to_vec(), audit("upload", "v1"))
        .await
        .unwrap();
    assert!(!again, "an existing version is not replaced");
    store
        .insert_strategy(
            strategy("v2", 20),
            b"package-2".to_vec(),
            audit("upload", "v2"),
        )
        .await
        .unwrap();
    let versions: Vec<String> = store
        .strategies()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(versions, ["v2", "v1"], "newest upload first");
    assert_eq!(
        store.strategy_package("v1").await.unwrap().as_deref(),
        Some(&b"package-1"[..])
    );
    assert!(store.strategy("v9").await.unwrap().is_none());

    let refused = store
        .record_activation("v1", "approver", "activate", 30, audit("activate", "v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Precondition { .. }),
        "{refused}"
    );
    store
        .approve_strategy("v1", "approver", 25, audit("approve", "v1"))
        .await
        .unwrap();
    let approved = store.strategy("v1").await.unwrap().unwrap();
    assert_eq!(
        (
            approved.state,
            approved.approved_by.as_deref(),
            approved.approved_at_ms
        ),
        (StrategyState::Approved, Some("approver"), Some(25))
    );
    let twice = store
        .approve_strategy("v1", "approver", 26, audit("approve", "v1"))
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::Precondition { .. }), "{twice}");
    for (seq, kind) in [(1, "activate"), (2, "rollback")] {
        let activation = store
            .record_activation("v1", "approver", kind, 30 + seq, audit(kind, "v1"))
            .await
            .unwrap();
        assert_eq!((activation.seq, activation.kind.as_str()), (seq, kind));
    }
    let newest: Vec<i64> = store
        .activations(None, 1)
        .await
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(newest, [2]);
    let actions: Vec<String> = store
        .audit_events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    // Refused changes leave no audit event; the rest are newest first.
    assert_eq!(
        actions,
        ["rollback", "activate", "approve", "upload", "upload"]
    );
}

fn key(id: &str, at_ms: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        secret_sha256: chain::sha256_hex(id.as_bytes()),
        user: "ops".into(),
        roles: vec!["analyst".into(), "decide".into()],
        strategies: if id == "k2" {
            vec!["card-line".into(), "consumer-loan".into()]
        } else {
            Vec::new()
        },
        created_at_ms: at_ms,
        created_by: "admin".into(),
        revoked_at_ms: None,
    }
}

async fn keys_users_and_sessions(store: &dyn Store) {
    store
        .insert_key(key("k2", 20), audit("key", "k2"))
        .await
        .unwrap();
    store
        .insert_key(key("k1", 10), audit("key", "k1"))
        .await
        .unwrap();
    let duplicate = store
        .insert_key(key("k1", 30), audit("key", "k1"))
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, StoreError::Conflict { .. }),
        "{duplicate}"
    );
    let ids: Vec<String> = store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["k1", "k2"], "oldest first");
    assert_eq!(store.key("k1").await.unwrap(), Some(key("k1", 10)));
    assert_eq!(store.key("k2").await.unwrap(), Some(key("k2", 20)));
    store
        .revoke_key("k1", 40, audit("revoke", "k1"))
        .await
        .unwrap();
    assert_eq!(
        store.key("k1").await.unwrap().unwrap().revoked_at_ms,
        Some(40)
    );
    for id in ["k1", "nope"] {
        let error = store
            .revoke_key(id, 50, audit("revoke", id))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Precondition { .. }),
            "{id}: {error}"
        );
    }

    let user = UserRecord {
        username: "rita".into(),
        password_hash: "$argon2id$…".into(),
        role: "review".into(),
        strategies: vec!["card-line".into()],
        created_at_ms: 5,
        disabled_at_ms: None,
    };
    store
        .insert_user(user.clone(), audit("user", "rita"))
        .await
        .unwrap();
    let twice = store
        .insert_user(user.clone(), audit("user", "rita"))
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::Conflict { .. }), "{twice}");
    assert_eq!(store.user("rita").await.unwrap(), Some(user.clone()));
    assert!(store.user("nobody").await.unwrap().is_none());

    let session = |token: &str, created: i64, expires: i64| SessionRecord {
        token_sha256: token.into(),
        username: "rita".into(),
        csrf_token: format!("csrf-{token}"),
        created_at_ms: created,
        expires_at_ms: expires,
    };
    store.insert_session(session("s1", 0, 100)).await.unwrap();
    assert_eq!(
        store.session("s1").await.unwrap(),
        Some(session("s1", 0, 100))
    );
    // A new session clears the expired ones.
    store.insert_session(session("s2", 200, 300)).await.unwrap();
    assert!(store.session("s1").await.unwrap().is_none());
    store.delete_session("s2").await.unwrap();
    assert!(store.session("s2").await.unwrap().is_none());

    // Users are listed by name; a change replaces the user; disabling ends their sessions.
    let mut anna = user.clone();
    anna.username = "anna".into();
    store
        .insert_user(anna, audit("user", "anna"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["anna", "rita"]);
    store.insert_session(session("s3", 400, 900)).await.unwrap();
    let mut disabled = user.clone();
    disabled.disabled_at_ms = Some(500);
    disabled.password_hash = "$argon2id$new".into();
    store
        .update_user(disabled.clone(), audit("user.disable", "rita"))
        .await
        .unwrap();
    assert_eq!(store.user("rita").await.unwrap(), Some(disabled));
    assert!(store.session("s3").await.unwrap().is_none(), "sessions end");
    let mut nobody = user.clone();
    nobody.username = "nobody".into();
    let refused = store
        .update_user(nobody, audit("user.enable", "nobody"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Precondition { .. }),
        "{refused}"
    );
}

async fn audit_events_are_numbered_and_newest_first(store: &dyn Store) {
    for n in 0..5 {
        store
            .append_audit(audit(&format!("a{n}"), "subject"))
            .await
            .unwrap();
    }
    let events = store.audit_events(3).await.unwrap();
    let seen: Vec<(i64, String)> = events.iter().map(|e| (e.seq, e.action.clone())).collect();
    assert_eq!(seen, [(5, "a4".into()), (4, "a3".into()), (3, "a2".into())]);
    assert_eq!(events[0].detail, serde_json::json!({"why": "a4"}));
}

fn case(id: &str, decision_id: &str, queue: &str, priority: i64, due: i64) -> CaseRecord {
    CaseRecord {
        id: id.into(),
        decision_id: decision_id.into(),
        strategy: "consumer-loan".into(),
        queue: queue.into(),
        priority,
        state: "open".into(),
        created_at_ms: 0,
        due_at_ms: due,
        version: 1,
        body: "{}".into(),
    }
}

async fn cases_are_one_per_decision_and_change_under_versions(store: &dyn Store) {
    store
        .insert_case(case("c1", "d1", "fraud", 1, 300))
        .await
        .unwrap();
    store
        .insert_case(case("c2", "d2", "credit", 5, 100))
        .await
        .unwrap();
    store
        .insert_case(case("c3", "d3", "credit", 9, 100))
        .await
        .unwrap();
    let second = store
        .insert_case(case("c9", "d1", "fraud", 1, 1))
        .await
        .unwrap_err();
    assert!(matches!(second, StoreError::Conflict { .. }), "{second}");
    assert_eq!(
        store.case_for_decision("d2").await.unwrap().map(|c| c.id),
        Some("c2".into())
    );
    let ids = |cases: Vec<CaseRecord>| cases.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let all = CaseQuery {
        limit: 10,
        ..Default::default()
    };
    // Soonest deadline first, then the higher priority, then the id.
    assert_eq!(ids(store.cases(&all).await.unwrap()), ["c3", "c2", "c1"]);
    let credit = CaseQuery {
        queue: Some("credit".into()),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(ids(store.cases(&credit).await.unwrap()), ["c3"]);

    let mut decided = store.case("c3").await.unwrap().unwrap();
    decided.state = "decided".into();
    decided.body = "{\"verdict\":\"approve\"}".into();
    store.update_case(decided.clone(), 1).await.unwrap();
    let stored = store.case("c3").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.state.as_str()), (2, "decided"));
    let stale = store.update_case(decided, 1).await.unwrap_err();
    assert!(matches!(stale, StoreError::Precondition { .. }), "{stale}");
    let overdue = CaseQuery {
        due_before_ms: Some(200),
        limit: 10,
        ..Default::default()
    };
    // Decided cases are never overdue.
    assert_eq!(ids(store.cases(&overdue).await.unwrap()), ["c2"]);
    let open = CaseQuery {
        state: Some("open".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(store.cases(&open).await.unwrap()), ["c2", "c1"]);
}

async fn referrals_without_a_case_are_found_among_recent_decisions(store: &dyn Store) {
    for n in 1..=6 {
        let outcome = if n % 2 == 0 { "refer" } else { "approve" };
        store
            .append_decision(decision(n, outcome, None))
            .await
            .unwrap();
    }
    store
        .insert_case(case("c4", "dec_0004", "credit", 1, 1))
        .await
        .unwrap();
    // The SQLite store answers from its index, which follows the log within a second.
    let found = eventually(
        async || store.referrals_without_case(100).await.unwrap(),
        |ids| ids.len() == 2,
    )
    .await;
    assert_eq!(found, ["dec_0002", "dec_0006"], "oldest first");
    let recent = store.referrals_without_case(3).await.unwrap();
    assert_eq!(recent, ["dec_0006"]);
}

fn account(id: &str, decision_id: &str, customer: &str, status: &str) -> AccountRecord {
    AccountRecord {
        id: id.into(),
        customer_id: customer.into(),
        decision_id: decision_id.into(),
        status: status.into(),
        version: 1,
        updated_at_ms: 0,
        body: "{}".into(),
    }
}

fn event(account_id: &str, id: &str, time: i64) -> AccountEventRecord {
    AccountEventRecord {
        account_id: account_id.into(),
        event_id: id.into(),
        event_time_ms: time,
        received_at_ms: time + 1,
        kind: "repayment".into(),
        body: "{}".into(),
    }
}

async fn accounts_change_whole_or_not_at_all(store: &dyn Store) {
    store
        .insert_account(account("a1", "d1", "C1", "active"), audit("open", "a1"))
        .await
        .unwrap();
    let same_decision = store
        .insert_account(account("a9", "d1", "C1", "active"), audit("open", "a9"))
        .await
        .unwrap_err();
    assert!(
        matches!(same_decision, StoreError::Conflict { .. }),
        "{same_decision}"
    );
    store
        .insert_accounts(vec![
            (
                account("a2", "d2", "C2", "frozen"),
                vec![event("a2", "e1", 10)],
            ),
            (
                account("a3", "d3", "C1", "active"),
                vec![event("a3", "e1", 5), event("a3", "e2", 7)],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(store.count_accounts(None).await.unwrap(), 3);
    assert_eq!(store.count_accounts(Some("active")).await.unwrap(), 2);
    assert_eq!(
        store
            .account_for_decision("d3")
            .await
            .unwrap()
            .map(|a| a.id),
        Some("a3".into())
    );
    let ids = |accounts: Vec<AccountRecord>| accounts.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let page = |f: fn(&mut AccountQuery)| {
        let mut q = AccountQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    assert_eq!(
        ids(store.accounts(&page(|_| {})).await.unwrap()),
        ["a1", "a2", "a3"]
    );
    assert_eq!(
        ids(store
            .accounts(&page(|q| q.customer_id = Some("C1".into())))
            .await
            .unwrap()),
        ["a1", "a3"]
    );
    assert_eq!(
        ids(store
            .accounts(&page(|q| q.after_id = Some("a1".into())))
            .await
            .unwrap()),
        ["a2", "a3"]
    );
    assert_eq!(
        ids(store
            .accounts(&page(|q| q.status = Some("frozen".into())))
            .await
            .unwrap()),
        ["a2"]
    );
    let known = store
        .known_event_ids("a3", vec!["e2".into(), "e9".into()])
        .await
        .unwrap();
    assert_eq!(known, ["e2"]);
    let events: Vec<String> = store
        .account_events("a3", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(events, ["e2", "e1"], "newest first");

    // An update at the version read succeeds; one at an older version is reported stale.
    let mut changed = account("a1", "d1", "C1", "frozen");
    changed.updated_at_ms = 99;
    let stale = store
        .update_accounts(
            vec![
                AccountUpdate {
                    account: changed.clone(),
                    expected_version: 1,
                    events: vec![event("a1", "e1", 20)],
                    audit: vec![audit("freeze", "a1")],
                },
                AccountUpdate {
                    account: account("a2", "d2", "C2", "active"),
                    expected_version: 7,
                    events: vec![],
                    audit: vec![],
                },
            ],
            vec![audit("batch", "review")],
        )
        .await
        .unwrap();
    assert_eq!(stale, ["a2"]);
    let a1 = store.account("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.version, a1.status.as_str(), a1.updated_at_ms),
        (2, "frozen", 99)
    );
    // An event the account already has fails the whole call: nothing of it is applied.
    let duplicate = store
        .update_accounts(
            vec![
                AccountUpdate {
                    account: account("a3", "d3", "C1", "closed"),
                    expected_version: 1,
                    events: vec![],
                    audit: vec![],
                },
                AccountUpdate {
                    account: account("a1", "d1", "C1", "active"),
                    expected_version: 2,
                    events: vec![event("a1", "e1", 30)],
                    audit: vec![],
                },
            ],
            vec![audit("batch", "review")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, StoreError::Conflict { .. }),
        "{duplicate}"
    );
    assert_eq!(store.account("a3").await.unwrap().unwrap().status, "active");
    assert_eq!(store.account("a1").await.unwrap().unwrap().version, 2);
    let actions: Vec<String> = store
        .audit_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["batch", "freeze", "open"]);
}

fn answer(key: &str, fetched: i64, expires: i64, value: &str) -> ProviderAnswerRecord {
    ProviderAnswerRecord {
        source_key: key.into(),
        subject: "C1".into(),
        provider: "bureau".into(),
        values_json: value.into(),
        fetched_at_ms: fetched,
        expires_at_ms: expires,
    }
}

async fn provider_answers_keep_the_newest_until_they_expire(store: &dyn Store) {
    store
        .put_provider_answers(
            vec![
                answer("bureau", 10, 1_000, "{\"v\":1}"),
                answer("income", 10, 500, "{}"),
            ],
            0,
        )
        .await
        .unwrap();
    // An older answer does not replace a newer one; a newer one does.
    store
        .put_provider_answers(vec![answer("bureau", 5, 2_000, "{\"v\":0}")], 0)
        .await
        .unwrap();
    store
        .put_provider_answers(vec![answer("bureau", 20, 1_500, "{\"v\":2}")], 0)
        .await
        .unwrap();
    let kept = eventually(
        async || store.provider_answers(0, 10).await.unwrap(),
        |answers| answers.iter().any(|a| a.values_json == "{\"v\":2}"),
    )
    .await;
    let summary: Vec<(String, i64)> = kept
        .iter()
        .map(|a| (a.source_key.clone(), a.expires_at_ms))
        .collect();
    assert_eq!(
        summary,
        [("bureau".to_string(), 1_500), ("income".to_string(), 500)]
    );
    assert_eq!(
        store.provider_answers(600, 10).await.unwrap().len(),
        1,
        "expired answers are not read"
    );
    assert_eq!(store.provider_answers(0, 1).await.unwrap().len(), 1);
    // One answer by source and subject: what a node asks before buying it again.
    let one = store.provider_answer("bureau", "C1", 0).await.unwrap();
    assert_eq!(one.map(|a| a.values_json), Some("{\"v\":2}".to_string()));
    assert!(store
        .provider_answer("bureau", "C1", 1_500)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .provider_answer("bureau", "C2", 0)
        .await
        .unwrap()
        .is_none());
}

/// Lookups asked together (as concurrent decisions ask them) each get the answer of their own
/// key as of their own time; a saved batch naming a key twice keeps its latest answer.
async fn provider_answers_asked_together_are_answered_each_for_itself(store: &dyn Store) {
    let for_subject =
        |subject: String, fetched: i64, expires: i64, value: String| ProviderAnswerRecord {
            subject,
            ..answer("liabilities", fetched, expires, &value)
        };
    let mut batch: Vec<ProviderAnswerRecord> = (0..40)
        .map(|n| for_subject(format!("S{n}"), 10, 1_000 + n, format!("{{\"n\":{n}}}")))
        .collect();
    // S0 twice in one batch: the later fetch is kept whichever comes first.
    batch.insert(
        0,
        for_subject("S0".into(), 30, 1_000, "{\"n\":\"latest\"}".into()),
    );
    batch.push(for_subject(
        "S0".into(),
        20,
        1_000,
        "{\"n\":\"older\"}".into(),
    ));
    store.put_provider_answers(batch, 0).await.unwrap();
    eventually(
        async || store.provider_answers(0, 100).await.unwrap(),
        |answers| answers.len() == 40,
    )
    .await;
    // Subjects S0..S49 (S40.. were never saved), each as of a time of its own: at 1_020
    // the answers of S0..S20 have expired (they expire at 1_000 + n). S2, S4, …, S18 are asked
    // twice, as of the same time: each asker gets the answer.
    let lookups = (0..59).map(|i| async move {
        let n = if i >= 50 { (i - 50) * 2 + 2 } else { i };
        let now_ms = if n % 2 == 0 { 0 } else { 1_020 };
        let found = store
            .provider_answer("liabilities", &format!("S{n}"), now_ms)
            .await
            .unwrap();
        (n, now_ms, found.map(|a| a.values_json))
    });
    for (n, now_ms, found) in futures_util::future::join_all(lookups).await {
        let expected = match n {
            0 => Some("{\"n\":\"latest\"}".to_string()),
            40.. => None,
            n if now_ms >= 1_000 + n => None,
            n => Some(format!("{{\"n\":{n}}}")),
        };
        assert_eq!(found, expected, "S{n} as of {now_ms}");
    }
}

fn hook(id: &str, at_ms: i64) -> WebhookRecord {
    WebhookRecord {
        id: id.into(),
        url: format!("https://example.test/{id}"),
        secret: format!("whsec_{id}"),
        created_by: "admin".into(),
        created_at_ms: at_ms,
    }
}

async fn webhook_deliveries_are_queued_retried_and_dropped_with_their_hook(store: &dyn Store) {
    store
        .insert_webhook(hook("w2", 20), audit("hook", "w2"))
        .await
        .unwrap();
    store
        .insert_webhook(hook("w1", 10), audit("hook", "w1"))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .webhooks()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids, ["w1", "w2"]);
    assert_eq!(
        store
            .enqueue_deliveries("case.decided", "{}", 100)
            .await
            .unwrap(),
        2
    );
    assert!(store.due_deliveries(99, 10).await.unwrap().is_empty());
    let due = store.due_deliveries(100, 10).await.unwrap();
    let seen: Vec<(String, String, i64)> = due
        .iter()
        .map(|d| (d.webhook_id.clone(), d.secret.clone(), d.attempts))
        .collect();
    assert_eq!(
        seen,
        [
            ("w1".into(), "whsec_w1".into(), 0),
            ("w2".into(), "whsec_w2".into(), 0)
        ]
    );
    // w1 delivered; w2 retried later.
    store
        .record_attempt(due[0].id, Some(101), None, None)
        .await
        .unwrap();
    store
        .record_attempt(due[1].id, None, Some(200), Some("503".into()))
        .await
        .unwrap();
    assert!(store.due_deliveries(150, 10).await.unwrap().is_empty());
    let retry = store.due_deliveries(200, 10).await.unwrap();
    assert_eq!(retry.iter().map(|d| d.attempts).collect::<Vec<_>>(), [1]);
    store
        .delete_webhook("w2", audit("unhook", "w2"))
        .await
        .unwrap();
    assert!(store.due_deliveries(1_000, 10).await.unwrap().is_empty());
    let missing = store
        .delete_webhook("w2", audit("unhook", "w2"))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::Precondition { .. }),
        "{missing}"
    );
}

/// A partition's report: how many accounts its completion skipped.
fn report() -> PartitionResult {
    Box::new(|stale: &[String]| format!("skipped {}", stale.len()))
}

async fn job_partitions_are_claimed_once_and_taken_over_after_their_lease(store: &dyn Store) {
    store
        .insert_account(
            account("A1001", "dec_1", "C-1", "active"),
            audit("open", "A1001"),
        )
        .await
        .unwrap();
    let ranges: Vec<KeyRange> = (0..3)
        .map(|p| KeyRange {
            after_key: if p == 0 {
                String::new()
            } else {
                format!("A{p}")
            },
            last_key: format!("A{}", p + 1),
        })
        .collect();
    assert!(store.create_job("review-1", ranges.clone()).await.unwrap());
    assert!(
        !store.create_job("review-1", ranges).await.unwrap(),
        "a restarted run resumes"
    );
    let claim = async |worker: &str, now: i64| {
        store
            .claim_partition("review-1", worker, now, 1_000)
            .await
            .unwrap()
    };
    let PartitionClaim::Claimed(p0) = claim("w1", 0).await else {
        panic!("partition 0")
    };
    let PartitionClaim::Claimed(p1) = claim("w2", 0).await else {
        panic!("partition 1")
    };
    let PartitionClaim::Claimed(p2) = claim("w2", 0).await else {
        panic!("partition 2")
    };
    assert_eq!(
        (p0.partition_no, p1.partition_no, p2.partition_no),
        (0, 1, 2)
    );
    assert_eq!(p1.range.after_key, "A1");
    assert_eq!(claim("w3", 10).await, PartitionClaim::Busy);
    // w1 dies holding partition 0: after its lease, w3 takes it over, and w1's late completion
    // writes nothing.
    let PartitionClaim::Claimed(taken) = claim("w3", 1_001).await else {
        panic!("the lease ended")
    };
    assert_eq!(taken.partition_no, 0);
    let mut changed = account("A1001", "dec_1", "C-1", "frozen");
    changed.version = 2;
    let update = |expected: i64| AccountUpdate {
        account: changed.clone(),
        expected_version: expected,
        events: Vec::new(),
        audit: Vec::new(),
    };
    let late = store
        .complete_partition(&p0, "w1", 2_000, report(), vec![update(1)], vec![])
        .await
        .unwrap();
    assert_eq!(late, None);
    assert_eq!(
        store.account("A1001").await.unwrap().unwrap().status,
        "active"
    );
    let done = store
        .complete_partition(&taken, "w3", 2_000, report(), vec![update(1)], vec![])
        .await
        .unwrap();
    assert_eq!(done, Some(Vec::new()));
    assert_eq!(
        store.account("A1001").await.unwrap().unwrap().status,
        "frozen"
    );
    for p in [p1, p2] {
        let stale = store
            .complete_partition(&p, "w2", 2_000, report(), vec![update(1)], vec![])
            .await
            .unwrap();
        assert_eq!(stale, Some(vec!["A1001".to_string()]), "changed meanwhile");
    }
    assert_eq!(claim("w1", 3_000).await, PartitionClaim::Done);
    let results: Vec<Option<String>> = store
        .job_partitions("review-1")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.result)
        .collect();
    assert_eq!(
        results,
        [
            Some("skipped 0".into()),
            Some("skipped 1".into()),
            Some("skipped 1".into())
        ],
        "each report made of what its completion skipped"
    );
    let progress: Vec<(i64, String, Option<String>)> = store
        .job_partitions("review-1")
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition_no, p.state, p.claimed_by))
        .collect();
    assert_eq!(
        progress,
        [
            (0, "done".into(), Some("w3".into())),
            (1, "done".into(), Some("w2".into())),
            (2, "done".into(), Some("w2".into()))
        ]
    );
    assert!(store.job_partitions("other").await.unwrap().is_empty());
    assert!(matches!(
        store.claim_partition("other", "w1", 0, 1).await,
        Err(StoreError::Precondition { .. })
    ));
}

async fn the_next_case_goes_to_one_claimant_at_a_time(store: &dyn Store) {
    for n in 0..8 {
        let queue = if n == 7 { "fraud" } else { "standard" };
        store
            .insert_case(case(
                &format!("case_{n}"),
                &format!("dec_{n}"),
                queue,
                0,
                100 + n,
            ))
            .await
            .unwrap();
    }
    // case_2 is not claimable (say, held by another reviewer): the claimer refuses it.
    let claimer = |who: &'static str| -> CaseClaimer {
        Box::new(move |record: &CaseRecord| {
            (record.state == "open" && record.id != "case_2").then(|| CaseRecord {
                state: "claimed".into(),
                body: format!("{{\"by\":\"{who}\"}}"),
                ..record.clone()
            })
        })
    };
    let query = CaseQuery {
        queue: Some("standard".into()),
        limit: 20,
        ..Default::default()
    };
    let first = store
        .claim_next_case(&query, claimer("ann"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.id.as_str(), first.version), ("case_0", 2));
    assert_eq!(
        store.case("case_0").await.unwrap().unwrap().state,
        "claimed"
    );
    // Reviewers taking the next case at once get different cases; the refused one is left.
    let mut taken = vec![first.id];
    let mut claims = Vec::new();
    for _ in 0..6 {
        claims.push(store.claim_next_case(&query, claimer("bob")));
    }
    for claimed in futures_util::future::join_all(claims).await {
        if let Some(claimed) = claimed.unwrap() {
            taken.push(claimed.id);
        }
    }
    taken.sort();
    assert_eq!(
        taken,
        ["case_0", "case_1", "case_3", "case_4", "case_5", "case_6"]
    );
    assert!(store
        .claim_next_case(&query, claimer("cy"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.case("case_2").await.unwrap().unwrap().state, "open");
    assert_eq!(store.case("case_7").await.unwrap().unwrap().state, "open");
}

/// The suite for one implementation: `$make(test_name)` gives a fresh store per test.
/// The contracts of several products at once: strategies by name, rollouts, shadow results.
#[path = "conformance/products.rs"]
mod products;
use products::*;

macro_rules! conformance {
    ($name:ident, $make:path) => {
        mod $name {
            use super::*;

            conformance!(@tests $make,
                decisions_form_a_chain_and_idempotency_keys_are_unique,
                decision_lists_are_newest_first_and_filtered,
                strategies_go_from_draft_to_approved_to_active,
                keys_users_and_sessions,
                audit_events_are_numbered_and_newest_first,
                cases_are_one_per_decision_and_change_under_versions,
                referrals_without_a_case_are_found_among_recent_decisions,
                accounts_change_whole_or_not_at_all,
                provider_answers_keep_the_newest_until_they_expire,
                provider_answers_asked_together_are_answered_each_for_itself,
                webhook_deliveries_are_queued_retried_and_dropped_with_their_hook,
                job_partitions_are_claimed_once_and_taken_over_after_their_lease,
                the_next_case_goes_to_one_claimant_at_a_time,
                strategies_are_active_by_name_each_with_its_history,
                rollouts_run_one_at_a_time_per_strategy_and_change_under_revisions,
                shadow_results_are_kept_once_and_read_in_time_order,
                cases_are_listed_and_claimed_within_strategies
            );
        }
    };
    (@tests $make:path, $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(subject) = $make(stringify!($test)) else {
                    return;
                };
                super::$test(&*subject.store).await;
            }
        )*
    };
}

conformance!(sqlite_store, sqlite);
conformance!(memory_store, memory);
conformance!(postgres_store, postgres);
