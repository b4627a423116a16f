//! `/healthz`, `/metrics`, `/v1/registry`, and `/v1/openapi.json`: the OpenAPI document,
//! generated from the handlers' annotations and the bodies' types (utoipa), so it cannot
//! drift from what is served.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/registry", get(registry))
        .route("/v1/openapi.json", get(openapi))
}

/// Whether the registry serves.
#[utoipa::path(
    get, path = "/healthz", operation_id = "health", tag = "operations",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String))
)]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "the OpenMetrics text format", content_type = "application/openmetrics-text", body = String))
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Who this registry is: channel pointers name it (SPEC.md §6.2).
#[utoipa::path(
    get, path = "/v1/registry", operation_id = "registryInfo", tag = "operations",
    responses((status = 200, description = "its identity", body = rel_format::api::RegistryInfo))
)]
async fn registry(State(state): State<AppState>) -> Result<axum::Json<rel_format::api::RegistryInfo>, ApiError> {
    let id = state.identity().await?;
    Ok(axum::Json(rel_format::api::RegistryInfo { id }))
}

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "the OpenAPI document of this API", body = Object))
)]
async fn openapi() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(|| {
        super::openapi::document()
            .to_pretty_json()
            .expect("the document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}
