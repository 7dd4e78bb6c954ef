//! Portfolio monitoring: rates by month, score PSI, vintages and roll rates.

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
pub struct MonitoringParams {
    /// The flow whose decisions are monitored [default: application].
    pub flow: Option<String>,
    /// Only this strategy (product) [default: all; a caller limited to one strategy: it].
    pub strategy: Option<String>,
    /// How many of the newest decisions (and decided cases) to read [default: 10000].
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

/// Approval, referral and override rates by month; the score's PSI against the first month
/// with enough scores (flags at 0.1 and 0.25); vintage curves (60+ days past due) and roll
/// rates from the accounts.
#[utoipa::path(get, path = "/v1/monitoring", tag = "monitoring", params(MonitoringParams),
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub(crate) async fn monitoring(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<MonitoringParams>, QueryRejection>,
) -> Result<Json<credence_backtest::monitor::MonitorReport>, ApiError> {
    let principal = caller.require(Action::ReadMonitoring)?;
    let Query(params) = params.map_err(query_error)?;
    let strategy = strategy_scope(principal, params.strategy)?;
    let flow = params.flow.unwrap_or_else(|| "application".into());
    let limit = params.limit.unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::parameter("limit", "give 1 to 100000"));
    }
    let today = service.clock.now().date_naive();
    Ok(Json(
        crate::monitoring::report(&service.store, strategy.as_deref(), &flow, limit, today).await?,
    ))
}
