//! A tarball written to a file atomically, compressed as its name says (`.tar`, `.tar.gz` or
//! `.tgz`, `.tar.zst`): nothing appears at the path until [`TarFile::commit`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

enum Encoder {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

/// The file being written; dropped without a commit, it leaves nothing.
pub struct TarFile {
    encoder: Encoder,
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl std::fmt::Debug for TarFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TarFile {
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        super::temp::sweep(&parent, Some(&name));
        let tmp = tempfile::Builder::new()
            .prefix(&super::temp::prefix(&name))
            .tempfile_in(&parent)
            .with_context(|| format!("cannot write in `{}`", parent.display()))?;
        let file = BufWriter::with_capacity(1 << 20, tmp.reopen()?);
        let encoder = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Encoder::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::new(6)))
        } else if name.ends_with(".tar.zst") {
            Encoder::Zstd(zstd::stream::write::Encoder::new(file, 3)?)
        } else if name.ends_with(".tar") {
            Encoder::Plain(file)
        } else {
            bail!(
                "cannot tell the format of `{}`: name it .tar.gz, .tar or .tar.zst",
                path.display()
            )
        };
        Ok(Self {
            encoder,
            tmp,
            path: path.to_owned(),
        })
    }

    /// Finishes the compression and puts the file in place, as an ordinary file (0644).
    pub fn commit(self) -> Result<()> {
        let mut file = match self.encoder {
            Encoder::Plain(f) => f,
            Encoder::Gzip(gz) => gz.finish()?,
            Encoder::Zstd(z) => z.finish()?,
        };
        file.flush()?;
        // Temporary files are private; the result is not.
        std::fs::set_permissions(self.tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        self.tmp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write `{}`", self.path.display()))?;
        Ok(())
    }
}

impl Write for TarFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}
