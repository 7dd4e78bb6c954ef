//! Accounts and their events on PostgreSQL: an event id is applied once per account across nodes (its primary key), and account changes commit only at the version they were computed from.

use crate::audit::insert_audit;
use crate::error::{col, insert_error, Db};
use crate::filters::Filters;
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

const ACCOUNT_COLUMNS: &str = "id, customer_id, decision_id, status, version, updated_at_ms, body";

fn account_from_row(row: &Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: col(row, 0)?,
        customer_id: col(row, 1)?,
        decision_id: col(row, 2)?,
        status: col(row, 3)?,
        version: col(row, 4)?,
        updated_at_ms: col(row, 5)?,
        body: col(row, 6)?,
    })
}

async fn insert_account_row(
    transaction: &Transaction<'_>,
    account: &AccountRecord,
    what: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    let statement = transaction
        .prepare_cached(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .await
        .db()?;
    transaction
        .execute(
            &statement,
            &[
                &account.id,
                &account.customer_id,
                &account.decision_id,
                &account.status,
                &account.version,
                &account.updated_at_ms,
                &account.body,
            ],
        )
        .await
        .map_err(|e| insert_error(e, what))?;
    Ok(())
}

async fn insert_account_events(
    transaction: &Transaction<'_>,
    events: &[AccountEventRecord],
) -> Result<(), StoreError> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO account_events (account_id, event_id, event_time_ms, received_at_ms, kind, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .db()?;
    for event in events {
        transaction
            .execute(
                &statement,
                &[
                    &event.account_id,
                    &event.event_id,
                    &event.event_time_ms,
                    &event.received_at_ms,
                    &event.kind,
                    &event.body,
                ],
            )
            .await
            .map_err(|e| {
                insert_error(e, || {
                    format!("event {} of account {}", event.event_id, event.account_id)
                })
            })?;
    }
    Ok(())
}

impl PostgresStore {
    async fn account_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.select_one(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {column} = $1"),
            &[&value],
            account_from_row,
        )
        .await
    }
}

#[async_trait::async_trait]
impl AccountStore for PostgresStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        insert_account_row(&transaction, &account, || {
            format!("an account for decision {}", account.decision_id)
        })
        .await?;
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn insert_accounts(
        &self,
        accounts: Vec<(AccountRecord, Vec<AccountEventRecord>)>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        for (account, events) in &accounts {
            insert_account_row(&transaction, account, || format!("account {}", account.id)).await?;
            insert_account_events(&transaction, events).await?;
        }
        transaction.commit().await.db()
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
        let mut filters =
            Filters::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE true"));
        filters.and_if("status =", query.status.as_ref());
        filters.and_if("customer_id =", query.customer_id.as_ref());
        filters.and_if("id >", query.after_id.as_ref());
        filters.push(&format!(" ORDER BY id LIMIT {}", query.limit.max(1)));
        let client = self.client().await?;
        client
            .query(filters.sql(), &filters.parameters())
            .await
            .db()?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn count_accounts(&self, status: Option<&str>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = match status {
            Some(status) => client
                .query_one(
                    "SELECT COUNT(*) FROM accounts WHERE status = $1",
                    &[&status],
                )
                .await
                .db()?,
            None => client
                .query_one("SELECT COUNT(*) FROM accounts", &[])
                .await
                .db()?,
        };
        Ok(col::<i64>(&row, 0)?.max(0) as u64)
    }

    async fn known_event_ids(
        &self,
        account_id: &str,
        event_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let known: std::collections::HashSet<String> = client
            .query(
                "SELECT event_id FROM account_events WHERE account_id = $1 AND event_id = ANY($2)",
                &[&account_id, &event_ids],
            )
            .await
            .db()?
            .iter()
            .map(|row| col(row, 0))
            .collect::<Result<_, StoreError>>()?;
        Ok(event_ids
            .into_iter()
            .filter(|id| known.contains(id))
            .collect())
    }

    async fn account_events(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<AccountEventRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT account_id, event_id, event_time_ms, received_at_ms, kind, body \
                 FROM account_events WHERE account_id = $1 \
                 ORDER BY event_time_ms DESC, event_id DESC LIMIT $2",
                &[&account_id, &i64::from(limit)],
            )
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(AccountEventRecord {
                    account_id: col(row, 0)?,
                    event_id: col(row, 1)?,
                    event_time_ms: col(row, 2)?,
                    received_at_ms: col(row, 3)?,
                    kind: col(row, 4)?,
                    body: col(row, 5)?,
                })
            })
            .collect()
    }

    async fn update_accounts(
        &self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let stale = apply_updates(&transaction, &updates, &audit).await?;
        transaction.commit().await.db()?;
        Ok(stale)
    }
}

/// Applies account updates at their expected versions (returning the ids of those whose
/// account changed meanwhile), their events and audit events, and `audit`, in `transaction`.
pub(crate) async fn apply_updates(
    transaction: &Transaction<'_>,
    updates: &[AccountUpdate],
    audit: &[NewAuditEvent],
) -> Result<Vec<String>, StoreError> {
    let statement = transaction
        .prepare_cached(
            "UPDATE accounts SET status = $1, version = $2, updated_at_ms = $3, body = $4 \
                 WHERE id = $5 AND version = $6",
        )
        .await
        .db()?;
    let mut stale = Vec::new();
    for update in updates {
        let account = &update.account;
        let changed = transaction
            .execute(
                &statement,
                &[
                    &account.status,
                    &(update.expected_version + 1),
                    &account.updated_at_ms,
                    &account.body,
                    &account.id,
                    &update.expected_version,
                ],
            )
            .await
            .db()?;
        if changed != 1 {
            stale.push(account.id.clone());
            continue;
        }
        insert_account_events(transaction, &update.events).await?;
        for event in &update.audit {
            insert_audit(transaction, event).await?;
        }
    }
    for event in audit {
        insert_audit(transaction, event).await?;
    }
    Ok(stale)
}
