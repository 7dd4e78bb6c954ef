//! Keys, users and sessions in the embedded store.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, OptionalExtension, Row};

pub(super) fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let roles: String = row.get(3)?;
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        secret_sha256: row.get(1)?,
        user: row.get(2)?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        strategies: split_names(&row.get::<_, String>(7)?),
        created_at_ms: row.get(4)?,
        created_by: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

const USER_COLUMNS: &str =
    "username, password_hash, role, created_at_ms, strategies, disabled_at_ms";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        username: row.get(0)?,
        password_hash: row.get(1)?,
        role: row.get(2)?,
        created_at_ms: row.get(3)?,
        strategies: split_names(&row.get::<_, String>(4)?),
        disabled_at_ms: row.get(5)?,
    })
}

/// A stored comma-separated list of names (keys' and users' strategies).
pub(super) fn split_names(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

#[async_trait::async_trait]
impl AccessStore for SqliteStore {
    async fn insert_key(&self, key: ApiKeyRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms, strategies) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
                params![
                    key.id,
                    key.secret_sha256,
                    key.user,
                    key.roles.join(","),
                    key.created_at_ms,
                    key.created_by,
                    key.strategies.join(",")
                ],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("key {}", key.id)))?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms, strategies \
                     FROM api_keys WHERE id = ?1",
                )?
                .query_row([id], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(
                "SELECT id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms, strategies \
                 FROM api_keys ORDER BY created_at_ms, id",
            )?;
            let rows = statement.query_map([], key_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn revoke_key(
        &self,
        id: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE api_keys SET revoked_at_ms = ?1 WHERE id = ?2 AND revoked_at_ms IS NULL",
                params![at_ms, id],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!("key {id} does not exist or is already revoked"),
                });
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn insert_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at_ms, strategies, disabled_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user.username, user.password_hash, user.role, user.created_at_ms, user.strategies.join(","), user.disabled_at_ms],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("user {}", user.username)))?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let username = username.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
                ))?
                .query_row([username], user_from_row)
                .optional()?)
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            let rows = statement.query_map([], user_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn update_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE users SET password_hash = ?1, role = ?2, strategies = ?3, disabled_at_ms = ?4 \
                 WHERE username = ?5",
                params![
                    user.password_hash,
                    user.role,
                    user.strategies.join(","),
                    user.disabled_at_ms,
                    user.username
                ],
            )?;
            if changed != 1 {
                return Err(unknown_user(&user.username));
            }
            if user.disabled_at_ms.is_some() {
                conn.execute("DELETE FROM sessions WHERE username = ?1", [&user.username])?;
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            // Expired sessions go as new ones arrive.
            conn.execute(
                "DELETE FROM sessions WHERE expires_at_ms < ?1",
                [session.created_at_ms],
            )?;
            conn.execute(
                "INSERT INTO sessions (token_sha256, username, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.token_sha256,
                    session.username,
                    session.csrf_token,
                    session.created_at_ms,
                    session.expires_at_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let token = token_sha256.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT token_sha256, username, csrf_token, created_at_ms, expires_at_ms \
                     FROM sessions WHERE token_sha256 = ?1",
                )?
                .query_row([token], |row| {
                    Ok(SessionRecord {
                        token_sha256: row.get(0)?,
                        username: row.get(1)?,
                        csrf_token: row.get(2)?,
                        created_at_ms: row.get(3)?,
                        expires_at_ms: row.get(4)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        let token = token_sha256.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [token])?;
            Ok(())
        })
        .await
    }
}
