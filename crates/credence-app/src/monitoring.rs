//! Monitoring over a store: reads the newest decisions of a flow (with their scores), the
//! decided review cases and the accounts, and hands them to `credence_backtest::monitor` —
//! rates by month, score drift against a baseline month, override rates, vintages, roll rates.
//! Served at `GET /v1/monitoring` and run by `credence monitor log`.

use crate::error::{AppError, ErrorCode};
use credence_backtest::monitor::{
    monitor, AccountObservation, DecisionObservation, MonitorReport, ReviewObservation,
};
use credence_engine::Outcome;
use credence_store::{AccountQuery, CaseQuery, DecisionQuery, Store};
use std::sync::Arc;

/// Months from a timestamp in milliseconds: `YYYY-MM` (UTC).
fn month_of_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn store_error(e: credence_store::StoreError) -> AppError {
    AppError::from(e)
}

/// The first scorecard score in a stored decision's trace (as the back-test charts it).
/// The scorecard score in a decision record's trace, if the flow has a scorecard.
fn score_of(trace_json: &str) -> Option<f64> {
    let trace: serde_json::Value = serde_json::from_str(trace_json).ok()?;
    trace["steps"]
        .as_array()?
        .iter()
        .find(|s| s["kind"] == "scorecard")
        .and_then(|s| match &s["score"] {
            serde_json::Value::String(text) => text.parse().ok(),
            serde_json::Value::Number(n) => n.as_f64(),
            _ => None,
        })
}

/// Builds the monitoring report for `flow` from at most `limit` of its newest decisions, all
/// decided cases (up to `limit`) and all accounts, as of `today` — of one strategy (product)
/// when `strategy` names one, else of all.
pub async fn report(
    store: &Arc<dyn Store>,
    strategy: Option<&str>,
    flow: &str,
    limit: u32,
    today: chrono::NaiveDate,
) -> Result<MonitorReport, AppError> {
    if limit == 0 {
        return Err(AppError::parameter("limit", "give at least 1"));
    }
    let mut decisions = Vec::new();
    let mut before_seq = None;
    while decisions.len() < limit as usize {
        let page = store
            .list_decisions(&DecisionQuery {
                flow: Some(flow.to_string()),
                strategy: strategy.map(str::to_string),
                before_seq,
                limit: (limit as usize - decisions.len()).min(1000) as u32,
                ..Default::default()
            })
            .await
            .map_err(store_error)?;
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        for summary in page {
            let Some(outcome) = Outcome::parse(&summary.outcome) else {
                continue;
            };
            let score = match store.decision(&summary.id).await.map_err(store_error)? {
                Some(stored) => credence_engine::DecisionRecord::parse(&stored.record.decision)
                    .ok()
                    .and_then(|record| score_of(record.trace.get())),
                None => None,
            };
            decisions.push(DecisionObservation {
                month: month_of_ms(summary.created_at_ms),
                outcome,
                score,
            });
        }
    }

    let cases = store
        .cases(&CaseQuery {
            state: Some("decided".into()),
            strategies: strategy.map(|s| vec![s.to_string()]),
            limit,
            ..Default::default()
        })
        .await
        .map_err(store_error)?;
    let reviews: Vec<ReviewObservation> = cases
        .iter()
        .filter_map(|record| {
            let case: credence_review::Case = serde_json::from_str(&record.body).ok()?;
            let decision = case.decision?;
            Some(ReviewObservation {
                month: month_of_ms(decision.at_ms),
                approved: decision.proposal.verdict != credence_review::Verdict::Decline,
            })
        })
        .collect();

    let mut accounts = Vec::new();
    let mut after_id = None;
    loop {
        let page = store
            .accounts(&AccountQuery {
                after_id: after_id.clone(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .map_err(store_error)?;
        let Some(last) = page.last() else { break };
        after_id = Some(last.id.clone());
        for record in &page {
            let account: credence_account::Account =
                serde_json::from_str(&record.body).map_err(|e| {
                    AppError::new(
                        ErrorCode::Internal,
                        format!("stored account {} is unreadable: {e}", record.id),
                    )
                })?;
            if strategy.is_none_or(|s| account.strategy.as_deref() == Some(s)) {
                accounts.push(account_observation(&account, today));
            }
        }
    }
    Ok(monitor(&decisions, &reviews, &accounts, 50))
}

/// An account's worst reported days past due in each calendar month from its opening to
/// `today` (months before the retained daily history count as current).
fn account_observation(
    account: &credence_account::Account,
    today: chrono::NaiveDate,
) -> AccountObservation {
    use chrono::Datelike;
    let month_index = |d: chrono::NaiveDate| d.year() * 12 + d.month0() as i32;
    let opened = month_index(account.opened_on);
    let months = (month_index(today) - opened + 1).max(0) as usize;
    let mut worst = vec![0u32; months];
    for (day, totals) in &account.behaviour.days {
        let index = month_index(credence_account::date_of_day(*day)) - opened;
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| worst.get_mut(i)) {
            *slot = (*slot).max(totals.worst_dpd);
        }
    }
    AccountObservation {
        cohort: account.opened_on.format("%Y-%m").to_string(),
        monthly_worst_dpd: worst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_from_the_trace() {
        let trace = r#"{"steps":[{"step":"x","kind":"features"},{"step":"app_score","kind":"scorecard","score":"595"}]}"#;
        assert_eq!(score_of(trace), Some(595.0));
        assert_eq!(score_of(r#"{"steps":[]}"#), None);
        assert_eq!(month_of_ms(1_764_374_400_000), "2025-11");
    }
}
