//! Accounts and their events in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, customer_id, decision_id, status, version, updated_at_ms, body";

pub(super) fn account_from_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        decision_id: row.get(2)?,
        status: row.get(3)?,
        version: row.get(4)?,
        updated_at_ms: row.get(5)?,
        body: row.get(6)?,
    })
}

pub(super) fn insert_account_row(
    conn: &Connection,
    account: &AccountRecord,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        account.id,
        account.customer_id,
        account.decision_id,
        account.status,
        account.version,
        account.updated_at_ms,
        account.body
    ])
}

pub(super) fn insert_account_events(
    conn: &Connection,
    events: &[AccountEventRecord],
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO account_events (account_id, event_id, event_time_ms, received_at_ms, kind, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for event in events {
        statement
            .execute(params![
                event.account_id,
                event.event_id,
                event.event_time_ms,
                event.received_at_ms,
                event.kind,
                event.body
            ])
            .map_err(|e| {
                StoreError::from_insert(e, || {
                    format!("event {} of account {}", event.event_id, event.account_id)
                })
            })?;
    }
    Ok(())
}

/// Applies one account update; `Ok(false)` if the account changed since it was read.
pub(super) fn apply_account_update(
    conn: &Connection,
    update: &AccountUpdate,
) -> Result<bool, StoreError> {
    let account = &update.account;
    let changed = conn
        .prepare_cached(
            "UPDATE accounts SET status = ?1, version = ?2, updated_at_ms = ?3, body = ?4 \
             WHERE id = ?5 AND version = ?6",
        )?
        .execute(params![
            account.status,
            update.expected_version + 1,
            account.updated_at_ms,
            account.body,
            account.id,
            update.expected_version
        ])?;
    if changed != 1 {
        return Ok(false);
    }
    insert_account_events(conn, &update.events)?;
    for event in &update.audit {
        insert_audit(conn, event)?;
    }
    Ok(true)
}

impl SqliteStore {
    /// The account whose `column` (a unique one: `id` or `decision_id`) equals `value`.
    async fn account_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let value = value.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {column} = ?1"),
                    [value],
                    account_from_row,
                )
                .optional()?)
        })
        .await
    }
}

#[async_trait::async_trait]
impl AccountStore for SqliteStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            insert_account_row(conn, &account).map_err(|e| {
                StoreError::from_insert(e, || {
                    format!("an account for decision {}", account.decision_id)
                })
            })?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn insert_accounts(
        &self,
        accounts: Vec<(AccountRecord, Vec<AccountEventRecord>)>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            for (account, events) in &accounts {
                insert_account_row(conn, account).map_err(|e| {
                    StoreError::from_insert(e, || format!("account {}", account.id))
                })?;
                insert_account_events(conn, events)?;
            }
            Ok(())
        })
        .await
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where("id", id).await
    }

    async fn account_for_decision(
        &self,
        decision_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where("decision_id", decision_id).await
    }

    async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountRecord>, StoreError> {
        let query = query.clone();
        self.read(move |_, conn| {
            let mut sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let mut filter = |clause: &str, value: rusqlite::types::Value| {
                values.push(value);
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            };
            if let Some(status) = &query.status {
                filter("status =", status.clone().into());
            }
            if let Some(customer) = &query.customer_id {
                filter("customer_id =", customer.clone().into());
            }
            if let Some(after) = &query.after_id {
                filter("id >", after.clone().into());
            }
            sql.push_str(&format!(" ORDER BY id LIMIT {}", query.limit.max(1)));
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), account_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn count_accounts(&self, status: Option<&str>) -> Result<u64, StoreError> {
        let status = status.map(str::to_string);
        self.read(move |_, conn| {
            let count: i64 = match status {
                Some(status) => conn.query_row(
                    "SELECT COUNT(*) FROM accounts WHERE status = ?1",
                    [status],
                    |row| row.get(0),
                )?,
                None => conn.query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?,
            };
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn known_event_ids(
        &self,
        account_id: &str,
        event_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let account_id = account_id.to_string();
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT 1 FROM account_events WHERE account_id = ?1 AND event_id = ?2",
            )?;
            let mut known = Vec::new();
            for id in event_ids {
                if statement.exists(params![account_id, id])? {
                    known.push(id);
                }
            }
            Ok(known)
        })
        .await
    }

    async fn account_events(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<AccountEventRecord>, StoreError> {
        let account_id = account_id.to_string();
        self.read(move |_, conn| {
            let mut statement = conn.prepare(
                "SELECT account_id, event_id, event_time_ms, received_at_ms, kind, body \
                 FROM account_events WHERE account_id = ?1 ORDER BY event_time_ms DESC, event_id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![account_id, limit], |row| {
                Ok(AccountEventRecord {
                    account_id: row.get(0)?,
                    event_id: row.get(1)?,
                    event_time_ms: row.get(2)?,
                    received_at_ms: row.get(3)?,
                    kind: row.get(4)?,
                    body: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn update_accounts(
        &self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |conn| {
            let mut stale = Vec::new();
            for update in &updates {
                if !apply_account_update(conn, update)? {
                    stale.push(update.account.id.clone());
                }
            }
            for event in &audit {
                insert_audit(conn, event)?;
            }
            Ok(stale)
        })
        .await
    }
}
