//! API keys: issue, list and revoke (admin).

use super::*;
use crate::auth::{Action, Role};
use crate::error::{ApiError, ErrorCode};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Whom the key belongs to (maker-checker compares users).
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub user: String,
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// The key itself; shown once, stored only as a hash.
    pub key: String,
    pub user: String,
    pub roles: Vec<String>,
}

/// Issue a key (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 400, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn create_key(
    State(service): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateKeyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::ManageKeys)?;
    let Json(request) = body.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!(
                "{}; send {{\"user\": \"alice\", \"roles\": [\"analyst\"]}}",
                e.body_text()
            ),
        )
    })?;
    let now_ms = service.now_ms();
    let issued = crate::auth::issue_key(&request.user, &request.roles, &principal.user, now_ms)?;
    let record = issued.record.clone();
    service
        .store
        .insert_key(
            issued.record,
            key_audit(
                &principal.user,
                "key.create",
                &record.id,
                now_ms,
                &record.user,
                &record.roles,
            ),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: record.id,
            key: issued.plaintext,
            user: record.user,
            roles: record.roles,
        }),
    )
        .into_response())
}

/// Every key (without secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn list_keys(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<credence_store::ApiKeyRecord>>, ApiError> {
    caller.require(Action::ManageKeys)?;
    Ok(Json(service.store.keys().await?))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require(Action::ManageKeys)?;
    let now_ms = service.now_ms();
    service
        .store
        .revoke_key(
            &id,
            now_ms,
            key_audit(&principal.user, "key.revoke", &id, now_ms, "", &[]),
        )
        .await?;
    service.auth.forget();
    Ok(StatusCode::NO_CONTENT)
}
