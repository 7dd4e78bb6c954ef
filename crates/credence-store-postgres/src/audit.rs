//! The audit trail on PostgreSQL: events numbered by the database, written in the transaction of the change they describe.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;

/// Writes `event` in `transaction`.
pub(crate) async fn insert_audit(
    transaction: &deadpool_postgres::Transaction<'_>,
    event: &NewAuditEvent,
) -> Result<(), StoreError> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO audit_events (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .db()?;
    transaction
        .execute(
            &statement,
            &[
                &event.at_ms,
                &event.actor,
                &event.action,
                &event.subject,
                &event.detail.to_string(),
            ],
        )
        .await
        .db()?;
    Ok(())
}

#[async_trait::async_trait]
impl AuditLog for PostgresStore {
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT seq, at_ms, actor, action, subject, detail FROM audit_events \
                 ORDER BY seq DESC LIMIT $1",
                &[&i64::from(limit.max(1))],
            )
            .await
            .db()?
            .iter()
            .map(|row| {
                let detail: String = col(row, 5)?;
                Ok(AuditEvent {
                    seq: col(row, 0)?,
                    at_ms: col(row, 1)?,
                    actor: col(row, 2)?,
                    action: col(row, 3)?,
                    subject: col(row, 4)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        insert_audit(&transaction, &event).await?;
        transaction.commit().await.db()
    }
}
