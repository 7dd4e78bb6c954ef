//! The audit trail of strategy and key changes.

use super::*;
use crate::auth::Action;
use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// How many events, newest first (1–max_page_size) [default: 100].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Strategy and key changes, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn audit_events(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Vec<credence_store::AuditEvent>>, ApiError> {
    caller.require(Action::ReadAudit)?;
    let Query(params) = params.map_err(query_error)?;
    let limit = page_size(params.limit, 100, service.limits.max_page_size)?;
    Ok(Json(service.store.audit_events(limit).await?))
}
