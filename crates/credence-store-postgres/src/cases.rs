//! Review cases on PostgreSQL: changed under a version column, so that two nodes never apply conflicting changes.

use crate::error::{col, insert_error, Db};
use crate::filters::Filters;
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use tokio_postgres::Row;

const CASE_COLUMNS: &str =
    "id, decision_id, queue, priority, state, created_at_ms, due_at_ms, version, body, strategy";

fn case_from_row(row: &Row) -> Result<CaseRecord, StoreError> {
    Ok(CaseRecord {
        id: col(row, 0)?,
        decision_id: col(row, 1)?,
        queue: col(row, 2)?,
        priority: col(row, 3)?,
        state: col(row, 4)?,
        created_at_ms: col(row, 5)?,
        due_at_ms: col(row, 6)?,
        version: col(row, 7)?,
        body: col(row, 8)?,
        strategy: col(row, 9)?,
    })
}

/// Limits a query to its strategies, if it names any (an empty list matches no case).
fn strategy_filter(query: &CaseQuery, filters: &mut Filters) {
    if let Some(strategies) = &query.strategies {
        filters.and("strategy = ANY(", strategies.clone());
        filters.push(")");
    }
}

impl PostgresStore {
    async fn case_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<CaseRecord>, StoreError> {
        self.select_one(
            &format!("SELECT {CASE_COLUMNS} FROM review_cases WHERE {column} = $1"),
            &[&value],
            case_from_row,
        )
        .await
    }
}

#[async_trait::async_trait]
impl CaseStore for PostgresStore {
    async fn insert_case(&self, case: CaseRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO review_cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    &case.id,
                    &case.decision_id,
                    &case.queue,
                    &case.priority,
                    &case.state,
                    &case.created_at_ms,
                    &case.due_at_ms,
                    &case.version,
                    &case.body,
                    &case.strategy,
                ],
            )
            .await
            .map_err(|e| insert_error(e, || format!("a case for decision {}", case.decision_id)))?;
        Ok(())
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.case_where("id", id).await
    }

    async fn case_for_decision(&self, decision_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.case_where("decision_id", decision_id).await
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseRecord>, StoreError> {
        let mut filters = Filters::new(format!(
            "SELECT {CASE_COLUMNS} FROM review_cases WHERE true"
        ));
        filters.and_if("queue =", query.queue.as_ref());
        filters.and_if("state =", query.state.as_ref());
        filters.and_if(
            "state <> 'decided' AND due_at_ms <",
            query.due_before_ms.as_ref(),
        );
        strategy_filter(query, &mut filters);
        filters.push(&format!(
            " ORDER BY due_at_ms, priority DESC, id LIMIT {}",
            query.limit.max(1)
        ));
        let client = self.client().await?;
        client
            .query(filters.sql(), &filters.parameters())
            .await
            .db()?
            .iter()
            .map(case_from_row)
            .collect()
    }

    async fn referrals_without_case(&self, recent: u32) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT d.id FROM decisions d
                 WHERE d.seq > (SELECT COALESCE(MAX(seq), 0) FROM decisions) - $1
                   AND d.outcome = 'refer'
                   AND NOT EXISTS (SELECT 1 FROM review_cases c WHERE c.decision_id = d.id)
                 ORDER BY d.seq",
                &[&i64::from(recent)],
            )
            .await
            .db()?
            .iter()
            .map(|row| col(row, 0))
            .collect()
    }

    async fn update_case(&self, case: CaseRecord, expected_version: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE review_cases SET state = $1, due_at_ms = $2, version = $3, body = $4 \
                 WHERE id = $5 AND version = $6",
                &[
                    &case.state,
                    &case.due_at_ms,
                    &(expected_version + 1),
                    &case.body,
                    &case.id,
                    &expected_version,
                ],
            )
            .await
            .db()?;
        if changed != 1 {
            return Err(StoreError::Precondition {
                what: format!(
                    "case {} was changed by someone else; reload it and try again",
                    case.id
                ),
            });
        }
        Ok(())
    }

    async fn claim_next_case(
        &self,
        query: &CaseQuery,
        claim: CaseClaimer,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let mut filters = Filters::new(format!(
            "SELECT {CASE_COLUMNS} FROM review_cases WHERE true"
        ));
        filters.and_if("queue =", query.queue.as_ref());
        match &query.state {
            Some(state) => filters.and("state =", state.clone()),
            None => filters.push(" AND state <> 'decided'"),
        }
        strategy_filter(query, &mut filters);
        // One candidate locked at a time, those another node is claiming at this moment
        // skipped (not waited for), those the claimer refuses left alone.
        let refused_at = filters.next_parameter();
        filters.push(&format!(
            " AND id <> ALL(${refused_at}) ORDER BY due_at_ms, priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ));
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let mut refused: Vec<String> = Vec::new();
        for _ in 0..query.limit.max(1) {
            let mut parameters = filters.parameters();
            parameters.push(&refused);
            let Some(row) = transaction
                .query_opt(filters.sql(), &parameters)
                .await
                .db()?
            else {
                break;
            };
            let candidate = case_from_row(&row)?;
            let Some(mut claimed) = claim(&candidate) else {
                refused.push(candidate.id);
                continue;
            };
            claimed.version = candidate.version + 1;
            transaction
                .execute(
                    "UPDATE review_cases SET state = $1, due_at_ms = $2, version = $3, body = $4 \
                     WHERE id = $5",
                    &[
                        &claimed.state,
                        &claimed.due_at_ms,
                        &claimed.version,
                        &claimed.body,
                        &claimed.id,
                    ],
                )
                .await
                .db()?;
            transaction.commit().await.db()?;
            return Ok(Some(claimed));
        }
        transaction.commit().await.db()?;
        Ok(None)
    }
}
