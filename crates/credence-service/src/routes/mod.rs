//! The HTTP surface: the router, the caller extractor, the layer every request goes through, and the helpers handlers share; one module per resource beside it.
//!
//! Handlers stay thin: authenticate, check the role, call the service, shape the response.

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::{metrics as m, Service};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod cases;
pub(crate) mod decisions;
pub(crate) mod keys;
pub(crate) mod monitoring;
pub(crate) mod ops;
pub(crate) mod strategies;
pub(crate) mod webhooks;

use accounts::*;
use audit::*;
use cases::*;
use decisions::*;
use keys::*;
use monitoring::*;
use ops::*;
use strategies::*;
use webhooks::*;

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
        state
            .auth
            .authenticate(header)
            .await
            .map(Caller)
            .map_err(ApiError::from)
    }
}

impl Caller {
    fn require(&self, action: Action) -> Result<&Principal, ApiError> {
        self.0
            .require(action)
            .map(|()| &self.0)
            .map_err(ApiError::from)
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
        .route("/v1/products", get(list_products))
        // One path segment is a version for some routes and a strategy's name for others:
        // versions are 64 hex digits, names are what the package calls itself.
        .route("/v1/strategies/{strategy}", get(get_strategy))
        .route("/v1/strategies/{strategy}/approve", post(approve_strategy))
        .route(
            "/v1/strategies/{strategy}/activate",
            post(activate_strategy),
        )
        .route("/v1/strategies/{strategy}/shadow", post(start_shadow))
        .route("/v1/strategies/{strategy}/ramp", post(start_ramp))
        .route(
            "/v1/strategies/{strategy}/rollback",
            post(rollback_strategy_named),
        )
        .route("/v1/strategies/{strategy}/rollouts", get(list_rollouts))
        .route(
            "/v1/strategies/{strategy}/rollout/{action}",
            post(act_on_rollout),
        )
        .route(
            "/v1/strategies/{strategy}/shadow-report",
            get(shadow_report),
        )
        .route(
            "/v1/strategies/{strategy}/decisions/{flow}",
            post(decide_for_strategy),
        )
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", delete(revoke_key))
        .route("/v1/audit", get(audit_events))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/{id}", delete(delete_webhook))
        .route("/v1/cases", get(list_cases))
        .route("/v1/cases/next", post(claim_next_case))
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
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
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
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    m::counter(
        m::HTTP_REQUESTS_TOTAL,
        &[
            ("route", route),
            ("method", method.as_str()),
            ("status", response.status().as_str()),
        ],
    )
    .increment(1);
    m::histogram(m::HTTP_REQUEST_SECONDS, &[("route", route)]).record(elapsed.as_secs_f64());
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
/// Compared without regard to ASCII case, and without a lower-cased copy on every request.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((kind, subtype)) if kind.eq_ignore_ascii_case("application") => {
            const SUFFIX: &str = "+json";
            subtype.eq_ignore_ascii_case("json")
                || (subtype.len() > SUFFIX.len()
                    && subtype
                        .get(subtype.len() - SUFFIX.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(SUFFIX)))
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

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("bad query parameters: {}", rejection.body_text()),
    )
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

/// An optional time parameter (RFC 3339 or a date) in milliseconds; see [`parse_time_ms`].
pub(crate) fn optional_time_ms(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value.map(|t| parse_time_ms(field, t)).transpose()
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

/// The strategy a listing of `principal`'s is about: the one named (if they may act on it),
/// else the one strategy a key limited to one has, else every strategy (`None`) for a key of
/// every strategy; a key limited to several must name one.
pub(crate) fn strategy_scope(
    principal: &Principal,
    named: Option<String>,
) -> Result<Option<String>, ApiError> {
    match (named, principal.strategy_filter()) {
        (Some(name), _) => {
            principal.require_strategy(&name)?;
            Ok(Some(name))
        }
        (None, None) => Ok(None),
        (None, Some(allowed)) if allowed.len() == 1 => Ok(allowed.into_iter().next()),
        (None, Some(allowed)) => Err(ApiError::parameter(
            "strategy",
            format!(
                "this key is limited to strategies {}; name one with strategy=",
                allowed.join(", ")
            ),
        )),
    }
}

/// Refuses (403) a caller limited to other strategies than the decision's; an unknown id
/// passes, for the handler to answer 404.
pub(crate) async fn require_decision_strategy(
    service: &AppState,
    principal: &crate::auth::Principal,
    id: &str,
) -> Result<(), ApiError> {
    if principal.strategies.is_empty() {
        return Ok(());
    }
    if let Some(stored) = service
        .store
        .decision(id)
        .await
        .map_err(credence_app::AppError::from)?
    {
        principal.require_strategy(&stored.record.strategy)?;
    }
    Ok(())
}

/// Refuses (403) a caller limited to other strategies than the account's product (an account
/// from before products had names is the default strategy's); an unknown id passes, for the
/// handler to answer 404.
pub(crate) async fn require_account_strategy(
    service: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(), ApiError> {
    if principal.strategies.is_empty() {
        return Ok(());
    }
    match service.accounts.get(id).await {
        Ok(view) => Ok(principal.require_strategy(&account_strategy(service, &view))?),
        Err(_) => Ok(()),
    }
}

/// The product an account belongs to.
pub(crate) fn account_strategy(service: &AppState, view: &crate::accounts::AccountView) -> String {
    view.strategy
        .clone()
        .or_else(|| service.strategies.default_name())
        .unwrap_or_default()
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

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    crate::strict_json::parse(body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the {what} is not valid: {e}"),
        )
        .with_details(serde_json::json!({"line": e.line(), "column": e.column()}))
    })
}

/// The header that makes a retried write safe (a name made once, not parsed per request).
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(&IDEMPOTENCY_KEY)
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::parameter("Idempotency-Key", "use visible ASCII characters"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::is_json_media_type;

    #[test]
    fn json_media_types_are_told_apart() {
        let cases = [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("  application/json  ", true),
            ("application/problem+json", true),
            ("APPLICATION/VND.CREDENCE+JSON;v=1", true),
            ("application/+json", false),
            ("application/jsonx", false),
            ("application/x-json5", false),
            ("text/json", false),
            ("text/plain", false),
            ("application", false),
            ("", false),
            ("application/ü+json", true),
            ("application/éjson", false),
        ];
        for (content_type, json) in cases {
            assert_eq!(is_json_media_type(content_type), json, "{content_type:?}");
        }
    }
}
