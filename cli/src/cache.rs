//! The local cache: the chunks of artifacts already pulled, one pack per artifact.
//!
//! Pulling the next version of a release reads every chunk it shares with a cached artifact
//! from that artifact's pack and fetches only the rest. An artifact's entry is a pack in the
//! registry's own format (SPEC.md §4.1) holding each of its chunks once, as the compressed
//! frame that arrived, plus the pack's index: one sequential file per artifact, at less than half
//! of the tar's size, so keeping it costs a pull little. A pack being written is
//! `<digest>.partial`, renamed to `<digest>.pack` (and given its index) once the whole stream
//! verified; a pull that was interrupted leaves it, and the next pull of the same artifact reads
//! the chunks it holds and appends to it, so it fetches only what is missing (a pull holds the
//! partial pack's lock; a second one at the same time writes no cache). Every chunk read from
//! the cache is decompressed and verified against its digest like a fetched one, so a damaged
//! cache costs a refetch, never a wrong byte. Each artifact's chunk order is kept beside its
//! pack (`<digest>.order`), so that a pull can fetch what changed as deltas against the
//! chunks of the cached artifact that shares the most with it (SPEC.md §4.2). The newest [`KEEP`] artifacts are kept, and every artifact a host root pins:
//! the releases installed there, from which the next upgrade is built (`<digest>.pin` lists
//! the roots, one per line; a root that is gone no longer pins).
//!
//! Beside a release's pack the cache keeps its snapshot (`<digest>.snapshot`, SPEC.md §8.5):
//! what appups and relups are made from, and where each member lies in the tar. An upgrade
//! between two cached releases then reads neither release again, only the chunks of the
//! members it carries.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rel_format::Digest;
use rel_format::chunk::{ChunkRef, ChunkedStream, decompress_chunks};
use rel_format::pack::{Entry, PACK_MAGIC, decode_index, encode_index, record_header};
use rel_format::snapshot::{MemberSpan, ReleaseSnapshot, decode_stored, encode_stored};

/// How many artifacts the cache keeps.
pub const KEEP: usize = 8;

/// A partial pack no pull has touched for this long is deleted.
const PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Where a chunk's frame can be read locally.
#[derive(Debug, Clone)]
pub struct Location {
    pub pack: PathBuf,
    pub entry: Entry,
}

#[derive(Debug, Clone)]
pub struct PackCache {
    dir: PathBuf,
}

impl PackCache {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Entries an interrupted pull was writing.
        crate::fs::temp::sweep(dir, Some("cache"));
        crate::fs::temp::sweep_unnamed(dir);
        for e in std::fs::read_dir(dir)?.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > PARTIAL_AGE));
            if stale && e.path().extension().is_some_and(|x| x == "partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Self { dir: dir.to_owned() })
    }

    /// A new temporary file in the cache, named for [`crate::fs::temp::sweep`].
    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&crate::fs::temp::prefix("cache"))
            .tempfile_in(&self.dir)
    }

    fn paths(&self, digest: &Digest) -> (PathBuf, PathBuf) {
        let hex = digest.hex();
        (
            self.dir.join(format!("{hex}.pack")),
            self.dir.join(format!("{hex}.idx")),
        )
    }

    /// Every chunk of every cached artifact.
    pub fn index(&self) -> HashMap<Digest, Location> {
        let mut index = HashMap::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return index;
        };
        for e in entries.flatten() {
            let path = e.path();
            let (entries, pack) = match path.extension().and_then(|x| x.to_str()) {
                Some("idx") => match std::fs::read(&path).map(|b| decode_index(&b)) {
                    Ok(Ok(entries)) => (entries, path.with_extension("pack")),
                    _ => continue,
                },
                // What an interrupted pull kept.
                Some("partial") => match File::open(&path) {
                    Ok(file) => (complete_records(&file).1, path.clone()),
                    Err(_) => continue,
                },
                _ => continue,
            };
            for entry in entries {
                index.entry(entry.digest).or_insert(Location {
                    pack: pack.clone(),
                    entry,
                });
            }
        }
        index
    }

    /// The chunks, in stream order, of the cached artifact that shares the most chunks with
    /// `target` (at least one), to fetch the rest as deltas against.
    pub fn closest(&self, target: &[ChunkRef]) -> Option<Vec<ChunkRef>> {
        let wanted: HashSet<&Digest> = target.iter().map(|c| &c.digest).collect();
        let entries = std::fs::read_dir(&self.dir).ok()?;
        let mut best: Option<(usize, Vec<ChunkRef>)> = None;
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "order") || !path.with_extension("idx").exists() {
                continue;
            }
            let Some(order) = std::fs::read(&path).ok().and_then(|b| decode_order(&b)) else {
                continue;
            };
            let shared = order.iter().filter(|c| wanted.contains(&c.digest)).count();
            if shared > 0 && best.as_ref().is_none_or(|(n, _)| shared > *n) {
                best = Some((shared, order));
            }
        }
        best.map(|(_, order)| order)
    }

    /// Whether the artifact with this tar digest is cached whole.
    pub fn has(&self, digest: &Digest) -> bool {
        let (pack, index) = self.paths(digest);
        pack.exists() && index.exists()
    }

    /// Reads a chunk: its data and its frame; `None` if it is gone or no longer what it was.
    pub fn read(&self, loc: &Location, chunk: &ChunkRef) -> Option<(Vec<u8>, Vec<u8>)> {
        self.read_many(&[(loc, chunk)]).pop().flatten()
    }

    /// Reads chunks, each as [`PackCache::read`] does: each pack opened once, the chunks
    /// verified two at a time ([`decompress_chunks`]).
    pub fn read_many(&self, wanted: &[(&Location, &ChunkRef)]) -> Vec<Option<(Vec<u8>, Vec<u8>)>> {
        let mut packs: HashMap<&Path, Option<File>> = HashMap::new();
        let frames: Vec<Option<Vec<u8>>> = wanted
            .iter()
            .map(|(loc, _)| {
                let file = packs
                    .entry(&loc.pack)
                    .or_insert_with(|| File::open(&loc.pack).ok())
                    .as_ref()?;
                let mut frame = vec![0; loc.entry.size as usize];
                file.read_exact_at(&mut frame, loc.entry.offset).ok()?;
                Some(frame)
            })
            .collect();
        let read: Vec<(&ChunkRef, &[u8])> = wanted
            .iter()
            .zip(&frames)
            .filter_map(|((_, chunk), frame)| Some((*chunk, frame.as_deref()?)))
            .collect();
        let mut data = decompress_chunks(&read).into_iter();
        frames
            .into_iter()
            .map(|frame| {
                let frame = frame?;
                let data = data.next().expect("one result per frame read").ok()?;
                Some((data, frame))
            })
            .collect()
    }

    /// The bytes of `ranges` (in stream order, apart) of the cached artifact `stream`, one
    /// after the other: only the chunks they touch are read, each verified. `None` when the
    /// artifact is not cached whole, or a chunk of it no longer reads back.
    pub fn read_ranges(&self, stream: &ChunkedStream, ranges: &[(u64, u64)]) -> Option<Vec<u8>> {
        let (pack, index) = self.paths(&stream.digest);
        let entries: HashMap<Digest, Entry> = decode_index(&std::fs::read(index).ok()?)
            .ok()?
            .into_iter()
            .map(|e| (e.digest, e))
            .collect();
        // Each chunk a range touches, with where it starts in the stream.
        let mut touched: Vec<(u64, Location, &ChunkRef)> = Vec::new();
        let (mut at, mut next) = (0u64, ranges.iter().peekable());
        for chunk in &stream.chunks {
            let end = at + chunk.length;
            while next.peek().is_some_and(|(_, e)| *e <= at) {
                next.next();
            }
            if next.peek().is_some_and(|(s, _)| *s < end) {
                let entry = *entries.get(&chunk.digest)?;
                touched.push((
                    at,
                    Location {
                        pack: pack.clone(),
                        entry,
                    },
                    chunk,
                ));
            }
            at = end;
        }
        let wanted: Vec<(&Location, &ChunkRef)> = touched.iter().map(|(_, l, c)| (l, *c)).collect();
        let data = self.read_many(&wanted).into_iter().collect::<Option<Vec<_>>>()?;
        let mut out = Vec::with_capacity(ranges.iter().map(|(s, e)| (e - s) as usize).sum());
        let mut first = 0;
        for &(start, end) in ranges {
            while touched.get(first).is_some_and(|(at, _, c)| at + c.length <= start) {
                first += 1;
            }
            for ((at, _, chunk), (bytes, _)) in touched[first..].iter().zip(&data[first..]) {
                if *at >= end {
                    break;
                }
                let (from, to) = (start.max(*at), end.min(at + chunk.length));
                if from < to {
                    out.extend_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
                }
            }
        }
        (out.len() as u64 == ranges.iter().map(|(s, e)| e - s).sum::<u64>()).then_some(out)
    }

    /// The snapshot kept beside the cached artifact whose tar is `tar`, and its member
    /// spans; `None` when there is none or it does not read back whole (it is then dropped).
    pub fn snapshot(&self, tar: &Digest) -> Option<(ReleaseSnapshot, Vec<MemberSpan>)> {
        let path = self.paths(tar).0.with_extension("snapshot");
        let bytes = std::fs::read(&path).ok()?;
        match decode_stored(tar, &bytes) {
            Ok(kept) => Some(kept),
            Err(e) => {
                tracing::warn!("{e}; reading the release again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps the snapshot of the cached artifact whose tar is `tar` beside it, for the next
    /// upgrade built from or to it; nothing when the artifact is not cached.
    pub fn keep_snapshot(&self, tar: &Digest, snapshot: &ReleaseSnapshot, spans: &[MemberSpan]) -> io::Result<()> {
        if !self.has(tar) {
            return Ok(());
        }
        let bytes = encode_stored(tar, snapshot, spans).map_err(io::Error::other)?;
        let mut tmp = self.temp_file()?;
        tmp.write_all(&bytes)?;
        tmp.persist(self.paths(tar).0.with_extension("snapshot"))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// Starts writing the pack of `stream` into the cache, or goes on with the one an
    /// interrupted pull left; nothing when the artifact is cached, or when another pull is
    /// writing it.
    pub fn begin(&self, stream: &ChunkedStream) -> io::Result<CacheWriter> {
        let mut writer = CacheWriter {
            file: None,
            offset: 0,
            entries: Vec::new(),
            seen: HashSet::new(),
            stream: stream.digest,
            order: Vec::new(),
            cache: self.clone(),
        };
        if self.has(&stream.digest) {
            // Cached by a rel that kept no order: keep it now, if the cache can be written.
            let order = self.paths(&stream.digest).0.with_extension("order");
            if !order.exists() {
                let _ = self.write_order(&order, &stream.chunks);
            }
            return Ok(writer);
        }
        writer.order = stream.chunks.clone();
        let path = self.paths(&stream.digest).0.with_extension("partial");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.try_lock().is_err() {
            tracing::info!("another pull is writing {} into the cache", path.display());
            return Ok(writer);
        }
        // A record cut short by the interruption is dropped; a file that is no pack starts over.
        let (kept, entries) = complete_records(&file);
        file.set_len(kept)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(kept))?;
        let mut file = io::BufWriter::with_capacity(1 << 20, file);
        if kept == 0 {
            file.write_all(PACK_MAGIC)?;
            writer.offset = PACK_MAGIC.len() as u64;
        } else {
            writer.offset = kept;
            writer.seen = entries.iter().map(|e| e.digest).collect();
            writer.entries = entries;
        }
        writer.file = Some((file, path));
        Ok(writer)
    }

    /// Makes the artifacts of `streams` the ones `root` pins (and no other).
    pub fn pin(&self, root: &Path, streams: &[Digest]) -> io::Result<()> {
        let root = std::path::absolute(root)?;
        let line = root.to_string_lossy().into_owned();
        let wanted: HashSet<PathBuf> = streams.iter().map(|d| self.paths(d).0.with_extension("pin")).collect();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pin") && !wanted.contains(&path) {
                let kept: Vec<String> = std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| *l != line)
                    .map(str::to_owned)
                    .collect();
                self.write_pin(&path, &kept)?;
            }
        }
        for path in wanted {
            let mut roots: Vec<String> = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if !roots.contains(&line) {
                roots.push(line.clone());
                self.write_pin(&path, &roots)?;
            }
        }
        Ok(())
    }

    fn write_order(&self, path: &Path, chunks: &[ChunkRef]) -> io::Result<()> {
        let mut tmp = self.temp_file()?;
        tmp.write_all(&encode_order(chunks))?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    fn write_pin(&self, path: &Path, roots: &[String]) -> io::Result<()> {
        if roots.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(format!("{}\n", roots.join("\n")).as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Whether a root that still exists pins the artifact of `index`.
    fn pinned(index: &Path) -> bool {
        std::fs::read_to_string(index.with_extension("pin"))
            .is_ok_and(|roots| roots.lines().any(|r| Path::new(r).join("releases").is_dir()))
    }

    /// Drops all but the newest [`KEEP`] artifacts (pinned ones stay, and do not count), and
    /// what an earlier rel kept here (whole tars with their chunk lists).
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        for old in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "tar" || x == "chunks"))
        {
            let _ = std::fs::remove_file(old);
        }
        // A snapshot whose artifact left the cache some other way.
        for orphan in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "snapshot") && !p.with_extension("idx").exists())
        {
            let _ = std::fs::remove_file(orphan);
        }
        let mut packs: Vec<(std::time::SystemTime, PathBuf)> = paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .filter(|p| !Self::pinned(p))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        packs.sort();
        packs.reverse();
        for (_, index) in packs.into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(&index);
            let _ = std::fs::remove_file(index.with_extension("pack"));
            let _ = std::fs::remove_file(index.with_extension("order"));
            let _ = std::fs::remove_file(index.with_extension("snapshot"));
        }
    }
}

/// An artifact's chunks in stream order: `RELORDR1`, then each chunk's digest (32 bytes) and
/// length (u32 BE).
const ORDER_MAGIC: &[u8; 8] = b"RELORDR1";

fn encode_order(chunks: &[ChunkRef]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ORDER_MAGIC.len() + chunks.len() * 36);
    out.extend_from_slice(ORDER_MAGIC);
    for c in chunks {
        out.extend_from_slice(c.digest.as_bytes());
        out.extend_from_slice(&u32::try_from(c.length).unwrap_or(u32::MAX).to_be_bytes());
    }
    out
}

/// `None` for anything but a whole order file: a damaged one only costs deltas.
fn decode_order(bytes: &[u8]) -> Option<Vec<ChunkRef>> {
    let body = bytes.strip_prefix(ORDER_MAGIC)?;
    if body.len() % 36 != 0 {
        return None;
    }
    body.chunks_exact(36)
        .map(|e| {
            Some(ChunkRef {
                digest: Digest::from_bytes(e[..32].try_into().ok()?),
                length: u64::from(u32::from_be_bytes(e[32..].try_into().ok()?)),
            })
        })
        .collect()
}

/// The length of the pack in `file` up to its last complete record (0 when it is not a
/// pack), and its records: headers are read, frames skipped, so a partial pack of any size
/// costs its entries in memory, not its bytes.
fn complete_records(file: &File) -> (u64, Vec<Entry>) {
    use rel_format::pack::{RECORD_HEADER, read_record_header};
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return (0, Vec::new());
    };
    let mut magic = [0u8; PACK_MAGIC.len()];
    if file.read_exact_at(&mut magic, 0).is_err() || &magic != PACK_MAGIC {
        return (0, Vec::new());
    }
    let (mut at, mut entries) = (PACK_MAGIC.len() as u64, Vec::new());
    let mut header = [0u8; RECORD_HEADER];
    while at + RECORD_HEADER as u64 <= len && file.read_exact_at(&mut header, at).is_ok() {
        let Ok((digest, length, size)) = read_record_header(&header) else {
            break;
        };
        let end = at + RECORD_HEADER as u64 + u64::from(size);
        if end > len {
            break;
        }
        entries.push(Entry {
            digest,
            offset: at + RECORD_HEADER as u64,
            size,
            length,
        });
        at = end;
    }
    (at, entries)
}

/// The pack of an artifact being pulled, entering the cache when complete.
#[derive(Debug)]
pub struct CacheWriter {
    /// The partial pack, locked while this writer has it.
    file: Option<(io::BufWriter<File>, PathBuf)>,
    offset: u64,
    entries: Vec<Entry>,
    seen: HashSet<Digest>,
    stream: Digest,
    /// The stream's chunks in order, kept beside the pack.
    order: Vec<ChunkRef>,
    cache: PackCache,
}

impl CacheWriter {
    /// Adds a chunk's frame (verified by the caller), once per digest.
    pub fn add(&mut self, chunk: &ChunkRef, frame: &[u8]) -> io::Result<()> {
        let Some((file, _)) = &mut self.file else { return Ok(()) };
        if !self.seen.insert(chunk.digest) {
            return Ok(());
        }
        let header = record_header(chunk, frame.len());
        file.write_all(&header)?;
        file.write_all(frame)?;
        let offset = self.offset + header.len() as u64;
        self.entries.push(Entry {
            digest: chunk.digest,
            offset,
            size: u32::try_from(frame.len()).unwrap_or(u32::MAX),
            length: u32::try_from(chunk.length).unwrap_or(u32::MAX),
        });
        self.offset = offset + frame.len() as u64;
        Ok(())
    }

    /// Keeps the pack (the whole stream was verified by the caller), then its index.
    pub fn commit(mut self) -> io::Result<()> {
        let Some((file, partial)) = self.file.take() else {
            return Ok(());
        };
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        let (pack, index) = self.cache.paths(&self.stream);
        std::fs::rename(&partial, &pack)?;
        drop(file);
        self.cache.write_order(&pack.with_extension("order"), &self.order)?;
        let mut tmp = self.cache.temp_file()?;
        tmp.write_all(&encode_index(&self.entries))?;
        tmp.persist(&index).map_err(|e| e.error)?;
        self.cache.evict();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rel_format::chunk::{ChunkRef, ChunkedStream, compress_chunk};

    use super::*;

    fn artifact(seed: u8, n: usize) -> (ChunkedStream, Vec<(ChunkRef, Vec<u8>)>) {
        let chunks: Vec<_> = (0..n)
            .map(|i| {
                let data = vec![seed.wrapping_add(i as u8); 1000 + i];
                let c = ChunkRef {
                    digest: Digest::of(&data),
                    length: data.len() as u64,
                };
                (c, data)
            })
            .collect();
        let stream = ChunkedStream {
            digest: Digest::of(&[seed]),
            length: 0,
            chunking: String::new(),
            chunks: chunks.iter().map(|(c, _)| c.clone()).collect(),
        };
        (stream, chunks)
    }

    fn store(cache: &PackCache, stream: &ChunkedStream, chunks: &[(ChunkRef, Vec<u8>)]) {
        let mut w = cache.begin(stream).unwrap();
        for (c, data) in chunks.iter().chain(chunks) {
            w.add(c, &compress_chunk(data).unwrap()).unwrap();
        }
        w.commit().unwrap();
    }

    #[test]
    fn chunks_come_back_verified_and_a_damaged_pack_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::open(dir.path()).unwrap();
        let (stream, chunks) = artifact(1, 5);
        store(&cache, &stream, &chunks);
        assert!(cache.has(&stream.digest));
        let index = cache.index();
        assert_eq!(index.len(), 5, "each chunk once");
        for (c, data) in &chunks {
            let (got, frame) = cache.read(&index[&c.digest], c).unwrap();
            assert_eq!((&got, frame.len() as u32), (data, index[&c.digest].entry.size));
        }
        // Together: the same, in order; one recorded under another's digest fails alone.
        let mut wanted: Vec<_> = chunks.iter().map(|(c, _)| (&index[&c.digest], c)).collect();
        wanted[1].0 = &index[&chunks[0].0.digest];
        let got = cache.read_many(&wanted);
        assert_eq!(got.len(), 5);
        for (i, (got, (_, data))) in got.iter().zip(&chunks).enumerate() {
            match i {
                1 => assert!(got.is_none()),
                _ => assert_eq!(&got.as_ref().unwrap().0, data),
            }
        }
        let (pack, _) = cache.paths(&stream.digest);
        let len = std::fs::metadata(&pack).unwrap().len() as usize;
        std::fs::write(&pack, vec![0x5a; len]).unwrap();
        let (c, _) = &chunks[2];
        assert!(cache.read(&index[&c.digest], c).is_none());
        let wanted: Vec<_> = chunks.iter().map(|(c, _)| (&index[&c.digest], c)).collect();
        assert!(cache.read_many(&wanted).iter().all(Option::is_none));
    }

    #[test]
    fn deltas_go_against_the_cached_artifact_sharing_the_most_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::open(dir.path()).unwrap();
        let (a, a_chunks) = artifact(1, 6);
        let (b, b_chunks) = artifact(100, 6);
        store(&cache, &a, &a_chunks);
        store(&cache, &b, &b_chunks);
        // Shares one chunk with a, three with b (in another order than b's).
        let target: Vec<ChunkRef> = [&a.chunks[0], &b.chunks[4], &b.chunks[1], &b.chunks[2]]
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(
            cache.closest(&target),
            Some(b.chunks.clone()),
            "b's chunks, in b's order"
        );
        assert_eq!(cache.closest(&artifact(200, 3).0.chunks), None, "nothing shared");
        // A damaged order file costs only that artifact's deltas.
        let (pack, _) = cache.paths(&b.digest);
        std::fs::write(pack.with_extension("order"), b"RELORDR1 cut").unwrap();
        assert_eq!(cache.closest(&target), Some(a.chunks.clone()));
    }

    #[test]
    fn the_newest_artifacts_stay_and_the_old_format_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("0123.tar"), b"an old cache entry").unwrap();
        std::fs::write(dir.path().join("0123.chunks"), b"[]").unwrap();
        let mut streams = Vec::new();
        let orphan = dir.path().join(format!("{}.snapshot", Digest::of(b"gone").hex()));
        std::fs::write(&orphan, b"a snapshot whose pack is gone").unwrap();
        for seed in 0..KEEP as u8 + 2 {
            let (stream, chunks) = artifact(seed * 10, 2);
            store(&cache, &stream, &chunks);
            let (pack, _) = cache.paths(&stream.digest);
            std::fs::write(pack.with_extension("snapshot"), b"its snapshot").unwrap();
            streams.push(stream);
            // Modification times tell the newest; keep them apart.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let kept: Vec<bool> = streams.iter().map(|s| cache.has(&s.digest)).collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), KEEP);
        assert!(!kept[0] && !kept[1] && kept[KEEP + 1], "{kept:?}");
        assert!(!dir.path().join("0123.tar").exists() && !dir.path().join("0123.chunks").exists());
        // An evicted artifact's order and snapshot go with it; a snapshot alone goes too.
        let count = |ext: &str| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == ext))
                .count()
        };
        assert_eq!((count("order"), count("snapshot")), (KEEP, KEEP));
        assert!(!orphan.exists());
    }

    #[test]
    fn ranges_are_cut_from_the_chunks_they_touch() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::open(dir.path()).unwrap();
        let (stream, chunks) = artifact(7, 5);
        store(&cache, &stream, &chunks);
        let whole: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.clone()).collect();
        let len = whole.len() as u64;
        let cases: [&[(u64, u64)]; 5] = [
            &[],
            &[(0, len)],
            &[(0, 10), (999, 1001), (1500, 3100)],
            &[(2002, 2003), (len - 1, len)],
            &[(3000, 4006)],
        ];
        for ranges in cases {
            let want: Vec<u8> = ranges
                .iter()
                .flat_map(|&(s, e)| whole[s as usize..e as usize].to_vec())
                .collect();
            assert_eq!(cache.read_ranges(&stream, ranges), Some(want), "{ranges:?}");
        }
        // Past the end, or a chunk that no longer reads back: nothing.
        assert_eq!(cache.read_ranges(&stream, &[(len - 1, len + 1)]), None);
        let (pack, index) = cache.paths(&stream.digest);
        let mut bytes = std::fs::read(&pack).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        std::fs::write(&pack, bytes).unwrap();
        assert_eq!(cache.read_ranges(&stream, &[(0, 10)]), Some(whole[..10].to_vec()));
        assert_eq!(cache.read_ranges(&stream, &[(0, len)]), None);
        std::fs::remove_file(index).unwrap();
        assert_eq!(cache.read_ranges(&stream, &[(0, 10)]), None);
    }

    #[test]
    fn artifacts_a_root_pins_stay_until_it_pins_others_or_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::open(dir.path().join("cache").as_path()).unwrap();
        let (root_a, root_b) = (dir.path().join("a"), dir.path().join("b"));
        for r in [&root_a, &root_b] {
            std::fs::create_dir_all(r.join("releases")).unwrap();
        }
        let (first, chunks) = artifact(200, 2);
        store(&cache, &first, &chunks);
        cache.pin(&root_a, &[first.digest]).unwrap();
        cache.pin(&root_b, &[first.digest]).unwrap();
        let fill = |from: u8| {
            for seed in from..from + KEEP as u8 + 1 {
                let (stream, chunks) = artifact(seed, 2);
                store(&cache, &stream, &chunks);
            }
        };
        fill(0);
        assert!(cache.has(&first.digest), "a pinned artifact was evicted");
        // a moves on; b still pins it.
        cache.pin(&root_a, &[]).unwrap();
        fill(20);
        assert!(cache.has(&first.digest));
        // b is removed from the host: nothing pins it any more.
        std::fs::remove_dir_all(&root_b).unwrap();
        fill(40);
        assert!(!cache.has(&first.digest), "an artifact no root pins stayed");
    }
}
