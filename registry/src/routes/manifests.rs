//! Manifests: upload (signature and chunks checked, write-once) and download.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use object_store::ObjectStoreExt as _;
use rel_format::Version;
use rel_format::api::Stored;
use rel_format::manifest::{Kind, MAX_MANIFEST_BYTES};
use rel_format::signing::SignedManifest;
use serde::Deserialize;

use super::Caller;
use super::extract::{Name, Params, QueryParams, Unread};
use crate::AppState;
use crate::auth::Scope;
use crate::catalog::Summary;
use crate::error::ApiError;
use crate::keys;
use crate::store::StoreError;

pub(super) fn router(expensive: &super::Expensive) -> Router<AppState> {
    Router::new()
        .route("/v1/manifests", expensive.limit(put(upload)))
        .route("/v1/releases/{name}/versions/{version}/release", get(get_release))
        .route("/v1/releases/{name}/versions/{version}/upgrade", get(get_upgrade))
}

#[utoipa::path(
    put, path = "/v1/manifests", operation_id = "storeManifest", tag = "manifests",
    request_body(content = rel_format::signing::Envelope<rel_format::Manifest>, description = "a signed manifest (SPEC.md §5, §6) whose chunks are all stored"),
    responses(
        (status = 201, description = "stored, or already stored with the same signer", body = Stored),
        (status = 409, description = "another manifest, or another signer, is stored for that artifact", body = rel_format::api::ErrorBody),
        (status = 422, description = "invalid, or chunks it names are not stored (`missing` lists them)", body = rel_format::api::ErrorBody),
    )
)]
/// `PUT /v1/manifests`: a caller without push scope is refused before the body is read; the
/// release name it may push is checked once the manifest is parsed, before its signature.
async fn upload(State(state): State<AppState>, Caller(caller): Caller, body: Unread) -> Result<Response, ApiError> {
    caller.require(Scope::Push, None)?;
    let body = body.bytes(MAX_MANIFEST_BYTES, "manifest", &state.limits).await?;
    let publishers = state.publishers.clone();
    let (env, signer) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let (env, signer) = if publishers.is_empty() {
            (SignedManifest::parse_unverified(&body)?, None)
        } else {
            let (env, signer) = SignedManifest::verify_signature(&body, &publishers)?;
            (env, Some(signer))
        };
        caller.require(Scope::Push, Some(&env.signed.name))?;
        Ok((env, signer))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("manifest check stopped: {e}")))??;
    let m = &env.signed;

    // Content first, pointer last: every chunk must already be stored.
    let digests: Vec<_> = m.tar.chunks.iter().map(|c| c.digest).collect();
    let missing = super::chunks::find_missing(&state, &digests, true).await?;
    if !missing.is_empty() {
        return Err(ApiError::MissingChunks(missing));
    }
    let key = keys::manifest(&m.name, &m.version, m.kind, &m.from);
    // Stored in canonical form: the same artifact always has the same bytes.
    let bytes = Bytes::from(env.to_bytes());
    match state.store.put_create(&key, bytes.clone()).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => replace_yanked_upgrade(&state, &key, m, bytes).await?,
        Err(e) => return Err(e.into()),
    }
    let e_tag = state.store.inner().head(&key).await.ok().and_then(|meta| meta.e_tag);
    state.catalog.remember(Summary::of(key.to_string(), m), e_tag);
    state.catalog.invalidate(&m.name).await;
    state.metrics.manifest_stored(m.kind);
    tracing::info!(name = %m.name, version = %m.version, kind = %m.kind, signer = signer.as_deref().unwrap_or("-"), "manifest stored");
    let stored = Stored {
        name: m.name.clone(),
        version: m.version.clone(),
        kind: m.kind,
        from: m.from.clone(),
        key: key.to_string(),
        signer,
    };
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// A second push of a stored artifact: refused, unless it is an upgrade that was yanked,
/// which it replaces (the yanked manifest is kept under `replaced/`). Releases never change.
async fn replace_yanked_upgrade(
    state: &AppState,
    key: &object_store::path::Path,
    m: &rel_format::Manifest,
    bytes: Bytes,
) -> Result<(), ApiError> {
    let marker = keys::yanked_upgrade(key).filter(|_| m.kind == Kind::Upgrade);
    let yanked = match &marker {
        Some(k) => state.store.exists(k).await?,
        None => false,
    };
    let Some(marker) = marker.filter(|_| yanked) else {
        let (what, hint) = match m.kind {
            Kind::Release => ("release", "versions are immutable, push a new version"),
            Kind::Upgrade => ("upgrade", "to replace a bad upgrade, yank it first"),
        };
        return Err(ApiError::Conflict(format!(
            "{what} `{}` `{}` is already stored; {hint}",
            m.name, m.version
        )));
    };
    let old = state.store.get(key).await?;
    let archive = keys::replaced(key, state.now_timestamp().unix());
    state.store.put_overwrite(&archive, old.bytes.clone()).await?;
    state
        .store
        .compare_and_swap(key, Some(old.version), bytes)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict(format!(
                "the upgrade `{}` `{}` changed meanwhile; retry",
                m.name, m.version
            )),
            e => e.into(),
        })?;
    state.store.delete(&marker).await?;
    tracing::warn!(name = %m.name, version = %m.version, from = ?m.from, archived = %archive, "yanked upgrade replaced");
    Ok(())
}

fn envelope(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

#[utoipa::path(
    get, path = "/v1/releases/{name}/versions/{version}/release", operation_id = "getRelease", tag = "manifests",
    params(("name" = String, Path, description = "release name"), ("version" = rel_format::Version, Path, description = "exact version")),
    responses(
        (status = 200, description = "the signed manifest, as stored", body = rel_format::signing::Envelope<rel_format::Manifest>),
        (status = 404, description = "not stored", body = rel_format::api::ErrorBody),
    )
)]
async fn get_release(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params((Name(name), version)): Params<(Name, Version)>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, Some(&name))?;
    let key = keys::manifest(&name, &version, Kind::Release, &[]);
    match state.store.get(&key).await {
        Ok(obj) => Ok(envelope(obj.bytes)),
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "release `{name}` `{version}` is not stored"
        ))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct FromQuery {
    from: Version,
}

#[utoipa::path(
    get, path = "/v1/releases/{name}/versions/{version}/upgrade", operation_id = "getUpgrade", tag = "manifests",
    params(
        ("name" = String, Path, description = "release name"),
        ("version" = rel_format::Version, Path, description = "the version it upgrades to"),
        ("from" = rel_format::Version, Query, description = "the version it upgrades from"),
    ),
    responses(
        (status = 200, description = "the signed upgrade manifest, as stored", body = rel_format::signing::Envelope<rel_format::Manifest>),
        (status = 404, description = "no stored upgrade from that version", body = rel_format::api::ErrorBody),
    )
)]
async fn get_upgrade(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params((Name(name), version)): Params<(Name, Version)>,
    QueryParams(FromQuery { from }): QueryParams<FromQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, Some(&name))?;
    let view = state.catalog.view(&name).await?;
    let best = view
        .versions
        .get(&version)
        .into_iter()
        .flatten()
        .filter(|s| s.kind == Kind::Upgrade && s.from.contains(&from))
        .min_by_key(|s| s.bytes)
        .ok_or_else(|| ApiError::NotFound(format!("no upgrade of `{name}` to `{version}` from `{from}` is stored")))?;
    let obj = state
        .store
        .get(&object_store::path::Path::from(best.key.as_str()))
        .await?;
    Ok(envelope(obj.bytes))
}
