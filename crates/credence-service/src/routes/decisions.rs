//! Decisions: decide (and its deprecated alias), list, read and replay stored decisions.

use super::*;
use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use credence_store::DecisionQuery;
use serde::Deserialize;

/// Where a stored decision is read, its id appended (the `Location` of a new decision).
const DECISIONS_PATH: &str = "/v1/decisions/";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecideParams {
    /// Language of reason texts (one the strategy declares); the strategy's first by default.
    pub lang: Option<String>,
}

/// Deprecated alias of `POST /v1/flows/{flow}/decisions`, kept for callers of the first
/// release: the path segment names the flow. (Documented under the template of
/// `GET /v1/decisions/{id}`, since OpenAPI allows one template per path.)
#[utoipa::path(post, path = "/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path, description = "For POST: the flow, e.g. application or drawdown"), DecideParams,
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeated key returns the stored decision; 1–255 visible ASCII characters", pattern = "^[!-~]{1,255}$")),
    request_body(content = Object, description = "The flow's input, as `credence decide` takes it"),
    responses((status = 200, description = "The decision record: its id and compact trace", body = credence_engine::DecisionRecord)),
    security(("bearer" = [])))]
#[deprecated = "use POST /v1/flows/{flow}/decisions"]
#[allow(dead_code)]
pub(crate) async fn decide_by_alias() {}

/// Decide with the active strategy; the decision is durable before the answer is sent.
#[utoipa::path(post, path = "/v1/flows/{flow}/decisions", tag = "decisions",
    params(("flow" = String, Path, description = "The flow, e.g. application or drawdown"), DecideParams,
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeated key returns the stored decision; 1–255 visible ASCII characters", pattern = "^[!-~]{1,255}$")),
    request_body(content = Object, description = "The flow's input, as `credence decide` takes it"),
    responses((status = 200, description = "The decision record: its id and compact trace", body = credence_engine::DecisionRecord),
              (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn decide(
    State(service): State<AppState>,
    caller: Caller,
    Path(flow): Path<String>,
    params: Result<Query<DecideParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide_with(service, caller, None, flow, params, headers, body).await
}

/// Decide with a named strategy (product); the decision is durable before the answer is sent.
#[utoipa::path(post, path = "/v1/strategies/{strategy}/decisions/{flow}", tag = "decisions",
    params(("strategy" = String, Path, description = "The strategy (package name), e.g. card-line"),
           ("flow" = String, Path, description = "The flow, e.g. application"), DecideParams,
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeated key returns the stored decision; 1–255 visible ASCII characters", pattern = "^[!-~]{1,255}$")),
    request_body(content = Object, description = "The flow's input, as `credence decide` takes it"),
    responses((status = 200, description = "The decision record: its id and compact trace", body = credence_engine::DecisionRecord),
              (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn decide_for_strategy(
    State(service): State<AppState>,
    caller: Caller,
    Path((strategy, flow)): Path<(String, String)>,
    params: Result<Query<DecideParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide_with(service, caller, Some(strategy), flow, params, headers, body).await
}

async fn decide_with(
    service: AppState,
    caller: Caller,
    strategy: Option<String>,
    flow: String,
    params: Result<Query<DecideParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::Decide)?;
    // Without a name, the default strategy decides (none active: the use case says so).
    if let Some(name) = strategy
        .clone()
        .or_else(|| service.strategies.default_name())
    {
        principal.require_strategy(&name)?;
    }
    let Query(params) = params.map_err(query_error)?;
    json_content(&headers)?;
    let body = body.map_err(body_error)?;
    let idempotency_key = idempotency_key(&headers)?;
    let answer = service
        .decisions
        .decide(crate::decisions::DecideRequest {
            strategy: strategy.as_deref(),
            flow: &flow,
            body: &body,
            idempotency_key,
            language: params.lang,
            caller_request: None,
        })
        .await?;
    let mut response = json_response(StatusCode::OK, answer.json);
    let mut location = String::with_capacity(DECISIONS_PATH.len() + answer.id.len());
    location.push_str(DECISIONS_PATH);
    location.push_str(&answer.id);
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if answer.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub customer_id: Option<String>,
    pub flow: Option<String>,
    /// Only this strategy's (product's) decisions. A caller limited to several strategies
    /// names one; one limited to a single strategy sees only it.
    pub strategy: Option<String>,
    /// Only decisions of this strategy version.
    pub strategy_version: Option<String>,
    /// Earliest recording time: RFC 3339 (`2026-11-29T10:00:00Z`) or a date (`2026-11-29`).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Recorded before this time (same forms; a date means its start).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size (1–max_page_size).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<i64>)]
    pub cursor: Option<String>,
}

/// Page through stored decisions, newest first.
#[utoipa::path(get, path = "/v1/decisions", tag = "decisions", params(ListParams),
    responses((status = 200, body = crate::decisions::DecisionPage), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn list_decisions(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<crate::decisions::DecisionPage>, ApiError> {
    let principal = caller.require(Action::ListDecisions)?;
    let Query(params) = params.map_err(query_error)?;
    let strategy = strategy_scope(principal, params.strategy)?;
    let limits = &service.limits;
    let limit = match params.limit.as_deref() {
        None => limits.default_page_size,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=limits.max_page_size).contains(n))
            .ok_or_else(|| {
                ApiError::parameter(
                    "limit",
                    format!("give a whole number from 1 to {}", limits.max_page_size),
                )
            })?,
    };
    let before_seq = match params.cursor.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::parameter(
                "cursor",
                "pass the next_cursor of the previous page unchanged",
            )
        })?),
    };
    let query = DecisionQuery {
        customer_id: params.customer_id,
        flow: params.flow,
        strategy,
        strategy_version: params.strategy_version,
        from_ms: optional_time_ms("from", params.from.as_deref())?,
        to_ms: optional_time_ms("to", params.to.as_deref())?,
        before_seq,
        limit,
    };
    Ok(Json(service.decisions.list(query).await?))
}

/// A stored decision with its trace, input and place in the log.
#[utoipa::path(get, path = "/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn get_decision(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = caller.require(Action::ReadDecision)?;
    require_decision_strategy(&service, principal, &id).await?;
    Ok(Json(service.decisions.get(&id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Replay against this version instead of the one that made the decision.
    pub strategy_version: Option<String>,
}

/// Re-run a stored decision; returns the new decision and what changed.
#[utoipa::path(post, path = "/v1/decisions/{id}/replay", tag = "decisions",
    params(("id" = String, Path)), request_body(content = Option<ReplayRequest>),
    responses((status = 200, body = crate::decisions::ReplayResult), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn replay_decision(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::decisions::ReplayResult>, ApiError> {
    let principal = caller.require(Action::ReplayDecision)?;
    require_decision_strategy(&service, principal, &id).await?;
    let body = body.map_err(body_error)?;
    let request: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        // `null` is "nothing" too.
        crate::strict_json::parse::<Option<ReplayRequest>>(&body)
            .map_err(|e| {
                ApiError::new(ErrorCode::MalformedJson, format!("the replay request is not valid: {e}; send {{\"strategy_version\": \"…\"}} or nothing"))
            })?
            .unwrap_or_default()
    };
    Ok(Json(
        service
            .decisions
            .replay(&id, request.strategy_version)
            .await?,
    ))
}
