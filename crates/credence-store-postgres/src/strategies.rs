//! Strategy versions on PostgreSQL: packages, approvals, activations per strategy and rollouts, each with its audit event; activations and rollout changes notify every node (`LISTEN`/`NOTIFY`).

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

const ACTIVATION_COLUMNS: &str = "seq, version, activated_by, activated_at_ms, kind, strategy";

const ROLLOUT_COLUMNS: &str = "id, strategy, version, baseline_version, mode, state, plan, step, \
     step_started_at_ms, started_by, started_at_ms, updated_at_ms, note, revision";

fn rollout_from_row(row: &Row) -> Result<RolloutRecord, StoreError> {
    Ok(RolloutRecord {
        id: col(row, 0)?,
        strategy: col(row, 1)?,
        version: col(row, 2)?,
        baseline_version: col(row, 3)?,
        mode: col(row, 4)?,
        state: col(row, 5)?,
        plan: col(row, 6)?,
        step: col(row, 7)?,
        step_started_at_ms: col(row, 8)?,
        started_by: col(row, 9)?,
        started_at_ms: col(row, 10)?,
        updated_at_ms: col(row, 11)?,
        note: col(row, 12)?,
        revision: col(row, 13)?,
    })
}

fn activation_from_row(row: &Row) -> Result<Activation, StoreError> {
    Ok(Activation {
        strategy: col(row, 5)?,
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
        let found = transaction
            .query_opt(
                "SELECT state, name FROM strategy_versions WHERE version = $1 FOR SHARE",
                &[&version],
            )
            .await
            .db()?;
        let Some(found) = found else {
            return Err(StoreError::Precondition {
                what: format!("strategy version {version} does not exist"),
            });
        };
        let (state, strategy): (String, String) = (col(&found, 0)?, col(&found, 1)?);
        if state != StrategyState::Approved.as_str() {
            return Err(StoreError::Precondition {
                what: format!("strategy version {version} is not approved"),
            });
        }
        let row = transaction
            .query_one(
                &format!(
                    "INSERT INTO activations (version, activated_by, activated_at_ms, kind, strategy) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {ACTIVATION_COLUMNS}"
                ),
                &[&version, &actor, &at_ms, &kind, &strategy],
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

    async fn activations(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Activation>, StoreError> {
        self.select_all(
            &format!(
                "SELECT {ACTIVATION_COLUMNS} FROM activations \
                 WHERE $1::TEXT IS NULL OR strategy = $1 ORDER BY seq DESC LIMIT $2"
            ),
            &[&strategy, &i64::from(limit.max(1))],
            activation_from_row,
        )
        .await
    }

    async fn active_versions(&self) -> Result<Vec<Activation>, StoreError> {
        self.select_all(
            &format!(
                "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE seq IN \
                 (SELECT MAX(seq) FROM activations GROUP BY strategy) ORDER BY seq"
            ),
            &[],
            activation_from_row,
        )
        .await
    }

    async fn rollouts(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RolloutRecord>, StoreError> {
        self.select_all(
            &format!(
                "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE $1::TEXT IS NULL OR strategy = $1 \
                 ORDER BY started_at_ms DESC, id DESC LIMIT $2"
            ),
            &[&strategy, &i64::from(limit.max(1))],
            rollout_from_row,
        )
        .await
    }

    async fn save_rollout(
        &self,
        record: RolloutRecord,
        expected_revision: Option<i64>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        match expected_revision {
            None => {
                let running = transaction
                    .query_opt(
                        "SELECT id FROM rollouts WHERE strategy = $1 AND state = 'running'",
                        &[&record.strategy],
                    )
                    .await
                    .db()?;
                if let Some(running) = running {
                    let running: String = col(&running, 0)?;
                    return Err(record.already_running(&running));
                }
                transaction
                    .execute(
                        &format!(
                            "INSERT INTO rollouts ({ROLLOUT_COLUMNS}) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                        ),
                        &[
                            &record.id,
                            &record.strategy,
                            &record.version,
                            &record.baseline_version,
                            &record.mode,
                            &record.state,
                            &record.plan,
                            &record.step,
                            &record.step_started_at_ms,
                            &record.started_by,
                            &record.started_at_ms,
                            &record.updated_at_ms,
                            &record.note,
                            &record.revision,
                        ],
                    )
                    .await
                    .map_err(|e| {
                        crate::error::insert_error(e, || format!("rollout {}", record.id))
                    })?;
            }
            Some(expected) => {
                let changed = transaction
                    .execute(
                        "UPDATE rollouts SET state = $1, step = $2, step_started_at_ms = $3, \
                         updated_at_ms = $4, note = $5, revision = $6 WHERE id = $7 AND revision = $8",
                        &[
                            &record.state,
                            &record.step,
                            &record.step_started_at_ms,
                            &record.updated_at_ms,
                            &record.note,
                            &record.revision,
                            &record.id,
                            &expected,
                        ],
                    )
                    .await
                    .db()?;
                if changed != 1 {
                    return Err(record.changed_first());
                }
            }
        }
        insert_audit(&transaction, &audit).await?;
        // Every node follows the rollout's new state at commit.
        transaction
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&ACTIVATION_CHANNEL, &format!("rollout:{}", record.id)],
            )
            .await
            .db()?;
        transaction.commit().await.db()
    }
}
