//! Pushing artifacts: canonicalise and chunk a release (or upgrade), upload in packs the
//! chunks the registry lacks while the input is still being read, then sign and store the
//! manifest. A chunk collected between the query and the manifest is uploaded again once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use rel_format::archive::{Ingested, Limits, OnlyRelease, Selection, canonicalize};
use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, compress_chunk_into, frame_bound};
use rel_format::manifest::{AppRef, Kind, Manifest, Platform, SCHEMA};
use rel_format::pack::{PACK_MAGIC, PackWriter, RECORD_HEADER};
use rel_format::signing::SignedManifest;
use rel_format::{Digest, SecretKey, TrustedKeys, Version};

use crate::UsageError;
use crate::client::{Client, ClientError};
use crate::fs::archive_folder;
use crate::progress::Progress;
use crate::settings::Settings;

/// Canonicalises and chunks `path` (a folder or a release tarball), with the members
/// `selection` keeps, handing each chunk to `sink`; returns the chunked stream and what was
/// seen.
pub fn ingest(
    path: &Path,
    selection: &Selection,
    sink: impl FnMut(&ChunkRef, &[u8]) -> std::io::Result<()>,
) -> Result<(ChunkedStream, Ingested)> {
    let chunker = Chunker::new(sink);
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let (chunker, seen) = if meta.is_dir() {
        archive_folder(path, chunker, Limits::default(), selection)?
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
        canonicalize(
            std::io::BufReader::with_capacity(1 << 20, file),
            chunker,
            Limits::default(),
            selection,
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

/// Chunks on their way to a pack, their bytes end to end in one buffer (one allocation a
/// pack, not one a chunk).
#[derive(Debug, Default)]
struct Batch {
    chunks: Vec<ChunkRef>,
    data: Vec<u8>,
}

impl Batch {
    fn push(&mut self, chunk: &ChunkRef, data: &[u8]) {
        if self.chunks.is_empty() {
            // Never grown: a buffer that outgrew malloc's heap would be a fresh mapping each
            // time, its pages faulted in again.
            self.chunks.reserve(PACK_CHUNKS);
            self.data.reserve(PACK_BYTES + rel_format::chunk::MAX_CHUNK);
        }
        self.chunks.push(chunk.clone());
        self.data.extend_from_slice(data);
    }

    /// Each chunk with its bytes.
    fn iter(&self) -> impl Iterator<Item = (&ChunkRef, &[u8])> {
        let mut at = 0;
        self.chunks.iter().map(move |c| {
            let start = at;
            at += c.length as usize;
            (c, &self.data[start..at])
        })
    }
}

/// Chunks per pack, and its bytes before compression (a pack ends at the chunk that reaches
/// either): a pack is one request and one stored object, yet a few are in flight at once.
const PACK_CHUNKS: usize = 128;
const PACK_BYTES: usize = 2 << 20;

/// Packs and chunks `path` while uploading, in packs, the chunks the registry lacks
/// (compressed on the way). With `only`, uploads just those chunks (a retry).
async fn ingest_and_upload(
    client: &Client,
    path: &Path,
    selection: &Selection,
    jobs: usize,
    only: Option<HashSet<Digest>>,
    dry_run: bool,
    progress: &Progress,
) -> Result<(ChunkedStream, Ingested, Uploaded)> {
    let retry = only.is_some();
    // The producer hands over batches of chunks not seen before: one wake-up per pack, not
    // per chunk. Two batches wait at most (backpressure).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let path = path.to_owned();
    let selection = selection.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut seen = HashSet::new();
        let mut batch = Batch::default();
        let mut sent = 0u32;
        let send = |batch: Batch| {
            tx.blocking_send(batch)
                .map_err(|_| std::io::Error::other("the upload stopped"))
        };
        let ingested = ingest(&path, &selection, |c, d| {
            if seen.insert(c.digest) && only.as_ref().is_none_or(|o| o.contains(&c.digest)) {
                batch.push(c, d);
                // The first packs are small, so compression and the registry start early.
                if batch.chunks.len() >= PACK_CHUNKS.min(8 << sent.min(4)) || batch.data.len() >= PACK_BYTES {
                    sent += 1;
                    send(std::mem::take(&mut batch))?;
                }
            }
            Ok(())
        })?;
        if !batch.chunks.is_empty() {
            send(batch)?;
        }
        Ok::<_, anyhow::Error>(ingested)
    });
    let batches = futures::stream::unfold(&mut rx, |rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let uploaded = batches
        .map(|batch| async move {
            let digests: Vec<Digest> = batch.chunks.iter().map(|c| c.digest).collect();
            let missing: HashSet<Digest> = if retry {
                digests.iter().copied().collect()
            } else {
                client.missing(&digests).await?.into_iter().collect()
            };
            let unique = batch.chunks.len();
            let (chunks, length) = (batch.chunks.iter())
                .filter(|c| missing.contains(&c.digest))
                .fold((0, 0), |(n, bytes), c| (n + 1, bytes + c.length));
            if chunks == 0 {
                return Ok(Uploaded {
                    unique,
                    ..Uploaded::default()
                });
            }
            if dry_run {
                // What would go up, uncompressed: compressing only to count would cost the
                // push's whole CPU time.
                progress.inc(length);
                return Ok(Uploaded {
                    unique,
                    chunks,
                    bytes: length,
                });
            }
            let body = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let todo = || batch.iter().filter(|(c, _)| missing.contains(&c.digest));
                let frames: usize = todo().map(|(_, d)| RECORD_HEADER + frame_bound(d.len())).sum();
                let mut pack = PackWriter::with_capacity(PACK_MAGIC.len() + frames);
                for (c, data) in todo() {
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

/// Builds the manifest of an ingested release.
fn manifest_for(stream: ChunkedStream, seen: &Ingested, req: &PushRequest) -> Result<Manifest> {
    let spec = seen.release(req.version.as_ref().map(Version::as_str))?;
    let name = req.name.clone().unwrap_or_else(|| spec.name.clone());
    let version = req.version.clone().unwrap_or_else(|| spec.version.clone());
    let from = req.from.clone();
    let kind = req.kind;
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
        created: crate::now(),
        builder: builder(),
    };
    manifest.validate()?;
    Ok(manifest)
}

/// One artifact to push: a release or an upgrade, from a tarball or a folder.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub path: PathBuf,
    pub kind: Kind,
    /// The versions an upgrade starts from; empty for a release.
    pub from: Vec<Version>,
    /// The release name and version, when not the `.rel`'s (a version picks among several).
    pub name: Option<String>,
    pub version: Option<Version>,
    /// Packs compressed and uploaded at once.
    pub jobs: usize,
    /// Push `releases/COOKIE` too (left out by default: hosts keep their own).
    pub include_secrets: bool,
    /// Ask the registry what it lacks, upload nothing.
    pub dry_run: bool,
}

/// What of `path` makes the release asked for. A folder (`_build/prod/rel/<name>` keeps every
/// version built there) is narrowed to one release: the version asked for, or the only one;
/// several and none asked for is a usage error, before anything is read or uploaded.
pub fn selection_for(
    path: &Path,
    name: Option<&str>,
    version: Option<&Version>,
    include_secrets: bool,
) -> Result<Selection> {
    let mut selection = Selection {
        include_secrets,
        only: None,
    };
    if !path.is_dir() {
        return Ok(selection);
    }
    let releases = path.join("releases");
    let mut found: Vec<rel_format::release::ReleaseSpec> = Vec::new();
    for entry in
        std::fs::read_dir(&releases).with_context(|| format!("`{}` has no releases/ folder", path.display()))?
    {
        let dir = entry?.path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "rel") {
                let text = std::fs::read_to_string(&file)?;
                let spec = rel_format::release::ReleaseSpec::parse(&file.display().to_string(), &text)?;
                let in_its_dir = dir.file_name().is_some_and(|d| d == spec.version.as_str());
                if in_its_dir && name.is_none_or(|n| n == spec.name) {
                    found.push(spec);
                }
            }
        }
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    let chosen = match version {
        Some(v) => found.iter().find(|s| &s.version == v).cloned().ok_or_else(|| {
            UsageError::new(format!(
                "`{}` holds no release {v} (it holds: {})",
                path.display(),
                found
                    .iter()
                    .map(|s| s.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        None => match found.as_slice() {
            [] => return Ok(selection),
            [one] => one.clone(),
            several => {
                return Err(UsageError::new(format!(
                    "`{}` holds {} releases ({}); say which with --release-version (the newest is {})",
                    path.display(),
                    several.len(),
                    several
                        .iter()
                        .map(|s| s.version.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    several.last().expect("several").version
                ))
                .into());
            }
        },
    };
    selection.only = Some(OnlyRelease {
        name: chosen.name.clone(),
        version: chosen.version.to_string(),
        lib_dirs: chosen
            .apps
            .iter()
            .map(|a| format!("{}-{}", a.name, a.version))
            .collect(),
        others: found
            .iter()
            .filter(|s| s.version != chosen.version)
            .map(|s| s.version.to_string())
            .collect(),
    });
    Ok(selection)
}

/// What a push did.
#[derive(Debug)]
pub struct PushOutcome {
    pub manifest: Manifest,
    pub unique_chunks: usize,
    pub uploaded_chunks: usize,
    pub uploaded_bytes: u64,
    pub already_stored: bool,
}

/// Chunks, signs and uploads the artifact of `req`: packs of the chunks the registry lacks,
/// then the signed manifest. A push of an artifact already stored uploads nothing.
/// A dry run (`req.dry_run`) needs no key: it signs nothing.
pub async fn push(s: &Settings, key: Option<&SecretKey>, req: &PushRequest) -> Result<PushOutcome> {
    if req.kind == Kind::Upgrade && req.from.is_empty() {
        return Err(UsageError::new("an upgrade needs --from VERSION (the version it upgrades from)").into());
    }
    let selection = selection_for(
        &req.path,
        req.name.as_deref(),
        req.version.as_ref(),
        req.include_secrets,
    )?;
    let (client, path, jobs) = (s.client(), req.path.as_path(), req.jobs);
    // Towards the canonical tar's length, as well as it is known before reading: exactly
    // enough for a bar (a counter when it is not).
    let total = match Progress::shown(s.quiet) {
        true => estimated_tar_length(path, &selection).unwrap_or(0),
        false => 0,
    };
    let progress = Progress::bytes(total, "push", s.quiet);
    let (stream, seen, uploaded) =
        ingest_and_upload(&client, path, &selection, jobs, None, req.dry_run, &progress).await?;
    let manifest = manifest_for(stream, &seen, req)?;
    if req.dry_run {
        progress.finish();
        let stored = match client.release_or_upgrade(&manifest).await {
            Ok(bytes) => Some(SignedManifest::parse_unverified(&bytes)?.signed.tar.digest),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => None,
            Err(e) => return Err(e.into()),
        };
        if stored.is_some_and(|d| d != manifest.tar.digest) {
            bail!(
                "{} `{}` `{}` is already stored with different contents; a push would be refused",
                manifest.kind,
                manifest.name,
                manifest.version
            );
        }
        return Ok(PushOutcome {
            manifest,
            unique_chunks: uploaded.unique,
            uploaded_chunks: uploaded.chunks,
            uploaded_bytes: uploaded.bytes,
            already_stored: stored.is_some(),
        });
    }
    let key = key.ok_or_else(|| UsageError::new("no signing key: pass --key FILE or set REL_KEY"))?;
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
                let (again, _, more) =
                    ingest_and_upload(&client, path, &selection, jobs, Some(only), false, &progress).await?;
                if again.digest != manifest.tar.digest {
                    bail!("`{}` changed while it was being pushed", path.display());
                }
                uploaded_chunks += more.chunks;
                uploaded_bytes += more.bytes;
                attempt += 1;
            }
            Err(e @ ClientError::Api { status, .. }) if status == 409 => {
                let stored = client.release_or_upgrade(&manifest).await?;
                let stored_env = SignedManifest::parse_unverified(&stored)?;
                let what = format!("{} `{}` `{}`", manifest.kind, manifest.name, manifest.version);
                if stored_env.signed.tar.digest != manifest.tar.digest {
                    return Err(e).context(format!("{what} is already stored with different contents"));
                }
                // The same bytes: done, if our key signed what is stored. Otherwise the
                // version carries someone else's signature, which this push cannot change.
                let ours = TrustedKeys::new([key.public()]);
                if SignedManifest::verify_signature(&stored, &ours).is_err() {
                    let signers: Vec<&str> = stored_env
                        .signatures
                        .iter()
                        .filter_map(|s| s.split_once(':').map(|(n, _)| n))
                        .collect();
                    bail!(
                        "{what} is already stored with the same contents, but signed by {} and not by this push's key `{}`; hosts that trust only `{}` will refuse it. Stored versions never change: push a new version signed with the right key",
                        signers.join(", "),
                        key.name(),
                        key.name()
                    );
                }
                already_stored = true;
                break;
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

/// About how long the canonical tar of the release at `path` will be, without reading it: a
/// folder's members as `selection` keeps them (a header each, contents in 512-byte blocks); a
/// plain tar's length; a gzip's recorded size (its last four bytes, modulo 4 GiB); a zstd
/// frame's content size when the frame records it. `None` when nothing says.
fn estimated_tar_length(path: &Path, selection: &rel_format::archive::Selection) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    fn walk(root: &Path, dir: &Path, selection: &rel_format::archive::Selection, total: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(rel) = path.strip_prefix(root) else { continue };
            if !selection.keeps(&rel.to_string_lossy()) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            *total += 512;
            if meta.is_dir() {
                walk(root, &path, selection, total);
            } else if meta.is_file() {
                *total += meta.len().div_ceil(512) * 512;
            }
        }
    }
    if path.is_dir() {
        let mut total = 1024;
        walk(path, path, selection, &mut total);
        return Some(total);
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).ok()?;
    if magic[..2] == [0x1f, 0x8b] {
        let mut size = [0u8; 4];
        file.seek(SeekFrom::End(-4)).ok()?;
        file.read_exact(&mut size).ok()?;
        Some(u64::from(u32::from_le_bytes(size)))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let mut header = [0u8; 18];
        file.seek(SeekFrom::Start(0)).ok()?;
        let n = file.read(&mut header).ok()?;
        zstd::zstd_safe::get_frame_content_size(&header[..n]).ok().flatten()
    } else {
        Some(file.metadata().ok()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::estimated_tar_length;
    use rel_format::archive::{Limits, Selection};

    /// The bar's total is the canonical tar's length for a folder, a plain tar and a gzip.
    #[test]
    fn a_push_knows_its_total_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        std::fs::create_dir_all(root.join("lib/shop-1.0.0/ebin")).unwrap();
        std::fs::create_dir_all(root.join("releases/1.0.0")).unwrap();
        std::fs::write(root.join("lib/shop-1.0.0/ebin/shop.beam"), vec![7u8; 3000]).unwrap();
        std::fs::write(
            root.join("releases/1.0.0/shop.rel"),
            "{release, {\"shop\", \"1.0.0\"}, {erts, \"13.1.5\"}, []}.\n",
        )
        .unwrap();
        std::fs::write(root.join("releases/COOKIE"), "secret").unwrap();
        let selection = Selection::default();
        let (tar, _) = crate::fs::archive_folder(&root, Vec::new(), Limits::default(), &selection).unwrap();
        assert_eq!(estimated_tar_length(&root, &selection), Some(tar.len() as u64));
        let plain = dir.path().join("shop.tar");
        std::fs::write(&plain, &tar).unwrap();
        assert_eq!(estimated_tar_length(&plain, &selection), Some(tar.len() as u64));
        let gz = dir.path().join("shop.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &tar).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(estimated_tar_length(&gz, &selection), Some(tar.len() as u64));
        assert_eq!(estimated_tar_length(&dir.path().join("nothing"), &selection), None);
    }
}
