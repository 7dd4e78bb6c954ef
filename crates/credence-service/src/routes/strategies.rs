//! Strategy packages: upload, list and read versions, approve (maker-checker), activate and roll back.

use super::*;
use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Upload a strategy package (.tar.gz); compiled and its cases run, stored as a draft.
#[utoipa::path(post, path = "/v1/strategies", tag = "strategies",
    request_body(content((Vec<u8> = "application/gzip"), (Vec<u8> = "application/octet-stream")),
        description = "The package as a .tar.gz (`tar czf package.tgz -C my-strategy .`)"),
    responses((status = 201, body = crate::strategies::UploadOutcome), (status = 200, description = "Already uploaded", body = crate::strategies::UploadOutcome),
              (status = 400, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn upload_strategy(
    State(service): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::UploadStrategy)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::BodyTooLarge,
                "the package is larger than this server accepts (max_package_bytes)",
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidPackage,
                format!("cannot read the upload: {rejection}"),
            )
        }
    })?;
    let outcome = service
        .strategies
        .upload(body.to_vec(), &principal.user, service.now_ms())
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// Every stored version, newest first.
#[utoipa::path(get, path = "/v1/strategies", tag = "strategies",
    responses((status = 200, body = Vec<crate::strategies::StrategyView>)), security(("bearer" = [])))]
pub(crate) async fn list_strategies(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<crate::strategies::StrategyView>>, ApiError> {
    caller.require(Action::ReadStrategies)?;
    Ok(Json(service.strategies.list().await?))
}

/// The active version.
#[utoipa::path(get, path = "/v1/strategies/active", tag = "strategies",
    responses((status = 200, body = crate::strategies::StrategyView), (status = 503, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn active_strategy(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    caller.require(Action::ReadStrategies)?;
    let active = service.strategies.active().ok_or_else(|| {
        ApiError::new(ErrorCode::NoActiveStrategy, "no strategy version is active")
    })?;
    Ok(Json(service.strategies.get(&active.version).await?))
}

#[utoipa::path(get, path = "/v1/strategies/{version}", tag = "strategies",
    params(("version" = String, Path)), responses((status = 200, body = crate::strategies::StrategyView), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn get_strategy(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    caller.require(Action::ReadStrategies)?;
    Ok(Json(service.strategies.get(&version).await?))
}

/// Approve a draft (maker-checker: not by its uploader).
#[utoipa::path(post, path = "/v1/strategies/{version}/approve", tag = "strategies",
    params(("version" = String, Path)), responses((status = 200, body = crate::strategies::StrategyView),
    (status = 403, body = ApiError), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn approve_strategy(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ApproveStrategy)?;
    Ok(Json(
        service
            .strategies
            .approve(&version, &principal.user, service.now_ms())
            .await?,
    ))
}

/// Make an approved version active (atomic swap; in-flight requests finish on the old one).
#[utoipa::path(post, path = "/v1/strategies/{version}/activate", tag = "strategies",
    params(("version" = String, Path)), responses((status = 200, body = crate::strategies::StrategyView),
    (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn activate_strategy(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    Ok(Json(
        service
            .strategies
            .activate(&version, &principal.user, service.now_ms())
            .await?,
    ))
}

/// Re-activate the version active before the current one.
#[utoipa::path(post, path = "/v1/strategies/rollback", tag = "strategies",
    responses((status = 200, body = crate::strategies::StrategyView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn rollback_strategy(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    Ok(Json(
        service
            .strategies
            .rollback(&principal.user, service.now_ms())
            .await?,
    ))
}
