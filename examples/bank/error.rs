//! Every failure the API reports, as a status and a JSON body.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::domain::BankError;

/// The body of every error response: `{"error": {"code": "..", "message": ".."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code` and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A handler's failure. Returning it from a `#[transactional]` handler rolls the request's
/// transaction back, so a request answered with an error has written nothing.
///
/// When the database failed, the error it gave is the `source()`: that is how
/// `#[transactional(retries = ..)]` tells a transient failure (a lost serialization conflict,
/// a deadlock), which it runs again, from any other.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    source: Option<transactional::Error>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            source: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|err| err as _)
    }
}

/// The code and the status of a domain error; shared with the per-item batch results.
pub(crate) fn classify(err: &BankError) -> (StatusCode, &'static str) {
    match err {
        BankError::UnknownAccount(_) => (StatusCode::NOT_FOUND, "unknown_account"),
        BankError::InsufficientFunds { .. } => (StatusCode::CONFLICT, "insufficient_funds"),
        BankError::BalanceLimit { .. } => (StatusCode::CONFLICT, "balance_limit"),
        BankError::MoneyLimit { .. } => (StatusCode::CONFLICT, "money_limit"),
        BankError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        BankError::BatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
        BankError::Db(err)
            if err.is_transient() || matches!(err, transactional::Error::Timeout(_)) =>
        {
            (StatusCode::SERVICE_UNAVAILABLE, "busy")
        }
        BankError::Db(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl From<BankError> for ApiError {
    fn from(err: BankError) -> Self {
        let (status, code) = classify(&err);
        if status.is_server_error() {
            // The details stay in the log; the client learns only that it was not its fault.
            match &err {
                // A lost conflict on PostgreSQL is routine: the transaction is run again
                // (`retries`), and only a request that runs out of attempts fails, which the
                // request's own log line reports.
                BankError::Db(db) if db.is_transient() => {
                    tracing::debug!(error = %err, "transient failure in the database");
                }
                _ => tracing::error!(error = %err, "request failed in the database"),
            }
            let mut api = ApiError::new(
                status,
                code,
                "the request could not be completed; it changed nothing",
            );
            if let BankError::Db(err) = err {
                api.source = Some(err);
            }
            return api;
        }
        ApiError::new(status, code, err.to_string())
    }
}

impl From<transactional::Error> for ApiError {
    fn from(err: transactional::Error) -> Self {
        BankError::Db(err).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match &rejection {
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::JsonDataError(_) => "invalid_request",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "bad_request",
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(rejection.status(), "invalid_path", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
