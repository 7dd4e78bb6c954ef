//! Store contracts of several products at once: activations by strategy name, rollouts (one
//! running per strategy, changed under revisions) and shadow results, and review cases within
//! strategies.

use super::{audit, case, strategy};
use credence_store::prelude::*;
use credence_store::*;

async fn approved(store: &dyn Store, version: &str, name: &str, at_ms: i64) {
    let mut record = strategy(version, at_ms);
    record.name = name.into();
    store
        .insert_strategy(record, b"package".to_vec(), audit("upload", version))
        .await
        .unwrap();
    store
        .approve_strategy(version, "approver", at_ms + 1, audit("approve", version))
        .await
        .unwrap();
}

pub(super) async fn strategies_are_active_by_name_each_with_its_history(store: &dyn Store) {
    approved(store, "loan-1", "consumer-loan", 10).await;
    approved(store, "loan-2", "consumer-loan", 20).await;
    approved(store, "card-1", "card-line", 30).await;
    for (version, kind) in [
        ("loan-1", "bootstrap"),
        ("card-1", "activate"),
        ("loan-2", "activate"),
    ] {
        let activation = store
            .record_activation(version, "approver", kind, 40, audit(kind, version))
            .await
            .unwrap();
        assert_eq!(activation.version, version);
    }
    let active: Vec<(String, String)> = store
        .active_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.strategy, a.version))
        .collect();
    assert_eq!(
        active,
        [
            ("card-line".to_string(), "card-1".to_string()),
            ("consumer-loan".to_string(), "loan-2".to_string())
        ],
        "the newest activation of each strategy, in activation order"
    );
    let loan: Vec<String> = store
        .activations(Some("consumer-loan"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.version)
        .collect();
    assert_eq!(
        loan,
        ["loan-2", "loan-1"],
        "one strategy's history, newest first"
    );
    let all = store.activations(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].strategy, "consumer-loan");
    let unknown = store
        .record_activation(
            "nope",
            "approver",
            "activate",
            50,
            audit("activate", "nope"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, StoreError::Precondition { .. }),
        "{unknown}"
    );
}

fn rollout(id: &str, name: &str, version: &str, at_ms: i64) -> RolloutRecord {
    RolloutRecord {
        id: id.into(),
        strategy: name.into(),
        version: version.into(),
        baseline_version: "loan-1".into(),
        mode: "ramp".into(),
        state: "running".into(),
        plan: r#"{"steps":[]}"#.into(),
        step: 0,
        step_started_at_ms: at_ms,
        started_by: "approver".into(),
        started_at_ms: at_ms,
        updated_at_ms: at_ms,
        note: "{}".into(),
        revision: 1,
    }
}

pub(super) async fn rollouts_run_one_at_a_time_per_strategy_and_change_under_revisions(
    store: &dyn Store,
) {
    approved(store, "loan-1", "consumer-loan", 10).await;
    approved(store, "loan-2", "consumer-loan", 20).await;
    approved(store, "card-2", "card-line", 30).await;
    store
        .save_rollout(
            rollout("ro_1", "consumer-loan", "loan-2", 100),
            None,
            audit("ramp", "loan-2"),
        )
        .await
        .unwrap();
    // Another product rolls out at the same time; the same product may not.
    store
        .save_rollout(
            rollout("ro_2", "card-line", "card-2", 110),
            None,
            audit("ramp", "card-2"),
        )
        .await
        .unwrap();
    let second = store
        .save_rollout(
            rollout("ro_3", "consumer-loan", "loan-2", 120),
            None,
            audit("ramp", "loan-2"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(second, StoreError::Precondition { .. }),
        "{second}"
    );

    let mut halted = rollout("ro_1", "consumer-loan", "loan-2", 100);
    halted.state = "halted".into();
    halted.note = r#"{"guard":"approval_rate"}"#.into();
    halted.updated_at_ms = 130;
    halted.revision = 2;
    store
        .save_rollout(halted.clone(), Some(1), audit("halt", "loan-2"))
        .await
        .unwrap();
    let stale = store
        .save_rollout(halted.clone(), Some(1), audit("halt", "loan-2"))
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Precondition { .. }), "{stale}");
    let loan = store.rollouts(Some("consumer-loan"), 10).await.unwrap();
    assert_eq!(loan, vec![halted]);
    let all: Vec<String> = store
        .rollouts(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, ["ro_2", "ro_1"], "newest first");
    // Halted is not running: a new rollout of the product may start.
    store
        .save_rollout(
            rollout("ro_4", "consumer-loan", "loan-2", 140),
            None,
            audit("ramp", "loan-2"),
        )
        .await
        .unwrap();
    let actions: Vec<String> = store
        .audit_events(3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["ramp", "halt", "ramp"],
        "refused changes leave no audit event"
    );
}

fn shadow(decision_id: &str, candidate: &str, at_ms: i64) -> ShadowRecord {
    ShadowRecord {
        decision_id: decision_id.into(),
        strategy: "consumer-loan".into(),
        rollout_id: "ro_1".into(),
        live_version: "loan-1".into(),
        candidate_version: candidate.into(),
        flow: "application".into(),
        created_at_ms: at_ms,
        live: r#"{"outcome":"approve"}"#.into(),
        candidate: r#"{"outcome":"decline"}"#.into(),
    }
}

pub(super) async fn shadow_results_are_kept_once_and_read_in_time_order(store: &dyn Store) {
    store
        .append_shadow_results(vec![
            shadow("dec_3", "loan-2", 300),
            shadow("dec_1", "loan-2", 100),
            shadow("dec_2b", "loan-2", 200),
            shadow("dec_2a", "loan-2", 200),
            shadow("dec_1", "loan-3", 100),
        ])
        .await
        .unwrap();
    // A retried batch changes nothing.
    let mut changed = shadow("dec_1", "loan-2", 100);
    changed.candidate = r#"{"outcome":"refer"}"#.into();
    store.append_shadow_results(vec![changed]).await.unwrap();
    store.append_shadow_results(Vec::new()).await.unwrap();
    let read = |query: ShadowQuery| async move {
        store
            .shadow_results(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.decision_id, r.candidate_version))
            .collect::<Vec<_>>()
    };
    let all = ShadowQuery {
        strategy: "consumer-loan".into(),
        limit: 100,
        ..Default::default()
    };
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        read(ShadowQuery {
            candidate_version: Some("loan-2".into()),
            ..all.clone()
        })
        .await,
        pairs(&[
            ("dec_1", "loan-2"),
            ("dec_2a", "loan-2"),
            ("dec_2b", "loan-2"),
            ("dec_3", "loan-2")
        ])
    );
    let first = store
        .shadow_results(&ShadowQuery {
            candidate_version: Some("loan-2".into()),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(first[0].candidate, r#"{"outcome":"decline"}"#, "kept once");
    assert_eq!(
        read(ShadowQuery {
            candidate_version: Some("loan-2".into()),
            after: Some((200, "dec_2a".into())),
            limit: 1,
            ..all.clone()
        })
        .await,
        pairs(&[("dec_2b", "loan-2")]),
        "keyset pages continue after (time, id)"
    );
    assert_eq!(
        read(ShadowQuery {
            from_ms: Some(200),
            to_ms: Some(300),
            ..all.clone()
        })
        .await
        .len(),
        2
    );
    assert!(read(ShadowQuery {
        strategy: "card-line".into(),
        ..all
    })
    .await
    .is_empty());
}

pub(super) async fn cases_are_listed_and_claimed_within_strategies(store: &dyn Store) {
    for (id, name, due) in [
        ("c1", "consumer-loan", 300),
        ("c2", "card-line", 100),
        ("c3", "card-line", 200),
    ] {
        let mut record = case(id, &format!("d-{id}"), "underwriting", 1, due);
        record.strategy = name.into();
        store.insert_case(record).await.unwrap();
    }
    let listed = |strategies: Option<Vec<String>>| async move {
        store
            .cases(&CaseQuery {
                strategies,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.strategy))
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(None).await.len(), 3);
    assert_eq!(
        listed(Some(vec!["consumer-loan".into()])).await,
        [("c1".to_string(), "consumer-loan".to_string())]
    );
    assert!(
        listed(Some(Vec::new())).await.is_empty(),
        "an empty list matches no case"
    );
    let claimed = store
        .claim_next_case(
            &CaseQuery {
                strategies: Some(vec!["consumer-loan".into()]),
                limit: 10,
                ..Default::default()
            },
            Box::new(|c: &CaseRecord| {
                let mut claimed = c.clone();
                claimed.state = "claimed".into();
                Some(claimed)
            }),
        )
        .await
        .unwrap()
        .expect("a case of the strategy");
    assert_eq!(
        claimed.id, "c1",
        "the card cases are due sooner but not in scope"
    );
    assert_eq!(
        store.case("c1").await.unwrap().unwrap().strategy,
        "consumer-loan",
        "a claim keeps the case's strategy"
    );
}
