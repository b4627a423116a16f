//! Chunks: which are missing, upload (verified while received), download.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use rel_format::Digest;
use rel_format::api::{Digests, MAX_MISSING_QUERY};
use rel_format::chunk::{ChunkRef, MAX_CHUNK, decompress_chunk};

use super::Caller;
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::store::{StoreError, chunk_key};

/// Largest stored chunk body: a zstd frame of an incompressible 64 KiB chunk is a little
/// larger than 64 KiB.
const MAX_CHUNK_BODY: usize = MAX_CHUNK + 4096;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/chunks/missing",
            post(missing).layer(DefaultBodyLimit::max(MAX_MISSING_QUERY * 80 + 1024)),
        )
        .route(
            "/v1/chunks/{digest}",
            put(upload)
                .get(download)
                .head(download)
                .layer(DefaultBodyLimit::max(MAX_CHUNK_BODY)),
        )
}

fn parse_digest(text: &str) -> Result<Digest, ApiError> {
    text.parse()
        .map_err(|e: rel_format::DigestError| ApiError::BadRequest(e.to_string()))
}

/// Whether the chunks exist, asked of the store concurrently.
pub(crate) async fn find_missing(state: &AppState, digests: &[Digest]) -> Result<Vec<Digest>, ApiError> {
    let marked = state.gc.marked(state).await?;
    let found: Vec<Option<Digest>> = futures::stream::iter(digests.iter().copied())
        .map(|d| {
            let marked = marked.contains(&d);
            async move {
                // A chunk marked for collection is reported missing, so the pusher uploads it
                // again and the sweep keeps it.
                if marked {
                    return Ok::<_, StoreError>(Some(d));
                }
                Ok(if state.store.exists(&chunk_key(&d)).await? {
                    None
                } else {
                    Some(d)
                })
            }
        })
        .buffered(32)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

async fn missing(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(query): Json<Digests>,
) -> Result<Json<Digests>, ApiError> {
    caller.require(Scope::Push, None)?;
    if query.digests.len() > MAX_MISSING_QUERY {
        return Err(ApiError::TooLarge(format!(
            "at most {MAX_MISSING_QUERY} digests per query"
        )));
    }
    Ok(Json(Digests {
        digests: find_missing(&state, &query.digests).await?,
    }))
}

async fn upload(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::Push, None)?;
    let digest = parse_digest(&digest)?;
    let length: u64 = headers
        .get("rel-chunk-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest("the `rel-chunk-length` header (uncompressed length) is required".into())
        })?;
    let chunk = ChunkRef { digest, length };
    // Decompression is capped at the declared length, then digest and length are checked.
    decompress_chunk(&chunk, &body).map_err(|e| ApiError::Invalid(format!("chunk refused: {e}")))?;
    let key = chunk_key(&digest);
    let created = match state.store.put_create(&key, body.clone()).await {
        Ok(()) => true,
        Err(StoreError::AlreadyExists(_)) => {
            if state.gc.marked(&state).await?.contains(&digest) {
                // Rewriting refreshes its time, so the sweep keeps it.
                state.store.put_overwrite(&key, body.clone()).await?;
            }
            false
        }
        Err(e) => return Err(e.into()),
    };
    state
        .metrics
        .add("rel_chunk_bytes_received_total", String::new(), body.len() as u64);
    Ok(if created { StatusCode::CREATED } else { StatusCode::OK }.into_response())
}

async fn download(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    // Chunks are not tied to one release: knowing a digest is the capability.
    caller.require(Scope::Pull, None)?;
    let digest = parse_digest(&digest)?;
    let object = state.store.get(&chunk_key(&digest)).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound(format!("chunk {digest} is not stored")),
        e => e.into(),
    })?;
    state
        .metrics
        .add("rel_chunk_bytes_sent_total", String::new(), object.bytes.len() as u64);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
            (header::ETAG, format!("\"{}\"", digest.hex())),
        ],
        object.bytes,
    )
        .into_response())
}
