//! Provider answers on PostgreSQL: the second-level cache every node shares, so that a report one node bought within its TTL is not bought again by another.
//!
//! Every decision whose subject is not in the node's own cache asks this table before paying a
//! provider, so the read is on the path of nearly every new application. Lookups are read in
//! batches: those that arrive while a read runs go together in the next one (one query for
//! many subjects, not a round trip each), and answers are saved in one statement per batch.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;

/// Most lookups read in one query.
const MAX_LOOKUPS: usize = 256;

/// Lookups queued for the reader at most; past it a caller reads on its own.
const LOOKUP_QUEUE: usize = 4_096;

const SELECT_ONE: &str = "SELECT source_key, subject, provider, values_json, fetched_at_ms, \
     expires_at_ms FROM provider_answers WHERE source_key = $1 AND subject = $2 AND expires_at_ms > $3";

const SELECT_MANY: &str = "SELECT source_key, subject, provider, values_json, fetched_at_ms, \
     expires_at_ms FROM provider_answers \
     WHERE (source_key, subject) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
     AND expires_at_ms > $3";

/// One shared-answer lookup waiting for the batch it is read in.
pub(crate) struct AnswerLookup {
    source_key: String,
    subject: String,
    now_ms: i64,
    reply: oneshot::Sender<Result<Option<ProviderAnswerRecord>, StoreError>>,
}

/// Starts the task that reads queued lookups in batches; it ends when the sender is dropped.
pub(crate) fn start_lookups(pool: deadpool_postgres::Pool) -> mpsc::Sender<AnswerLookup> {
    let (sender, mut receiver) = mpsc::channel::<AnswerLookup>(LOOKUP_QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_LOOKUPS);
        while receiver.recv_many(&mut batch, MAX_LOOKUPS).await > 0 {
            match read_many(&pool, &batch).await {
                Ok(found) => {
                    for lookup in batch.drain(..) {
                        // The same key may be asked twice in a batch: each gets its copy.
                        let answer = found
                            .get(&(lookup.source_key, lookup.subject))
                            .filter(|a| a.expires_at_ms > lookup.now_ms)
                            .cloned();
                        let _ = lookup.reply.send(Ok(answer));
                    }
                }
                Err(error) => {
                    // The one failure is every lookup's: each gets it in words.
                    let message = error.to_string();
                    for lookup in batch.drain(..) {
                        let _ = lookup
                            .reply
                            .send(Err(StoreError::Database(message.clone().into())));
                    }
                }
            }
        }
    });
    sender
}

/// The unexpired answers for the lookups' keys, by key.
async fn read_many(
    pool: &deadpool_postgres::Pool,
    lookups: &[AnswerLookup],
) -> Result<HashMap<(String, String), ProviderAnswerRecord>, StoreError> {
    let client = pool.get().await.map_err(crate::pool_error)?;
    let sources: Vec<&str> = lookups.iter().map(|l| l.source_key.as_str()).collect();
    let subjects: Vec<&str> = lookups.iter().map(|l| l.subject.as_str()).collect();
    let earliest_ms = lookups.iter().map(|l| l.now_ms).min().unwrap_or(0);
    let statement = client.prepare_cached(SELECT_MANY).await.db()?;
    client
        .query(&statement, &[&sources, &subjects, &earliest_ms])
        .await
        .db()?
        .iter()
        .map(|row| answer_from_row(row).map(|a| ((a.source_key.clone(), a.subject.clone()), a)))
        .collect()
}

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
        // One statement for the batch; a key twice in it keeps its latest answer (an upsert
        // may not touch a row twice).
        let mut latest: HashMap<(&str, &str), &ProviderAnswerRecord> = HashMap::new();
        for answer in answers.iter().filter(|a| a.expires_at_ms > now_ms) {
            let key = (answer.source_key.as_str(), answer.subject.as_str());
            match latest.get(&key) {
                Some(kept) if kept.fetched_at_ms > answer.fetched_at_ms => {}
                _ => {
                    latest.insert(key, answer);
                }
            }
        }
        if !latest.is_empty() {
            let kept: Vec<&ProviderAnswerRecord> = latest.into_values().collect();
            let column = |f: fn(&ProviderAnswerRecord) -> &str| -> Vec<&str> {
                kept.iter().map(|a| f(a)).collect()
            };
            let (sources, subjects) = (column(|a| &a.source_key), column(|a| &a.subject));
            let (providers, values) = (column(|a| &a.provider), column(|a| &a.values_json));
            let fetched: Vec<i64> = kept.iter().map(|a| a.fetched_at_ms).collect();
            let expires: Vec<i64> = kept.iter().map(|a| a.expires_at_ms).collect();
            transaction
                .execute(
                    "INSERT INTO provider_answers \
                     (source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                     $5::bigint[], $6::bigint[]) \
                     ON CONFLICT (source_key, subject) DO UPDATE SET provider = excluded.provider, \
                     values_json = excluded.values_json, fetched_at_ms = excluded.fetched_at_ms, \
                     expires_at_ms = excluded.expires_at_ms \
                     WHERE excluded.fetched_at_ms >= provider_answers.fetched_at_ms",
                    &[&sources, &subjects, &providers, &values, &fetched, &expires],
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
        let lookups = self
            .inner
            .answer_lookups
            .get_or_init(|| start_lookups(self.inner.pool.clone()));
        let (reply, answer) = oneshot::channel();
        let lookup = AnswerLookup {
            source_key: source_key.to_string(),
            subject: subject.to_string(),
            now_ms,
            reply,
        };
        // A full queue, or a reader gone with the runtime that started it: read alone.
        if lookups.try_send(lookup).is_ok() {
            if let Ok(read) = answer.await {
                return read;
            }
        }
        let client = self.client().await?;
        let statement = client.prepare_cached(SELECT_ONE).await.db()?;
        client
            .query_opt(&statement, &[&source_key, &subject, &now_ms])
            .await
            .db()?
            .map(|row| answer_from_row(&row))
            .transpose()
    }
}
