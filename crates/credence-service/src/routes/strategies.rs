//! Strategies by name: upload, list and read versions, approve (maker-checker), activate, roll
//! back; rollouts of a candidate in shadow or on a ramp (promote, abort, resume) and the shadow
//! comparison. A caller limited to some strategies acts on those only.

use super::*;
use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

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
        .upload(body.to_vec(), &principal.user, service.now_ms(), |name| {
            principal.require_strategy(name)
        })
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StrategyParams {
    /// Only this strategy's (package name's) versions; the default strategy for `/active`.
    pub strategy: Option<String>,
}

/// Every stored version (of the strategies the caller may see), newest first.
#[utoipa::path(get, path = "/v1/strategies", tag = "strategies", params(StrategyParams),
    responses((status = 200, body = Vec<crate::strategies::StrategyView>)), security(("bearer" = [])))]
pub(crate) async fn list_strategies(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<StrategyParams>, QueryRejection>,
) -> Result<Json<Vec<crate::strategies::StrategyView>>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    let Query(params) = params.map_err(query_error)?;
    Ok(Json(
        service
            .strategies
            .list(|name| {
                principal.may_use(name) && params.strategy.as_deref().is_none_or(|s| s == name)
            })
            .await?,
    ))
}

/// The active version of a strategy (`?strategy=`), or of the default strategy.
#[utoipa::path(get, path = "/v1/strategies/active", tag = "strategies", params(StrategyParams),
    responses((status = 200, body = crate::strategies::StrategyView), (status = 404, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn active_strategy(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<StrategyParams>, QueryRejection>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    let Query(params) = params.map_err(query_error)?;
    let active = service.strategies.resolve(params.strategy.as_deref())?;
    principal.require_strategy(&active.name)?;
    Ok(Json(service.strategies.get(&active.version).await?))
}

/// Every active strategy: its name, active version, whether it is the default, and its rollout.
#[utoipa::path(get, path = "/v1/products", tag = "strategies",
    responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn list_products(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    let default = service.strategies.default_name();
    let mut products = Vec::new();
    for active in service.strategies.active_all() {
        if !principal.may_use(&active.name) {
            continue;
        }
        let rollout = service
            .strategies
            .rollouts(&active.name, 1)
            .await?
            .into_iter()
            .next();
        products.push(serde_json::json!({
            "strategy": active.name,
            "version": active.version,
            "label": active.strategy.label(),
            "default": default.as_deref() == Some(active.name.as_str()),
            "flows": active.strategy.flow_names().collect::<Vec<_>>(),
            "rollout": rollout,
        }));
    }
    Ok(Json(products))
}

#[utoipa::path(get, path = "/v1/strategies/{version}", tag = "strategies",
    params(("version" = String, Path)), responses((status = 200, body = crate::strategies::StrategyView), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn get_strategy(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    let view = service.strategies.get(&version).await?;
    principal.require_strategy(&view.name)?;
    Ok(Json(view))
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
    principal.require_strategy(&service.strategies.name_of(&version).await?)?;
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
    principal.require_strategy(&service.strategies.name_of(&version).await?)?;
    Ok(Json(
        service
            .strategies
            .activate(&version, &principal.user, service.now_ms())
            .await?,
    ))
}

/// Re-activate the default strategy's version active before its current one (kept for the
/// first release; `POST /v1/strategies/{strategy}/rollback` names the strategy).
#[utoipa::path(post, path = "/v1/strategies/rollback", tag = "strategies",
    responses((status = 200, body = crate::strategies::StrategyView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn rollback_strategy(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    caller.require(Action::ActivateStrategy)?;
    let name = service.strategies.default_name().ok_or_else(|| {
        ApiError::new(ErrorCode::NoActiveStrategy, "no strategy version is active")
    })?;
    rollback_named(service, caller, name).await
}

/// Re-activate the version of a strategy that was active before its current one; a rollout
/// running for it is aborted first.
#[utoipa::path(post, path = "/v1/strategies/{strategy}/rollback", tag = "strategies",
    params(("strategy" = String, Path)),
    responses((status = 200, body = crate::strategies::StrategyView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn rollback_strategy_named(
    State(service): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    rollback_named(service, caller, name).await
}

async fn rollback_named(
    service: AppState,
    caller: Caller,
    name: String,
) -> Result<Json<crate::strategies::StrategyView>, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    principal.require_strategy(&name)?;
    Ok(Json(
        service
            .strategies
            .rollback(&name, &principal.user, service.now_ms())
            .await?,
    ))
}

/// Run an approved version in shadow beside its strategy's active version: every live
/// decision is also evaluated with it and stored as a shadow result, never answered.
#[utoipa::path(post, path = "/v1/strategies/{version}/shadow", tag = "rollouts",
    params(("version" = String, Path)),
    responses((status = 201, body = crate::strategies::RolloutView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn start_shadow(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    principal.require_strategy(&service.strategies.name_of(&version).await?)?;
    let view = service
        .strategies
        .start_shadow(&version, &principal.user, service.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Put an approved version on a ramp: a growing share of customers (by a stable hash, so a
/// customer stays on one version within a step) is decided with it; a breached guard rail
/// halts the ramp and sends everyone back to the live version; the last step promotes it.
#[utoipa::path(post, path = "/v1/strategies/{version}/ramp", tag = "rollouts",
    params(("version" = String, Path)), request_body = crate::strategies::ramp::RampRequest,
    responses((status = 201, body = crate::strategies::RolloutView), (status = 400, body = ApiError), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn start_ramp(
    State(service): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    principal.require_strategy(&service.strategies.name_of(&version).await?)?;
    let body = body.map_err(body_error)?;
    let request: crate::strategies::ramp::RampRequest = crate::strict_json::parse(&body)
        .map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("the ramp is not valid: {e}; send e.g. {{\"ramp\": [5, 25, 50, 100], \"guards\": [{{\"metric\": \"approval_rate\", \"max_diff_points\": 3}}]}}"),
            )
        })?;
    let view = service
        .strategies
        .start_ramp(&version, request, &principal.user, service.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RolloutParams {
    /// How many of the newest rollouts [default: 20].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A strategy's rollouts, newest first, with this node's counts for a running ramp.
#[utoipa::path(get, path = "/v1/strategies/{strategy}/rollouts", tag = "rollouts",
    params(("strategy" = String, Path), RolloutParams),
    responses((status = 200, body = Vec<crate::strategies::RolloutView>)), security(("bearer" = [])))]
pub(crate) async fn list_rollouts(
    State(service): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    params: Result<Query<RolloutParams>, QueryRejection>,
) -> Result<Json<Vec<crate::strategies::RolloutView>>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    principal.require_strategy(&name)?;
    let Query(params) = params.map_err(query_error)?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::parameter("limit", "give 1 to 1000"));
    }
    Ok(Json(service.strategies.rollouts(&name, limit).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutAction {
    /// Why, for the audit trail.
    pub reason: Option<String>,
}

/// Promote, abort or resume a strategy's current rollout.
#[utoipa::path(post, path = "/v1/strategies/{strategy}/rollout/{action}", tag = "rollouts",
    params(("strategy" = String, Path), ("action" = String, Path, description = "promote, abort or resume")),
    request_body(content = Option<RolloutAction>),
    responses((status = 200, body = crate::strategies::RolloutView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn act_on_rollout(
    State(service): State<AppState>,
    caller: Caller,
    Path((name, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::strategies::RolloutView>, ApiError> {
    let principal = caller.require(Action::ActivateStrategy)?;
    principal.require_strategy(&name)?;
    let body = body.map_err(body_error)?;
    let request: RolloutAction = if body.iter().all(u8::is_ascii_whitespace) {
        RolloutAction::default()
    } else {
        crate::strict_json::parse::<Option<RolloutAction>>(&body)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the request is not valid: {e}; send {{\"reason\": \"…\"}} or nothing"),
                )
            })?
            .unwrap_or_default()
    };
    let why = request.reason.unwrap_or_default();
    let now = service.now_ms();
    let strategies = &service.strategies;
    let view = match action.as_str() {
        "promote" => {
            strategies
                .promote(&name, &principal.user, now, &why)
                .await?
        }
        "abort" => strategies.abort(&name, &principal.user, now, &why).await?,
        "resume" => strategies.resume(&name, &principal.user, now).await?,
        other => {
            return Err(ApiError::parameter(
                "action",
                format!("{other} is not an action on a rollout: use promote, abort or resume"),
            ))
        }
    };
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShadowReportParams {
    /// The rollout [default: the strategy's newest shadow rollout].
    pub rollout: Option<String>,
    /// From this time: RFC 3339 or a date [default: the rollout's start].
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Before this time [default: the rollout's end, or now].
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// How many differing records to list [default: 100].
    #[param(minimum = 0, maximum = 1000)]
    pub differing: Option<u32>,
}

/// The comparison of a shadow rollout's candidate with the live version over a window.
#[utoipa::path(get, path = "/v1/strategies/{strategy}/shadow-report", tag = "rollouts",
    params(("strategy" = String, Path), ShadowReportParams),
    responses((status = 200, body = crate::shadow::ShadowReport), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn shadow_report(
    State(service): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    params: Result<Query<ShadowReportParams>, QueryRejection>,
) -> Result<Json<crate::shadow::ShadowReport>, ApiError> {
    let principal = caller.require(Action::ReadStrategies)?;
    principal.require_strategy(&name)?;
    let Query(params) = params.map_err(query_error)?;
    let query = crate::shadow::ShadowReportQuery {
        strategy: name,
        rollout_id: params.rollout,
        from_ms: optional_time_ms("from", params.from.as_deref())?,
        to_ms: optional_time_ms("to", params.to.as_deref())?,
        differing_limit: params.differing,
    };
    Ok(Json(
        crate::shadow::shadow_report(&*service.store, &query, service.now_ms()).await?,
    ))
}
