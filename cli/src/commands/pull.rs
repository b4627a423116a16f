//! `rel pull`: resolve, verify, fetch only what the cache lacks, verify again, write atomically.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use rel_format::channel::{ChannelError, Freshness, SignedChannel};
use rel_format::chunk::{ChunkRef, Reassembler, decompress_chunk};
use rel_format::manifest::{Kind, Manifest};
use rel_format::signing::{Expected, verify};
use rel_format::{TrustedKeys, Version};
use serde::Serialize;

use crate::cache::ChunkCache;
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

/// Makes sure every chunk is in the cache and valid; returns (chunks fetched, bytes fetched).
pub(crate) async fn fetch_chunks(
    client: &Client,
    cache: &ChunkCache,
    chunks: &[ChunkRef],
    jobs: usize,
    progress: &Progress,
) -> Result<(usize, u64)> {
    let mut seen = HashSet::new();
    let wanted: Vec<&ChunkRef> = chunks
        .iter()
        .filter(|c| seen.insert(c.digest))
        .filter(|c| !cache.contains(&c.digest))
        .collect();
    let fetched = futures::stream::iter(wanted)
        .map(|c| async move {
            let data = client.get_chunk(&c.digest).await?;
            decompress_chunk(c, &data).with_context(|| format!("the registry sent a bad chunk {}", c.digest))?;
            cache.put(&c.digest, &data)?;
            progress.inc(c.length);
            Ok::<u64, anyhow::Error>(data.len() as u64)
        })
        .buffer_unordered(jobs.max(1))
        .try_fold((0usize, 0u64), |(n, b), size| async move { Ok((n + 1, b + size)) })
        .await?;
    Ok(fetched)
}

/// Streams the verified tar into `out`, from the cache; a bad cache entry is refetched.
pub(crate) fn reassemble<W: Write>(
    client: &Client,
    cache: &ChunkCache,
    manifest: &Manifest,
    out: W,
    rt: &tokio::runtime::Handle,
) -> Result<W> {
    let mut r = Reassembler::new(&manifest.tar, out);
    for c in &manifest.tar.chunks {
        let data = match cache.get(&c.digest).map(|d| decompress_chunk(c, &d)) {
            Some(Ok(data)) => data,
            _ => {
                cache.remove(&c.digest);
                let stored = rt.block_on(client.get_chunk(&c.digest))?;
                let data = decompress_chunk(c, &stored)
                    .with_context(|| format!("the registry sent a bad chunk {}", c.digest))?;
                cache.put(&c.digest, &stored)?;
                data
            }
        };
        r.push(c, &data)?;
    }
    Ok(r.finish()?)
}

enum Format {
    Gzip,
    Tar,
    Zstd,
}

fn format_of(path: &Path) -> Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(Format::Gzip)
    } else if name.ends_with(".tar.zst") {
        Ok(Format::Zstd)
    } else if name.ends_with(".tar") {
        Ok(Format::Tar)
    } else {
        bail!(
            "cannot tell the format of `{}`: name it .tar.gz, .tar or .tar.zst",
            path.display()
        )
    }
}

/// Writes the verified release to `output` (a tarball) or `into` (a new folder). Nothing
/// appears at the target unless every chunk and the whole stream verified.
pub(crate) fn write_release(
    client: &Client,
    cache: &ChunkCache,
    m: &Manifest,
    output: Option<&Path>,
    into: Option<&Path>,
    rt: &tokio::runtime::Handle,
) -> Result<PathBuf> {
    let target = output.or(into).expect("clap requires one of -o and --into");
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp =
        tempfile::NamedTempFile::new_in(&parent).with_context(|| format!("cannot write in `{}`", parent.display()))?;
    let file = std::io::BufWriter::with_capacity(1 << 20, tmp.reopen()?);
    if let Some(output) = output {
        let format = format_of(output)?;
        match format {
            Format::Tar => {
                reassemble(client, cache, m, file, rt)?.flush()?;
            }
            Format::Gzip => {
                let gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
                reassemble(client, cache, m, gz, rt)?.finish()?.flush()?;
            }
            Format::Zstd => {
                let z = zstd::stream::write::Encoder::new(file, 3)?;
                reassemble(client, cache, m, z, rt)?.finish()?.flush()?;
            }
        }
        // Temporary files are private; the result is an ordinary file.
        std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        tmp.persist(output)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write `{}`", output.display()))?;
        return Ok(output.to_owned());
    }
    let into = into.expect("checked above");
    reassemble(client, cache, m, file, rt)?.flush()?;
    crate::local::extract(
        std::fs::File::open(tmp.path())?,
        into,
        rel_format::archive::Limits::default(),
    )?;
    Ok(into.to_owned())
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
    let bytes = client.release_manifest(&args.name, &version).await?;
    let expected = Expected {
        name: args.name.clone(),
        version: version.clone(),
        kind: Kind::Release,
        from: None,
    };
    let (manifest, signer) = verify(&bytes, &trusted, &expected).context("refusing the manifest")?;

    let cache = ChunkCache::new(&s.cache_dir)?;
    let progress = Progress::bytes(manifest.tar.length, "pull", s.quiet);
    let (fetched_chunks, fetched_bytes) =
        fetch_chunks(&client, &cache, &manifest.tar.chunks, args.jobs, &progress).await?;
    progress.finish();
    let rt = tokio::runtime::Handle::current();
    let (client2, cache2, m2) = (client.clone(), cache.clone(), manifest.clone());
    let (output, into) = (args.output.clone(), args.into.clone());
    let written = tokio::task::spawn_blocking(move || {
        write_release(&client2, &cache2, &m2, output.as_deref(), into.as_deref(), &rt)
    })
    .await??;

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
