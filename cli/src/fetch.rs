//! Fetching artifacts: resolve and verify a manifest, then stream its chunks from the cache
//! and the registry, verified, into a tarball or a safe extraction.
//!
//! Chunks go in windows of [`WINDOW`], [`JOBS`] windows in flight: the cached ones are read
//! locally, the rest asked for in one batch. Runs of missing chunks that lie where the cached
//! artifact closest to this one has chunks of its own are asked for as deltas against those
//! (SPEC.md §4.2), at the same time. Every chunk is verified before a byte of it is written,
//! and the whole stream at the end; frames enter the cache as windows verify, so the next
//! version fetches only what changed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rel_format::chunk::{ChunkRef, Reassembler, compress_chunk, decompress_chunks};
use rel_format::delta::Aligner;
use rel_format::manifest::{Kind, Manifest};
use rel_format::pack::parse_pack;
use rel_format::signing::{Expected, verify};
use rel_format::{TrustedKeys, Version};

use crate::cache::PackCache;
use crate::client::Client;
use crate::progress::Progress;
use crate::settings::Settings;

/// Batches of chunks fetched at once: enough to hide the registry's latency (6 MiB in flight
/// per round trip), few enough that a 1 GiB pull stays under 100 MiB. With 8 it peaked at 94
/// to 101 MiB, with 6 at 92 to 93, over loopback at the same speed.
pub const JOBS: usize = 6;

/// Bytes this process has fetched from registries, whatever fetched them: an upgrade step
/// reports what it cost on the wire as the difference across it.
static FETCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes fetched from registries by this process so far.
pub fn fetched_so_far() -> u64 {
    FETCHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a transfer took from the registry (the rest came from the cache).
#[derive(Debug, Default)]
pub struct Transfer {
    pub fetched_chunks: usize,
    pub fetched_bytes: u64,
    /// Of those, chunks that came as deltas against cached ones.
    pub delta_chunks: usize,
    /// For an extraction, every member in the order of the stream.
    pub members: Option<crate::fs::MemberLog>,
}

/// Chunks per window: the cached ones are read locally, the rest asked for in one request
/// (about 1 MiB compressed).
pub const WINDOW: usize = 128;

/// Most bytes of chunks asked for in one delta: a window's missing run is cut there, so each
/// costs the registry one compression of at most this much against at most 4 MiB.
const DELTA_WANT: u64 = 1 << 20;

/// What deltas are computed against: the chunks, in order, of the cached artifact closest to
/// the one being fetched.
struct DeltaBase {
    aligner: Aligner,
    chunks: Vec<ChunkRef>,
}

/// Streams the canonical tar of `manifest` into `out`. The chunks go in windows, `jobs` at a
/// time and kept in order: a chunk comes from the cache when an earlier artifact has it, the
/// rest of a window in one batch from the registry. Every chunk is verified before a byte of
/// it is written, and the whole stream at the end. The chunks' frames enter the cache too, so
/// the next version fetches only what changed.
pub async fn stream_tar<W: Write + Send + 'static>(
    client: &Client,
    cache: &PackCache,
    manifest: &Manifest,
    jobs: usize,
    deltas: bool,
    progress: &Progress,
    out: W,
) -> Result<(W, Transfer)> {
    let index = Arc::new(cache.index());
    let base = deltas
        .then(|| cache.closest(&manifest.tar.chunks))
        .flatten()
        .map(|chunks| {
            Arc::new(DeltaBase {
                aligner: Aligner::new(&chunks, &manifest.tar.chunks),
                chunks,
            })
        });
    // Frames enter the cache as their window is verified, in whatever order windows finish
    // (a pack's order is free): a window then holds its batch no longer than it takes to
    // decompress it.
    let cache_out = Arc::new(std::sync::Mutex::new(cache.begin(&manifest.tar)?));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(ChunkRef, Vec<u8>)>>(2);
    let stream = manifest.tar.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<W> {
        let mut r = Reassembler::new(&stream, out);
        while let Some(window) = rx.blocking_recv() {
            for (c, data) in window {
                // Verified when it was decompressed.
                r.push_verified(&c, &data)?;
            }
        }
        Ok(r.finish()?)
    });
    let mut transfer = Transfer::default();
    let mut windows = futures::stream::iter(manifest.tar.chunks.chunks(WINDOW).map(<[ChunkRef]>::to_vec).enumerate())
        .map(|(n, window)| {
            let (index, cache, cache_out) = (index.clone(), cache.clone(), cache_out.clone());
            let at = Place {
                start: n * WINDOW,
                base: base.clone(),
            };
            fetch_window(client, index, cache, cache_out, window, at)
        })
        .buffered(jobs.max(1));
    let mut failure = None;
    while let Some(item) = windows.next().await {
        match item {
            Ok((window, fetched)) => {
                transfer.fetched_chunks += fetched.fetched_chunks;
                transfer.fetched_bytes += fetched.fetched_bytes;
                transfer.delta_chunks += fetched.delta_chunks;
                FETCHED.fetch_add(fetched.fetched_bytes, std::sync::atomic::Ordering::Relaxed);
                progress.inc(window.iter().map(|(c, _)| c.length).sum());
                if tx.send(window).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(windows);
    drop(tx);
    let written = writer.await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let out = written?;
    // The whole stream verified: the cache may keep it.
    let cache_out = Arc::into_inner(cache_out)
        .expect("every window is done")
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a cache writer panicked"))?;
    cache_out.commit().context("cannot keep the release in the cache")?;
    Ok((out, transfer))
}

type Shared<T> = Arc<std::sync::Mutex<T>>;

/// Where a window lies: its first chunk's index in the stream, and what deltas are computed
/// against, if anything.
struct Place {
    start: usize,
    base: Option<Arc<DeltaBase>>,
}

/// A delta to ask for: the target chunks and the cached chunks, concatenated, it is against.
struct Delta {
    want: Vec<ChunkRef>,
    base: Vec<ChunkRef>,
    base_data: Vec<u8>,
}

/// The chunks of one window, in order, each verified: from the cache where it has them, the
/// rest from the registry, as deltas against cached chunks where [`Aligner`] places them and
/// in one batch otherwise. Their frames go to `cache_out`.
async fn fetch_window(
    client: &Client,
    index: Arc<std::collections::HashMap<rel_format::Digest, crate::cache::Location>>,
    cache: PackCache,
    cache_out: Shared<crate::cache::CacheWriter>,
    window: Vec<ChunkRef>,
    at: Place,
) -> Result<(Vec<(ChunkRef, Vec<u8>)>, Transfer)> {
    let (window, cached, deltas) = tokio::task::spawn_blocking(move || {
        let located: Vec<_> = window.iter().filter_map(|c| Some((index.get(&c.digest)?, c))).collect();
        let mut read = cache.read_many(&located).into_iter();
        let cached: Vec<Option<(Vec<u8>, Vec<u8>)>> = window
            .iter()
            .map(|c| index.contains_key(&c.digest).then(|| read.next()).flatten().flatten())
            .collect();
        let deltas = plan_deltas(&at, &window, &cached, |chunks| {
            let located: Option<Vec<_>> = chunks.iter().map(|c| Some((index.get(&c.digest)?, c))).collect();
            cache
                .read_many(&located?)
                .into_iter()
                .map(|read| read.map(|(d, _)| d))
                .collect()
        });
        (window, cached, deltas)
    })
    .await?;
    let mut wanted = Vec::new();
    let mut asked: std::collections::HashSet<_> = deltas.iter().flat_map(|d| d.want.iter().map(|c| c.digest)).collect();
    for (c, data) in window.iter().zip(&cached) {
        if data.is_none() && asked.insert(c.digest) {
            wanted.push(c.clone());
        }
    }
    // The batch and the deltas at once. A delta the registry does not give (one older than
    // deltas answers 404; a busy or failing one, or the network, may fail it) becomes a
    // second batch of its chunks; a delta it gives is checked like any chunk.
    let digests: Vec<_> = wanted.iter().map(|c| c.digest).collect();
    let (body, frames) = futures::future::join(
        get_batch(client, &digests),
        futures::future::join_all(deltas.iter().map(|d| async move {
            let base: Vec<_> = d.base.iter().map(|c| c.digest).collect();
            let want: Vec<_> = d.want.iter().map(|c| c.digest).collect();
            client
                .get_delta(&base, &want, d.want.iter().map(|c| c.length).sum())
                .await
        })),
    )
    .await;
    let body = body?;
    let mut fallback = Vec::new();
    let mut answered = Vec::new();
    for (delta, frame) in deltas.into_iter().zip(frames) {
        match frame {
            Ok(frame) => answered.push((delta, frame)),
            Err(e) => {
                tracing::info!("a delta was not given ({e}); its chunks are fetched whole");
                fallback.extend(delta.want)
            }
        }
    }
    let fallback_body = get_batch(client, &fallback.iter().map(|c| c.digest).collect::<Vec<_>>()).await?;
    tokio::task::spawn_blocking(move || {
        let mut fetched = std::collections::HashMap::new();
        let mut transfer = Transfer::default();
        let mut frames: Vec<(&ChunkRef, std::borrow::Cow<'_, [u8]>)> = Vec::new();
        for (wanted, body) in [(&wanted, &body), (&fallback, &fallback_body)] {
            if wanted.is_empty() {
                continue;
            }
            let records = parse_pack(body).context("the registry sent a malformed batch of chunks")?;
            if records.len() != wanted.len() {
                bail!(
                    "the registry sent {} chunks where {} were asked for",
                    records.len(),
                    wanted.len()
                );
            }
            let sent: Vec<(&ChunkRef, &[u8])> = wanted
                .iter()
                .zip(&records)
                .map(|(c, record)| (c, &body[record.offset as usize..][..record.size as usize]))
                .collect();
            for ((c, frame), data) in sent.iter().zip(decompress_chunks(&sent)) {
                let data = data.with_context(|| format!("the registry sent a bad chunk {}", c.digest))?;
                transfer.fetched_chunks += 1;
                transfer.fetched_bytes += frame.len() as u64;
                fetched.insert(c.digest, data);
                frames.push((c, (*frame).into()));
            }
        }
        for (delta, frame) in &answered {
            let chunks = rel_format::delta::decode(&delta.base_data, frame, &delta.want)
                .context("the registry sent a bad delta")?;
            transfer.fetched_chunks += chunks.len();
            transfer.delta_chunks += chunks.len();
            transfer.fetched_bytes += frame.len() as u64;
            for (c, data) in delta.want.iter().zip(chunks) {
                // The cache keeps frames: this chunk's own.
                frames.push((c, compress_chunk(&data)?.into()));
                fetched.insert(c.digest, data);
            }
        }
        frames.extend(
            window
                .iter()
                .zip(&cached)
                .filter_map(|(c, d)| d.as_ref().map(|(_, frame)| (c, frame.as_slice().into()))),
        );
        {
            let mut out = cache_out
                .lock()
                .map_err(|_| anyhow::anyhow!("a cache writer panicked"))?;
            for (c, frame) in frames {
                out.add(c, &frame).context("cannot write the release into the cache")?;
            }
        }
        // A chunk the window holds twice is copied; the last use takes it.
        let mut uses: std::collections::HashMap<rel_format::Digest, usize> = std::collections::HashMap::new();
        for (c, data) in window.iter().zip(&cached) {
            if data.is_none() {
                *uses.entry(c.digest).or_default() += 1;
            }
        }
        let window = window
            .iter()
            .zip(cached)
            .map(|(c, data)| {
                let data = match data {
                    Some((data, _)) => data,
                    None => {
                        let left = uses.get_mut(&c.digest).expect("counted");
                        *left -= 1;
                        if *left == 0 {
                            fetched.remove(&c.digest)
                        } else {
                            fetched.get(&c.digest).cloned()
                        }
                        .expect("every uncached chunk was fetched")
                    }
                };
                (c.clone(), data)
            })
            .collect();
        Ok((window, transfer))
    })
    .await?
}

/// The deltas for a window's missing chunks, each with its base read from the cache; a piece
/// whose base the cache no longer has whole is left to the batch.
fn plan_deltas(
    at: &Place,
    window: &[ChunkRef],
    cached: &[Option<(Vec<u8>, Vec<u8>)>],
    read: impl Fn(&[ChunkRef]) -> Option<Vec<Vec<u8>>>,
) -> Vec<Delta> {
    let Some(base) = &at.base else { return Vec::new() };
    let range = at.start..at.start + window.len();
    base.aligner
        .plan(range, DELTA_WANT, |i| cached[i - at.start].is_none())
        .into_iter()
        .filter_map(|piece| {
            let chunks = &base.chunks[piece.base];
            let base_data = read(chunks)?.concat();
            Some(Delta {
                want: window[piece.want.start - at.start..piece.want.end - at.start].to_vec(),
                base: chunks.to_vec(),
                base_data,
            })
        })
        .collect()
}

/// The chunks `digests` in one batch (nothing for none), asked once more when the answer is
/// cut short (a pack collected while it was read).
async fn get_batch(client: &Client, digests: &[rel_format::Digest]) -> Result<bytes::Bytes> {
    if digests.is_empty() {
        return Ok(bytes::Bytes::new());
    }
    Ok(match client.get_chunks(digests).await {
        Err(crate::client::ClientError::Transport { .. }) => client.get_chunks(digests).await?,
        other => other?,
    })
}

/// Where a pulled release goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A tarball; the extension picks the format.
    File(&'a Path),
    /// A new directory, extracted safely.
    Dir(&'a Path),
}

/// A release or upgrade whose manifest verified.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub signer: String,
}

/// Fetches from one registry through the local cache, `jobs` batches at once.
#[derive(Debug, Clone)]
pub struct Fetcher {
    pub client: Client,
    cache_dir: PathBuf,
    /// The cache, opened (and swept of what interrupted runs left) once.
    cache: std::sync::OnceLock<PackCache>,
    jobs: usize,
    quiet: bool,
    deltas: bool,
}

impl Fetcher {
    pub fn new(s: &Settings, jobs: usize) -> Self {
        Self {
            client: s.client(),
            cache_dir: s.cache_dir.clone(),
            cache: std::sync::OnceLock::new(),
            jobs,
            quiet: s.quiet,
            deltas: true,
        }
    }

    /// Fetches changed chunks whole, never as deltas against cached ones.
    pub fn without_deltas(mut self) -> Self {
        self.deltas = false;
        self
    }

    /// The release manifest of `name` `version`, verified to be exactly that release, signed
    /// by a trusted key.
    pub async fn release(&self, trusted: &TrustedKeys, name: &str, version: &Version) -> Result<Verified> {
        let bytes = self.client.release_manifest(name, version).await?;
        let expected = Expected {
            name: name.to_owned(),
            version: version.clone(),
            kind: Kind::Release,
            from: None,
        };
        let (manifest, signer) = verify(&bytes, trusted, &expected).context("refusing the manifest")?;
        Ok(Verified { manifest, signer })
    }

    /// The manifest of the upgrade of `name` to `to` that starts from `from`, verified.
    pub async fn upgrade(&self, trusted: &TrustedKeys, name: &str, to: &Version, from: &Version) -> Result<Verified> {
        let bytes = self.client.upgrade_manifest(name, to, from).await?;
        let expected = Expected {
            name: name.to_owned(),
            version: to.clone(),
            kind: Kind::Upgrade,
            from: Some(from.clone()),
        };
        let (manifest, signer) =
            verify(&bytes, trusted, &expected).with_context(|| format!("refusing the upgrade {from} -> {to}"))?;
        Ok(Verified { manifest, signer })
    }

    /// The local cache.
    pub fn cache(&self) -> Result<PackCache> {
        if let Some(cache) = self.cache.get() {
            return Ok(cache.clone());
        }
        let cache = PackCache::open(&self.cache_dir)
            .with_context(|| format!("cannot open the cache `{}`", self.cache_dir.display()))?;
        Ok(self.cache.get_or_init(|| cache).clone())
    }

    /// Streams the artifact of a verified manifest into `out`, each chunk verified before a
    /// byte of it is written and the whole stream at the end: what reached `out` is only the
    /// artifact's if this returns `Ok`.
    pub async fn stream<W: Write + Send + 'static>(&self, m: &Manifest, out: W, label: &str) -> Result<(W, Transfer)> {
        let cache = self.cache()?;
        let progress = Progress::bytes(m.tar.length, label, self.quiet);
        let (out, transfer) = stream_tar(&self.client, &cache, m, self.jobs, self.deltas, &progress, out).await?;
        progress.finish();
        tracing::info!(
            name = %m.name,
            version = %m.version,
            chunks = m.tar.chunks.len(),
            fetched_chunks = transfer.fetched_chunks,
            fetched_bytes = transfer.fetched_bytes,
            "{label}: {} of {} chunks came from the registry, the rest from the cache",
            transfer.fetched_chunks,
            m.tar.chunks.len()
        );
        Ok((out, transfer))
    }

    /// Writes the artifact of a verified manifest to `target`. Nothing appears there unless
    /// every chunk and the whole stream verified. `label` names the transfer on progress bars.
    pub async fn write(&self, m: &Manifest, target: Target<'_>, label: &str) -> Result<Transfer> {
        match target {
            Target::File(output) => {
                let file = crate::fs::TarFile::create(output)?;
                let (file, transfer) = self.stream(m, file, label).await?;
                file.commit()?;
                Ok(transfer)
            }
            Target::Dir(into) => {
                // Extraction reads the stream as it is verified; it renames its work into place
                // only once the whole stream has verified.
                let (reader, writer) = crate::fs::pipe();
                let (confirm_tx, confirm_rx) = std::sync::mpsc::channel::<bool>();
                let into2 = into.to_owned();
                let extraction = tokio::task::spawn_blocking(move || {
                    crate::fs::extract_confirmed(reader, &into2, rel_format::archive::Limits::default(), || {
                        confirm_rx.recv().unwrap_or(false)
                    })
                });
                let streamed = self.stream(m, writer, label).await.and_then(|(mut w, t)| {
                    w.flush()?;
                    Ok(t)
                });
                let _ = confirm_tx.send(streamed.is_ok());
                let extracted = extraction.await?;
                // When extraction stops early the writer only sees a broken pipe: the extraction's
                // own error is the one to report.
                let report = extracted?;
                Ok(Transfer {
                    members: Some(report.members),
                    ..streamed?
                })
            }
        }
    }
}
