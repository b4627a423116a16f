//! Chunks: which are missing, upload in packs (each frame verified), download.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use rel_format::Digest;
use rel_format::api::{Digests, MAX_BATCH, MAX_MISSING_QUERY, PackStored};
use rel_format::chunk::check_frame;
use rel_format::pack::{MAX_PACK, PACK_MAGIC, RECORD_HEADER, encode_index, index_entries, pack_id, parse_pack};

use super::Caller;
use super::extract::{Body, Params};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::keys;
use crate::packs::Pack;
use crate::store::StoreError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/chunks/missing",
            post(missing).layer(DefaultBodyLimit::max(MAX_MISSING_QUERY * 80 + 1024)),
        )
        .route("/v1/chunks/{digest}", get(download).head(download))
        .route(
            "/v1/chunks/batch",
            post(batch).layer(DefaultBodyLimit::max(MAX_BATCH * 80 + 1024)),
        )
        .route("/v1/packs", post(upload).layer(DefaultBodyLimit::max(MAX_PACK)))
}

/// How stale a replica's pack listing may be when it answers "which are missing?": a chunk
/// another replica stored a moment ago, reported missing, is only uploaded again.
const MISSING_STALENESS: Duration = Duration::from_secs(2);

/// Which of `digests` are not stored. A chunk that garbage collection marked counts as
/// missing unless it was stored again after the mark, so that a pusher uploads it again and
/// the sweep keeps it. With `strict` (before a manifest is accepted), the answer comes from
/// the store, not from this replica's view of it ([`Packs::confirm`](crate::packs::Packs::confirm)).
pub(crate) async fn find_missing(state: &AppState, digests: &[Digest], strict: bool) -> Result<Vec<Digest>, ApiError> {
    let unknown = if strict {
        state.packs.confirm(digests).await?
    } else {
        let asked = Instant::now();
        let since = asked.checked_sub(MISSING_STALENESS).unwrap_or(asked);
        state.packs.unknown(digests, since).await?
    };
    let mut missing: HashSet<Digest> = unknown.into_iter().collect();
    let mark = state.gc.marked(state).await?;
    if !mark.chunks.is_empty() {
        for d in digests.iter().filter(|d| mark.chunks.contains(d)) {
            let fresh = state
                .packs
                .locate(d)
                .is_some_and(|l| crate::gc::unix(l.last_modified) >= mark.at);
            if !fresh {
                missing.insert(*d);
            }
        }
    }
    // In the order asked, once each.
    let mut seen = HashSet::new();
    Ok(digests
        .iter()
        .filter(|d| missing.contains(d) && seen.insert(**d))
        .copied()
        .collect())
}

async fn missing(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(query): Body<Digests>,
) -> Result<Json<Digests>, ApiError> {
    caller.require(Scope::Push, None)?;
    if query.digests.len() > MAX_MISSING_QUERY {
        return Err(ApiError::TooLarge(format!(
            "at most {MAX_MISSING_QUERY} digests per query"
        )));
    }
    Ok(Json(Digests {
        digests: find_missing(&state, &query.digests, false).await?,
    }))
}

/// `POST /v1/packs`: every frame is decompressed and checked against its digest before the
/// pack is stored, then its index makes the chunks visible.
async fn upload(State(state): State<AppState>, Caller(caller): Caller, body: Bytes) -> Result<Response, ApiError> {
    caller.require(Scope::Push, None)?;
    let received = body.len() as u64;
    let checked = body.clone();
    let (id, entries) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let refused = |e: String| ApiError::Invalid(format!("pack refused: {e}"));
        let entries = parse_pack(&checked).map_err(|e| refused(e.to_string()))?;
        for e in &entries {
            check_frame(&e.chunk(), &checked[e.offset as usize..][..e.size as usize])
                .map_err(|e| refused(e.to_string()))?;
        }
        Ok((pack_id(&entries), entries))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("pack check stopped: {e}")))??;
    let key = keys::pack(&id);
    let created = match state.store.put_create(&key, body.clone()).await {
        Ok(()) => true,
        Err(StoreError::AlreadyExists(_)) => {
            // Sent again (a retry, or the same missing chunks): rewriting refreshes its time,
            // so neither the sweep of marked chunks nor that of unindexed packs takes it
            // before its index is written.
            state.store.put_overwrite(&key, body).await?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    let indexed = index_entries(&entries);
    match state
        .store
        .put_create(&keys::index(&key), Bytes::from(encode_index(&indexed)))
        .await
    {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let unique = indexed.len() as u64;
    state.packs.insert(Pack {
        key: Arc::new(key),
        last_modified: (state.now)(),
        size: received,
        entries: indexed.into(),
    });
    state
        .metrics
        .add("rel_chunk_bytes_received_total", String::new(), received);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(PackStored {
            pack: id,
            chunks: unique,
        }),
    )
        .into_response())
}

/// Longest single read of a pack while serving a batch.
const MAX_RUN: u64 = 4 * 1024 * 1024;

/// `POST /v1/chunks/batch`: the asked chunks as one pack, in the order asked. A chunk's record
/// is read from its pack as stored (header and frame), and records that lie side by side in
/// a pack — the usual case, since a push packs chunks in tar order — are read at once.
async fn batch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(query): Body<Digests>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, None)?;
    if query.digests.len() > MAX_BATCH {
        return Err(ApiError::TooLarge(format!("at most {MAX_BATCH} chunks per batch")));
    }
    let unknown = state.packs.unknown(&query.digests, Instant::now()).await?;
    if let Some(first) = unknown.first() {
        return Err(ApiError::NotFound(format!(
            "chunk {first} is not stored ({} of the {} asked for are not)",
            unknown.len(),
            query.digests.len()
        )));
    }
    let mut runs: Vec<(Arc<object_store::path::Path>, std::ops::Range<u64>)> = Vec::new();
    for d in &query.digests {
        let location = state
            .packs
            .locate(d)
            .ok_or_else(|| ApiError::NotFound(format!("chunk {d} is not stored")))?;
        let record = location.entry.offset - RECORD_HEADER as u64..location.entry.range().end;
        match runs.last_mut() {
            Some((pack, range))
                if *pack == location.pack && range.end == record.start && record.end - range.start <= MAX_RUN =>
            {
                range.end = record.end;
            }
            _ => runs.push((location.pack, record)),
        }
    }
    let sent: u64 = runs.iter().map(|(_, r)| r.end - r.start).sum();
    state.metrics.add("rel_chunk_bytes_sent_total", String::new(), sent);
    let records = futures::stream::iter(runs)
        .map(move |(pack, range)| {
            let state = state.clone();
            async move {
                let read = state.store.get_range(&pack, range).await;
                if let Err(StoreError::NotFound(_)) = &read {
                    // Collected since this replica read its index: the response is cut short,
                    // and a listing now lets the client's retry find the chunk's new pack.
                    state.packs.refresh(Instant::now()).await?;
                }
                read
            }
        })
        .buffered(4);
    let body = futures::stream::once(std::future::ready(Ok(Bytes::from_static(PACK_MAGIC)))).chain(records);
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

async fn download(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(digest): Params<Digest>,
) -> Result<Response, ApiError> {
    // Chunks are not tied to one release: knowing a digest is the capability.
    caller.require(Scope::Pull, None)?;
    let Some((_, frame)) = state.packs.frame(&digest).await? else {
        return Err(ApiError::NotFound(format!("chunk {digest} is not stored")));
    };
    state
        .metrics
        .add("rel_chunk_bytes_sent_total", String::new(), frame.len() as u64);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
            (header::ETAG, format!("\"{}\"", digest.hex())),
        ],
        frame,
    )
        .into_response())
}
