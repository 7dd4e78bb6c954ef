//! Strategy versions on PostgreSQL: packages, approvals and activations, each with its audit event; an activation notifies every node (`LISTEN`/`NOTIFY`).

use crate::audit::insert_audit;
use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use tokio_postgres::Row;

/// The channel activations are announced on; the payload is the version.
pub(crate) const ACTIVATION_CHANNEL: &str = "credence_activation";

const STRATEGY_COLUMNS: &str =
    "version, name, state, uploaded_by, uploaded_at_ms, approved_by, approved_at_ms, cases_passed";

fn strategy_from_row(row: &Row) -> Result<StrategyRecord, StoreError> {
    let state: String = col(row, 2)?;
    Ok(StrategyRecord {
        version: col(row, 0)?,
        name: col(row, 1)?,
        state: StrategyState::parse(&state).unwrap_or(StrategyState::Draft),
        uploaded_by: col(row, 3)?,
        uploaded_at_ms: col(row, 4)?,
        approved_by: col(row, 5)?,
        approved_at_ms: col(row, 6)?,
        cases_passed: col(row, 7)?,
    })
}

fn activation_from_row(row: &Row) -> Result<Activation, StoreError> {
    Ok(Activation {
        seq: col(row, 0)?,
        version: col(row, 1)?,
        activated_by: col(row, 2)?,
        activated_at_ms: col(row, 3)?,
        kind: col(row, 4)?,
    })
}

/// A receiver of activated versions, fed by a dedicated connection that `LISTEN`s; it closes
/// when that connection ends (the caller polls anyway and listens again).
pub(crate) async fn listen(
    store: &PostgresStore,
) -> Result<tokio::sync::mpsc::Receiver<String>, StoreError> {
    let (client, mut connection) = store.dedicated().await?;
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let (ended, ended_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ended = ended;
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                    if sender.send(note.payload().to_string()).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the activation listener's connection ended");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {ACTIVATION_CHANNEL}"))
        .await
        .db()?;
    // The connection lives as long as its client: keep it until the connection ends.
    tokio::spawn(async move {
        let _client = client;
        let _ = ended_rx.await;
    });
    Ok(receiver)
}

#[async_trait::async_trait]
impl StrategyStore for PostgresStore {
    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let inserted = transaction
            .execute(
                &format!(
                    "INSERT INTO strategy_versions ({STRATEGY_COLUMNS}, package) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (version) DO NOTHING"
                ),
                &[
                    &record.version,
                    &record.name,
                    &record.state.as_str(),
                    &record.uploaded_by,
                    &record.uploaded_at_ms,
                    &record.approved_by,
                    &record.approved_at_ms,
                    &record.cases_passed,
                    &package,
                ],
            )
            .await
            .db()?;
        if inserted == 0 {
            return Ok(false);
        }
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()?;
        Ok(true)
    }

    async fn strategy(&self, version: &str) -> Result<Option<StrategyRecord>, StoreError> {
        self.select_one(
            &format!("SELECT {STRATEGY_COLUMNS} FROM strategy_versions WHERE version = $1"),
            &[&version],
            strategy_from_row,
        )
        .await
    }

    async fn strategy_package(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT package FROM strategy_versions WHERE version = $1",
                &[&version],
            )
            .await
            .db()?
            .map(|row| col(&row, 0))
            .transpose()
    }

    async fn strategies(&self) -> Result<Vec<StrategyRecord>, StoreError> {
        self.select_all(
            &format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategy_versions ORDER BY uploaded_at_ms DESC, version"
            ),
            &[],
            strategy_from_row,
        )
        .await
    }

    async fn approve_strategy(
        &self,
        version: &str,
        approver: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let changed = transaction
            .execute(
                "UPDATE strategy_versions SET state = 'approved', approved_by = $1, approved_at_ms = $2 \
                 WHERE version = $3 AND state = 'draft'",
                &[&approver, &at_ms, &version],
            )
            .await
            .db()?;
        if changed != 1 {
            return Err(StoreError::Precondition {
                what: format!("strategy version {version} is not a draft"),
            });
        }
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn record_activation(
        &self,
        version: &str,
        actor: &str,
        kind: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<Activation, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let state: Option<String> = transaction
            .query_opt(
                "SELECT state FROM strategy_versions WHERE version = $1 FOR SHARE",
                &[&version],
            )
            .await
            .db()?
            .map(|row| col(&row, 0))
            .transpose()?;
        if state.as_deref() != Some(StrategyState::Approved.as_str()) {
            return Err(StoreError::Precondition {
                what: format!("strategy version {version} is not approved"),
            });
        }
        let row = transaction
            .query_one(
                "INSERT INTO activations (version, activated_by, activated_at_ms, kind) \
                 VALUES ($1, $2, $3, $4) RETURNING seq, version, activated_by, activated_at_ms, kind",
                &[&version, &actor, &at_ms, &kind],
            )
            .await
            .db()?;
        let activation = activation_from_row(&row)?;
        insert_audit(&transaction, &audit).await?;
        // Delivered at commit, to every node listening.
        transaction
            .execute("SELECT pg_notify($1, $2)", &[&ACTIVATION_CHANNEL, &version])
            .await
            .db()?;
        transaction.commit().await.db()?;
        Ok(activation)
    }

    async fn activations(&self, limit: u32) -> Result<Vec<Activation>, StoreError> {
        self.select_all(
            "SELECT seq, version, activated_by, activated_at_ms, kind FROM activations \
             ORDER BY seq DESC LIMIT $1",
            &[&i64::from(limit.max(1))],
            activation_from_row,
        )
        .await
    }
}
