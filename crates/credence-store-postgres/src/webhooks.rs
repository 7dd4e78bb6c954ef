//! Webhooks and their delivery outbox on PostgreSQL: due deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so that each is attempted by one node at a time and taken over when a node dies mid-delivery (at least once, never lost).

use crate::audit::insert_audit;
use crate::error::{col, insert_error, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;

/// How long a claimed delivery belongs to the node that claimed it before another may retry
/// it: longer than a delivery attempt's timeout.
pub(crate) const DELIVERY_LEASE_MS: i64 = 60_000;

#[async_trait::async_trait]
impl WebhookOutbox for PostgresStore {
    async fn insert_webhook(
        &self,
        hook: WebhookRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        transaction
            .execute(
                "INSERT INTO webhooks (id, url, secret, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
                &[&hook.id, &hook.url, &hook.secret, &hook.created_by, &hook.created_at_ms],
            )
            .await
            .map_err(|e| insert_error(e, || format!("webhook {}", hook.id)))?;
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, url, secret, created_by, created_at_ms FROM webhooks ORDER BY created_at_ms, id",
                &[],
            )
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(WebhookRecord {
                    id: col(row, 0)?,
                    url: col(row, 1)?,
                    secret: col(row, 2)?,
                    created_by: col(row, 3)?,
                    created_at_ms: col(row, 4)?,
                })
            })
            .collect()
    }

    async fn delete_webhook(&self, id: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        if transaction
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await
            .db()?
            != 1
        {
            return Err(StoreError::Precondition {
                what: format!("there is no webhook {id}"),
            });
        }
        transaction
            .execute(
                "UPDATE webhook_deliveries SET next_attempt_ms = NULL \
                 WHERE webhook_id = $1 AND delivered_at_ms IS NULL",
                &[&id],
            )
            .await
            .db()?;
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let queued = client
            .execute(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, attempts, next_attempt_ms) \
                 SELECT id, $1, $2, 0, $3 FROM webhooks ORDER BY id",
                &[&event, &body, &at_ms],
            )
            .await
            .db()?;
        Ok(queued as usize)
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let client = self.client().await?;
        // Claimed: the next attempt moves a lease ahead, so no other node takes them meanwhile.
        let mut due = client
            .query(
                "WITH due AS (
                     SELECT id FROM webhook_deliveries
                     WHERE delivered_at_ms IS NULL AND next_attempt_ms IS NOT NULL AND next_attempt_ms <= $1
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE webhook_deliveries d SET next_attempt_ms = $1 + $3
                 FROM due, webhooks w
                 WHERE d.id = due.id AND w.id = d.webhook_id
                 RETURNING d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.attempts",
                &[&now_ms, &i64::from(limit), &DELIVERY_LEASE_MS],
            )
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    id: col(row, 0)?,
                    webhook_id: col(row, 1)?,
                    url: col(row, 2)?,
                    secret: col(row, 3)?,
                    event: col(row, 4)?,
                    body: col(row, 5)?,
                    attempts: col(row, 6)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        due.sort_by_key(|d| d.id);
        Ok(due)
    }

    async fn record_attempt(
        &self,
        id: i64,
        delivered_at_ms: Option<i64>,
        next_attempt_ms: Option<i64>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at_ms = $1, \
                 next_attempt_ms = $2, last_error = $3 WHERE id = $4",
                &[&delivered_at_ms, &next_attempt_ms, &error, &id],
            )
            .await
            .db()?;
        Ok(())
    }
}
