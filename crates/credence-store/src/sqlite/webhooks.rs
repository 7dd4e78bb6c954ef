//! Webhooks and their delivery outbox in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::params;

#[async_trait::async_trait]
impl WebhookOutbox for SqliteStore {
    async fn insert_webhook(
        &self,
        hook: WebhookRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO webhooks (id, url, secret, created_by, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hook.id, hook.url, hook.secret, hook.created_by, hook.created_at_ms],
            )?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(
                "SELECT id, url, secret, created_by, created_at_ms FROM webhooks ORDER BY created_at_ms, id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(WebhookRecord {
                    id: row.get(0)?,
                    url: row.get(1)?,
                    secret: row.get(2)?,
                    created_by: row.get(3)?,
                    created_at_ms: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn delete_webhook(&self, id: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            if conn.execute("DELETE FROM webhooks WHERE id = ?1", [&id])? != 1 {
                return Err(StoreError::Precondition {
                    what: format!("there is no webhook {id}"),
                });
            }
            conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_ms = NULL WHERE webhook_id = ?1 AND delivered_at_ms IS NULL",
                [&id],
            )?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        let (event, body) = (event.to_string(), body.to_string());
        self.write(move |conn| {
            Ok(conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, event, body, attempts, next_attempt_ms) \
                 SELECT (SELECT COALESCE(MAX(id), 0) FROM webhook_deliveries) + ROW_NUMBER() OVER (ORDER BY id), \
                        id, ?1, ?2, 0, ?3 FROM webhooks",
                params![event, body, at_ms],
            )?)
        })
        .await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.attempts \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.delivered_at_ms IS NULL AND d.next_attempt_ms IS NOT NULL AND d.next_attempt_ms <= ?1 \
                 ORDER BY d.id LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now_ms, limit], |row| {
                Ok(DeliveryRecord {
                    id: row.get(0)?,
                    webhook_id: row.get(1)?,
                    url: row.get(2)?,
                    secret: row.get(3)?,
                    event: row.get(4)?,
                    body: row.get(5)?,
                    attempts: row.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn record_attempt(
        &self,
        id: i64,
        delivered_at_ms: Option<i64>,
        next_attempt_ms: Option<i64>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at_ms = ?1, \
                 next_attempt_ms = ?2, last_error = ?3 WHERE id = ?4",
                params![delivered_at_ms, next_attempt_ms, error, id],
            )?;
            Ok(())
        })
        .await
    }
}
