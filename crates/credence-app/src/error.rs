//! The application's one error type: a stable machine code, a message that names the field
//! and the fix, and structured details.
//!
//! Every use case returns [`AppError`]; its [`ErrorCode`] is the vocabulary clients match on,
//! the same over HTTP and on the command line. How a code becomes an HTTP status is the HTTP
//! adapter's one table (`credence_service::error`), never decided here. Engine and store
//! failures become codes in exactly one place each ([`From<EngineError>`],
//! [`From<StoreError>`]); paths and database messages go to the operator's log, not to clients.

use credence_engine::EngineError;
use credence_store::StoreError;
use serde::Serialize;

/// What went wrong, as clients match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON (or not the JSON shape the route takes).
    MalformedJson,
    /// The request line or a header is not valid HTTP (answered by the listener itself).
    MalformedRequest,
    /// The request's headers are over the listener's limit.
    HeadersTooLarge,
    /// The input does not match the flow's schema; `details.violations` lists each field.
    InvalidInput,
    /// A path or query parameter, or a request field, is invalid; `details.field` names it.
    InvalidParameter,
    /// The body is over the route's byte limit.
    BodyTooLarge,
    /// The body's content type is not one the route takes.
    UnsupportedMediaType,
    /// A strategy package does not compile or is not a valid archive.
    InvalidPackage,
    /// A strategy package's embedded cases do not all pass.
    PackageCasesFailed,
    /// No valid API key or session was presented.
    Unauthenticated,
    /// The caller's role may not do this.
    Forbidden,
    /// The same person may not make and check a change (upload and approve).
    MakerChecker,
    /// What the request names does not exist.
    NotFound,
    /// The active strategy has no flow of that name.
    UnknownFlow,
    /// No strategy version of that name is stored.
    UnknownStrategyVersion,
    /// No strategy (product) of that name is active.
    UnknownStrategy,
    /// The route exists but not with that method.
    MethodNotAllowed,
    /// The request took longer than the server allows.
    RequestTimeout,
    /// Too many attempts (sign-in throttling); retry later.
    TooManyRequests,
    /// An Idempotency-Key was reused with a different request.
    IdempotencyKeyReused,
    /// The resource is not in a state that allows this (already decided, already exists).
    InvalidState,
    /// No strategy is active yet: upload, approve and activate one.
    NoActiveStrategy,
    /// The strategy failed on this input (a defect of the package, not of the input).
    StrategyError,
    /// The service or its storage is unavailable; nothing was recorded, retry.
    Unavailable,
    /// The server failed; its log has the details.
    Internal,
}

impl ErrorCode {
    /// The code as clients see it (`snake_case`, the same as its JSON form).
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
            UnknownStrategy => "unknown_strategy",
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

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed use case: `{code, message, details}`, as the client receives it.
#[derive(Debug, Clone, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{code}: {message}")]
pub struct AppError {
    /// What went wrong, as clients match on it.
    pub code: ErrorCode,
    /// What went wrong and how to fix it, naming the field.
    pub message: String,
    /// Structured detail: the violations, the failing cases, the allowed roles; null when
    /// the message says it all.
    #[schema(value_type = Option<Object>)]
    pub details: serde_json::Value,
}

impl AppError {
    /// An error with a code and a message, without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// The same error with structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> AppError {
        self.details = details;
        self
    }

    /// `not_found` with a message saying what was not found.
    pub fn not_found(what: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::NotFound, what)
    }

    /// `invalid_parameter` naming the parameter and its problem.
    pub fn parameter(name: &str, problem: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorCode::InvalidParameter, format!("{name}: {problem}"))
            .with_details(serde_json::json!({ "field": name }))
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> AppError {
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
                AppError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "the input does not match the flow's schema: {} problem(s){first}; fix the fields listed in details",
                        violations.len()
                    ),
                )
                .with_details(serde_json::json!({ "violations": details }))
            }
            EngineError::UnknownFlow { flow, available } => AppError::new(
                ErrorCode::UnknownFlow,
                format!("unknown flow \"{flow}\"; the active strategy has: {available}"),
            )
            .with_details(serde_json::json!({"field": "flow"})),
            EngineError::UnknownLanguage { .. } => {
                AppError::new(ErrorCode::InvalidParameter, error.to_string())
                    .with_details(serde_json::json!({"field": "lang"}))
            }
            EngineError::UnreadableRecord { .. } | EngineError::RecordTooNew { .. } => {
                AppError::new(ErrorCode::Internal, error.to_string())
            }
            EngineError::Compile(problems) => AppError::new(
                ErrorCode::InvalidPackage,
                format!(
                    "the strategy package has {} problem(s); fix each one listed in details",
                    problems.len()
                ),
            )
            .with_details(serde_json::json!({ "problems": problems })),
            EngineError::NotValidatedForFlow { .. } | EngineError::Evaluation { .. } => {
                AppError::new(ErrorCode::StrategyError, error.to_string())
            }
        }
    }
}

/// Building an Arrow column failed: a defect of the code that built it, not of the input.
impl From<arrow_schema::ArrowError> for AppError {
    fn from(error: arrow_schema::ArrowError) -> AppError {
        AppError::new(
            ErrorCode::Internal,
            format!("building an Arrow column: {error}"),
        )
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        match error {
            StoreError::Conflict { what } => {
                AppError::new(ErrorCode::InvalidState, format!("{what} already exists"))
            }
            StoreError::Precondition { what } => AppError::new(ErrorCode::InvalidState, what),
            StoreError::Closed => AppError::new(
                ErrorCode::Unavailable,
                "the service is shutting down; retry",
            ),
            StoreError::Unavailable(reason) => AppError::new(
                ErrorCode::Unavailable,
                format!("storage is unavailable ({reason}); nothing was recorded: retry later"),
            ),
            // Paths and database messages are for the operator's log, not for clients.
            other => {
                tracing::error!(error = %other, "storage failed");
                AppError::new(
                    ErrorCode::Internal,
                    "storage failed; nothing was recorded, and the server's log has the details",
                )
            }
        }
    }
}
