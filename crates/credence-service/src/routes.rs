//! The HTTP surface: routes, extractors, and the request metrics layer. Handlers stay thin:
//! authenticate, check the role, call the service, shape the response.

use crate::auth::{Action, Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::{metrics as m, Service};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use credence_store::DecisionQuery;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

type AppState = Arc<Service>;

/// The authenticated caller; extracting it is what makes a route require a key.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.auth.authenticate(header).await.map(Caller)
    }
}

impl Caller {
    fn require(&self, action: Action) -> Result<&Principal, ApiError> {
        self.0.require(action).map(|()| &self.0)
    }
}

/// Builds the router over a service.
pub fn router(service: Arc<Service>) -> Router {
    let limits = service.limits.clone();
    let api = Router::new()
        .route("/v1/decisions", get(list_decisions))
        .route("/v1/flows/{flow}/decisions", post(decide))
        // One path segment is a decision id for GET and, for POST, a flow: the original
        // route of deciding, kept as an alias of POST /v1/flows/{flow}/decisions (one
        // template cannot be documented twice).
        .route("/v1/decisions/{flow_or_id}", post(decide).get(get_decision))
        .route("/v1/decisions/{id}/replay", post(replay_decision))
        .route("/v1/strategies", get(list_strategies))
        .route("/v1/strategies/active", get(active_strategy))
        .route("/v1/strategies/rollback", post(rollback_strategy))
        .route("/v1/strategies/{version}", get(get_strategy))
        .route("/v1/strategies/{version}/approve", post(approve_strategy))
        .route("/v1/strategies/{version}/activate", post(activate_strategy))
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", delete(revoke_key))
        .route("/v1/audit", get(audit_events))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/{id}", delete(delete_webhook))
        .route("/v1/cases", get(list_cases))
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/{action}", post(act_on_case))
        .route("/v1/accounts", get(list_accounts).post(open_account))
        .route("/v1/accounts/{id}", get(get_account))
        .route(
            "/v1/accounts/{id}/events",
            get(list_account_events).post(post_account_events),
        )
        .route("/v1/accounts/{id}/drawdowns", post(account_drawdown))
        .route("/v1/accounts/{id}/review", post(review_account))
        .route("/v1/accounts/{id}/status", post(set_account_status))
        .route("/v1/monitoring", get(monitoring))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let uploads = Router::new()
        .route("/v1/strategies", post(upload_strategy))
        .layer(DefaultBodyLimit::max(limits.max_package_bytes));
    Router::new()
        .merge(api)
        .merge(uploads)
        .merge(crate::workbench::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            limits.http.request_timeout_ms,
            around,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(service)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        ErrorCode::Internal,
        "the server hit a defect handling this request; it was logged",
    )
    .into_response()
}

/// What every request goes through, in one layer:
///
/// - the deadline: the request, body read included, runs under `request_timeout_ms`, so a
///   client trickling its body (or a handler stuck on a dependency) holds a connection no
///   longer than that;
/// - the headers every answer carries: no MIME sniffing; never cached (API answers carry
///   personal data, workbench pages too); workbench pages are never framed, load nothing but
///   their own stylesheet and run no script;
/// - the request metrics, by route template (never the raw path, which can carry
///   identifiers).
async fn around(State(timeout_ms): State<u64>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let workbench = request.uri().path().starts_with("/review");
    let mut response = match tokio::time::timeout(
        std::time::Duration::from_millis(timeout_ms),
        next.run(request),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the request did not complete within {timeout_ms} ms (request_timeout_ms); send the body promptly and retry"),
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if workbench {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!(m::HTTP_REQUESTS_TOTAL, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(m::HTTP_REQUEST_SECONDS, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status, elapsed_us = elapsed.as_micros() as u64, "request");
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json for the API")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method; see /openapi.json",
    )
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::BodyTooLarge, "the request body is larger than this server accepts; send less (the limit is configurable: max_body_bytes)")
    } else {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("cannot read the request body: {rejection}"),
        )
    }
}

fn json_content(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(kind) if is_json_media_type(kind) => Ok(()),
        Some(kind) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type {kind} is not accepted here; send application/json"),
        )),
    }
}

/// `application/json`, or an `application/…+json` type (RFC 6839), parameters aside.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", "json")) => true,
        Some(("application", subtype)) => {
            subtype.len() > "+json".len() && subtype.ends_with("+json")
        }
        _ => false,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

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
    responses((status = 200, description = "The decision with its id and compact trace", body = Object)),
    security(("bearer" = [])))]
#[deprecated = "use POST /v1/flows/{flow}/decisions"]
#[allow(dead_code)]
async fn decide_by_alias() {}

/// Decide with the active strategy; the decision is durable before the answer is sent.
#[utoipa::path(post, path = "/v1/flows/{flow}/decisions", tag = "decisions",
    params(("flow" = String, Path, description = "The flow, e.g. application or drawdown"), DecideParams,
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeated key returns the stored decision; 1–255 visible ASCII characters", pattern = "^[!-~]{1,255}$")),
    request_body(content = Object, description = "The flow's input, as `credence decide` takes it"),
    responses((status = 200, description = "The decision with its id and compact trace", body = Object),
              (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn decide(
    State(service): State<AppState>,
    caller: Caller,
    Path(flow): Path<String>,
    params: Result<Query<DecideParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Action::Decide)?;
    let Query(params) = params.map_err(query_error)?;
    json_content(&headers)?;
    let body = body.map_err(body_error)?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::parameter("Idempotency-Key", "use visible ASCII characters")
                })?
                .to_string(),
        ),
        None => None,
    };
    let answer = service
        .decisions
        .decide(crate::decisions::DecideRequest {
            flow: &flow,
            body: &body,
            idempotency_key,
            language: params.lang,
            caller_request: None,
        })
        .await?;
    let mut response = json_response(StatusCode::OK, answer.json);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/decisions/{}", answer.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if answer.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("bad query parameters: {}", rejection.body_text()),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub customer_id: Option<String>,
    pub flow: Option<String>,
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

/// An `http://` or `https://` URL with a host, at most 2,000 characters, of printable ASCII
/// (no white space; other characters percent-encoded).
fn is_webhook_url(url: &str) -> bool {
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

/// A page size from a query: the default when absent, refused outside 1–`max`.
fn page_size(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::parameter(
            "limit",
            format!("give a whole number from 1 to {max}"),
        )),
    }
}

fn parse_time_ms(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(start) = date.and_hms_opt(0, 0, 0) {
            return Ok(start.and_utc().timestamp_millis());
        }
    }
    Err(ApiError::parameter(
        name,
        format!("{text:?} is not a time; write 2026-11-29T10:00:00Z or 2026-11-29"),
    ))
}

/// Page through stored decisions, newest first.
#[utoipa::path(get, path = "/v1/decisions", tag = "decisions", params(ListParams),
    responses((status = 200, body = crate::decisions::DecisionPage), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
async fn list_decisions(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<crate::decisions::DecisionPage>, ApiError> {
    caller.require(Action::ListDecisions)?;
    let Query(params) = params.map_err(query_error)?;
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
        from_ms: params
            .from
            .as_deref()
            .map(|t| parse_time_ms("from", t))
            .transpose()?,
        to_ms: params
            .to
            .as_deref()
            .map(|t| parse_time_ms("to", t))
            .transpose()?,
        before_seq,
        limit,
    };
    Ok(Json(service.decisions.list(query).await?))
}

/// A stored decision with its trace, input and place in the log.
#[utoipa::path(get, path = "/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn get_decision(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Action::ReadDecision)?;
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
async fn replay_decision(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::decisions::ReplayResult>, ApiError> {
    caller.require(Action::ReplayDecision)?;
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

/// Upload a strategy package (.tar.gz); compiled and its cases run, stored as a draft.
#[utoipa::path(post, path = "/v1/strategies", tag = "strategies",
    request_body(content((Vec<u8> = "application/gzip"), (Vec<u8> = "application/octet-stream")),
        description = "The package as a .tar.gz (`tar czf package.tgz -C my-strategy .`)"),
    responses((status = 201, body = crate::strategies::UploadOutcome), (status = 200, description = "Already uploaded", body = crate::strategies::UploadOutcome),
              (status = 400, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn upload_strategy(
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
async fn list_strategies(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<crate::strategies::StrategyView>>, ApiError> {
    caller.require(Action::ReadStrategies)?;
    Ok(Json(service.strategies.list().await?))
}

/// The active version.
#[utoipa::path(get, path = "/v1/strategies/active", tag = "strategies",
    responses((status = 200, body = crate::strategies::StrategyView), (status = 503, body = ApiError)), security(("bearer" = [])))]
async fn active_strategy(
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
async fn get_strategy(
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
async fn approve_strategy(
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
async fn activate_strategy(
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
async fn rollback_strategy(
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Whom the key belongs to (maker-checker compares users).
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub user: String,
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// The key itself; shown once, stored only as a hash.
    pub key: String,
    pub user: String,
    pub roles: Vec<String>,
}

/// Issue a key (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 400, body = ApiError)), security(("bearer" = [])))]
async fn create_key(
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
    let issued = crate::auth::issue_key(&request.user, &request.roles, &principal.user, now_ms)?;
    let record = issued.record.clone();
    service
        .store
        .insert_key(
            issued.record,
            key_audit(
                &principal.user,
                "key.create",
                &record.id,
                now_ms,
                &record.user,
                &record.roles,
            ),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: record.id,
            key: issued.plaintext,
            user: record.user,
            roles: record.roles,
        }),
    )
        .into_response())
}

pub(crate) fn key_audit(
    actor: &str,
    action: &str,
    key_id: &str,
    at_ms: i64,
    user: &str,
    roles: &[String],
) -> credence_store::NewAuditEvent {
    credence_store::NewAuditEvent {
        at_ms,
        actor: actor.to_string(),
        action: action.to_string(),
        subject: key_id.to_string(),
        detail: serde_json::json!({"user": user, "roles": roles}),
    }
}

/// Every key (without secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
async fn list_keys(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<credence_store::ApiKeyRecord>>, ApiError> {
    caller.require(Action::ManageKeys)?;
    Ok(Json(service.store.keys().await?))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = ApiError)), security(("bearer" = [])))]
async fn revoke_key(
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
async fn audit_events(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Vec<credence_store::AuditEvent>>, ApiError> {
    caller.require(Action::ReadAudit)?;
    let Query(params) = params.map_err(query_error)?;
    let limit = page_size(params.limit, 100, service.limits.max_page_size)?;
    Ok(Json(service.store.audit_events(limit).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MonitoringParams {
    /// The flow whose decisions are monitored [default: application].
    pub flow: Option<String>,
    /// How many of the newest decisions (and decided cases) to read [default: 10000].
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

/// Approval, referral and override rates by month; the score's PSI against the first month
/// with enough scores (flags at 0.1 and 0.25); vintage curves (60+ days past due) and roll
/// rates from the accounts.
#[utoipa::path(get, path = "/v1/monitoring", tag = "monitoring", params(MonitoringParams),
    responses((status = 200, body = Object)), security(("bearer" = [])))]
async fn monitoring(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<MonitoringParams>, QueryRejection>,
) -> Result<Json<credence_backtest::monitor::MonitorReport>, ApiError> {
    caller.require(Action::ReadMonitoring)?;
    let Query(params) = params.map_err(query_error)?;
    let flow = params.flow.unwrap_or_else(|| "application".into());
    let limit = params.limit.unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::parameter("limit", "give 1 to 100000"));
    }
    let today = service.clock.now().date_naive();
    Ok(Json(
        crate::monitoring::report(&service.store, &flow, limit, today).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    pub queue: Option<String>,
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
async fn list_cases(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<CaseParams>, QueryRejection>,
) -> Result<Json<Vec<crate::cases::CaseView>>, ApiError> {
    caller.require(Action::ReviewCases)?;
    let Query(params) = params.map_err(query_error)?;
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
async fn get_case(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::cases::CaseView>, ApiError> {
    caller.require(Action::ReviewCases)?;
    Ok(Json(service.cases.get(&id).await?))
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
async fn act_on_case(
    State(service): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::cases::CaseView>, ApiError> {
    let principal = caller.require(Action::ReviewCases)?;
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
    let reviewer = credence_review::Reviewer {
        user: principal.user.clone(),
        role: if principal.roles.contains(&Role::Admin) {
            credence_review::ReviewerRole::SeniorReviewer
        } else {
            credence_review::ReviewerRole::Reviewer
        },
    };
    Ok(Json(service.cases.act(&id, command, &reviewer).await?))
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
async fn create_webhook(
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
async fn list_webhooks(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<credence_store::WebhookRecord>>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    Ok(Json(service.store.webhooks().await?))
}

/// Remove a webhook; its undelivered events are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = ApiError)), security(("bearer" = [])))]
async fn delete_webhook(
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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: a strategy is active and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503, body = ApiError)))]
async fn readyz(State(service): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let active = service.strategies.active().ok_or_else(|| {
        ApiError::new(ErrorCode::NoActiveStrategy, "no strategy version is active")
    })?;
    service.store.activations(1).await.map_err(|e| {
        tracing::error!(error = %e, "readiness: the store does not answer");
        ApiError::new(ErrorCode::Unavailable, "the store does not answer")
    })?;
    service.store.writable().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("not ready: {e}; decisions are refused until the operator frees space"),
        )
    })?;
    Ok(Json(
        serde_json::json!({"status": "ready", "strategy_version": active.version}),
    ))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
async fn metrics_text() -> Response {
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
async fn openapi_json() -> Response {
    json_response(StatusCode::OK, crate::openapi::document())
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

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    crate::strict_json::parse(body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the {what} is not valid: {e}"),
        )
        .with_details(serde_json::json!({"line": e.line(), "column": e.column()}))
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::parameter("Idempotency-Key", "use visible ASCII characters"))
        })
        .transpose()
}

/// Open a credit account from an approved decision (201; 200 with the same account if the
/// decision already opened one).
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = OpenAccountRequest,
    responses((status = 201, body = crate::accounts::AccountView), (status = 200, body = crate::accounts::AccountView),
              (status = 400, body = ApiError), (status = 404, description = "decision_id names no decision", body = ApiError),
              (status = 409, body = ApiError)), security(("bearer" = [])))]
async fn open_account(
    State(service): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
    json_content(&headers)?;
    let request: OpenAccountRequest = parse_json(&body.map_err(body_error)?, "account request")?;
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
async fn list_accounts(
    State(service): State<AppState>,
    caller: Caller,
    params: Result<Query<AccountListParams>, QueryRejection>,
) -> Result<Json<Vec<crate::accounts::AccountView>>, ApiError> {
    caller.require(Action::ReadAccounts)?;
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
    Ok(Json(
        service
            .accounts
            .list(credence_store::AccountQuery {
                status: params.status,
                customer_id: params.customer_id,
                after_id: params.after,
                limit: page_size(params.limit, limits.default_page_size, limits.max_page_size)?,
            })
            .await?,
    ))
}

/// An account with its live behaviour features and schedule.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = crate::accounts::AccountView), (status = 404, body = ApiError)), security(("bearer" = [])))]
async fn get_account(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::accounts::AccountView>, ApiError> {
    caller.require(Action::ReadAccounts)?;
    Ok(Json(service.accounts.get(&id).await?))
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
async fn list_account_events(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<AccountEventsParams>, QueryRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    caller.require(Action::ReadAccounts)?;
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
async fn post_account_events(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::EventsResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
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
async fn account_drawdown(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::FlowResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
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
async fn review_account(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::accounts::FlowResult>, ApiError> {
    let principal = caller.require(Action::OperateAccounts)?;
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
async fn set_account_status(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::accounts::AccountView>, ApiError> {
    let principal = caller.require(Action::ChangeAccountStatus)?;
    json_content(&headers)?;
    let request: AccountStatusRequest = parse_json(&body.map_err(body_error)?, "status request")?;
    Ok(Json(
        service
            .accounts
            .set_status(&id, &request.status, &request.note, &principal.user)
            .await?,
    ))
}
