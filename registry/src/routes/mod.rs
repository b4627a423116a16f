//! The HTTP API v1 (SPEC.md §7): one module per resource, merged here.

mod admin;
mod channels;
mod chunks;
mod extract;
mod manifests;
mod ops;
mod releases;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument as _;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(chunks::router())
        .merge(manifests::router())
        .merge(releases::router())
        .merge(channels::router())
        .merge(admin::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint; see /v1/openapi.json".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// Gives every request an id (`x-request-id`, echoed back), logs it with its outcome and
/// counts it.
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
            || format!("r{}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed)),
            str::to_owned,
        );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // A coarse route label keeps the metric's cardinality bounded.
    let route: String = path.split('/').take(3).collect::<Vec<_>>().join("/");
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", id = %id, %method, path = %path);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    tracing::info!(parent: &span, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "handled");
    state.metrics.add(
        "rel_http_requests_total",
        format!("method=\"{method}\",route=\"{route}\",status=\"{}\"", status.as_u16()),
        1,
    );
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
