//! The local cache: canonical tars of artifacts already pulled, and their chunk lists.
//!
//! Pulling the next version of a release reads every chunk it shares with a cached artifact
//! from that artifact's tar (by offset) and fetches only the rest. Keeping whole tars, not
//! one file per chunk, keeps the cache cheap to write: one sequential file per artifact.
//! Entries are written under a temporary name and renamed when complete; every chunk read
//! from the cache is verified against its digest like a fetched one, so a damaged cache
//! costs a refetch, never a wrong byte. The newest [`KEEP`] artifacts are kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rel_format::Digest;
use rel_format::chunk::{ChunkRef, ChunkedStream};

/// How many artifacts the cache keeps.
pub const KEEP: usize = 8;

/// Where a chunk can be read locally.
#[derive(Debug, Clone)]
pub struct Location {
    pub tar: PathBuf,
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Clone)]
pub struct TarCache {
    dir: PathBuf,
}

impl TarCache {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn paths(&self, digest: &Digest) -> (PathBuf, PathBuf) {
        let hex = digest.hex();
        (
            self.dir.join(format!("{hex}.tar")),
            self.dir.join(format!("{hex}.chunks")),
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
            if path.extension().is_none_or(|x| x != "chunks") {
                continue;
            }
            let Ok(stream) = std::fs::read(&path)
                .map_err(|_| ())
                .and_then(|b| serde_json::from_slice::<ChunkedStream>(&b).map_err(|_| ()))
            else {
                continue;
            };
            let tar = path.with_extension("tar");
            let mut offset = 0;
            for c in &stream.chunks {
                index.entry(c.digest).or_insert(Location {
                    tar: tar.clone(),
                    offset,
                    length: c.length,
                });
                offset += c.length;
            }
        }
        index
    }

    /// Whether the artifact with this tar digest is cached whole.
    pub fn has(&self, digest: &Digest) -> bool {
        let (tar, chunks) = self.paths(digest);
        tar.exists() && chunks.exists()
    }

    /// Reads a chunk; `None` if it is gone or no longer what it was.
    pub fn read(&self, loc: &Location, chunk: &ChunkRef) -> Option<Vec<u8>> {
        let file = File::open(&loc.tar).ok()?;
        let mut buf = vec![0; usize::try_from(loc.length).ok()?];
        file.read_exact_at(&mut buf, loc.offset).ok()?;
        rel_format::chunk::verify_chunk(chunk, &buf).ok()?;
        Some(buf)
    }

    /// Starts writing the tar of `stream` into the cache.
    pub fn begin(&self, stream: &ChunkedStream) -> io::Result<CacheWriter> {
        let file = tempfile::NamedTempFile::new_in(&self.dir)?;
        Ok(CacheWriter {
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            stream: stream.clone(),
            cache: self.clone(),
        })
    }

    /// Drops all but the newest [`KEEP`] artifacts.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut tars: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "chunks"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        tars.sort();
        tars.reverse();
        for (_, chunks) in tars.into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(&chunks);
            let _ = std::fs::remove_file(chunks.with_extension("tar"));
        }
    }
}

/// The tar of an artifact being pulled, entering the cache when complete.
#[derive(Debug)]
pub struct CacheWriter {
    file: Option<io::BufWriter<tempfile::NamedTempFile>>,
    stream: ChunkedStream,
    cache: TarCache,
}

impl Write for CacheWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl CacheWriter {
    /// Keeps the tar (its bytes were verified by the caller).
    pub fn commit(mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else { return Ok(()) };
        let file = file.into_inner().map_err(|e| e.into_error())?;
        let (tar, chunks) = self.cache.paths(&self.stream.digest);
        file.persist(&tar).map_err(|e| e.error)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.cache.dir)?;
        tmp.write_all(&serde_json::to_vec(&self.stream)?)?;
        tmp.persist(&chunks).map_err(|e| e.error)?;
        self.cache.evict();
        Ok(())
    }
}
