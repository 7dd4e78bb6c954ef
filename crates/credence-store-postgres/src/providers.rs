//! Provider answers on PostgreSQL: the second-level cache every node shares, so that a report one node bought within its TTL is not bought again by another.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use tokio_postgres::Row;

fn answer_from_row(row: &Row) -> Result<ProviderAnswerRecord, StoreError> {
    Ok(ProviderAnswerRecord {
        source_key: col(row, 0)?,
        subject: col(row, 1)?,
        provider: col(row, 2)?,
        values_json: col(row, 3)?,
        fetched_at_ms: col(row, 4)?,
        expires_at_ms: col(row, 5)?,
    })
}

#[async_trait::async_trait]
impl ProviderAnswerStore for PostgresStore {
    async fn put_provider_answers(
        &self,
        answers: Vec<ProviderAnswerRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        // Expired answers go as new ones arrive: personal data kept no longer than its TTL.
        transaction
            .execute(
                "DELETE FROM provider_answers WHERE expires_at_ms <= $1",
                &[&now_ms],
            )
            .await
            .db()?;
        let upsert = transaction
            .prepare_cached(
                "INSERT INTO provider_answers \
                 (source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (source_key, subject) DO UPDATE SET provider = excluded.provider, \
                 values_json = excluded.values_json, fetched_at_ms = excluded.fetched_at_ms, \
                 expires_at_ms = excluded.expires_at_ms \
                 WHERE excluded.fetched_at_ms >= provider_answers.fetched_at_ms",
            )
            .await
            .db()?;
        for answer in answers.iter().filter(|a| a.expires_at_ms > now_ms) {
            transaction
                .execute(
                    &upsert,
                    &[
                        &answer.source_key,
                        &answer.subject,
                        &answer.provider,
                        &answer.values_json,
                        &answer.fetched_at_ms,
                        &answer.expires_at_ms,
                    ],
                )
                .await
                .db()?;
        }
        transaction.commit().await.db()
    }

    async fn provider_answers(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProviderAnswerRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms \
                 FROM provider_answers WHERE expires_at_ms > $1 \
                 ORDER BY expires_at_ms DESC LIMIT $2",
                &[&now_ms, &i64::from(limit)],
            )
            .await
            .db()?
            .iter()
            .map(answer_from_row)
            .collect()
    }

    async fn provider_answer(
        &self,
        source_key: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<ProviderAnswerRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms \
                 FROM provider_answers WHERE source_key = $1 AND subject = $2 AND expires_at_ms > $3",
            )
            .await
            .db()?;
        client
            .query_opt(&statement, &[&source_key, &subject, &now_ms])
            .await
            .db()?
            .map(|row| answer_from_row(&row))
            .transpose()
    }
}
