//! Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.

use super::*;
use crate::error::{ApiError, ErrorCode};
use crate::metrics as m;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: a strategy is active and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503, body = ApiError)))]
pub(crate) async fn readyz(
    State(service): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let active = service.strategies.active().ok_or_else(|| {
        ApiError::new(ErrorCode::NoActiveStrategy, "no strategy version is active")
    })?;
    service.store.activations(None, 1).await.map_err(|e| {
        tracing::error!(error = %e, "readiness: the store does not answer");
        ApiError::new(ErrorCode::Unavailable, "the store does not answer")
    })?;
    service.store.writable().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("not ready: {e}; decisions are refused until the operator frees space"),
        )
    })?;
    // Data providers are reported, not required: a flow decides on what its on_failure says
    // when one does not answer.
    let providers = service
        .provider_checks
        .read()
        .map(|c| c.clone())
        .unwrap_or_default();
    let strategies: Vec<serde_json::Value> = service
        .strategies
        .active_all()
        .iter()
        .map(|a| serde_json::json!({"strategy": a.name, "version": a.version}))
        .collect();
    Ok(Json(serde_json::json!({
        "status": "ready",
        "strategy_version": active.version,
        "strategies": strategies,
        "data_providers": providers,
    })))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub(crate) async fn metrics_text() -> Response {
    let body = m::install().render();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Response {
    json_response(StatusCode::OK, crate::openapi::document())
}
