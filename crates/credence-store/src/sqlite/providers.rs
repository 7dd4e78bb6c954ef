//! Kept provider answers in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

#[async_trait::async_trait]
impl ProviderAnswerStore for SqliteStore {
    async fn put_provider_answers(
        &self,
        answers: Vec<ProviderAnswerRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = move |conn: &Connection| {
            // Expired answers go as new ones arrive: personal data kept no longer than its TTL.
            conn.prepare_cached("DELETE FROM provider_answers WHERE expires_at_ms <= ?1")?
                .execute([now_ms])?;
            let mut upsert = conn.prepare_cached(
                "INSERT INTO provider_answers \
                 (source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (source_key, subject) DO UPDATE SET provider = excluded.provider, \
                 values_json = excluded.values_json, fetched_at_ms = excluded.fetched_at_ms, \
                 expires_at_ms = excluded.expires_at_ms \
                 WHERE excluded.fetched_at_ms >= provider_answers.fetched_at_ms",
            )?;
            for answer in answers.iter().filter(|a| a.expires_at_ms > now_ms) {
                upsert.execute(params![
                    answer.source_key,
                    answer.subject,
                    answer.provider,
                    answer.values_json,
                    answer.fetched_at_ms,
                    answer.expires_at_ms
                ])?;
            }
            Ok(())
        };
        // A cache, not a record: written in the next batch without its own sync.
        self.inner
            .writer
            .send(Box::new(Work {
                work,
                reply,
                durable: false,
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn provider_answers(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProviderAnswerRecord>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms \
                 FROM provider_answers WHERE expires_at_ms > ?1 \
                 ORDER BY expires_at_ms DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now_ms, limit], |row| {
                Ok(ProviderAnswerRecord {
                    source_key: row.get(0)?,
                    subject: row.get(1)?,
                    provider: row.get(2)?,
                    values_json: row.get(3)?,
                    fetched_at_ms: row.get(4)?,
                    expires_at_ms: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
