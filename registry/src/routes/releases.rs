//! Release listings, version listings, upgrade paths and yanking.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use rel_format::Version;
use rel_format::api::{ArtifactInfo, ReleaseNames, VersionInfo, VersionList, Yank};
use rel_format::chunk::ChunkedStream;
use rel_format::manifest::Kind;
use rel_format::signing::SignedManifest;
use rel_format::upgrade_path::{Plan, Strategy, delta_bytes};
use serde::Deserialize;

use super::Caller;
use super::extract::{Name, Params, QueryParams, Unread};
use crate::AppState;
use crate::auth::{Principal, Scope};
use crate::error::ApiError;
use crate::keys;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/releases", get(names))
        .route("/v1/releases/{name}", get(versions))
        .route("/v1/releases/{name}/upgrade-path", get(upgrade_path))
        .route("/v1/releases/{name}/versions/{version}/yank", put(yank))
}

#[utoipa::path(
    get, path = "/v1/releases", operation_id = "listReleases", tag = "releases",
    responses((status = 200, description = "the release names the caller may see, sorted", body = ReleaseNames))
)]
async fn names(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<ReleaseNames>, ApiError> {
    let releases = visible_names(&state, &caller).await?;
    Ok(Json(ReleaseNames { releases }))
}

/// The release names `caller` may see, sorted.
pub(super) async fn visible_names(state: &AppState, caller: &Principal) -> Result<Vec<String>, ApiError> {
    caller.require(Scope::Pull, None).or_else(|e| match caller {
        // A token limited to some names may still list those.
        Principal::Token(_) => Ok(()),
        _ => Err(e),
    })?;
    let mut releases: Vec<String> = state
        .store
        .list_dirs(keys::MANIFESTS)
        .await?
        .into_iter()
        .filter(|n| caller.may_see(n))
        .collect();
    releases.sort();
    Ok(releases)
}

#[utoipa::path(
    get, path = "/v1/releases/{name}", operation_id = "listVersions", tag = "releases",
    params(("name" = String, Path, description = "release name")),
    responses(
        (status = 200, description = "its versions in rel's order, oldest first", body = VersionList),
        (status = 404, description = "no such release", body = rel_format::api::ErrorBody),
    )
)]
async fn versions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(Name(name)): Params<Name>,
) -> Result<Json<VersionList>, ApiError> {
    caller.require(Scope::Pull, Some(&name))?;
    let view = state.catalog.view(&name).await?;
    if view.versions.is_empty() {
        return Err(ApiError::NotFound(format!("release `{name}` is not stored")));
    }
    let channels = &view.channels;
    let versions = view
        .versions
        .iter()
        .map(|(version, artifacts)| VersionInfo {
            version: version.clone(),
            artifacts: artifacts
                .iter()
                .map(|s| ArtifactInfo {
                    kind: s.kind,
                    from: s.from.clone(),
                    bytes: s.bytes,
                    chunks: s.chunks,
                    created: s.created,
                    digest: Some(s.digest),
                    yanked: s.yanked,
                })
                .collect(),
            channels: channels
                .iter()
                .filter(|p| &p.version == version)
                .map(|p| p.channel.clone())
                .collect(),
            yanked: view.is_yanked(version),
            yank_reason: view.yank_reasons.get(version).cloned(),
        })
        .collect();
    Ok(Json(VersionList { name, versions }))
}

#[derive(Deserialize)]
struct PathQuery {
    from: Version,
    to: Version,
}

#[utoipa::path(
    get, path = "/v1/releases/{name}/upgrade-path", operation_id = "planUpgrade", tag = "releases",
    params(
        ("name" = String, Path, description = "release name"),
        ("from" = rel_format::Version, Query, description = "the version a node runs"),
        ("to" = rel_format::Version, Query, description = "the version it should run"),
    ),
    responses(
        (status = 200, description = "the plan (SPEC.md §7.3)", body = rel_format::upgrade_path::Plan),
        (status = 404, description = "the target is not stored, or is yanked", body = rel_format::api::ErrorBody),
    )
)]
async fn upgrade_path(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(Name(name)): Params<Name>,
    QueryParams(PathQuery { from, to }): QueryParams<PathQuery>,
) -> Result<Json<Plan>, ApiError> {
    caller.require(Scope::Pull, Some(&name))?;
    let view = state.catalog.view(&name).await?;
    let mut plan = view.graph.path(&from, &to)?;
    if plan.strategy == Strategy::Synthesised {
        let bytes = synthesised_delta(&state, &name, &from, &to).await?;
        plan.set_synthesised_bytes(bytes);
    }
    Ok(Json(plan))
}

/// The stored release envelope of `name` `version`, if it has one (manifests are stored in
/// canonical form by this registry, so one that does not parse is its own fault).
pub(super) async fn stored_release(
    state: &AppState,
    name: &str,
    version: &Version,
) -> Result<Option<SignedManifest>, ApiError> {
    let key = keys::manifest(name, version, Kind::Release, &[]);
    let bytes = match state.store.get(&key).await {
        Ok(got) => got.bytes,
        Err(crate::store::StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    SignedManifest::parse_unverified(&bytes)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("stored manifest `{key}` does not parse: {e}")))
}

/// What a host that runs release `from` fetches to build the upgrade to `to`: the chunks of
/// `to` it lacks, from the two release manifests, read once per pair (the catalog remembers
/// the figure).
pub(super) async fn synthesised_delta(
    state: &AppState,
    name: &str,
    from: &Version,
    to: &Version,
) -> Result<u64, ApiError> {
    state
        .catalog
        .delta(name, from, to, || async {
            let (from, to) = (
                release_tar(state, name, from).await?,
                release_tar(state, name, to).await?,
            );
            Ok::<_, ApiError>(delta_bytes(&from, &to))
        })
        .await
}

async fn release_tar(state: &AppState, name: &str, version: &Version) -> Result<ChunkedStream, ApiError> {
    stored_release(state, name, version)
        .await?
        .map(|e| e.signed.tar)
        .ok_or_else(|| ApiError::NotFound(format!("`{name}` `{version}` has no stored release")))
}

#[utoipa::path(
    put, path = "/v1/releases/{name}/versions/{version}/yank", operation_id = "yankVersion", tag = "releases",
    params(("name" = String, Path, description = "release name"), ("version" = rel_format::Version, Path, description = "exact version")),
    request_body(content = Yank, description = "yank or unyank the version, or only its upgrade from `upgrade_from`"),
    responses(
        (status = 200, description = "done; the request", body = Yank),
        (status = 404, description = "not stored", body = rel_format::api::ErrorBody),
    )
)]
async fn yank(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params((Name(name), version)): Params<(Name, Version)>,
    body: Unread,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin, Some(&name))?;
    let body: Yank = body.json(super::SMALL_BODY, "yank request", &state.limits).await?;
    if let Some(reason) = &body.reason {
        Yank::check_reason(reason).map_err(ApiError::BadRequest)?;
    }
    let view = state.catalog.view(&name).await?;
    if !view.versions.contains_key(&version) {
        return Err(ApiError::NotFound(format!("`{name}` `{version}` is not stored")));
    }
    let key = match &body.upgrade_from {
        None => keys::yank(&name, &version),
        Some(from) => {
            let artifact = view.versions[&version]
                .iter()
                .find(|s| s.kind == rel_format::Kind::Upgrade && s.from.contains(from))
                .ok_or_else(|| {
                    ApiError::NotFound(format!("no upgrade of `{name}` to `{version}` from `{from}` is stored"))
                })?;
            keys::yanked_upgrade(&object_store::path::Path::from(artifact.key.as_str()))
                .expect("manifest keys have four parts")
        }
    };
    if body.yanked {
        let marker = crate::catalog::YankMarker {
            yanked_at: state.now_timestamp(),
            reason: body.reason.clone(),
        };
        let marker = serde_json::to_string(&marker).expect("markers serialise");
        state.store.put_overwrite(&key, marker).await?;
    } else {
        state.store.delete(&key).await?;
    }
    state.catalog.invalidate(&name).await;
    tracing::info!(%name, %version, yanked = body.yanked, upgrade_from = ?body.upgrade_from, "yank changed");
    Ok((StatusCode::OK, Json(body)).into_response())
}
