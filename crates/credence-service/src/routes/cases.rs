//! Manual review cases over the API: list, read and act on them.

use super::*;
use crate::auth::{Action, Role};
use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    pub queue: Option<String>,
    /// Only cases of this strategy (product); a caller limited to some strategies sees only theirs.
    pub strategy: Option<String>,
    /// `open`, `more_info_requested`, `escalated`, `awaiting_confirmation` or `decided`.
    #[param(pattern = "^(open|more_info_requested|escalated|awaiting_confirmation|decided)$")]
    pub state: Option<String>,
    /// `true`: only cases past their SLA deadline and not decided.
    pub breached: Option<bool>,
    /// Page size (1–max_page_size) [default: default_page_size].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Review cases, soonest deadline first.
#[utoipa::path(get, path = "/v1/cases", tag = "review", params(CaseParams),
    responses((status = 200, body = Vec<crate::cases::CaseView>)), security(("bearer" = [])))]
pub(crate) async fn list_cases(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<CaseParams>, QueryRejection>,
) -> Result<Json<Vec<crate::cases::CaseView>>, ApiError> {
    let principal = caller.require(Action::ReviewCases)?;
    let Query(params) = params.map_err(query_error)?;
    if let Some(strategy) = &params.strategy {
        principal.require_strategy(strategy)?;
    }
    const STATES: [&str; 5] = [
        "open",
        "more_info_requested",
        "escalated",
        "awaiting_confirmation",
        "decided",
    ];
    if let Some(state) = params.state.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(ApiError::parameter(
            "state",
            format!(
                "{state:?} is not a case state; use one of {}",
                STATES.join(", ")
            ),
        ));
    }
    let query = credence_store::CaseQuery {
        queue: params.queue,
        strategies: match params.strategy {
            Some(strategy) => Some(vec![strategy]),
            None => principal.strategy_filter(),
        },
        state: params.state,
        due_before_ms: params.breached.filter(|b| *b).map(|_| service.now_ms()),
        limit: page_size(
            params.limit,
            service.limits.default_page_size,
            service.limits.max_page_size,
        )?,
    };
    Ok(Json(service.cases.list(query).await?))
}

/// A case with its history.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "review", params(("id" = String, Path)),
    responses((status = 200, body = crate::cases::CaseView), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn get_case(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::cases::CaseView>, ApiError> {
    let principal = caller.require(Action::ReviewCases)?;
    let view = service.cases.get(&id).await?;
    principal.require_strategy(&view.case.strategy)?;
    Ok(Json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseActionRequest {
    /// Required for every action but claim and release.
    pub note: Option<String>,
    /// For `decide`: `approve`, `counter_offer` or `decline`.
    #[schema(value_type = Option<String>, pattern = "^(approve|counter_offer|decline)$")]
    pub verdict: Option<credence_review::Verdict>,
    /// A decimal, as a string or a number.
    #[schema(value_type = Option<String>, pattern = "^[0-9]{1,12}(\\.[0-9]{1,6})?$")]
    pub limit: Option<rust_decimal::Decimal>,
    /// A decimal fraction (0.12 is 12 %), as a string or a number.
    #[schema(value_type = Option<String>, pattern = "^0(\\.[0-9]{1,6})?$")]
    pub apr: Option<rust_decimal::Decimal>,
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Act on a case: `claim`, `release`, `decide`, `confirm`, `send_back`, `request_info`, `escalate`.
#[utoipa::path(post, path = "/v1/cases/{id}/{action}", tag = "review",
    params(("id" = String, Path), ("action" = String, Path, pattern = "^(claim|release|decide|confirm|send_back|request_info|escalate)$")),
    request_body(content = Option<CaseActionRequest>),
    responses((status = 200, body = crate::cases::CaseView), (status = 403, body = ApiError), (status = 409, body = ApiError),
              (status = 422, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn act_on_case(
    State(service): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::cases::CaseView>, ApiError> {
    let principal = caller.require(Action::ReviewCases)?;
    if !principal.strategies.is_empty() {
        if let Ok(view) = service.cases.get(&id).await {
            principal.require_strategy(&view.case.strategy)?;
        }
    }
    let body = body.map_err(body_error)?;
    let request: CaseActionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CaseActionRequest::default()
    } else {
        // `null` is "nothing" too.
        crate::strict_json::parse::<Option<CaseActionRequest>>(&body)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the case action is not valid: {e}"),
                )
            })?
            .unwrap_or_default()
    };
    let note = || request.note.clone().unwrap_or_default();
    use credence_review::Command;
    let command = match action.as_str() {
        "claim" => Command::Claim,
        "release" => Command::Release,
        "decide" => Command::Decide(credence_review::Proposal {
            verdict: request
                .verdict
                .ok_or_else(|| ApiError::parameter("verdict", "give approve, counter_offer or decline"))?,
            limit: request.limit,
            apr: request.apr,
            reasons: request.reasons.clone(),
            note: note(),
        }),
        "confirm" => Command::Confirm { note: note() },
        "send_back" => Command::SendBack { note: note() },
        "request_info" => Command::RequestInfo { note: note() },
        "escalate" => Command::Escalate { note: note() },
        other => {
            return Err(ApiError::not_found(format!(
                "unknown case action {other}; use claim, release, decide, confirm, send_back, request_info or escalate"
            )))
        }
    };
    Ok(Json(
        service
            .cases
            .act(&id, command, &reviewer_of(principal))
            .await?,
    ))
}

/// The reviewer an API caller acts as: an admin as a senior reviewer.
fn reviewer_of(principal: &crate::auth::Principal) -> credence_review::Reviewer {
    credence_review::Reviewer {
        user: principal.user.clone(),
        role: if principal.roles.contains(&Role::Admin) {
            credence_review::ReviewerRole::SeniorReviewer
        } else {
            credence_review::ReviewerRole::Reviewer
        },
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NextCaseParams {
    /// Only this queue [default: any].
    pub queue: Option<String>,
    /// Only this strategy's (product's) cases [default: any the caller may work].
    pub strategy: Option<String>,
}

/// Claim the next case: the first, soonest deadline first, that the review policy lets the
/// caller take. Two reviewers asking at once, on any nodes, get different cases. 204 when
/// nothing is waiting that the caller may take.
#[utoipa::path(post, path = "/v1/cases/next", tag = "review", params(NextCaseParams),
    responses((status = 200, body = crate::cases::CaseView), (status = 204, description = "no case to take")),
    security(("bearer" = [])))]
pub(crate) async fn claim_next_case(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<NextCaseParams>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let principal = caller.require(Action::ReviewCases)?;
    let Query(params) = params.map_err(query_error)?;
    let reviewer = reviewer_of(principal);
    if let Some(strategy) = &params.strategy {
        principal.require_strategy(strategy)?;
    }
    let strategies = match params.strategy {
        Some(strategy) => Some(vec![strategy]),
        None => principal.strategy_filter(),
    };
    match service
        .cases
        .claim_next(params.queue, strategies, &reviewer)
        .await?
    {
        Some(case) => Ok(Json(case).into_response()),
        None => Ok(axum::http::StatusCode::NO_CONTENT.into_response()),
    }
}
