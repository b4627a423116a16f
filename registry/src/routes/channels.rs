//! Channel pointers: read, and promote by compare-and-swap with a growing sequence.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rel_format::channel::{ChannelPointer, SignedChannel, is_valid_channel};

use super::{Caller, check_name};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::store::{StoreError, channel_key};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/releases/{name}/channels/{channel}", get(read).put(promote))
}

fn check_channel(channel: &str) -> Result<(), ApiError> {
    if is_valid_channel(channel) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("`{channel}` is not a valid channel name")))
    }
}

/// The current pointers of every channel of `name`.
pub(super) async fn current(state: &AppState, name: &str) -> Result<Vec<ChannelPointer>, ApiError> {
    let mut out = Vec::new();
    for obj in state.store.list(&format!("channels/{name}")).await? {
        let bytes = state.store.get(&obj.key).await?.bytes;
        match SignedChannel::parse_unverified(&bytes) {
            Ok(env) => out.push(env.signed),
            Err(e) => tracing::error!(key = %obj.key, error = %e, "stored channel pointer does not parse"),
        }
    }
    Ok(out)
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((name, channel)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    check_channel(&channel)?;
    caller.require(Scope::Pull, Some(&name))?;
    match state.store.get(&channel_key(&name, &channel)).await {
        Ok(obj) => Ok(([(header::CONTENT_TYPE, "application/json")], obj.bytes).into_response()),
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "channel `{channel}` of `{name}` points nowhere yet"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn promote(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((name, channel)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    check_channel(&channel)?;
    caller.require(Scope::Push, Some(&name))?;
    let env = if state.publishers.is_empty() {
        SignedChannel::parse_unverified(&body).map_err(|e| ApiError::Invalid(e.to_string()))?
    } else {
        SignedChannel::verify_signature(&body, &state.publishers)
            .map_err(|e| ApiError::Forbidden(e.to_string()))?
            .0
    };
    let p = &env.signed;
    if p.name != name || p.channel != channel {
        return Err(ApiError::BadRequest(format!(
            "the pointer is for `{}/{}`, not `{name}/{channel}`",
            p.name, p.channel
        )));
    }
    let view = state.catalog.view(&name).await?;
    if !view.versions.contains_key(&p.version) {
        return Err(ApiError::NotFound(format!("`{name}` `{}` is not stored", p.version)));
    }
    if view.is_yanked(&p.version) {
        return Err(ApiError::Conflict(format!("`{name}` `{}` is yanked", p.version)));
    }
    let key = channel_key(&name, &channel);
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
    tracing::info!(%name, %channel, version = %p.version, sequence = p.sequence, "channel promoted");
    Ok(Json(p.clone()).into_response())
}
