//! `rel push`: canonicalise and chunk a release, sign its manifest, upload what is missing.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use rel_format::archive::{Ingested, Limits, canonicalize};
use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, compress_chunk_into};
use rel_format::manifest::{AppRef, Kind, Manifest, Platform, SCHEMA};
use rel_format::pack::PackWriter;
use rel_format::{Digest, Version};
use serde::Serialize;

use crate::cli::{KindArg, PushArgs};
use crate::client::{Client, ClientError};
use crate::local::pack_dir;
use crate::progress::{Progress, human};
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: Version,
    kind: Kind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    from: Vec<Version>,
    digest: Digest,
    bytes: u64,
    chunks: usize,
    uploaded_chunks: usize,
    uploaded_bytes: u64,
    already_stored: bool,
    channel: Option<String>,
}

/// Canonicalises and chunks `path` (a folder or a release tarball), handing each chunk to
/// `sink`; returns the chunked stream and what was seen.
pub(crate) fn ingest(
    path: &Path,
    sink: impl FnMut(&ChunkRef, &[u8]) -> std::io::Result<()>,
) -> Result<(ChunkedStream, Ingested)> {
    let chunker = Chunker::new(sink);
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let (chunker, seen) = if meta.is_dir() {
        pack_dir(path, chunker, Limits::default())?
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
        canonicalize(
            std::io::BufReader::with_capacity(1 << 20, file),
            chunker,
            Limits::default(),
        )
        .with_context(|| format!("`{}` is not a usable release archive", path.display()))?
    };
    let (stream, _) = chunker.finish().context("chunking stopped")?;
    Ok((stream, seen))
}

/// What the uploader did.
#[derive(Debug, Default, Clone, Copy)]
struct Uploaded {
    unique: usize,
    chunks: usize,
    bytes: u64,
}

/// Chunks per pack: about 2 MiB before compression, so a pack is one request and one stored
/// object, yet a few are in flight at once.
const PACK_CHUNKS: usize = 128;

/// Packs and chunks `path` while uploading, in packs, the chunks the registry lacks
/// (compressed on the way). With `only`, uploads just those chunks (a retry).
async fn ingest_and_upload(
    client: &Client,
    path: &Path,
    jobs: usize,
    only: Option<HashSet<Digest>>,
    progress: &Progress,
) -> Result<(ChunkedStream, Ingested, Uploaded)> {
    let retry = only.is_some();
    // The producer hands over batches of chunks not seen before: one wake-up per pack, not
    // per chunk. Two batches wait at most (backpressure).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(ChunkRef, Vec<u8>)>>(2);
    let path = path.to_owned();
    let producer = tokio::task::spawn_blocking(move || {
        let mut seen = HashSet::new();
        let mut batch = Vec::with_capacity(PACK_CHUNKS);
        let mut sent = 0u32;
        let send = |batch: Vec<_>| {
            tx.blocking_send(batch)
                .map_err(|_| std::io::Error::other("the upload stopped"))
        };
        let ingested = ingest(&path, |c, d| {
            if seen.insert(c.digest) && only.as_ref().is_none_or(|o| o.contains(&c.digest)) {
                batch.push((c.clone(), d.to_vec()));
                // The first packs are small, so compression and the registry start early.
                if batch.len() >= PACK_CHUNKS.min(8 << sent.min(4)) {
                    sent += 1;
                    send(std::mem::replace(&mut batch, Vec::with_capacity(PACK_CHUNKS)))?;
                }
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            send(batch)?;
        }
        Ok::<_, anyhow::Error>(ingested)
    });
    let batches = futures::stream::unfold(&mut rx, |rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let uploaded = batches
        .map(|batch| async move {
            let digests: Vec<Digest> = batch.iter().map(|(c, _)| c.digest).collect();
            let missing: HashSet<Digest> = if retry {
                digests.iter().copied().collect()
            } else {
                client.missing(&digests).await?.into_iter().collect()
            };
            let unique = batch.len();
            let todo: Vec<_> = batch.into_iter().filter(|(c, _)| missing.contains(&c.digest)).collect();
            if todo.is_empty() {
                return Ok(Uploaded {
                    unique,
                    ..Uploaded::default()
                });
            }
            let chunks = todo.len();
            let length: u64 = todo.iter().map(|(c, _)| c.length).sum();
            let body = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let mut pack = PackWriter::new();
                for (c, data) in &todo {
                    pack.push_with(c, |out| compress_chunk_into(data, out))?;
                }
                Ok(pack.finish())
            })
            .await??;
            let bytes = body.len() as u64;
            let stored = client.put_pack(body).await?;
            if stored.chunks != chunks as u64 {
                bail!(
                    "the registry stored {} of the {chunks} chunks sent in pack {}",
                    stored.chunks,
                    stored.pack
                );
            }
            progress.inc(length);
            Ok::<Uploaded, anyhow::Error>(Uploaded { unique, chunks, bytes })
        })
        .buffer_unordered(jobs.max(1))
        .try_fold(Uploaded::default(), |acc, u| async move {
            Ok(Uploaded {
                unique: acc.unique + u.unique,
                chunks: acc.chunks + u.chunks,
                bytes: acc.bytes + u.bytes,
            })
        })
        .await;
    // Stop the producer if the upload failed, then report the first error.
    drop(rx);
    let produced = producer.await?;
    let uploaded = uploaded?;
    let (stream, seen) = produced?;
    Ok((stream, seen, uploaded))
}

fn builder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    format!(
        "rel {} on {}",
        env!("CARGO_PKG_VERSION"),
        host.as_deref().unwrap_or("unknown host")
    )
}

pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rel_format::manifest::rfc3339_utc(secs)
}

/// Builds the manifest of an ingested release.
pub(crate) fn manifest_for(
    stream: ChunkedStream,
    seen: &Ingested,
    name: Option<&str>,
    version: Option<&str>,
    kind: Kind,
    from: &[String],
) -> Result<Manifest> {
    let spec = seen.release(version)?;
    let name = name.map_or_else(|| spec.name.clone(), str::to_owned);
    let version: Version = match version {
        Some(v) => v.parse()?,
        None => spec.version.clone(),
    };
    let from = from
        .iter()
        .map(|f| f.parse::<Version>())
        .collect::<Result<Vec<_>, _>>()?;
    let native = seen.native.as_ref();
    let manifest = Manifest {
        schema: SCHEMA.into(),
        kind,
        name,
        version,
        from,
        tar: stream,
        platform: Platform {
            erts_included: seen.erts_dirs.contains(spec.erts.as_str()),
            erts: spec.erts.clone(),
            os: native.map(|n| n.os.clone()),
            arch: native.map(|n| n.arch.clone()),
            libc: native.and_then(|n| n.libc.clone()),
        },
        apps: spec
            .apps
            .iter()
            .map(|a| AppRef {
                name: a.name.clone(),
                version: a.version.clone(),
            })
            .collect(),
        created: now_rfc3339(),
        builder: builder(),
    };
    manifest.validate()?;
    Ok(manifest)
}

/// Pushes one artifact (a release or an upgrade) from `path`.
pub(crate) async fn push_file(
    s: &Settings,
    key: &rel_format::SecretKey,
    path: &Path,
    kind: Kind,
    from: &[String],
    jobs: usize,
) -> Result<PushOutcome> {
    push_with(s, key, path, kind, from, None, None, jobs).await
}

/// What a push did.
#[derive(Debug)]
pub(crate) struct PushOutcome {
    manifest: Manifest,
    unique_chunks: usize,
    uploaded_chunks: usize,
    uploaded_bytes: u64,
    already_stored: bool,
}

#[allow(clippy::too_many_arguments)]
async fn push_with(
    s: &Settings,
    key: &rel_format::SecretKey,
    path: &Path,
    kind: Kind,
    from: &[String],
    name: Option<&str>,
    version: Option<&str>,
    jobs: usize,
) -> Result<PushOutcome> {
    if kind == Kind::Upgrade && from.is_empty() {
        bail!("an upgrade needs --from VERSION (the version it upgrades from)");
    }
    let client = Client::new(&s.registry, s.token.clone());
    // The uncompressed size is only known once packed: count uploaded bytes.
    let progress = Progress::bytes(0, "push", s.quiet);
    let (stream, seen, uploaded) = ingest_and_upload(&client, path, jobs, None, &progress).await?;
    let manifest = manifest_for(stream, &seen, name, version, kind, from)?;
    let envelope = key.sign(&manifest)?.to_bytes();
    let mut uploaded_chunks = uploaded.chunks;
    let mut uploaded_bytes = uploaded.bytes;
    let mut already_stored = false;
    let mut attempt = 0;
    loop {
        match client.put_manifest(envelope.clone()).await {
            Ok(_) => break,
            Err(ClientError::Api {
                status, ref missing, ..
            }) if status == 422 && !missing.is_empty() && attempt == 0 => {
                // A chunk vanished between the query and the manifest (collected, or another
                // replica's view): read the artifact again, upload those, try once more.
                let only = missing.iter().copied().collect();
                let (again, _, more) = ingest_and_upload(&client, path, jobs, Some(only), &progress).await?;
                if again.digest != manifest.tar.digest {
                    bail!("`{}` changed while it was being pushed", path.display());
                }
                uploaded_chunks += more.chunks;
                uploaded_bytes += more.bytes;
                attempt += 1;
            }
            Err(e @ ClientError::Api { status, .. }) if status == 409 => {
                let stored = client
                    .release_or_upgrade(&manifest)
                    .await
                    .ok()
                    .and_then(|b| rel_format::signing::SignedManifest::parse_unverified(&b).ok());
                if stored.is_some_and(|env| env.signed.tar.digest == manifest.tar.digest) {
                    already_stored = true;
                    break;
                }
                return Err(e).context(format!(
                    "{} `{}` `{}` is already stored with different contents",
                    manifest.kind, manifest.name, manifest.version
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress.finish();
    Ok(PushOutcome {
        manifest,
        unique_chunks: uploaded.unique,
        uploaded_chunks,
        uploaded_bytes,
        already_stored,
    })
}

pub async fn run(s: &Settings, args: &PushArgs) -> Result<()> {
    let key = s.secret_key(args.key.as_deref())?;
    let kind = match args.kind {
        KindArg::Release => Kind::Release,
        KindArg::Upgrade => Kind::Upgrade,
    };
    let outcome = push_with(
        s,
        &key,
        &args.artifact,
        kind,
        &args.from,
        args.name.as_deref(),
        args.version.as_deref(),
        args.jobs,
    )
    .await?;
    let manifest = &outcome.manifest;
    if let Some(channel) = &args.channel {
        let client = Client::new(&s.registry, s.token.clone());
        super::promote::promote(s, &client, &key, &manifest.name, &manifest.version, channel, "30d").await?;
    }
    let report = Report {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        kind: manifest.kind,
        from: manifest.from.clone(),
        digest: manifest.tar.digest,
        bytes: manifest.tar.length,
        chunks: manifest.tar.chunks.len(),
        uploaded_chunks: outcome.uploaded_chunks,
        uploaded_bytes: outcome.uploaded_bytes,
        already_stored: outcome.already_stored,
        channel: args.channel.clone(),
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        let what = if report.already_stored {
            "already stored"
        } else {
            "pushed"
        };
        crate::say(&format!(
            "{what} {} {} ({}): {} in {} chunks; {} new chunks uploaded ({} compressed), {} already in the registry",
            report.name,
            report.version,
            report.kind,
            human(report.bytes),
            report.chunks,
            report.uploaded_chunks,
            human(report.uploaded_bytes),
            outcome.unique_chunks.saturating_sub(report.uploaded_chunks),
        ));
        if let Some(c) = &report.channel {
            crate::say(&format!("channel {c} now points at {}", report.version));
        }
    }
    Ok(())
}

impl Client {
    /// The stored manifest with the same identity as `m`.
    pub(crate) async fn release_or_upgrade(&self, m: &Manifest) -> Result<bytes::Bytes, ClientError> {
        match m.kind {
            Kind::Release => self.release_manifest(&m.name, &m.version).await,
            Kind::Upgrade => self.upgrade_manifest(&m.name, &m.version, &m.from[0]).await,
        }
    }
}
