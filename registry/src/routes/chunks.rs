//! Chunks: which are missing, upload in packs (each frame verified), download.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use rel_format::Digest;
use rel_format::api::{DeltaRequest, Digests, MAX_BATCH, MAX_MISSING_QUERY, PackStored};
use rel_format::chunk::decompress_chunks;
use rel_format::delta::{MAX_DELTA_CHUNKS, check_bounds};
use rel_format::pack::{
    Entry, MAX_PACK, PACK_MAGIC, PackScanner, RECORD_HEADER, check_density, encode_index, index_entries, pack_id,
};

use super::Caller;
use super::extract::{Params, Unread};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::keys;
use crate::packs::Pack;
use crate::store::StoreError;

/// Largest body of a "which are missing?" query.
const MAX_MISSING_BODY: usize = MAX_MISSING_QUERY * 80 + 1024;
/// Largest body of a batch request.
const MAX_BATCH_BODY: usize = MAX_BATCH * 80 + 1024;
/// Largest body of a delta request.
const MAX_DELTA_BODY: usize = 2 * MAX_DELTA_CHUNKS * 80 + 1024;

pub(super) fn router(expensive: &super::Expensive) -> Router<AppState> {
    Router::new()
        .route("/v1/chunks/missing", expensive.limit(post(missing)))
        .route("/v1/chunks/{digest}", get(download).head(download))
        .route("/v1/chunks/batch", expensive.limit(post(batch)))
        .route("/v1/chunks/delta", expensive.limit(post(delta)))
        .route("/v1/packs", expensive.limit(post(upload)))
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

#[utoipa::path(
    post, path = "/v1/chunks/missing", operation_id = "findMissingChunks", tag = "chunks",
    request_body(content = Digests, description = "the chunks a push would upload"),
    responses((status = 200, description = "those the registry lacks", body = Digests))
)]
async fn missing(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Unread,
) -> Result<Json<Digests>, ApiError> {
    caller.require(Scope::Push, None)?;
    let query: Digests = body.json(MAX_MISSING_BODY, "digest query", &state.limits).await?;
    if query.digests.len() > MAX_MISSING_QUERY {
        return Err(ApiError::TooLarge(format!(
            "at most {MAX_MISSING_QUERY} digests per query"
        )));
    }
    Ok(Json(Digests {
        digests: find_missing(&state, &query.digests, false).await?,
    }))
}

#[utoipa::path(
    post, path = "/v1/packs", operation_id = "uploadPack", tag = "chunks",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a pack (SPEC.md §4.1): `RELPACK1` and records of digest, length, size and zstd frame"),
    responses(
        (status = 201, description = "stored", body = PackStored),
        (status = 200, description = "a pack of that name was already stored", body = PackStored),
        (status = 422, description = "a record that does not decompress to its digest and length", body = rel_format::api::ErrorBody),
    )
)]
/// `POST /v1/packs`: the caller is authorised before any byte of the body is read; then each
/// frame is decompressed and checked against its digest as the pack arrives (a bad one ends
/// the upload there), the pack is stored, and its index makes the chunks visible.
async fn upload(State(state): State<AppState>, Caller(caller): Caller, body: Unread) -> Result<Response, ApiError> {
    caller.require(Scope::Push, None)?;
    let (parts, entries) = receive_pack(&state, body).await?;
    let received: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let id = pack_id(&entries);
    // Stored from the pieces it arrived in, without joining them.
    let body: object_store::PutPayload = parts.into_iter().collect();
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
    state.metrics.chunk_bytes_received(received);
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

/// Frames are checked in batches of about this many bytes, off the async threads.
const CHECK_BATCH: usize = 1 << 20;

/// Reads a pack body as it arrives, checking records and frames as they complete: the pack
/// is refused at its first malformed record or bad frame, without waiting for the rest.
/// Returns the body (in pieces, each of whole records) and its records.
async fn receive_pack(state: &AppState, body: Unread) -> Result<(Vec<Bytes>, Vec<Entry>), ApiError> {
    let refused = |e: String| ApiError::Invalid(format!("pack refused: {e}"));
    let mut reader = body.reader(MAX_PACK, "pack", &state.limits)?;
    let mut scanner = PackScanner::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut pending = bytes::BytesMut::new();
    let mut parts: Vec<Bytes> = Vec::new();
    // Records scanned but not yet checked: from this entry, in parts from this one.
    let (mut unchecked_entry, mut unchecked_part, mut unchecked_bytes) = (0, 0, 0);
    // Whole records are kept in the pieces they arrived in, not copied: only a record cut
    // short by the end of a read is put together in `pending`.
    loop {
        let at_end = match reader.next().await? {
            Some(mut data) => {
                while !pending.is_empty() && !data.is_empty() {
                    let wanted = scanner.wanted(&pending).map_err(|e| refused(e.to_string()))?;
                    pending.extend_from_slice(&data.split_to(wanted.clamp(1, data.len())));
                    let used = scanner
                        .scan(&pending, &mut entries)
                        .map_err(|e| refused(e.to_string()))?;
                    if used > 0 {
                        parts.push(pending.split_to(used).freeze());
                        unchecked_bytes += used;
                    }
                }
                if !data.is_empty() {
                    let used = scanner.scan(&data, &mut entries).map_err(|e| refused(e.to_string()))?;
                    if used > 0 {
                        parts.push(data.split_to(used));
                        unchecked_bytes += used;
                    }
                    pending.extend_from_slice(&data);
                }
                false
            }
            None => true,
        };
        if unchecked_bytes >= CHECK_BATCH || (at_end && unchecked_entry < entries.len()) {
            let base: u64 = parts[..unchecked_part].iter().map(|p| p.len() as u64).sum();
            check_frames(&parts[unchecked_part..], base, &entries[unchecked_entry..]).await?;
            (unchecked_entry, unchecked_part, unchecked_bytes) = (entries.len(), parts.len(), 0);
        }
        if at_end {
            break;
        }
    }
    scanner
        .finish(pending.len(), &entries)
        .map_err(|e| refused(e.to_string()))?;
    check_density(&entries).map_err(|e| refused(e.to_string()))?;
    Ok((parts, entries))
}

/// Checks the frames of `entries`, which lie in `parts` (the first starting at pack offset
/// `base`), on a blocking thread.
async fn check_frames(parts: &[Bytes], base: u64, entries: &[Entry]) -> Result<(), ApiError> {
    let parts = parts.to_vec();
    let entries = entries.to_vec();
    tokio::task::spawn_blocking(move || {
        let (mut part, mut part_start) = (0, base);
        let frames = entries.iter().map(|e| {
            while e.offset >= part_start + parts[part].len() as u64 {
                part_start += parts[part].len() as u64;
                part += 1;
            }
            let at = (e.offset - part_start) as usize;
            (e.chunk(), &parts[part][at..at + e.size as usize])
        });
        rel_format::chunk::check_frames(frames).map_err(|err| ApiError::Invalid(format!("pack refused: {err}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("pack check stopped: {e}")))?
}

/// Longest single read of a pack while serving a batch.
const MAX_RUN: u64 = 4 * 1024 * 1024;

/// A run of whole records (header and frame) side by side in one pack.
pub(crate) type Run = (Arc<object_store::path::Path>, std::ops::Range<u64>);

/// Where the records of `digests` are, in order, those side by side in a pack joined into
/// runs of at most [`MAX_RUN`] bytes read at once (a push packs chunks in tar order, so a
/// release's chunks mostly are).
pub(crate) fn record_runs(state: &AppState, digests: &[Digest]) -> Result<Vec<Run>, ApiError> {
    let mut runs: Vec<Run> = Vec::new();
    for d in digests {
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
    Ok(runs)
}

#[utoipa::path(
    post, path = "/v1/chunks/batch", operation_id = "fetchChunks", tag = "chunks",
    request_body(content = Digests, description = "the chunks wanted, in order"),
    responses(
        (status = 200, description = "a pack of those chunks, in the order asked", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "some are not stored (`missing` lists them)", body = rel_format::api::ErrorBody),
    )
)]
/// `POST /v1/chunks/batch`: the asked chunks as one pack, in the order asked. A chunk's record
/// is read from its pack as stored (header and frame), and records that lie side by side in
/// a pack — the usual case, since a push packs chunks in tar order — are read at once.
async fn batch(State(state): State<AppState>, Caller(caller): Caller, body: Unread) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, None)?;
    let query: Digests = body.json(MAX_BATCH_BODY, "batch request", &state.limits).await?;
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
    let runs = record_runs(&state, &query.digests)?;
    let sent: u64 = runs.iter().map(|(_, r)| r.end - r.start).sum();
    state.metrics.chunk_bytes_sent(sent);
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

#[utoipa::path(
    post, path = "/v1/chunks/delta", operation_id = "fetchDelta", tag = "chunks",
    request_body(content = DeltaRequest, description = "the chunks wanted, and the chunks the caller holds to compress them against"),
    responses(
        (status = 200, description = "one zstd frame: the wanted chunks concatenated, compressed with the base chunks concatenated as its prefix", content_type = "application/zstd", body = Vec<u8>),
        (status = 404, description = "a chunk of either list is not stored", body = rel_format::api::ErrorBody),
        (status = 413, description = "over 1,024 chunks or 4 MiB in a list", body = rel_format::api::ErrorBody),
    )
)]
/// `POST /v1/chunks/delta`: the asked chunks as one zstd frame compressed against the base
/// chunks (SPEC.md §4.2). Both lists are bounded before a byte of a chunk is read, so a
/// request costs the registry at most 8 MiB of reading and one bounded compression, and a
/// delta asked for again, or by many at once, is computed once while it is kept.
async fn delta(State(state): State<AppState>, Caller(caller): Caller, body: Unread) -> Result<Response, ApiError> {
    caller.require(Scope::Pull, None)?;
    let query: DeltaRequest = body.json(MAX_DELTA_BODY, "delta request", &state.limits).await?;
    if query.chunks.is_empty() {
        return Err(ApiError::BadRequest(
            "a delta request asks for at least one chunk".into(),
        ));
    }
    let lists = [("base", &query.base), ("wanted", &query.chunks)];
    for (what, digests) in lists {
        check_bounds(0, digests.len()).map_err(|e| ApiError::TooLarge(format!("the {what} chunks: {e}")))?;
    }
    for (what, digests) in lists {
        let unknown = state.packs.unknown(digests, Instant::now()).await?;
        if let Some(first) = unknown.first() {
            return Err(ApiError::NotFound(format!(
                "chunk {first} is not stored ({} of the {} {what} chunks are not)",
                unknown.len(),
                digests.len()
            )));
        }
        let mut bytes = 0u64;
        for d in digests {
            let location = state
                .packs
                .locate(d)
                .ok_or_else(|| ApiError::NotFound(format!("chunk {d} is not stored")))?;
            bytes += u64::from(location.entry.length);
        }
        check_bounds(bytes, digests.len()).map_err(|e| ApiError::TooLarge(format!("the {what} chunks: {e}")))?;
    }
    // The same request always has the same answer: chunks are named by their contents.
    let key = {
        let mut named = Vec::with_capacity(32 * (query.base.len() + query.chunks.len()) + 1);
        query.base.iter().for_each(|d| named.extend_from_slice(d.as_bytes()));
        named.push(b'|');
        query.chunks.iter().for_each(|d| named.extend_from_slice(d.as_bytes()));
        Digest::of(&named)
    };
    let frame = state
        .deltas
        .get_or_insert_async(&key, async {
            let (base, wanted) = (
                read_chunks(&state, &query.base).await?,
                read_chunks(&state, &query.chunks).await?,
            );
            let (base_digests, wanted_digests) = (query.base.clone(), query.chunks.clone());
            let frame = tokio::task::spawn_blocking(move || {
                let base = chunk_data(&base, &base_digests)?;
                let wanted = chunk_data(&wanted, &wanted_digests)?;
                rel_format::delta::encode(&base, &wanted).map_err(|e| ApiError::Internal(e.to_string()))
            })
            .await
            .map_err(|e| ApiError::Internal(format!("a delta stopped: {e}")))??;
            Ok::<_, ApiError>(Bytes::from(frame))
        })
        .await?;
    state.metrics.chunk_bytes_sent(frame.len() as u64);
    Ok(([(header::CONTENT_TYPE, "application/zstd")], frame).into_response())
}

/// The records of `digests`, in order, as one pack body; `busy` when a pack was collected
/// since this replica indexed it (the client asks again, and this replica has listed anew).
async fn read_chunks(state: &AppState, digests: &[Digest]) -> Result<Vec<u8>, ApiError> {
    let runs = record_runs(state, digests)?;
    let mut body = PACK_MAGIC.to_vec();
    let mut reads = futures::stream::iter(runs)
        .map(|(pack, range)| async move { state.store.get_range(&pack, range).await })
        .buffered(4);
    while let Some(read) = reads.next().await {
        match read {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(StoreError::NotFound(_)) => {
                state.packs.refresh(Instant::now()).await?;
                return Err(ApiError::Busy(
                    "a pack was rewritten while it was read; ask again".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(body)
}

/// The chunks of a pack body read by [`read_chunks`], decompressed and concatenated.
fn chunk_data(body: &[u8], digests: &[Digest]) -> Result<Vec<u8>, ApiError> {
    let records = rel_format::pack::parse_pack(body).map_err(|e| ApiError::Internal(format!("a stored pack: {e}")))?;
    if records.len() != digests.len() {
        return Err(ApiError::Internal(format!(
            "read {} stored chunks where {} were asked for",
            records.len(),
            digests.len()
        )));
    }
    let chunks: Vec<_> = records.iter().map(|e| e.chunk()).collect();
    let frames: Vec<_> = records
        .iter()
        .zip(&chunks)
        .map(|(e, c)| (c, &body[e.offset as usize..][..e.size as usize]))
        .collect();
    let mut data = Vec::new();
    for chunk in decompress_chunks(&frames) {
        data.extend_from_slice(&chunk.map_err(|err| ApiError::Internal(format!("a stored chunk: {err}")))?);
    }
    Ok(data)
}

#[utoipa::path(
    get, path = "/v1/chunks/{digest}", operation_id = "getChunk", tag = "chunks",
    params(("digest" = rel_format::Digest, Path, description = "the chunk's digest")),
    responses(
        (status = 200, description = "the chunk's zstd frame (HEAD: its headers only)", content_type = "application/zstd", body = Vec<u8>),
        (status = 404, description = "not stored", body = rel_format::api::ErrorBody),
    )
)]
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
    state.metrics.chunk_bytes_sent(frame.len() as u64);
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
