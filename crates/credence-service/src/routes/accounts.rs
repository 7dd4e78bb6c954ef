//! Credit accounts: open, list, read, post events, drawdowns, reviews and status changes.

use super::*;
use crate::auth::Action;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// What a drawdown request holds (documentation of the body `account_drawdown` reads).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DrawdownRequest {
    /// The amount to draw: a positive decimal, as a string or a number.
    #[schema(pattern = "^[1-9][0-9]{0,8}(\\.[0-9]{1,2})?$")]
    amount: String,
}

/// One account event (documentation of what `post_account_events` reads; an array of them,
/// or `{"events": [...]}`, is taken too). Fields beyond `id`, `time` and `type` depend on the
/// type: `amount` (drawdown, repayment, instalment_due, instalment_missed), `days_past_due`
/// (repayment, instalment_missed), `alert` (bureau_alert), `monthly_income` (income_update),
/// `field` (contact_change).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AccountEventRequest {
    /// Unique per account; a repeated id is ignored.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// When it happened (RFC 3339), at most 15 minutes ahead of the server's clock.
    #[schema(format = DateTime)]
    time: String,
    #[schema(
        pattern = "^(drawdown|repayment|instalment_due|instalment_missed|bureau_alert|income_update|contact_change)$"
    )]
    r#type: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    /// An approved decision, or a referred one a reviewer approved.
    #[schema(min_length = 1)]
    pub decision_id: String,
    /// The lender's account number; `acc_…` from the decision id if absent.
    pub account_id: Option<String>,
    /// The booking date (YYYY-MM-DD) when it is not today, e.g. for accounts migrated from
    /// another system; never in the future.
    #[schema(value_type = Option<String>, format = Date)]
    pub opened_on: Option<chrono::NaiveDate>,
}

/// Open a credit account from an approved decision (201; 200 with the same account if the
/// decision already opened one).
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = OpenAccountRequest,
    responses((status = 201, body = crate::accounts::AccountView), (status = 200, body = crate::accounts::AccountView),
              (status = 400, body = ApiError), (status = 404, description = "decision_id names no decision", body = ApiError),
              (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn open_account(
    State(service): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
    json_content(&headers)?;
    let request: OpenAccountRequest = parse_json(&body.map_err(body_error)?, "account request")?;
    require_decision_strategy(&service, principal, &request.decision_id).await?;
    let (view, created) = service
        .accounts
        .open(
            &request.decision_id,
            request.account_id,
            request.opened_on,
            &principal.user,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(&view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/accounts/{}", view.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountListParams {
    pub customer_id: Option<String>,
    /// `active`, `frozen`, `closed` or `charged_off`.
    #[param(pattern = "^(active|frozen|closed|charged_off)$")]
    pub status: Option<String>,
    /// The last id of the previous page.
    pub after: Option<String>,
    /// Page size (1–max_page_size) [default: default_page_size].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Accounts in id order, filtered by customer or status.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(AccountListParams),
    responses((status = 200, body = Vec<crate::accounts::AccountView>)), security(("bearer" = [])))]
pub(crate) async fn list_accounts(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<AccountListParams>, QueryRejection>,
) -> Result<Json<Vec<crate::accounts::AccountView>>, ApiError> {
    let principal = caller.require(Action::ReadAccounts)?;
    let Query(params) = params.map_err(query_error)?;
    if let Some(status) = &params.status {
        if credence_account::AccountStatus::parse(status).is_none() {
            return Err(ApiError::parameter(
                "status",
                "give active, frozen, closed or charged_off",
            ));
        }
    }
    let limits = &service.limits;
    let mut page = service
        .accounts
        .list(credence_store::AccountQuery {
            status: params.status,
            customer_id: params.customer_id,
            after_id: params.after,
            limit: page_size(params.limit, limits.default_page_size, limits.max_page_size)?,
        })
        .await?;
    // A caller limited to some products sees their accounts only (a page may come out shorter;
    // `after` still continues from its last id).
    page.retain(|view| principal.may_use(&account_strategy(&service, view)));
    Ok(Json(page))
}

/// An account with its live behaviour features and schedule.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = crate::accounts::AccountView), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn get_account(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::accounts::AccountView>, ApiError> {
    let principal = caller.require(Action::ReadAccounts)?;
    let view = service.accounts.get(&id).await?;
    principal.require_strategy(&account_strategy(&service, &view))?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountEventsParams {
    /// Page size (1–max_page_size) [default: default_page_size].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The account's applied events, newest (by event time) first.
#[utoipa::path(get, path = "/v1/accounts/{id}/events", tag = "accounts", params(("id" = String, Path), AccountEventsParams),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn list_account_events(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<AccountEventsParams>, QueryRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let principal = caller.require(Action::ReadAccounts)?;
    require_account_strategy(&service, principal, &id).await?;
    let Query(params) = params.map_err(query_error)?;
    let limits = &service.limits;
    let limit = page_size(params.limit, limits.default_page_size, limits.max_page_size)?;
    Ok(Json(service.accounts.events(&id, limit).await?))
}

/// Post one event, an array, or `{"events": [...]}`. A repeated event id is ignored; late
/// events are applied as of their event time; a missed instalment or a bureau alert runs the
/// strategy's `early_warning` flow.
#[utoipa::path(post, path = "/v1/accounts/{id}/events", tag = "accounts", params(("id" = String, Path)),
    request_body(content = AccountEventRequest, description = "An event {id, time, type, …}, an array of them, or {events: [...]}"),
    responses((status = 200, body = crate::accounts::EventsResult), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn post_account_events(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::EventsResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
    require_account_strategy(&service, principal, &id).await?;
    json_content(&headers)?;
    let body = body.map_err(body_error)?;
    Ok(Json(
        service
            .accounts
            .post_events(&id, &body, &principal.user)
            .await?,
    ))
}

/// Decide a drawdown on the account's live features; approval applies it, an interception
/// freezes the line. An `Idempotency-Key` makes retries safe.
#[utoipa::path(post, path = "/v1/accounts/{id}/drawdowns", tag = "accounts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "A repeated key returns the first answer and applies nothing again")),
    request_body(content = DrawdownRequest, description = "{\"amount\": \"500.00\"}"),
    responses((status = 200, body = crate::accounts::FlowResult), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub(crate) async fn account_drawdown(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::FlowResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
    require_account_strategy(&service, principal, &id).await?;
    json_content(&headers)?;
    let body = body.map_err(body_error)?;
    let key = idempotency_key(&headers)?;
    Ok(Json(
        service
            .accounts
            .drawdown(&id, &body, key, &principal.user)
            .await?,
    ))
}

/// Run the `account_review` flow on the account now: limit increase or decrease, APR change, or nothing.
#[utoipa::path(post, path = "/v1/accounts/{id}/review", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = crate::accounts::FlowResult), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn review_account(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::accounts::FlowResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
    require_account_strategy(&service, principal, &id).await?;
    Ok(Json(service.accounts.review(&id, &principal.user).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountStatusRequest {
    /// `active` (unfreeze), `frozen`, `closed` or `charged_off`.
    #[schema(pattern = "^(active|frozen|closed|charged_off)$")]
    pub status: String,
    /// Why; audited.
    #[schema(pattern = "\\S")]
    pub note: String,
}

/// Change an account's status by hand (e.g. unfreeze after review); audited with the note.
#[utoipa::path(post, path = "/v1/accounts/{id}/status", tag = "accounts", params(("id" = String, Path)),
    request_body = AccountStatusRequest,
    responses((status = 200, body = crate::accounts::AccountView), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub(crate) async fn set_account_status(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::AccountView>, ApiError> {
    let principal = caller.require(Action::ChangeAccountStatus)?;
    require_account_strategy(&service, principal, &id).await?;
    json_content(&headers)?;
    let request: AccountStatusRequest = parse_json(&body.map_err(body_error)?, "status request")?;
    Ok(Json(
        service
            .accounts
            .set_status(&id, &request.status, &request.note, &principal.user)
            .await?,
    ))
}
