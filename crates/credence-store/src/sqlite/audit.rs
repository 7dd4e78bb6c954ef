//! The audit trail in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, Connection};

pub(super) fn insert_audit(conn: &Connection, event: &NewAuditEvent) -> Result<(), StoreError> {
    // The next seq from the primary key's last entry: a lookup, not a scan (a bare MAX() inside
    // an expression is not answered from the index).
    conn.prepare_cached(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, detail) \
         VALUES (COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0) + 1, \
                 ?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.at_ms,
        event.actor,
        event.action,
        event.subject,
        event.detail.to_string()
    ])?;
    Ok(())
}

#[async_trait::async_trait]
impl AuditLog for SqliteStore {
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, at_ms, actor, action, subject, detail FROM audit_events \
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit.max(1)], |row| {
                let detail: String = row.get(5)?;
                Ok(AuditEvent {
                    seq: row.get(0)?,
                    at_ms: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    subject: row.get(4)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| insert_audit(conn, &event)).await
    }
}
