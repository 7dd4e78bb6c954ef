//! Review cases in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, OptionalExtension, Row};

pub(super) const CASE_COLUMNS: &str =
    "id, decision_id, queue, priority, state, created_at_ms, due_at_ms, version, body, strategy";

pub(super) fn case_from_row(row: &Row<'_>) -> rusqlite::Result<CaseRecord> {
    Ok(CaseRecord {
        id: row.get(0)?,
        decision_id: row.get(1)?,
        queue: row.get(2)?,
        priority: row.get(3)?,
        state: row.get(4)?,
        created_at_ms: row.get(5)?,
        due_at_ms: row.get(6)?,
        version: row.get(7)?,
        body: row.get(8)?,
        strategy: row.get(9)?,
    })
}

/// Appends ` AND strategy IN (…)` for a query limited to some strategies (none: no case).
fn strategy_filter(query: &CaseQuery, sql: &mut String, values: &mut Vec<rusqlite::types::Value>) {
    if let Some(strategies) = &query.strategies {
        if strategies.is_empty() {
            sql.push_str(" AND 1 = 0");
            return;
        }
        let mut marks = Vec::with_capacity(strategies.len());
        for strategy in strategies {
            values.push(strategy.clone().into());
            marks.push(format!("?{}", values.len()));
        }
        sql.push_str(&format!(" AND strategy IN ({})", marks.join(", ")));
    }
}

#[async_trait::async_trait]
impl CaseStore for SqliteStore {
    async fn insert_case(&self, case: CaseRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO review_cases ({CASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                    case.id,
                    case.decision_id,
                    case.queue,
                    case.priority,
                    case.state,
                    case.created_at_ms,
                    case.due_at_ms,
                    case.version,
                    case.body,
                    case.strategy
                ],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("a case for decision {}", case.decision_id)))?;
            Ok(())
        })
        .await
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {CASE_COLUMNS} FROM review_cases WHERE id = ?1"
                ))?
                .query_row([id], case_from_row)
                .optional()?)
        })
        .await
    }

    async fn case_for_decision(&self, decision_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let decision_id = decision_id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {CASE_COLUMNS} FROM review_cases WHERE decision_id = ?1"
                ))?
                .query_row([decision_id], case_from_row)
                .optional()?)
        })
        .await
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseRecord>, StoreError> {
        let query = query.clone();
        self.read(move |_, conn| {
            let mut sql = format!("SELECT {CASE_COLUMNS} FROM review_cases WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let mut filter = |clause: &str, value: rusqlite::types::Value| {
                values.push(value);
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            };
            if let Some(queue) = &query.queue {
                filter("queue =", queue.clone().into());
            }
            if let Some(state) = &query.state {
                filter("state =", state.clone().into());
            }
            if let Some(due) = query.due_before_ms {
                filter("state <> 'decided' AND due_at_ms <", due.into());
            }
            strategy_filter(&query, &mut sql, &mut values);
            sql.push_str(&format!(
                " ORDER BY due_at_ms, priority DESC, id LIMIT {}",
                query.limit.max(1)
            ));
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), case_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn referrals_without_case(&self, recent: u32) -> Result<Vec<String>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT d.id FROM decision_index d
                 WHERE d.seq > (SELECT COALESCE(MAX(seq), 0) FROM decision_index) - ?1
                   AND d.outcome = 'refer'
                   AND NOT EXISTS (SELECT 1 FROM review_cases c WHERE c.decision_id = d.id)
                 ORDER BY d.seq",
            )?;
            let ids = statement
                .query_map([i64::from(recent)], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
        .await
    }

    async fn update_case(&self, case: CaseRecord, expected_version: i64) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE review_cases SET state = ?1, due_at_ms = ?2, version = ?3, body = ?4 \
                 WHERE id = ?5 AND version = ?6",
                params![
                    case.state,
                    case.due_at_ms,
                    expected_version + 1,
                    case.body,
                    case.id,
                    expected_version
                ],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!(
                        "case {} was changed by someone else; reload it and try again",
                        case.id
                    ),
                });
            }
            Ok(())
        })
        .await
    }

    async fn claim_next_case(
        &self,
        query: &CaseQuery,
        claim: CaseClaimer,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let query = query.clone();
        // On the one writer thread: nothing else changes a case between choosing and storing.
        self.write(move |conn| {
            let mut sql = format!("SELECT {CASE_COLUMNS} FROM review_cases WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(queue) = &query.queue {
                values.push(queue.clone().into());
                sql.push_str(&format!(" AND queue = ?{}", values.len()));
            }
            match &query.state {
                Some(state) => {
                    values.push(state.clone().into());
                    sql.push_str(&format!(" AND state = ?{}", values.len()));
                }
                None => sql.push_str(" AND state <> 'decided'"),
            }
            strategy_filter(&query, &mut sql, &mut values);
            sql.push_str(&format!(
                " ORDER BY due_at_ms, priority DESC, id LIMIT {}",
                query.limit.max(1)
            ));
            let candidates = conn
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(values), case_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            for candidate in candidates {
                let Some(mut claimed) = claim(&candidate) else {
                    continue;
                };
                claimed.version = candidate.version + 1;
                conn.execute(
                    "UPDATE review_cases SET state = ?1, due_at_ms = ?2, version = ?3, body = ?4 \
                     WHERE id = ?5 AND version = ?6",
                    params![
                        claimed.state,
                        claimed.due_at_ms,
                        claimed.version,
                        claimed.body,
                        claimed.id,
                        candidate.version
                    ],
                )?;
                return Ok(Some(claimed));
            }
            Ok(None)
        })
        .await
    }
}
