//! The HTTP API v1 (SPEC.md §7): one module per resource, merged here.

mod admin;
pub(crate) mod changes;
mod channels;
mod chunks;
mod extract;
mod manifests;
mod openapi;
mod ops;
mod releases;
mod web;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::MethodRouter;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};
use tracing::Instrument as _;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

pub(crate) fn router(state: AppState) -> Router {
    let expensive = Expensive(state.expensive.clone());
    Router::new()
        .merge(ops::router())
        .merge(chunks::router(&expensive))
        .merge(manifests::router(&expensive))
        .merge(releases::router())
        .merge(channels::router())
        .merge(admin::router())
        .merge(web::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint; see /v1/openapi.json".into()) })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(format!("{method} is not allowed here; see /v1/openapi.json"))
        })
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The expensive requests (pack and manifest uploads, chunk batches, missing queries): at
/// most `max_expensive` at once, shared by all of them; one more is answered 503 with
/// `Retry-After` rather than queued (tower's concurrency limit and load shedding).
#[derive(Debug, Clone)]
pub(crate) struct Expensive(Arc<tokio::sync::Semaphore>);

impl Expensive {
    pub(crate) fn limit(&self, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        let max = self.0.available_permits();
        route.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                    ApiError::Busy(format!(
                        "the registry is serving its {max} uploads and batches at once; retry shortly"
                    ))
                }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(self.0.clone())),
        )
    }
}

/// Largest body of a small JSON request (yank, garbage collection).
const SMALL_BODY: usize = 64 * 1024;

/// Longest path and query answered (names, versions and digests are short); hyper itself
/// refuses a request line past 64 KiB.
const MAX_URI: usize = 8 * 1024;

/// Largest error body rewritten as JSON; a framework's plain text is short.
const MAX_PLAIN_ERROR: usize = 64 * 1024;

/// Every error answer is the documented JSON (SPEC.md §7.2): one that is not (a framework
/// rejection the handlers never saw) is rewritten, its text kept as the message.
async fn json_errors(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI {
        return ApiError::UriTooLong(format!(
            "the request's path and query are {uri} bytes; at most {MAX_URI} are read"
        ))
        .into_response();
    }
    let response = next.run(req).await;
    let status = response.status();
    // JSON, and the web view's own error pages, are answered as they are.
    let is_json_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_page {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_PLAIN_ERROR).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized(text),
        StatusCode::FORBIDDEN => ApiError::Forbidden(text),
        StatusCode::NOT_FOUND => ApiError::NotFound(text),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(text),
        StatusCode::REQUEST_TIMEOUT => ApiError::Timeout(text),
        StatusCode::CONFLICT => ApiError::Conflict(text),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(text),
        StatusCode::URI_TOO_LONG => ApiError::UriTooLong(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(text),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Busy(text),
        s if s.is_client_error() => ApiError::BadRequest(text),
        _ => ApiError::Internal(text),
    };
    let mut out = error.into_response();
    *out.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// This process's part of the ids it gives: random, so that replicas behind one load
/// balancer never give the same id.
fn id_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let _ = getrandom::getrandom(&mut bytes);
        hex::encode(bytes)
    })
}

/// Gives every request an id (`x-request-id`: the client's, else `<process>-<n>`), echoes
/// it back, logs it with its outcome and counts it.
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64)
        .map_or_else(
            || format!("{}-{}", id_prefix(), REQUEST_IDS.fetch_add(1, Ordering::Relaxed)),
            str::to_owned,
        );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // The route's template, never the path: the metrics' labels stay a fixed set.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(crate::metrics::UNMATCHED, |m| m.as_str())
        .to_owned();
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", id = %id, %method, path = %path);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    tracing::info!(parent: &span, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "handled");
    state
        .metrics
        .request(&method, &route, status.as_u16(), started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The caller, from the `Authorization` header.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        Ok(Caller(state.tokens.principal(auth, state.now_timestamp())?))
    }
}
