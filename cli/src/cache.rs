//! The local chunk cache: compressed chunks by digest, shared by push and pull.
//!
//! Pulling the next version of a release fetches only the chunks the cache lacks. Entries
//! are written atomically (temporary file, then rename) and checked when read, so a
//! corrupted cache entry is refetched, never trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use rel_format::Digest;

#[derive(Debug, Clone)]
pub struct ChunkCache {
    dir: PathBuf,
}

impl ChunkCache {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    /// The compressed bytes, if cached.
    pub fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        std::fs::read(self.path(digest)).ok()
    }

    pub fn put(&self, digest: &Digest, compressed: &[u8]) -> std::io::Result<()> {
        let path = self.path(digest);
        let dir = path.parent().expect("cache paths have a parent");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(compressed)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Drops a bad entry.
    pub fn remove(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.path(digest));
    }
}
