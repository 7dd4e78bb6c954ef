//! Catching up a running shadow: every live decision of the window with no twin (queued when
//! the process died, dropped from a full queue) is evaluated from the log — its recorded input,
//! third-party answers, date and language — and its twin stored.

use super::{comparable_record, evaluate_all, ShadowJob};
use crate::error::AppError;
use crate::strategies::Strategies;
use credence_store::{DecisionQuery, ShadowQuery, Store};
use std::collections::HashSet;

/// Live decisions read (and twins made) at most per rollout per call; the next call goes on.
pub const CATCH_UP_BATCH: usize = 10_000;

/// How far each running shadow rollout is known to be caught up: every live decision before
/// this time has its twin. A pass reads only what came after it.
pub type CaughtUp = std::collections::HashMap<String, i64>;

/// Makes the missing twins of every running shadow rollout for live decisions made before
/// `before_ms` (leave the last seconds to the queue), reading from where `caught_up` says the
/// last pass got to (from the rollout's start the first time); returns how many were made.
pub async fn catch_up(
    store: &dyn Store,
    strategies: &Strategies,
    caught_up: &mut CaughtUp,
    before_ms: i64,
) -> Result<usize, AppError> {
    let mut made = 0;
    for active in strategies.active_all() {
        let Some(rollout) = active
            .rollout
            .clone()
            .filter(|r| r.is_shadow() && r.record.is_running())
        else {
            continue;
        };
        let record = &rollout.record;
        let from_ms = caught_up
            .get(&record.id)
            .copied()
            .unwrap_or(record.started_at_ms)
            .max(record.started_at_ms);
        if before_ms <= from_ms {
            continue;
        }
        let mut twins = HashSet::new();
        let mut after = None;
        loop {
            let page = store
                .shadow_results(&ShadowQuery {
                    strategy: record.strategy.clone(),
                    candidate_version: Some(record.version.clone()),
                    from_ms: Some(from_ms),
                    to_ms: Some(before_ms),
                    after: after.clone(),
                    limit: 1_000,
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.created_at_ms, last.decision_id.clone()));
            let full = page.len() == 1_000;
            twins.extend(page.into_iter().map(|r| r.decision_id));
            if !full {
                break;
            }
        }
        let mut missing = Vec::new();
        let mut complete = true;
        let mut before_seq = None;
        'pages: loop {
            let page = store
                .list_decisions(&DecisionQuery {
                    strategy: Some(record.strategy.clone()),
                    strategy_version: Some(record.baseline_version.clone()),
                    from_ms: Some(from_ms),
                    to_ms: Some(before_ms),
                    before_seq,
                    limit: 1_000,
                    ..DecisionQuery::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before_seq = Some(last.seq);
            let full = page.len() == 1_000;
            for summary in page {
                if !twins.contains(&summary.id) {
                    missing.push(summary.id);
                    if missing.len() >= CATCH_UP_BATCH {
                        complete = false;
                        break 'pages;
                    }
                }
            }
            if !full {
                break;
            }
        }
        let mut jobs = Vec::with_capacity(missing.len());
        for id in missing {
            let Some(stored) = store.decision(&id).await? else {
                continue;
            };
            let logged = crate::decisions::read_record(&stored.record)?;
            let options = credence_engine::EvalOptions {
                as_of: chrono::NaiveDate::parse_from_str(&stored.record.as_of, "%Y-%m-%d")
                    .unwrap_or_default(),
                language: stored.record.language.clone(),
                full_trace: false,
            };
            jobs.push(ShadowJob {
                rollout: rollout.clone(),
                decision_id: stored.record.id.clone(),
                flow: stored.record.flow.clone(),
                raw: serde_json::from_str(&stored.record.input).unwrap_or_default(),
                options,
                data: credence_engine::data::DataRecord::from_record(&logged),
                live: comparable_record(&logged),
                live_version: stored.record.strategy_version.clone(),
                created_at_ms: stored.record.created_at_ms,
            });
        }
        if jobs.is_empty() {
            if complete {
                caught_up.insert(record.id.clone(), before_ms);
            }
            continue;
        }
        let records = evaluate_all(jobs).await.ok_or_else(|| {
            AppError::new(
                crate::error::ErrorCode::Internal,
                "a shadow evaluation panicked",
            )
        })?;
        made += records.len();
        store.append_shadow_results(records).await?;
        if complete {
            caught_up.insert(record.id.clone(), before_ms);
        }
    }
    // Rollouts no longer running need no mark.
    let running: Vec<String> = strategies
        .active_all()
        .iter()
        .filter_map(|a| a.rollout.as_ref().map(|r| r.record.id.clone()))
        .collect();
    caught_up.retain(|id, _| running.contains(id));
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_store::MemoryStore;
    use std::sync::Arc;

    fn package(cutoff: u32) -> Vec<u8> {
        let mut source = credence_engine::PackageSource::new();
        source.insert(
            "strategy.yaml",
            "name: card\nlanguages: [en]\ncaps: {apr_max: 0.3}\nreasons:\n  LOW: {en: low}\nflows:\n  application: flows/a.yaml\n",
        );
        source.insert(
            "flows/a.yaml",
            format!("input:\n  score: {{type: number}}\nsteps:\n  - rule_set: {{id: r, rules: [{{id: R1, when: \"score < {cutoff}\", outcome: decline, reason: LOW}}]}}\noutcome: {{default: approve, limit: \"1000\", apr: \"0.1\"}}\n"),
        );
        crate::package_archive::pack(&source).unwrap()
    }

    /// Live decisions logged by a process that died before shadowing them get their twins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_decisions_without_a_twin_are_evaluated_from_the_log() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let strategies = Strategies::new(store.clone());
        strategies.bootstrap(package(50), 1_000).await.unwrap();
        let candidate = strategies
            .upload(package(60), "ana", 2_000, |_| Ok(()))
            .await
            .unwrap()
            .strategy
            .version;
        strategies.approve(&candidate, "abe", 2_100).await.unwrap();
        strategies
            .start_shadow(&candidate, "abe", 3_000)
            .await
            .unwrap();
        let live = strategies.resolve(Some("card")).unwrap();
        let options = credence_engine::EvalOptions {
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
            language: "en".into(),
            full_trace: false,
        };
        for n in 0..100u32 {
            let body = format!(r#"{{"score": {n}}}"#);
            let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
            let input = live.strategy.validate_input("application", &raw).unwrap();
            let decision = match live
                .strategy
                .evaluate(
                    "application",
                    &input,
                    &options,
                    &credence_engine::data::DataRecord::offline(),
                )
                .unwrap()
            {
                credence_engine::data::Evaluation::Decided(d) => d,
                other => panic!("{other:?}"),
            };
            let record = crate::decisions::new_record(
                "application",
                &decision,
                crate::decisions::RecordContext {
                    id: format!("dec_{n:04}"),
                    customer_id: None,
                    idempotency_key: None,
                    request_sha256: String::new(),
                    language: "en".into(),
                    created_at_ms: 4_000 + i64::from(n),
                    latency_us: 10,
                    input: body,
                },
            )
            .unwrap();
            store.append_decision(record).await.unwrap();
        }
        // Decisions from before the window's end only; the rest wait for the next call, which
        // reads from where this one got to.
        let mut caught_up = CaughtUp::new();
        assert_eq!(
            catch_up(&*store, &strategies, &mut caught_up, 4_050)
                .await
                .unwrap(),
            50
        );
        assert_eq!(caught_up.values().copied().collect::<Vec<_>>(), [4_050]);
        assert_eq!(
            catch_up(&*store, &strategies, &mut caught_up, 4_050)
                .await
                .unwrap(),
            0,
            "once"
        );
        assert_eq!(
            catch_up(&*store, &strategies, &mut caught_up, 10_000)
                .await
                .unwrap(),
            50
        );
        let report = super::super::shadow_report(
            &*store,
            &super::super::ShadowReportQuery {
                strategy: "card".into(),
                ..Default::default()
            },
            10_000,
        )
        .await
        .unwrap();
        assert_eq!((report.live_decisions, report.twins), (100, 100));
        // Scores 50–59 are approved live and declined by the candidate; the rest agree.
        assert_eq!(report.matrix[0][2], 10);
        assert_eq!((report.matrix[0][0], report.matrix[2][2]), (40, 50));
        assert_eq!(report.swap_out, 10);
    }
}
