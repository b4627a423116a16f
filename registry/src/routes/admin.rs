//! `POST /v1/admin/gc`: garbage collection, for an admin whose token covers every name.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use rel_format::api::{GcReport, GcRequest};

use super::Caller;
use super::extract::Unread;
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/gc", post(gc))
}

#[utoipa::path(
    post, path = "/v1/admin/gc", operation_id = "collectGarbage", tag = "admin",
    request_body(content = Option<GcRequest>, description = "optional: an empty body takes the registry's grace period"),
    responses((status = 200, description = "what was (or, in a dry run, would be) deleted", body = GcReport))
)]
async fn gc(State(state): State<AppState>, Caller(caller): Caller, body: Unread) -> Result<Json<GcReport>, ApiError> {
    caller.require_global(Scope::Admin)?;
    // The body is optional.
    let bytes = body
        .bytes(super::SMALL_BODY, "collection request", &state.limits)
        .await?;
    let req: GcRequest = if bytes.is_empty() {
        GcRequest::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("collection request: {e}")))?
    };
    crate::gc::collect(&state, req).await.map(Json)
}
