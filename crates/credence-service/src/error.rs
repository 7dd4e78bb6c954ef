//! The HTTP face of errors: the one map from error code to HTTP status, and the response.
//!
//! Every failure a client can see is an [`ApiError`]: the application's [`AppError`] (a
//! stable machine-readable `code`, a message that names the field and the fix, `details`)
//! as a response. Handlers never build status codes themselves; [`HttpStatus::status`] is the
//! only place where a code becomes a status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use credence_app::error::{AppError, ErrorCode};
use credence_engine::EngineError;
use credence_store::StoreError;
use serde::Serialize;

/// The HTTP status of an error code.
pub trait HttpStatus {
    /// The one map from error code to HTTP status.
    fn status(self) -> StatusCode;
}

impl HttpStatus for ErrorCode {
    fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | MalformedRequest | InvalidParameter | InvalidPackage => {
                StatusCode::BAD_REQUEST
            }
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            Forbidden | MakerChecker => StatusCode::FORBIDDEN,
            NotFound | UnknownFlow | UnknownStrategyVersion | UnknownStrategy => {
                StatusCode::NOT_FOUND
            }
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
}

/// An error as the client receives it: `{code, message, details}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// What went wrong, as clients match on it.
    pub code: ErrorCode,
    /// What went wrong and how to fix it, naming the field.
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
    /// An error with a code and a message, without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        AppError::new(code, message).into()
    }

    /// The same error with structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = details;
        self
    }

    /// `not_found` with a message saying what was not found.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        AppError::not_found(what).into()
    }

    /// `invalid_parameter` naming the parameter and its problem.
    pub fn parameter(name: &str, problem: impl std::fmt::Display) -> ApiError {
        AppError::parameter(name, problem).into()
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> ApiError {
        ApiError {
            code: error.code,
            message: error.message,
            details: error.details,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        AppError::from(error).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        AppError::from(error).into()
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
            (UnknownStrategy, 404),
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
