//! Channel pointers: read, and promote by compare-and-swap with a growing sequence.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rel_format::channel::SignedChannel;

use super::Caller;
use super::extract::{Channel, Name, Params, Unread};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::keys;
use crate::store::StoreError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/releases/{name}/channels/{channel}", get(read).put(promote))
}

#[utoipa::path(
    get, path = "/v1/releases/{name}/channels/{channel}", operation_id = "getChannel", tag = "channels",
    params(("name" = String, Path, description = "release name"), ("channel" = String, Path, description = "channel name")),
    responses(
        (status = 200, description = "the signed channel pointer, as stored", body = rel_format::signing::Envelope<rel_format::channel::ChannelPointer>),
        (status = 404, description = "no such channel", body = rel_format::api::ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params((Name(name), Channel(channel))): Params<(Name, Channel)>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, Some(&name))?;
    match state.store.get(&keys::channel(&name, &channel)).await {
        Ok(obj) => Ok(([(header::CONTENT_TYPE, "application/json")], obj.bytes).into_response()),
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "channel `{channel}` of `{name}` points nowhere yet"
        ))),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    put, path = "/v1/releases/{name}/channels/{channel}", operation_id = "promoteChannel", tag = "channels",
    params(("name" = String, Path, description = "release name"), ("channel" = String, Path, description = "channel name")),
    request_body(content = rel_format::signing::Envelope<rel_format::channel::ChannelPointer>, description = "a pointer signed by a publisher key, for this registry, with the next sequence"),
    responses(
        (status = 200, description = "stored; the pointer", body = rel_format::channel::ChannelPointer),
        (status = 400, description = "a pointer for another channel or registry", body = rel_format::api::ErrorBody),
        (status = 404, description = "the version is not stored", body = rel_format::api::ErrorBody),
        (status = 409, description = "the version is yanked, or the sequence is not the next one", body = rel_format::api::ErrorBody),
    )
)]
async fn promote(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params((Name(name), Channel(channel))): Params<(Name, Channel)>,
    body: Unread,
) -> Result<Response, ApiError> {
    caller.require(Scope::Push, Some(&name))?;
    let body = body
        .bytes(rel_format::channel::MAX_POINTER_BYTES, "channel pointer", &state.limits)
        .await?;
    let env = if state.publishers.is_empty() {
        SignedChannel::parse_unverified(&body)?
    } else {
        SignedChannel::verify_signature(&body, &state.publishers)?.0
    };
    let p = &env.signed;
    if p.name != name || p.channel != channel {
        return Err(ApiError::BadRequest(format!(
            "the pointer is for `{}/{}`, not `{name}/{channel}`",
            p.name, p.channel
        )));
    }
    let identity = state.identity().await?;
    if p.registry != identity {
        return Err(ApiError::BadRequest(format!(
            "the pointer was signed for registry `{}`, and this is registry `{identity}` (GET /v1/registry)",
            p.registry
        )));
    }
    let view = state.catalog.view(&name).await?;
    if !view.versions.contains_key(&p.version) {
        return Err(ApiError::NotFound(format!("`{name}` `{}` is not stored", p.version)));
    }
    if view.is_yanked(&p.version) {
        return Err(ApiError::Conflict(format!("`{name}` `{}` is yanked", p.version)));
    }
    let key = keys::channel(&name, &channel);
    let (expected, current_seq) = match state.store.get(&key).await {
        Ok(obj) => {
            let cur = SignedChannel::parse_unverified(&obj.bytes)
                .map_err(|e| ApiError::Invalid(format!("stored pointer: {e}")))?;
            (Some(obj.version), cur.signed.sequence)
        }
        Err(StoreError::NotFound(_)) => (None, 0),
        Err(e) => return Err(e.into()),
    };
    if p.sequence != current_seq + 1 {
        return Err(ApiError::Conflict(format!(
            "channel `{channel}` of `{name}` is at sequence {current_seq}; a promotion must carry {}, not {}",
            current_seq + 1,
            p.sequence
        )));
    }
    state
        .store
        .compare_and_swap(&key, expected, Bytes::from(env.to_bytes()))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict(format!(
                "channel `{channel}` of `{name}` moved meanwhile; read it and retry"
            )),
            e => e.into(),
        })?;
    state.catalog.invalidate(&name).await;
    tracing::info!(%name, %channel, version = %p.version, sequence = p.sequence, "channel promoted");
    Ok(Json(p.clone()).into_response())
}
