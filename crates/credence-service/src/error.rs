//! The service's one error type and the one map from error code to HTTP status.
//!
//! Every failure a client can see is an [`ApiError`]: a stable machine-readable `code`, a
//! message that names the field and the fix, and `details` (for example every schema
//! violation). Handlers never build status codes themselves; [`ErrorCode::status`] is the
//! only place where a code becomes a status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use credence_engine::EngineError;
use credence_store::StoreError;
use serde::Serialize;

/// What went wrong, as clients match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedJson,
    /// The request line or a header is not valid HTTP (answered by the listener itself).
    MalformedRequest,
    /// The request's headers are over the listener's limit.
    HeadersTooLarge,
    InvalidInput,
    InvalidParameter,
    BodyTooLarge,
    UnsupportedMediaType,
    InvalidPackage,
    PackageCasesFailed,
    Unauthenticated,
    Forbidden,
    MakerChecker,
    NotFound,
    UnknownFlow,
    UnknownStrategyVersion,
    MethodNotAllowed,
    RequestTimeout,
    TooManyRequests,
    IdempotencyKeyReused,
    InvalidState,
    NoActiveStrategy,
    StrategyError,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The one map from error code to HTTP status.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | MalformedRequest | InvalidParameter | InvalidPackage => {
                StatusCode::BAD_REQUEST
            }
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            Forbidden | MakerChecker => StatusCode::FORBIDDEN,
            NotFound | UnknownFlow | UnknownStrategyVersion => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            InvalidState => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InvalidInput | PackageCasesFailed | IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            NoActiveStrategy | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            StrategyError | Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "malformed_json",
            MalformedRequest => "malformed_request",
            HeadersTooLarge => "headers_too_large",
            InvalidInput => "invalid_input",
            InvalidParameter => "invalid_parameter",
            BodyTooLarge => "body_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            InvalidPackage => "invalid_package",
            PackageCasesFailed => "package_cases_failed",
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            MakerChecker => "maker_checker",
            NotFound => "not_found",
            UnknownFlow => "unknown_flow",
            UnknownStrategyVersion => "unknown_strategy_version",
            MethodNotAllowed => "method_not_allowed",
            RequestTimeout => "request_timeout",
            TooManyRequests => "too_many_requests",
            IdempotencyKeyReused => "idempotency_key_reused",
            InvalidState => "invalid_state",
            NoActiveStrategy => "no_active_strategy",
            StrategyError => "strategy_error",
            Unavailable => "unavailable",
            Internal => "internal",
        }
    }
}

/// An error as the client receives it: `{code, message, details}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Structured detail: the violations, the failing cases, the allowed roles; null when
    /// the message says it all.
    #[schema(value_type = Option<Object>)]
    pub details: serde_json::Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, what)
    }

    pub fn parameter(name: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameter, format!("{name}: {problem}"))
            .with_details(serde_json::json!({ "field": name }))
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        metrics::counter!(crate::metrics::ERRORS_TOTAL, "code" => self.code.as_str()).increment(1);
        if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), message = %self.message, "request failed");
        }
        (status, axum::Json(self)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match &error {
            EngineError::InvalidInput { violations, .. } => {
                let first = violations
                    .first()
                    .map(|v| format!(" (first: {}: expected {})", v.path, v.expected))
                    .unwrap_or_default();
                let details: Vec<_> = violations
                    .iter()
                    .map(|v| {
                        serde_json::json!({"field": v.path, "expected": v.expected, "got": v.got})
                    })
                    .collect();
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "the input does not match the flow's schema: {} problem(s){first}; fix the fields listed in details",
                        violations.len()
                    ),
                )
                .with_details(serde_json::json!({ "violations": details }))
            }
            EngineError::UnknownFlow { flow, available } => ApiError::new(
                ErrorCode::UnknownFlow,
                format!("unknown flow \"{flow}\"; the active strategy has: {available}"),
            )
            .with_details(serde_json::json!({"field": "flow"})),
            EngineError::UnknownLanguage { .. } => {
                ApiError::new(ErrorCode::InvalidParameter, error.to_string())
                    .with_details(serde_json::json!({"field": "lang"}))
            }
            EngineError::UnreadableRecord { .. } | EngineError::RecordTooNew { .. } => {
                ApiError::new(ErrorCode::Internal, error.to_string())
            }
            EngineError::Compile(problems) => ApiError::new(
                ErrorCode::InvalidPackage,
                format!(
                    "the strategy package has {} problem(s); fix each one listed in details",
                    problems.len()
                ),
            )
            .with_details(serde_json::json!({ "problems": problems })),
            EngineError::NotValidatedForFlow { .. } | EngineError::Evaluation { .. } => {
                ApiError::new(ErrorCode::StrategyError, error.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict { what } => {
                ApiError::new(ErrorCode::InvalidState, format!("{what} already exists"))
            }
            StoreError::Precondition { what } => ApiError::new(ErrorCode::InvalidState, what),
            StoreError::Closed => ApiError::new(
                ErrorCode::Unavailable,
                "the service is shutting down; retry",
            ),
            StoreError::Unavailable(reason) => ApiError::new(
                ErrorCode::Unavailable,
                format!("storage is unavailable ({reason}); nothing was recorded: retry later"),
            ),
            // Paths and database messages are for the operator's log, not for clients.
            other => {
                tracing::error!(error = %other, "storage failed");
                ApiError::new(
                    ErrorCode::Internal,
                    "storage failed; nothing was recorded, and the server's log has the details",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client-side code is a 4xx and only server faults are 5xx.
    #[test]
    fn codes_map_to_the_documented_statuses() {
        use ErrorCode::*;
        let cases = [
            (MalformedJson, 400),
            (InvalidParameter, 400),
            (InvalidPackage, 400),
            (Unauthenticated, 401),
            (Forbidden, 403),
            (MakerChecker, 403),
            (NotFound, 404),
            (UnknownFlow, 404),
            (UnknownStrategyVersion, 404),
            (MethodNotAllowed, 405),
            (InvalidState, 409),
            (BodyTooLarge, 413),
            (UnsupportedMediaType, 415),
            (InvalidInput, 422),
            (PackageCasesFailed, 422),
            (IdempotencyKeyReused, 422),
            (NoActiveStrategy, 503),
            (Unavailable, 503),
            (StrategyError, 500),
            (Internal, 500),
        ];
        for (code, status) in cases {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "{code:?} serialises as its as_str");
        }
    }
}
