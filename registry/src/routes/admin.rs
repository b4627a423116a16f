//! Garbage collection of chunks no manifest references.
//!
//! Two phases, so that no push on any replica can lose a chunk: a run first **sweeps** the
//! chunks that the previous run marked, if that mark is older than the grace period, the
//! chunks are still unreferenced and were not rewritten since; then it **marks** the
//! chunks that are unreferenced now (`gc/marked.json`). While a chunk is marked, the
//! registry reports it as missing to pushers, who upload it again, which refreshes it and
//! saves it from the sweep. Manifests are never deleted, so only chunks of unfinished
//! pushes are ever collected. A push must finish within the grace period.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use rel_format::Digest;
use rel_format::api::{GcReport, GcRequest};
use rel_format::signing::SignedManifest;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::Caller;
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::store::{StoreError, chunk_key};

const MARK_KEY: &str = "gc/marked.json";
/// How long a replica trusts its copy of the mark.
const MARK_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    marked_at_unix: u64,
    chunks: Vec<Digest>,
}

#[derive(Debug, Default)]
pub(crate) struct GcState {
    run: Mutex<()>,
    mark: Mutex<Option<(std::time::Instant, std::sync::Arc<HashSet<Digest>>)>>,
}

impl GcState {
    /// The chunks currently marked for collection.
    pub(crate) async fn marked(&self, state: &AppState) -> Result<std::sync::Arc<HashSet<Digest>>, StoreError> {
        let mut cached = self.mark.lock().await;
        if let Some((at, set)) = cached.as_ref()
            && at.elapsed() < MARK_TTL
        {
            return Ok(set.clone());
        }
        let set: HashSet<Digest> = read_mark(state)
            .await?
            .map(|m| m.chunks.into_iter().collect())
            .unwrap_or_default();
        let set = std::sync::Arc::new(set);
        *cached = Some((std::time::Instant::now(), set.clone()));
        Ok(set)
    }
}

async fn read_mark(state: &AppState) -> Result<Option<Mark>, StoreError> {
    match state.store.get(&object_store::path::Path::from(MARK_KEY)).await {
        Ok(obj) => Ok(serde_json::from_slice(&obj.bytes).ok()),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/gc", post(gc))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn gc(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Option<Json<GcRequest>>,
) -> Result<Json<GcReport>, ApiError> {
    caller.require_global(Scope::Admin)?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let grace = req.grace_seconds.map_or(state.gc_grace, Duration::from_secs);
    let _running = state.gc.run.lock().await;
    let now = unix((state.now)());

    // Everything any manifest references.
    let mut referenced = HashSet::new();
    let manifests = state.store.list("manifests").await?;
    for obj in &manifests {
        let bytes = state.store.get(&obj.key).await?.bytes;
        match SignedManifest::parse_unverified(&bytes) {
            Ok(env) => referenced.extend(env.signed.tar.chunks.iter().map(|c| c.digest)),
            Err(e) => {
                // Collecting with an unreadable manifest could delete what it references.
                return Err(ApiError::Invalid(format!(
                    "manifest `{}` does not parse ({e}); garbage collection stopped",
                    obj.key
                )));
            }
        }
    }
    let chunks = state.store.list("chunks").await?;
    let mut report = GcReport {
        manifests: manifests.len() as u64,
        chunks_referenced: referenced.len() as u64,
        chunks_seen: chunks.len() as u64,
        chunks_deleted: 0,
        bytes_deleted: 0,
        chunks_in_grace: 0,
        dry_run: req.dry_run,
    };
    let digest_of = |key: &object_store::path::Path| {
        key.filename()
            .and_then(|f| format!("sha256:{f}").parse::<Digest>().ok())
    };

    // Sweep what the previous run marked, if its mark is old enough.
    let previous = read_mark(&state).await?;
    let mut swept = HashSet::new();
    if let Some(mark) = &previous {
        let marked: HashSet<&Digest> = mark.chunks.iter().collect();
        let ripe = now.saturating_sub(mark.marked_at_unix) >= grace.as_secs();
        for obj in &chunks {
            let Some(d) = digest_of(&obj.key) else { continue };
            if !marked.contains(&d) || referenced.contains(&d) {
                continue;
            }
            if !ripe || unix(obj.last_modified) >= mark.marked_at_unix {
                report.chunks_in_grace += 1;
                continue;
            }
            if !req.dry_run {
                state.store.delete(&chunk_key(&d)).await?;
            }
            swept.insert(d);
            report.chunks_deleted += 1;
            report.bytes_deleted += obj.size;
        }
        if !ripe {
            // Keep the old mark until it ripens; a new mark would restart its clock.
            return Ok(Json(report));
        }
    }

    // Mark what is unreferenced now.
    let unreferenced: Vec<Digest> = chunks
        .iter()
        .filter_map(|o| digest_of(&o.key))
        .filter(|d| !referenced.contains(d) && !swept.contains(d))
        .collect();
    if !req.dry_run {
        report.chunks_in_grace += unreferenced.len() as u64;
        let mark = Mark {
            marked_at_unix: now,
            chunks: unreferenced,
        };
        let key = object_store::path::Path::from(MARK_KEY);
        if mark.chunks.is_empty() {
            state.store.delete(&key).await?;
        } else {
            state
                .store
                .put_overwrite(&key, Bytes::from(serde_json::to_vec(&mark).expect("marks serialise")))
                .await?;
        }
        *state.gc.mark.lock().await = None;
    }
    tracing::info!(?report, "garbage collection");
    Ok(Json(report))
}
