//! Every error the API returns, mapped to a status and a JSON `{code, message}` in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rel_format::Digest;
use rel_format::api::ErrorBody;

use crate::store::StoreError;

/// An API error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the manifest names {} chunk(s) that are not stored; upload them first", .0.len())]
    MissingChunks(Vec<Digest>),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    Timeout(String),
    /// Too many expensive requests at once: 503 with `Retry-After`.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
    #[error("storage failed")]
    Storage(#[from] StoreError),
}

impl ApiError {
    /// The status and the message a client is shown: for a failure of the registry itself,
    /// a sentence (the details go to the log), else the error's own text.
    pub(crate) fn public_message(&self) -> (StatusCode, String) {
        let (status, _) = self.parts();
        let message = match self {
            ApiError::Storage(_) => "the registry's storage failed; try again".to_owned(),
            ApiError::Busy(m) => m.clone(),
            _ if status.is_server_error() => "the registry failed internally; the details are in its log".to_owned(),
            _ => self.to_string(),
        };
        (status, message)
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::MissingChunks(_) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_chunks"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "too_large"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Storage(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Storage(StoreError::AlreadyExists(_) | StoreError::Conflict(_)) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
        }
    }
}

/// A signed document refused: a signature by no publisher key, or one that does not verify,
/// is forbidden; anything else about the document is invalid.
impl From<rel_format::SignatureError> for ApiError {
    fn from(e: rel_format::SignatureError) -> Self {
        match e {
            rel_format::SignatureError::Untrusted { .. } | rel_format::SignatureError::Invalid { .. } => {
                ApiError::Forbidden(e.to_string())
            }
            e => ApiError::Invalid(e.to_string()),
        }
    }
}

/// No upgrade path: an unknown or unreachable target is not found, a yanked one a conflict.
impl From<rel_format::upgrade_path::PathError> for ApiError {
    fn from(e: rel_format::upgrade_path::PathError) -> Self {
        use rel_format::upgrade_path::PathError;
        match e {
            PathError::UnknownTarget(_) | PathError::NoPath { .. } => ApiError::NotFound(e.to_string()),
            PathError::Yanked(_) => ApiError::Conflict(e.to_string()),
            e => ApiError::Invalid(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = if status.is_server_error() && !matches!(self, ApiError::Busy(_)) {
            // The details stay in the log; clients learn that storage failed.
            let chain = std::error::Error::source(&self).map(|s| {
                let mut text = s.to_string();
                let mut next = s.source();
                while let Some(n) = next {
                    text = format!("{text}: {n}");
                    next = n.source();
                }
                text
            });
            tracing::error!(error = %self, cause = chain.as_deref().unwrap_or(""), "request failed");
            match self {
                ApiError::Storage(_) => "the registry's storage failed; try again".to_owned(),
                _ => "the registry failed internally; the details are in its log".to_owned(),
            }
        } else {
            self.to_string()
        };
        let busy = matches!(self, ApiError::Busy(_));
        let missing = match self {
            ApiError::MissingChunks(m) => m,
            _ => Vec::new(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                code: code.to_owned(),
                message,
                missing,
            }),
        )
            .into_response();
        if busy {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
