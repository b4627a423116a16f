//! Where each chunk is: the pack indexes, cached per replica.
//!
//! Chunks are stored in packs (`packs/<hex2>/<hex>.pack`), each made visible by its index
//! (`.idx`, written after the pack). A replica keeps every index it has read in memory; it
//! re-lists `packs/` when a lookup misses, so a pack another replica wrote is found, and an
//! index that vanished (garbage collection) is dropped. Listings are single-flight: however
//! many requests miss at once, one listing runs, and a request is served by the first listing
//! that started after it asked.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use rel_format::Digest;
use rel_format::pack::{Entry, decode_index};

use crate::keys;
use crate::store::{Store, StoreError};

/// One stored pack, as indexed.
#[derive(Debug, Clone)]
pub struct Pack {
    pub key: Arc<Path>,
    pub last_modified: SystemTime,
    pub size: u64,
    /// Sorted by digest.
    pub entries: Arc<[Entry]>,
}

/// A chunk's frame: in which pack, where.
#[derive(Debug, Clone)]
pub struct Location {
    pub pack: Arc<Path>,
    pub last_modified: SystemTime,
    pub entry: Entry,
}

/// Every indexed pack, and which one holds each chunk.
///
/// Compact on purpose: a chunk costs its pack's entry (48 bytes, kept for garbage collection
/// and to find the frame) and one slot in a map from its digest to the pack's number (36
/// bytes and the map's slack), about 130 bytes in all, instead of a copy of its location per
/// chunk (263 bytes). Packs are bounded (SPEC.md §4.1: 4,096 records, 4 KiB of chunk a
/// record on average), so the index grows with content stored, not with what an uploader
/// chooses.
#[derive(Debug, Default)]
struct Index {
    /// By slot; a removed pack leaves a hole that the next one fills.
    slots: Vec<Option<Pack>>,
    free: Vec<u32>,
    by_key: HashMap<Arc<Path>, u32>,
    /// The slot of the newest pack holding each chunk.
    chunks: HashMap<Digest, u32>,
}

impl Index {
    fn pack(&self, slot: u32) -> &Pack {
        self.slots[slot as usize].as_ref().expect("chunks point at live slots")
    }

    fn location(&self, digest: &Digest) -> Option<Location> {
        let slot = *self.chunks.get(digest)?;
        let pack = self.pack(slot);
        let at = pack.entries.binary_search_by(|e| e.digest.cmp(digest)).ok()?;
        Some(Location {
            pack: pack.key.clone(),
            last_modified: pack.last_modified,
            entry: pack.entries[at],
        })
    }

    /// Points `digest` at the pack in `slot` unless a newer pack already holds it.
    fn offer(&mut self, slot: u32, digest: Digest) {
        let modified = self.pack(slot).last_modified;
        let newer = self
            .chunks
            .get(&digest)
            .is_none_or(|s| self.pack(*s).last_modified <= modified);
        if newer {
            self.chunks.insert(digest, slot);
        }
    }

    fn add(&mut self, pack: Pack) {
        if let Some(old) = self.by_key.get(&pack.key).copied() {
            // The same pack again (rewritten, its time refreshed): replace it in place.
            let digests: Vec<Digest> = pack.entries.iter().map(|e| e.digest).collect();
            self.slots[old as usize] = Some(pack);
            for d in digests {
                self.offer(old, d);
            }
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 packs")
            }
        };
        let digests: Vec<Digest> = pack.entries.iter().map(|e| e.digest).collect();
        self.by_key.insert(pack.key.clone(), slot);
        self.slots[slot as usize] = Some(pack);
        for d in digests {
            self.offer(slot, d);
        }
    }

    fn remove(&mut self, gone: &HashSet<Arc<Path>>) {
        let gone_slots: HashSet<u32> = gone.iter().filter_map(|k| self.by_key.get(k).copied()).collect();
        if gone_slots.is_empty() {
            return;
        }
        let mut orphaned = HashSet::new();
        self.chunks.retain(|d, slot| {
            let keep = !gone_slots.contains(slot);
            if !keep {
                orphaned.insert(*d);
            }
            keep
        });
        for slot in &gone_slots {
            if let Some(pack) = self.slots[*slot as usize].take() {
                self.by_key.remove(&pack.key);
            }
            self.free.push(*slot);
        }
        if orphaned.is_empty() {
            return;
        }
        // Chunks that are also in another pack point there now.
        let live: Vec<u32> = self.by_key.values().copied().collect();
        for slot in live {
            let held: Vec<Digest> = self
                .pack(slot)
                .entries
                .iter()
                .map(|e| e.digest)
                .filter(|d| orphaned.contains(d))
                .collect();
            for d in held {
                self.offer(slot, d);
            }
        }
    }
}

/// The chunk index of one replica.
#[derive(Debug)]
pub struct Packs {
    store: Store,
    index: RwLock<Index>,
    /// When the last completed listing started.
    listed: tokio::sync::Mutex<Option<Instant>>,
}

impl Packs {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            index: RwLock::default(),
            listed: tokio::sync::Mutex::new(None),
        }
    }

    pub fn locate(&self, digest: &Digest) -> Option<Location> {
        self.index.read().expect("index lock").location(digest)
    }

    /// Every indexed pack.
    pub fn all(&self) -> Vec<Pack> {
        self.index
            .read()
            .expect("index lock")
            .slots
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Chunks indexed.
    pub fn chunk_count(&self) -> usize {
        self.index.read().expect("index lock").chunks.len()
    }

    /// Records a pack this replica just stored.
    pub fn insert(&self, pack: Pack) {
        self.index.write().expect("index lock").add(pack);
    }

    /// Makes sure a listing that started at or after `since` has been applied.
    pub async fn refresh(&self, since: Instant) -> Result<(), StoreError> {
        let mut listed = self.listed.lock().await;
        if listed.is_some_and(|at| at >= since) {
            return Ok(());
        }
        let started = Instant::now();
        let objects = self.store.list(keys::PACKS).await?;
        let mut packs = HashMap::new();
        let mut indexes = HashSet::new();
        for o in objects {
            let key = o.key.as_ref();
            if key.ends_with(".pack") {
                packs.insert(o.key.clone(), o);
            } else if key.ends_with(".idx") {
                indexes.insert(o.key);
            }
        }
        let (known, stale): (HashSet<Arc<Path>>, Vec<Pack>) = {
            let index = self.index.read().expect("index lock");
            let stale = index
                .slots
                .iter()
                .flatten()
                .filter(|p| packs.get(&*p.key).is_some_and(|o| o.last_modified != p.last_modified))
                .cloned()
                .collect();
            (index.by_key.keys().cloned().collect(), stale)
        };
        // Packs whose index (or body) vanished are dropped; new indexed packs are read.
        let gone: HashSet<Arc<Path>> = known
            .iter()
            .filter(|k| !packs.contains_key(&***k) || !indexes.contains(&keys::index(k)))
            .cloned()
            .collect();
        let new: Vec<_> = packs
            .values()
            .filter(|o| !known.contains(&o.key) && indexes.contains(&keys::index(&o.key)))
            .cloned()
            .collect();
        let read: Vec<Pack> = futures::stream::iter(new)
            .map(|o| async move {
                let idx = keys::index(&o.key);
                let bytes = match self.store.get(&idx).await {
                    Ok(obj) => obj.bytes,
                    // Collected since the listing.
                    Err(StoreError::NotFound(_)) => return Ok(None),
                    Err(e) => return Err(e),
                };
                match decode_index(&bytes) {
                    Ok(entries) => Ok(Some(Pack {
                        key: Arc::new(o.key),
                        last_modified: o.last_modified,
                        size: o.size,
                        entries: entries.into(),
                    })),
                    Err(e) => {
                        tracing::error!(index = %idx, error = %e, "unreadable pack index skipped");
                        Ok(None)
                    }
                }
            })
            .buffer_unordered(16)
            .try_filter_map(|p| async move { Ok(p) })
            .try_collect()
            .await?;
        {
            let mut index = self.index.write().expect("index lock");
            index.remove(&gone);
            // A pack rewritten since (its time refreshed) is re-added with its new time.
            for mut p in stale {
                if let Some(o) = packs.get(&*p.key) {
                    p.last_modified = o.last_modified;
                    index.add(p);
                }
            }
            for p in read {
                index.add(p);
            }
        }
        *listed = Some(started);
        Ok(())
    }

    /// Which of `digests` no pack holds, after a listing that started no earlier than
    /// `since` when some are not known.
    pub async fn unknown(&self, digests: &[Digest], since: Instant) -> Result<Vec<Digest>, StoreError> {
        let lookup = |this: &Self| {
            let index = this.index.read().expect("index lock");
            digests
                .iter()
                .filter(|d| !index.chunks.contains_key(d))
                .copied()
                .collect::<Vec<_>>()
        };
        let missing = lookup(self);
        if missing.is_empty() {
            return Ok(missing);
        }
        self.refresh(since).await?;
        Ok(lookup(self))
    }

    /// Which of `digests` are not stored, asked of the store itself: what this replica does
    /// not know after a listing newer than the call, and, for what it knows, whether each
    /// pack holding them still exists (one HEAD per pack). A pack that garbage collection
    /// removed since this replica read its index is found gone, and the store listed again.
    /// This is the check before a manifest is accepted: a stale index must not let a manifest
    /// name a chunk that is no longer there.
    pub async fn confirm(&self, digests: &[Digest]) -> Result<Vec<Digest>, StoreError> {
        let asked = Instant::now();
        let unknown = self.unknown(digests, asked).await?;
        let packs: HashSet<Arc<Path>> = digests.iter().filter_map(|d| self.locate(d)).map(|l| l.pack).collect();
        let present: Vec<bool> = futures::stream::iter(packs)
            .map(|p| async move { self.store.exists(&p).await })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        if present.iter().all(|p| *p) {
            return Ok(unknown);
        }
        self.refresh(Instant::now()).await?;
        self.unknown(digests, asked).await
    }

    /// The stored frame of `digest`, or `None` when no pack holds it.
    pub async fn frame(&self, digest: &Digest) -> Result<Option<(Entry, Bytes)>, StoreError> {
        let asked = Instant::now();
        for attempt in 0..2 {
            let found = match self.locate(digest) {
                Some(l) => Some(l),
                None => {
                    self.refresh(asked).await?;
                    self.locate(digest)
                }
            };
            let Some(location) = found else { return Ok(None) };
            match self.store.get_range(&location.pack, location.entry.range()).await {
                Ok(bytes) => return Ok(Some((location.entry, bytes))),
                // Rewritten by garbage collection since it was indexed: list again, once.
                Err(StoreError::NotFound(_)) if attempt == 0 => self.refresh(Instant::now()).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
