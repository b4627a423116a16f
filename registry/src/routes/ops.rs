//! `/healthz`, `/metrics`, `/v1/registry`, `/v1/openapi.json`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const OPENAPI: &str = include_str!("../../openapi.json");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    (
                        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
                        state.metrics.render(),
                    )
                },
            ),
        )
        .route(
            "/v1/registry",
            get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    let id = state.identity().await.map_err(crate::error::ApiError::from)?;
                    Ok::<_, crate::error::ApiError>(axum::Json(rel_format::api::RegistryInfo { id }))
                },
            ),
        )
        .route(
            "/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response() }),
        )
}
