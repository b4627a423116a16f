//! `POST /v1/admin/gc`: garbage collection, for an admin whose token covers every name.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use rel_format::api::{GcReport, GcRequest};

use super::Caller;
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/gc", post(gc))
}

async fn gc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Option<Json<GcRequest>>,
) -> Result<Json<GcReport>, ApiError> {
    caller.require_global(Scope::Admin)?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    crate::gc::collect(&state, req).await.map(Json)
}
