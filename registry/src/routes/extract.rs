//! Request parts checked before a handler runs: release names, channel names, versions and
//! digests in paths and queries, and JSON bodies. A handler that takes [`Params`],
//! [`QueryParams`] or [`Body`] only ever sees valid values, and every rejection is the
//! documented JSON error (SPEC.md §7.2) rather than the framework's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A release name from a path, valid by SPEC.md §2.1.
#[derive(Debug, Clone)]
pub(crate) struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if rel_format::release::is_valid_name(&name) {
            Ok(Name(name))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{}` is not a valid release name (a letter, then letters, digits, `_` or `.`)",
                name.escape_debug()
            )))
        }
    }
}

/// A channel name from a path, valid by SPEC.md §6.2.
#[derive(Debug, Clone)]
pub(crate) struct Channel(pub String);

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let channel = String::deserialize(d)?;
        if rel_format::channel::is_valid_channel(&channel) {
            Ok(Channel(channel))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{}` is not a valid channel name (a letter, then letters, digits, `_`, `.` or `-`)",
                channel.escape_debug()
            )))
        }
    }
}

/// Path parameters, deserialised and validated (`Params((name, version)):
/// Params<(Name, Version)>`).
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Params(t)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    match e {
        PathRejection::FailedToDeserializePathParams(e) => ApiError::BadRequest(e.into_kind().to_string()),
        e => ApiError::BadRequest(e.body_text()),
    }
}

/// Query parameters, deserialised and validated.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(t)) => Ok(QueryParams(t)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::BadRequest(format!("bad query: {}", e.body_text())))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A JSON body, deserialised and validated.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(t)) => Ok(Body(t)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("send JSON with `Content-Type: application/json`".into())
        }
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(e.body_text())
        }
        e => ApiError::BadRequest(e.body_text()),
    }
}
