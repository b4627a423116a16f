//! Request parts checked before a handler runs: release names, channel names, versions and
//! digests in paths and queries. A handler that takes [`Params`] or [`QueryParams`] only ever
//! sees valid values, and every rejection is the documented JSON error (SPEC.md §7.2) rather
//! than the framework's plain text.
//!
//! Bodies are not read by an extractor: a handler takes an [`Unread`] body, authorises the
//! caller from the headers, and only then reads it, with its size limit enforced as it
//! arrives and the body's pace held to the registry's [`Limits`] (SPEC.md §7.6). An anonymous
//! caller of a pack upload is refused before its first body byte is read.

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::config::Limits;
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

/// A request body, not read yet.
#[derive(Debug)]
pub(crate) struct Unread {
    content_type: Option<HeaderValue>,
    length: Option<u64>,
    body: axum::body::Body,
}

impl<S: Send + Sync> FromRequest<S> for Unread {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Infallible> {
        let (parts, body) = req.into_parts();
        Ok(Unread {
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            length: parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            body,
        })
    }
}

impl Unread {
    /// Reads the body as it arrives, refusing it past `limit` bytes (`what` names it in
    /// errors). A declared `Content-Length` over the limit is refused before any byte is read.
    pub(crate) fn reader(self, limit: usize, what: &'static str, limits: &Limits) -> Result<BodyReader, ApiError> {
        if let Some(n) = self.length
            && n > limit as u64
        {
            return Err(too_large(what, limit));
        }
        Ok(BodyReader {
            body: self.body,
            limit,
            what,
            received: 0,
            started: Instant::now(),
            limits: *limits,
        })
    }

    /// The whole body, at most `limit` bytes.
    pub(crate) async fn bytes(self, limit: usize, what: &'static str, limits: &Limits) -> Result<Bytes, ApiError> {
        let capacity = self.length.map_or(0, |n| n.min(limit as u64) as usize);
        let mut reader = self.reader(limit, what, limits)?;
        let mut out = BytesMut::with_capacity(capacity);
        while let Some(data) = reader.next().await? {
            out.extend_from_slice(&data);
        }
        Ok(out.freeze())
    }

    /// A JSON body (`Content-Type: application/json`), at most `limit` bytes.
    pub(crate) async fn json<T: DeserializeOwned>(
        self,
        limit: usize,
        what: &'static str,
        limits: &Limits,
    ) -> Result<T, ApiError> {
        let json = self
            .content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || v.get(..12).is_some_and(|p| p.eq_ignore_ascii_case("application/"))
                        && v.to_ascii_lowercase().ends_with("+json")
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "send JSON with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = self.bytes(limit, what, limits).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
    }
}

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::TooLarge(format!("a {what} is at most {limit} bytes"))
}

/// A body being read: its size limit and pace enforced as it arrives.
#[derive(Debug)]
pub(crate) struct BodyReader {
    body: axum::body::Body,
    limit: usize,
    what: &'static str,
    received: u64,
    started: Instant,
    limits: Limits,
}

impl BodyReader {
    /// The next bytes of the body, or `None` at its end.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| self.failed(&e))?;
            let Ok(data) = frame.into_data() else { continue };
            self.received += data.len() as u64;
            if self.received > self.limit as u64 {
                return Err(too_large(self.what, self.limit));
            }
            // After the grace of one body timeout, the body must keep a minimum pace.
            let elapsed = self.started.elapsed();
            if let Some(late) = elapsed.checked_sub(self.limits.body_timeout) {
                let due = (late.as_secs_f64() * self.limits.body_min_rate as f64) as u64;
                if self.received < due {
                    return Err(ApiError::Timeout(format!(
                        "the {} came at {} bytes in {:.1} s, slower than the {} bytes a second required",
                        self.what,
                        self.received,
                        elapsed.as_secs_f64(),
                        self.limits.body_min_rate
                    )));
                }
            }
            return Ok(Some(data));
        }
    }

    fn failed(&self, e: &axum::Error) -> ApiError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if s.is::<tower_http::timeout::TimeoutError>() {
                return ApiError::Timeout(format!(
                    "the {} stopped arriving for {} ms after {} bytes",
                    self.what,
                    self.limits.body_timeout.as_millis(),
                    self.received
                ));
            }
            source = s.source();
        }
        ApiError::BadRequest(format!(
            "the {} was cut off after {} bytes: {e}",
            self.what, self.received
        ))
    }
}
