//! Webhook registrations: create (the secret shown once), list and delete.

use super::*;
use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// An `http://` or `https://` URL with a host, at most 2,000 characters, of printable ASCII
/// (no white space; other characters percent-encoded).
pub(super) fn is_webhook_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    url.len() <= 2000
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && url.chars().all(|c| c.is_ascii_graphic())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where review outcomes are posted (http or https).
    #[schema(
        pattern = "^https?://[A-Za-z0-9.:\\[\\]-]+([/?#][!-~]*)?$",
        max_length = 2000
    )]
    pub url: String,
}

/// Register a webhook (admin); the signing secret is shown once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, body = Object), (status = 400, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn create_webhook(
    State(service): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateWebhookRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::ManageWebhooks)?;
    let Json(request) = body.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{}; send {{\"url\": \"https://…\"}}", e.body_text()),
        )
    })?;
    let url = request.url.trim().to_string();
    if !is_webhook_url(&url) {
        return Err(ApiError::parameter(
            "url",
            "give an http:// or https:// URL",
        ));
    }
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    let now_ms = service.now_ms();
    let hook = credence_store::WebhookRecord {
        id: format!("wh_{}", hex::encode(id)),
        url: url.clone(),
        secret: format!("whsec_{}", hex::encode(secret)),
        created_by: principal.user.clone(),
        created_at_ms: now_ms,
    };
    let audit = credence_store::NewAuditEvent {
        at_ms: now_ms,
        actor: principal.user.clone(),
        action: "webhook.create".into(),
        subject: hook.id.clone(),
        detail: serde_json::json!({"url": url}),
    };
    service.store.insert_webhook(hook.clone(), audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": hook.id, "url": hook.url, "secret": hook.secret})),
    )
        .into_response())
}

/// Registered webhooks (without secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn list_webhooks(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<credence_store::WebhookRecord>>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    Ok(Json(service.store.webhooks().await?))
}

/// Remove a webhook; its undelivered events are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn delete_webhook(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require(Action::ManageWebhooks)?;
    let audit = credence_store::NewAuditEvent {
        at_ms: service.now_ms(),
        actor: principal.user.clone(),
        action: "webhook.delete".into(),
        subject: id.clone(),
        detail: serde_json::json!({}),
    };
    service.store.delete_webhook(&id, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}
