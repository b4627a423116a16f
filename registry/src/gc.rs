//! Garbage collection of chunks no manifest references.
//!
//! Two phases, so that no push on any replica can lose a chunk: a run first **sweeps** the
//! chunks that the previous run marked, if that mark is older than the grace period, the
//! chunks are still unreferenced and their pack was not written since; then it **marks** the
//! chunks that are unreferenced now (`gc/marked.json`). While a chunk is marked, the
//! registry reports it as missing to pushers, who upload it again in a new pack, which saves
//! it from the sweep. Manifests are never deleted, so only chunks of unfinished pushes are
//! ever collected. A push must finish within the grace period.
//!
//! Chunks live in packs: a pack whose chunks are all collected is deleted; a pack with some
//! left is written again with only those, then the old one is deleted. A pack without an
//! index (its upload stopped in between) is deleted once it is older than the grace period.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rel_format::Digest;
use rel_format::api::{GcReport, GcRequest};
use rel_format::pack::{Entry, PackWriter, encode_index, index_entries, pack_id, parse_pack};
use rel_format::signing::SignedManifest;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::AppState;
use crate::error::ApiError;
use crate::keys;
use crate::packs::Pack;
use crate::store::StoreError;

/// How long a replica trusts its copy of the mark.
const MARK_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    marked_at_unix: u64,
    chunks: Vec<Digest>,
}

/// The current mark: which chunks, since when.
#[derive(Debug, Default)]
pub(crate) struct Marked {
    pub(crate) at: u64,
    pub(crate) chunks: HashSet<Digest>,
}

#[derive(Debug, Default)]
pub struct GcState {
    run: Mutex<()>,
    mark: Mutex<Option<(Instant, Arc<Marked>)>>,
}

impl GcState {
    /// The chunks currently marked for collection.
    pub(crate) async fn marked(&self, state: &AppState) -> Result<Arc<Marked>, StoreError> {
        let mut cached = self.mark.lock().await;
        if let Some((at, set)) = cached.as_ref()
            && at.elapsed() < MARK_TTL
        {
            return Ok(set.clone());
        }
        let marked = Arc::new(read_mark(state).await?.map_or_else(Marked::default, |m| Marked {
            at: m.marked_at_unix,
            chunks: m.chunks.into_iter().collect(),
        }));
        *cached = Some((Instant::now(), marked.clone()));
        Ok(marked)
    }
}

async fn read_mark(state: &AppState) -> Result<Option<Mark>, StoreError> {
    match state.store.get(&object_store::path::Path::from(keys::GC_MARK)).await {
        Ok(obj) => Ok(serde_json::from_slice(&obj.bytes).ok()),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs one collection (SPEC.md §7.4): sweep what the previous run marked if its mark has
/// ripened, delete packs that never got an index, then mark what is unreferenced now. With
/// `dry_run`, reports what it would do and changes nothing.
pub async fn collect(state: &AppState, req: GcRequest) -> Result<GcReport, ApiError> {
    let grace = req.grace_seconds.map_or(state.gc_grace, Duration::from_secs);
    let _running = state.gc.run.lock().await;
    let now = unix((state.now)());

    // Everything any manifest references.
    let mut referenced = HashSet::new();
    let manifests = state.store.list(keys::MANIFESTS).await?;
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
    state.packs.refresh(Instant::now()).await?;
    let packs = state.packs.all();
    let stored: HashSet<Digest> = packs.iter().flat_map(|p| p.entries.iter().map(|e| e.digest)).collect();
    let mut report = GcReport {
        manifests: manifests.len() as u64,
        chunks_referenced: referenced.len() as u64,
        chunks_seen: stored.len() as u64,
        chunks_deleted: 0,
        bytes_deleted: 0,
        chunks_in_grace: 0,
        packs_deleted: 0,
        packs_rewritten: 0,
        debris_deleted: 0,
        debris_bytes: 0,
        dry_run: req.dry_run,
    };

    // Sweep what the previous run marked, if its mark is old enough.
    let mut doomed_digests = HashSet::new();
    if let Some(mark) = read_mark(state).await? {
        let marked: HashSet<&Digest> = mark.chunks.iter().collect();
        let ripe = now.saturating_sub(mark.marked_at_unix) >= grace.as_secs();
        for pack in &packs {
            let (doomed, live): (Vec<&Entry>, Vec<&Entry>) = pack
                .entries
                .iter()
                .partition(|e| marked.contains(&e.digest) && !referenced.contains(&e.digest));
            if doomed.is_empty() {
                continue;
            }
            if !ripe || unix(pack.last_modified) >= mark.marked_at_unix {
                report.chunks_in_grace += doomed.len() as u64;
                continue;
            }
            doomed_digests.extend(doomed.iter().map(|e| e.digest));
            report.bytes_deleted += doomed.iter().map(|e| u64::from(e.size)).sum::<u64>();
            if live.is_empty() {
                report.packs_deleted += 1;
            } else {
                report.packs_rewritten += 1;
            }
            if !req.dry_run {
                if !live.is_empty() {
                    rewrite(state, pack, &live).await?;
                }
                // The index first: once it is gone, no replica looks in the pack.
                state.store.delete(&keys::index(&pack.key)).await?;
                state.store.delete(&pack.key).await?;
            }
        }
        if !ripe {
            // Keep the old mark until it ripens; a new mark would restart its clock.
            return Ok(report);
        }
    }
    sweep_unindexed(state, now.saturating_sub(grace.as_secs()), req.dry_run, &mut report).await?;
    sweep_debris(state, grace, req.dry_run, &mut report).await?;
    state.packs.refresh(Instant::now()).await?;
    // A chunk is gone when no pack holds it any more (a copy stored after the mark stays).
    report.chunks_deleted = doomed_digests
        .iter()
        .filter(|d| req.dry_run || state.packs.locate(d).is_none())
        .count() as u64;

    // Mark what is unreferenced now.
    let unreferenced: Vec<Digest> = if req.dry_run {
        stored.iter().filter(|d| !referenced.contains(*d)).copied().collect()
    } else {
        let mut left: Vec<Digest> = state
            .packs
            .all()
            .iter()
            .flat_map(|p| p.entries.iter().map(|e| e.digest))
            .filter(|d| !referenced.contains(d))
            .collect();
        left.sort_unstable();
        left.dedup();
        left
    };
    if !req.dry_run {
        report.chunks_in_grace += unreferenced.len() as u64;
        let mark = Mark {
            marked_at_unix: now,
            chunks: unreferenced,
        };
        let key = object_store::path::Path::from(keys::GC_MARK);
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
    Ok(report)
}

/// Writes the `live` chunks of `pack` into a new pack, indexed, before the old one goes.
async fn rewrite(state: &AppState, pack: &Pack, live: &[&Entry]) -> Result<(), ApiError> {
    let body = state.store.get(&pack.key).await?.bytes;
    let mut writer = PackWriter::new();
    for e in live {
        let frame = body
            .get(e.offset as usize..e.offset as usize + e.size as usize)
            .ok_or_else(|| ApiError::Internal(format!("pack `{}` is shorter than its index", pack.key)))?;
        writer.push(&e.chunk(), frame);
    }
    let body = writer.finish();
    let records = parse_pack(&body).map_err(|e| ApiError::Internal(format!("rewritten pack is unreadable: {e}")))?;
    let key = keys::pack(&pack_id(&records));
    let entries = index_entries(&records);
    state.store.put_overwrite(&key, Bytes::from(body.clone())).await?;
    state
        .store
        .put_overwrite(&keys::index(&key), Bytes::from(encode_index(&entries)))
        .await?;
    state.packs.insert(Pack {
        key: Arc::new(key),
        last_modified: (state.now)(),
        size: body.len() as u64,
        entries: entries.into(),
    });
    Ok(())
}

/// Deletes what interrupted writes left, once older than the grace period: the store's
/// staging files (a local folder's `KEY#N`) and start-up probes of a registry killed during
/// its self-test.
async fn sweep_debris(state: &AppState, grace: Duration, dry_run: bool, report: &mut GcReport) -> Result<(), ApiError> {
    let before = (state.now)().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    for (path, size) in state.store.staging_debris(before).await? {
        report.debris_deleted += 1;
        report.debris_bytes += size;
        if !dry_run {
            tracing::info!(path = %path.display(), "staging leftover deleted");
            state.store.delete_debris(path).await?;
        }
    }
    for probe in state.store.list(keys::SELFTEST).await? {
        if probe.last_modified < before {
            report.debris_deleted += 1;
            report.debris_bytes += probe.size;
            if !dry_run {
                state.store.delete(&probe.key).await?;
            }
        }
    }
    Ok(())
}

/// Deletes packs that never got an index and are older than `before` (unix seconds): their
/// upload stopped between the pack and its index, and nobody can see them.
async fn sweep_unindexed(state: &AppState, before: u64, dry_run: bool, report: &mut GcReport) -> Result<(), ApiError> {
    let objects = state.store.list(keys::PACKS).await?;
    let indexes: HashSet<&str> = objects
        .iter()
        .map(|o| o.key.as_ref())
        .filter(|k| k.ends_with(".idx"))
        .collect();
    for o in &objects {
        if o.key.as_ref().ends_with(".pack")
            && !indexes.contains(keys::index(&o.key).as_ref())
            && unix(o.last_modified) < before
        {
            report.packs_deleted += 1;
            report.bytes_deleted += o.size;
            if !dry_run {
                state.store.delete(&o.key).await?;
            }
        }
    }
    Ok(())
}
