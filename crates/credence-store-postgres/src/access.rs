//! Keys, users and sessions on PostgreSQL.

use crate::audit::insert_audit;
use crate::error::{col, insert_error, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;
use tokio_postgres::Row;

const KEY_COLUMNS: &str =
    "id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms, strategies";

const USER_COLUMNS: &str =
    "username, password_hash, role, created_at_ms, strategies, disabled_at_ms";

fn user_from_row(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        username: col(row, 0)?,
        password_hash: col(row, 1)?,
        role: col(row, 2)?,
        created_at_ms: col(row, 3)?,
        strategies: split_names(&col::<String>(row, 4)?),
        disabled_at_ms: col(row, 5)?,
    })
}

/// A stored comma-separated list of names (keys' and users' strategies).
fn split_names(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn key_from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    let roles: String = col(row, 3)?;
    Ok(ApiKeyRecord {
        id: col(row, 0)?,
        secret_sha256: col(row, 1)?,
        user: col(row, 2)?,
        roles: split_names(&roles),
        strategies: split_names(&col::<String>(row, 7)?),
        created_at_ms: col(row, 4)?,
        created_by: col(row, 5)?,
        revoked_at_ms: col(row, 6)?,
    })
}

#[async_trait::async_trait]
impl AccessStore for PostgresStore {
    async fn insert_key(&self, key: ApiKeyRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)"
                ),
                &[
                    &key.id,
                    &key.secret_sha256,
                    &key.user,
                    &key.roles.join(","),
                    &key.created_at_ms,
                    &key.created_by,
                    &key.strategies.join(","),
                ],
            )
            .await
            .map_err(|e| insert_error(e, || format!("key {}", key.id)))?;
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.select_one(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
            &[&id],
            key_from_row,
        )
        .await
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.select_all(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"),
            &[],
            key_from_row,
        )
        .await
    }

    async fn revoke_key(
        &self,
        id: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let changed = transaction
            .execute(
                "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
                &[&at_ms, &id],
            )
            .await
            .db()?;
        if changed != 1 {
            return Err(StoreError::Precondition {
                what: format!("key {id} does not exist or is already revoked"),
            });
        }
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn insert_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        transaction
            .execute(
                "INSERT INTO users (username, password_hash, role, created_at_ms, strategies, disabled_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&user.username, &user.password_hash, &user.role, &user.created_at_ms, &user.strategies.join(","), &user.disabled_at_ms],
            )
            .await
            .map_err(|e| insert_error(e, || format!("user {}", user.username)))?;
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.select_one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
            &[&username],
            user_from_row,
        )
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.select_all(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
            &[],
            user_from_row,
        )
        .await
    }

    async fn update_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let changed = transaction
            .execute(
                "UPDATE users SET password_hash = $1, role = $2, strategies = $3, disabled_at_ms = $4 \
                 WHERE username = $5",
                &[
                    &user.password_hash,
                    &user.role,
                    &user.strategies.join(","),
                    &user.disabled_at_ms,
                    &user.username,
                ],
            )
            .await
            .db()?;
        if changed != 1 {
            return Err(unknown_user(&user.username));
        }
        if user.disabled_at_ms.is_some() {
            transaction
                .execute(
                    "DELETE FROM sessions WHERE username = $1",
                    &[&user.username],
                )
                .await
                .db()?;
        }
        insert_audit(&transaction, &audit).await?;
        transaction.commit().await.db()
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        // Expired sessions go as new ones arrive.
        transaction
            .execute(
                "DELETE FROM sessions WHERE expires_at_ms < $1",
                &[&session.created_at_ms],
            )
            .await
            .db()?;
        transaction
            .execute(
                "INSERT INTO sessions (token_sha256, username, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &session.token_sha256,
                    &session.username,
                    &session.csrf_token,
                    &session.created_at_ms,
                    &session.expires_at_ms,
                ],
            )
            .await
            .db()?;
        transaction.commit().await.db()
    }

    async fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT token_sha256, username, csrf_token, created_at_ms, expires_at_ms \
                 FROM sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await
            .db()?
            .map(|row| {
                Ok(SessionRecord {
                    token_sha256: col(&row, 0)?,
                    username: col(&row, 1)?,
                    csrf_token: col(&row, 2)?,
                    created_at_ms: col(&row, 3)?,
                    expires_at_ms: col(&row, 4)?,
                })
            })
            .transpose()
    }

    async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await
            .db()?;
        Ok(())
    }
}
