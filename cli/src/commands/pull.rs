//! `rel pull`: resolve, verify, fetch only what the cache lacks, verify again, write atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rel_format::channel::{ChannelError, Freshness, SignedChannel};
use rel_format::chunk::{ChunkRef, Reassembler, decompress_chunk};
use rel_format::manifest::{Kind, Manifest};
use rel_format::signing::{Expected, verify};
use rel_format::{TrustedKeys, Version};
use serde::Serialize;

use crate::cache::TarCache;
use crate::cli::PullArgs;
use crate::client::Client;
use crate::progress::{Progress, human};
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: Version,
    signer: String,
    bytes: u64,
    chunks: usize,
    fetched_chunks: usize,
    fetched_bytes: u64,
    written: PathBuf,
}

/// The highest channel sequence this host has accepted, per registry, release and channel.
#[derive(Debug)]
pub(crate) struct ChannelState {
    path: PathBuf,
    seen: BTreeMap<String, u64>,
}

impl ChannelState {
    pub(crate) fn load(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join("channels.json");
        let seen = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("corrupt channel state `{}`", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        Ok(Self { path, seen })
    }

    fn key(registry: &str, name: &str, channel: &str) -> String {
        format!("{registry} {name} {channel}")
    }

    pub(crate) fn get(&self, registry: &str, name: &str, channel: &str) -> Option<u64> {
        self.seen.get(&Self::key(registry, name, channel)).copied()
    }

    pub(crate) fn record(&mut self, registry: &str, name: &str, channel: &str, seq: u64) -> Result<()> {
        let entry = self.seen.entry(Self::key(registry, name, channel)).or_default();
        *entry = (*entry).max(seq);
        let dir = self.path.parent().expect("state file has a directory");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(&self.seen)?)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Resolves a channel to a version, refusing rollbacks and expired pointers.
pub(crate) async fn resolve_channel(
    s: &Settings,
    client: &Client,
    trusted: &TrustedKeys,
    name: &str,
    channel: &str,
    allow_downgrade: bool,
) -> Result<(Version, u64)> {
    let bytes = client.channel(name, channel).await?;
    let (env, _) =
        SignedChannel::verify_signature(&bytes, trusted).context("the channel pointer is not trustworthy")?;
    let state = ChannelState::load(&s.state_dir)?;
    let seen = state.get(client.base(), name, channel);
    let now = super::push::now_rfc3339();
    match env.signed.check_fresh(name, channel, Freshness { seen, now: &now }) {
        Ok(()) => {}
        Err(e @ (ChannelError::Rollback { .. } | ChannelError::Expired { .. })) if allow_downgrade => {
            crate::warn(&format!("{e}; continuing because of --allow-downgrade"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((env.signed.version.clone(), env.signed.sequence))
}

/// What a transfer took from the registry (the rest came from the cache).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Transfer {
    pub fetched_chunks: usize,
    pub fetched_bytes: u64,
}

/// Writes to two writers.
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Streams the canonical tar of `manifest` into `out`. Each chunk comes from the cache when an
/// earlier artifact has it, else from the registry, `jobs` fetches at a time, kept in order;
/// every chunk is verified before a byte of it is written, and the whole stream at the end.
/// The tar enters the cache too, so the next version fetches only what changed.
pub(crate) async fn stream_tar<W: Write + Send + 'static>(
    client: &Client,
    cache: &TarCache,
    manifest: &Manifest,
    jobs: usize,
    progress: &Progress,
    out: W,
) -> Result<(W, Transfer)> {
    let index = Arc::new(cache.index());
    let cache_writer = cache.begin(&manifest.tar)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(ChunkRef, Vec<u8>)>(jobs.max(1) * 4);
    let stream = manifest.tar.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<(W, crate::cache::CacheWriter)> {
        let mut r = Reassembler::new(&stream, Tee(out, cache_writer));
        while let Some((c, data)) = rx.blocking_recv() {
            r.push(&c, &data)?;
        }
        let Tee(out, cache_writer) = r.finish()?;
        Ok((out, cache_writer))
    });
    let mut transfer = Transfer::default();
    let mut chunks = futures::stream::iter(manifest.tar.chunks.iter().cloned())
        .map(|c| {
            let (index, cache) = (index.clone(), cache.clone());
            async move {
                if let Some(loc) = index.get(&c.digest).cloned() {
                    let c2 = c.clone();
                    if let Some(data) = tokio::task::spawn_blocking(move || cache.read(&loc, &c2)).await? {
                        return Ok::<_, anyhow::Error>((c, data, 0));
                    }
                }
                let stored = client.get_chunk(&c.digest).await?;
                let data = decompress_chunk(&c, &stored)
                    .with_context(|| format!("the registry sent a bad chunk {}", c.digest))?;
                Ok((c, data, stored.len() as u64))
            }
        })
        .buffered(jobs.max(1));
    let mut failure = None;
    while let Some(item) = chunks.next().await {
        match item {
            Ok((c, data, fetched)) => {
                if fetched > 0 {
                    transfer.fetched_chunks += 1;
                    transfer.fetched_bytes += fetched;
                }
                progress.inc(c.length);
                if tx.send((c, data)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let (out, cache_writer) = written?;
    cache_writer.commit().context("cannot keep the release in the cache")?;
    Ok((out, transfer))
}

/// A release whose manifest verified.
pub(crate) struct Verified {
    pub manifest: Manifest,
    pub signer: String,
}

/// Fetches the release manifest of `name` `version` and verifies it is exactly that release,
/// signed by a trusted key.
pub(crate) async fn verified_release(
    client: &Client,
    trusted: &TrustedKeys,
    name: &str,
    version: &Version,
) -> Result<Verified> {
    let bytes = client.release_manifest(name, version).await?;
    let expected = Expected {
        name: name.to_owned(),
        version: version.clone(),
        kind: Kind::Release,
        from: None,
    };
    let (manifest, signer) = verify(&bytes, trusted, &expected).context("refusing the manifest")?;
    Ok(Verified { manifest, signer })
}

/// Where a pulled release goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A tarball; the extension picks the format.
    File(&'a Path),
    /// A new directory, extracted safely.
    Dir(&'a Path),
}

/// Writes the verified release to `target`. Nothing appears there unless every chunk and the
/// whole stream verified.
pub(crate) async fn write_release(
    s: &Settings,
    client: &Client,
    m: &Manifest,
    target: Target<'_>,
    jobs: usize,
    label: &str,
) -> Result<Transfer> {
    let cache =
        TarCache::open(&s.cache_dir).with_context(|| format!("cannot open the cache `{}`", s.cache_dir.display()))?;
    let progress = Progress::bytes(m.tar.length, label, s.quiet);
    let transfer = match target {
        Target::File(output) => {
            let file = crate::local::TarFile::create(output)?;
            let (file, transfer) = stream_tar(client, &cache, m, jobs, &progress, file).await?;
            file.commit()?;
            transfer
        }
        Target::Dir(into) => {
            // Extraction reads the stream as it is verified; it renames its work into place
            // only once the whole stream has verified.
            let (reader, writer) = std::io::pipe()?;
            let (confirm_tx, confirm_rx) = std::sync::mpsc::channel::<bool>();
            let into2 = into.to_owned();
            let extraction = tokio::task::spawn_blocking(move || {
                crate::local::extract_confirmed(reader, &into2, rel_format::archive::Limits::default(), || {
                    confirm_rx.recv().unwrap_or(false)
                })
            });
            let streamed = stream_tar(
                client,
                &cache,
                m,
                jobs,
                &progress,
                std::io::BufWriter::with_capacity(1 << 20, writer),
            )
            .await;
            let streamed = streamed.and_then(|(mut w, t)| {
                w.flush()?;
                Ok(t)
            });
            let _ = confirm_tx.send(streamed.is_ok());
            let extracted = extraction.await?;
            // When extraction stops early the writer only sees a broken pipe: the extraction's
            // own error is the one to report.
            extracted?;
            streamed?
        }
    };
    progress.finish();
    Ok(transfer)
}

pub async fn run(s: &Settings, args: &PullArgs) -> Result<()> {
    if let Some(into) = &args.into {
        // Fail before fetching anything.
        if std::fs::symlink_metadata(into).is_ok() {
            return Err(crate::local::ExtractError::TargetExists(into.clone()).into());
        }
    }
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let client = Client::new(&s.registry, s.token.clone());
    let (version, channel_seq) = match (&args.version, &args.channel) {
        (Some(v), _) => (v.parse::<Version>()?, None),
        (None, Some(c)) => {
            let (v, seq) = resolve_channel(s, &client, &trusted, &args.name, c, args.allow_downgrade).await?;
            (v, Some(seq))
        }
        (None, None) => bail!("say which version: --version V or --channel C"),
    };
    let Verified { manifest, signer } = verified_release(&client, &trusted, &args.name, &version).await?;
    let (target, written) = match (&args.output, &args.into) {
        (Some(o), _) => (Target::File(o), o.clone()),
        (None, Some(d)) => (Target::Dir(d), d.clone()),
        (None, None) => bail!("say where to write: -o FILE or --into DIR"),
    };
    let transfer = write_release(s, &client, &manifest, target, args.jobs, "pull").await?;
    let (fetched_chunks, fetched_bytes) = (transfer.fetched_chunks, transfer.fetched_bytes);

    if let (Some(channel), Some(seq)) = (&args.channel, channel_seq) {
        let mut state = ChannelState::load(&s.state_dir)?;
        state.record(client.base(), &args.name, channel, seq)?;
    }
    let report = Report {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        signer,
        bytes: manifest.tar.length,
        chunks: manifest.tar.chunks.len(),
        fetched_chunks,
        fetched_bytes,
        written,
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "pulled {} {} (signed by {}): {} verified; fetched {} chunks ({}), {} from the cache; wrote {}",
            report.name,
            report.version,
            report.signer,
            human(report.bytes),
            report.fetched_chunks,
            human(report.fetched_bytes),
            report.chunks - report.fetched_chunks.min(report.chunks),
            report.written.display()
        ));
    }
    Ok(())
}
