//! What a release name holds, read from the store and cached.
//!
//! The registry keeps no state of its own, so every replica builds this view from the
//! bucket: a listing of `manifests/<name>/`, `yanked/<name>/` and `channels/<name>/`, plus a summary of each
//! manifest. Manifests are write-once, so a summary read once is good until it is evicted;
//! only the listings are refreshed, at most every `ttl` (and at once after this replica's own
//! writes). A replica therefore sees another replica's push within `ttl`.
//!
//! Both caches are bounded (`quick_cache`, S3-FIFO eviction): [`MAX_NAMES`] views and
//! [`MAX_SUMMARIES`] summaries, whatever names clients ask about. No lock is held while the
//! store is read: a view is loaded once however many requests want it at the same time
//! (single-flight per name, each name on its own), and other names are served meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rel_format::Version;
use rel_format::manifest::{Kind, Manifest};
use rel_format::signing::SignedManifest;
use rel_format::upgrade_path::{ArtifactSummary, UpgradeGraph};
use std::sync::Mutex;

use tokio::sync::OnceCell;

use crate::keys;
use crate::store::{Store, StoreError};

/// A yank marker's contents (SPEC.md §7.1).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct YankMarker {
    pub yanked_at: rel_format::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the catalog keeps of one manifest.
#[derive(Debug, Clone)]
pub struct Summary {
    pub key: String,
    /// Yanked upgrade artifacts are listed but never part of a path.
    pub yanked: bool,
    pub kind: Kind,
    pub version: Version,
    pub from: Vec<Version>,
    pub bytes: u64,
    pub chunks: u64,
    pub created: rel_format::Timestamp,
    /// The manifest's digest.
    pub digest: rel_format::Digest,
}

impl Summary {
    pub fn of(key: String, m: &Manifest) -> Self {
        Summary {
            key,
            yanked: false,
            kind: m.kind,
            version: m.version.clone(),
            from: m.from.clone(),
            bytes: m.tar.length,
            chunks: m.tar.chunks.len() as u64,
            created: m.created,
            digest: m.digest(),
        }
    }
}

/// The view of one release name.
#[derive(Debug)]
pub struct NameView {
    loaded: Instant,
    /// By version, in rel's order.
    pub versions: BTreeMap<Version, Vec<Arc<Summary>>>,
    pub yanked: Vec<Version>,
    /// The reasons given for yanked versions, where one was.
    pub yank_reasons: BTreeMap<Version, String>,
    /// Where the channels point, as listed with the rest (listings and the web view show
    /// them; a host reads the pointer itself, never this).
    pub channels: Vec<rel_format::channel::ChannelPointer>,
    pub graph: UpgradeGraph,
}

impl NameView {
    pub fn is_yanked(&self, v: &Version) -> bool {
        self.yanked.contains(v)
    }
}

/// Most release names whose view a replica keeps.
pub const MAX_NAMES: usize = 4096;
/// Most manifest summaries a replica keeps.
pub const MAX_SUMMARIES: usize = 100_000;

/// A view being loaded, or loaded: every request for the name shares it.
type Slot = Arc<OnceCell<Arc<NameView>>>;

pub struct Catalog {
    store: Store,
    ttl: Duration,
    /// Held only to find or replace a slot, never across the store's I/O.
    views: Mutex<quick_cache::unsync::Cache<String, Slot>>,
    /// By key and e-tag: manifests are write-once, except a yanked upgrade replaced.
    summaries: quick_cache::sync::Cache<ObjectId, Arc<Summary>>,
    /// The bytes a host running one release fetches to synthesise the upgrade to another:
    /// computed from both (immutable) release manifests once, then remembered.
    deltas: quick_cache::sync::Cache<(String, Version, Version), u64>,
    /// What the web view shows of each release artifact, read from its manifest once.
    releases: quick_cache::sync::Cache<(String, Version), Arc<ReleaseFacts>>,
    /// What changed between two releases, module by module (the web view): read from both
    /// releases' chunks once a pair, one pair at a time.
    changes: quick_cache::sync::Cache<(String, Version, Version), Arc<crate::routes::changes::Changes>>,
    changes_turn: tokio::sync::Mutex<()>,
}

/// Most module comparisons a replica remembers.
pub const MAX_CHANGES: usize = 256;

/// A release artifact as the web view shows it: read from its (immutable) manifest once.
#[derive(Debug, Clone)]
pub struct ReleaseFacts {
    pub bytes: u64,
    /// The names of the keys that signed it.
    pub signers: Vec<String>,
    pub apps: Vec<rel_format::manifest::AppRef>,
}

/// Most synthesised deltas a replica remembers.
pub const MAX_DELTAS: usize = 10_000;

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("store", &self.store.url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A stored object's key and e-tag.
type ObjectId = (String, Option<String>);

impl Catalog {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            views: Mutex::new(quick_cache::unsync::Cache::new(MAX_NAMES)),
            summaries: quick_cache::sync::Cache::new(MAX_SUMMARIES),
            deltas: quick_cache::sync::Cache::new(MAX_DELTAS),
            releases: quick_cache::sync::Cache::new(MAX_DELTAS),
            changes: quick_cache::sync::Cache::new(MAX_CHANGES),
            changes_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The facts of release `version` of `name`, read by `read` the first time (and whenever
    /// they were evicted); `None` when it has no release artifact.
    pub async fn release_facts<F, Fut, E>(
        &self,
        name: &str,
        version: &Version,
        read: F,
    ) -> Result<Option<Arc<ReleaseFacts>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<ReleaseFacts>, E>>,
    {
        let key = (name.to_owned(), version.clone());
        if let Some(facts) = self.releases.get(&key) {
            return Ok(Some(facts));
        }
        let Some(facts) = read().await? else { return Ok(None) };
        let facts = Arc::new(facts);
        self.releases.insert(key, facts.clone());
        Ok(Some(facts))
    }

    /// The delta of `name` from `from` to `to`, computed by `compute` the first time it is
    /// asked for (and whenever it was evicted).
    pub async fn delta<F, Fut, E>(&self, name: &str, from: &Version, to: &Version, compute: F) -> Result<u64, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<u64, E>>,
    {
        let key = (name.to_owned(), from.clone(), to.clone());
        if let Some(bytes) = self.deltas.get(&key) {
            return Ok(bytes);
        }
        let bytes = compute().await?;
        self.deltas.insert(key, bytes);
        Ok(bytes)
    }

    /// What changed in `name` from `from` to `to` (the web view), computed by `compute` the
    /// first time, one computation at a time (each reads two releases whole); a `None` from
    /// `compute` (nothing to compare) is not remembered.
    pub(crate) async fn changes<F, Fut, E>(
        &self,
        name: &str,
        from: &Version,
        to: &Version,
        compute: F,
    ) -> Result<Option<Arc<crate::routes::changes::Changes>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<crate::routes::changes::Changes>, E>>,
    {
        let key = (name.to_owned(), from.clone(), to.clone());
        if let Some(known) = self.changes.get(&key) {
            return Ok(Some(known));
        }
        let _turn = self.changes_turn.lock().await;
        if let Some(known) = self.changes.get(&key) {
            return Ok(Some(known));
        }
        let Some(computed) = compute().await? else {
            return Ok(None);
        };
        let computed = Arc::new(computed);
        self.changes.insert(key, computed.clone());
        Ok(Some(computed))
    }

    /// Forgets the view of `name`, after a write by this replica.
    pub async fn invalidate(&self, name: &str) {
        self.views.lock().expect("not poisoned").remove(name);
    }

    /// Remembers a manifest this replica just stored.
    pub fn remember(&self, summary: Summary, e_tag: Option<String>) {
        self.summaries.insert((summary.key.clone(), e_tag), Arc::new(summary));
    }

    /// The current view of `name` (empty when nothing is stored under it).
    pub async fn view(&self, name: &str) -> Result<Arc<NameView>, StoreError> {
        let slot: Slot = {
            let mut views = self.views.lock().expect("not poisoned");
            match views.get(name) {
                // Loading, or loaded and fresh: share it.
                Some(slot) if slot.get().is_none_or(|v| v.loaded.elapsed() < self.ttl) => slot.clone(),
                _ => {
                    let slot = Slot::default();
                    views.insert(name.to_owned(), slot.clone());
                    slot
                }
            }
        };
        slot.get_or_try_init(|| async { Ok(Arc::new(self.load(name).await?)) })
            .await
            .cloned()
    }

    async fn load(&self, name: &str) -> Result<NameView, StoreError> {
        let listed = self.store.list(&keys::manifests_of(name)).await?;
        let yanked_upgrades: std::collections::HashSet<String> = self
            .store
            .list(&keys::yanked_upgrades_of(name))
            .await?
            .into_iter()
            .filter_map(|o| keys::manifest_of_yanked_upgrade(&o.key).map(|k| k.to_string()))
            .collect();
        let mut versions: BTreeMap<Version, Vec<Arc<Summary>>> = BTreeMap::new();
        for obj in listed {
            let key = obj.key.to_string();
            let Some((key_name, _, _)) = keys::parse_manifest(&obj.key) else {
                continue;
            };
            if key_name != name {
                continue;
            }
            let cache_key = (key.clone(), obj.e_tag.clone());
            let cached = self.summaries.get(&cache_key);
            let summary = match cached {
                Some(s) => s,
                None => {
                    let bytes = self.store.get(&obj.key).await?.bytes;
                    match SignedManifest::parse_unverified(&bytes) {
                        Ok(env) => {
                            let s = Arc::new(Summary::of(key.clone(), &env.signed));
                            self.summaries.insert(cache_key, s.clone());
                            s
                        }
                        Err(e) => {
                            tracing::error!(key, error = %e, "stored manifest does not parse; skipped");
                            continue;
                        }
                    }
                }
            };
            let summary = if yanked_upgrades.contains(&summary.key) {
                Arc::new(Summary {
                    yanked: true,
                    ..(*summary).clone()
                })
            } else {
                summary
            };
            versions.entry(summary.version.clone()).or_default().push(summary);
        }
        let mut channels = Vec::new();
        for obj in self.store.list(&keys::channels_of(name)).await? {
            let bytes = self.store.get(&obj.key).await?.bytes;
            match rel_format::channel::SignedChannel::parse_unverified(&bytes) {
                Ok(env) => channels.push(env.signed),
                Err(e) => tracing::error!(key = %obj.key, error = %e, "stored channel pointer does not parse"),
            }
        }
        let mut yanked = Vec::new();
        let mut yank_reasons = BTreeMap::new();
        for obj in self.store.list(&keys::yanked_of(name)).await? {
            let Some(version) = keys::parse_yank(&obj.key) else {
                continue;
            };
            // Markers are small JSON written by this registry; one without a reason (or
            // unreadable) is still a yank.
            if let Ok(got) = self.store.get(&obj.key).await
                && let Ok(marker) = serde_json::from_slice::<YankMarker>(&got.bytes)
                && let Some(reason) = marker.reason
            {
                yank_reasons.insert(version.clone(), reason);
            }
            yanked.push(version);
        }
        let graph = UpgradeGraph::new(
            versions
                .values()
                .flatten()
                .filter(|s| !s.yanked)
                .map(|s| ArtifactSummary {
                    kind: s.kind,
                    version: s.version.clone(),
                    from: s.from.clone(),
                    bytes: s.bytes,
                }),
            yanked.iter().cloned(),
        );
        Ok(NameView {
            loaded: Instant::now(),
            versions,
            yanked,
            yank_reasons,
            channels,
            graph,
        })
    }
}
