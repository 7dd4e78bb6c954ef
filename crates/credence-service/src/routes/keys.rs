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
    /// The strategies (products) the key may act on; empty or absent: every strategy. A key
    /// issued by a caller limited to some strategies is limited to (some of) them too.
    #[serde(default)]
    pub strategies: Vec<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// The key itself; shown once, stored only as a hash.
    pub key: String,
    pub user: String,
    pub roles: Vec<String>,
    /// The strategies it is limited to; empty: every strategy.
    pub strategies: Vec<String>,
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
    let mut issued =
        crate::auth::issue_key(&request.user, &request.roles, &principal.user, now_ms)?;
    issued.record.strategies = crate::auth::validate_strategy_names(&request.strategies)?;
    // A caller limited to some products cannot issue a key for more than they may act on.
    if !principal.strategies.is_empty() {
        if issued.record.strategies.is_empty() {
            return Err(ApiError::parameter(
                "strategies",
                format!(
                    "you may act only on {}: name the strategies the key is limited to",
                    principal.strategies.join(", ")
                ),
            ));
        }
        for name in &issued.record.strategies {
            principal.require_strategy(name)?;
        }
    }
    let record = issued.record.clone();
    service
        .store
        .insert_key(issued.record, {
            let mut audit = key_audit(
                &principal.user,
                "key.create",
                &record.id,
                now_ms,
                &record.user,
                &record.roles,
            );
            audit.detail["strategies"] = serde_json::json!(record.strategies);
            audit
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: record.id,
            key: issued.plaintext,
            user: record.user,
            roles: record.roles,
            strategies: record.strategies,
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
