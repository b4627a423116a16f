//! Content-defined chunks of the canonical tar stream.
//!
//! Chunks are small because BEAM files are: a release's modules average a few KiB to tens of
//! KiB, and a hot upgrade usually changes a few percent of them, scattered. Smaller chunks
//! cost more manifest entries (about 64 000 for 1 GiB) but keep a next version's download
//! close to the size of what really changed.
//!
//! The stream is cut with FastCDC (2020, normalisation level 1, the `fastcdc` crate's gear
//! table) at 4 KiB minimum, 16 KiB average and 64 KiB maximum: each cut is the one FastCDC
//! finds in the next `max` bytes of the stream. Cuts depend only on nearby content, so a
//! changed module in a new version changes one or two chunks and the rest are shared. Each
//! chunk is addressed by the sha256 of its **uncompressed** bytes and stored compressed on
//! its own (SPEC.md §4).
//!
//! [`Chunker`] is a `Write` sink: the canonical tar writer streams into it and it hands each
//! finished chunk to a [`ChunkSink`], so no artifact is ever held whole in memory.
//! [`Reassembler`] is the way back: it checks every chunk and the whole stream.

use std::io::{self, Write};

use fastcdc::v2020::{Normalization, cut, select_masks};
use rel_sha256::{Sha256, update_pair};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingWriter};

/// Smallest chunk, except the last of a stream.
pub const MIN_CHUNK: usize = 4 * 1024;
/// Target average chunk size.
pub const AVG_CHUNK: usize = 16 * 1024;
/// Largest chunk.
pub const MAX_CHUNK: usize = 64 * 1024;
/// The chunking parameters' name, recorded in every manifest.
pub const CHUNKING: &str = "fastcdc-2020-l1/4k/16k/64k";

/// The zstd level chunks are stored at: -1, zstd's first "fast" level. On 16 KiB chunks of
/// Debian's OTP libs and ERTS (`zstd -b -B16384`), level 1 makes frames 4% smaller (ratio
/// 1.45 against 1.39) but compresses at 360 MB/s instead of 480 and decompresses at 1.3 GB/s
/// instead of 1.9. A push is CPU-bound on the client and the registry (which decompresses
/// and hashes every frame), and every host decompresses every chunk it fetches; the bytes
/// saved matter only for a first pull, next versions fetching a few percent. Level 3 saves
/// 2% more for another 20% of time. Any level is valid to readers.
pub const LEVEL: i32 = -1;

/// One chunk of a stream: its address and uncompressed length.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRef {
    pub digest: Digest,
    pub length: u64,
}

/// A chunked stream: its digest, length and chunks in order.
///
/// Fields are declared in byte order of their names, so that `serde_json`'s compact output is
/// the canonical JSON (SPEC.md §5) without building a tree first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkedStream {
    pub chunking: String,
    #[serde(deserialize_with = "crate::manifest::at_most::<_, _, { crate::manifest::MAX_CHUNKS }>")]
    pub chunks: Vec<ChunkRef>,
    pub digest: Digest,
    pub length: u64,
}

/// Receives each chunk as the [`Chunker`] cuts it.
pub trait ChunkSink {
    fn put(&mut self, chunk: &ChunkRef, data: &[u8]) -> io::Result<()>;
}

impl<F: FnMut(&ChunkRef, &[u8]) -> io::Result<()>> ChunkSink for F {
    fn put(&mut self, chunk: &ChunkRef, data: &[u8]) -> io::Result<()> {
        self(chunk, data)
    }
}

/// Bytes the [`Chunker`] gathers before it cuts: cutting leaves less than [`MAX_CHUNK`]
/// behind, moved to the front of the buffer, so a wide window moves few bytes. Cuts do not
/// depend on it.
const WINDOW: usize = 16 * MAX_CHUNK;

/// Cuts what is written into content-defined chunks.
#[derive(Debug)]
pub struct Chunker<S> {
    buf: Vec<u8>,
    sink: S,
    whole: Sha256,
    length: u64,
    chunks: Vec<ChunkRef>,
    masks: (u64, u64),
}

impl<S: ChunkSink> Chunker<S> {
    pub fn new(sink: S) -> Self {
        Self {
            buf: Vec::with_capacity(WINDOW + MAX_CHUNK),
            sink,
            whole: Sha256::new(),
            length: 0,
            chunks: Vec::new(),
            masks: select_masks(AVG_CHUNK, Normalization::Level1),
        }
    }

    fn cut_len(&self, data: &[u8]) -> usize {
        let (s, l) = self.masks;
        cut(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK, s, l, s << 1, l << 1).1
    }

    /// Emits chunks while a full cut window is buffered (or all of it, at the end). Each
    /// chunk's bytes are hashed for the chunk and for the whole stream at once
    /// ([`update_pair`]): the two digests cost little more than one.
    fn drain(&mut self, at_end: bool) -> io::Result<()> {
        let mut pos = 0;
        while self.buf.len() - pos >= MAX_CHUNK || (at_end && pos < self.buf.len()) {
            let n = self.cut_len(&self.buf[pos..]).max(1);
            let data = &self.buf[pos..pos + n];
            let mut hasher = Sha256::new();
            update_pair(&mut self.whole, data, &mut hasher, data);
            let chunk = ChunkRef {
                digest: Digest::from_bytes(hasher.finalize()),
                length: n as u64,
            };
            self.sink.put(&chunk, data)?;
            self.chunks.push(chunk);
            pos += n;
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// Flushes the last chunk and returns the chunked stream and the sink.
    pub fn finish(mut self) -> io::Result<(ChunkedStream, S)> {
        self.drain(true)?;
        let stream = ChunkedStream {
            digest: Digest::from_bytes(self.whole.finalize()),
            length: self.length,
            chunking: CHUNKING.to_owned(),
            chunks: self.chunks,
        };
        Ok((stream, self.sink))
    }
}

impl<S: ChunkSink> Write for Chunker<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.length += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WINDOW {
            self.drain(false)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a chunk or a reassembled stream was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    #[error("chunk {expected} has digest {actual}: its bytes were altered")]
    Digest { expected: Digest, actual: Digest },
    #[error("chunk {digest} is {actual} bytes; the manifest says {expected}")]
    Length { digest: Digest, expected: u64, actual: u64 },
    #[error(
        "the reassembled stream has digest {actual} and {actual_len} bytes; the manifest says {expected} and {expected_len} bytes"
    )]
    Stream {
        expected: Digest,
        actual: Digest,
        expected_len: u64,
        actual_len: u64,
    },
    #[error("chunk {digest} is not valid zstd data")]
    Decompress {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the reassembled stream")]
    Write(#[source] io::Error),
}

/// Checks that `data` is the chunk `chunk` names.
pub fn verify_chunk(chunk: &ChunkRef, data: &[u8]) -> Result<(), ChunkError> {
    check_length(chunk, data)?;
    check_digest(chunk, Digest::of(data))
}

fn check_length(chunk: &ChunkRef, data: &[u8]) -> Result<(), ChunkError> {
    if data.len() as u64 != chunk.length {
        return Err(ChunkError::Length {
            digest: chunk.digest,
            expected: chunk.length,
            actual: data.len() as u64,
        });
    }
    Ok(())
}

fn check_digest(chunk: &ChunkRef, actual: Digest) -> Result<(), ChunkError> {
    if actual != chunk.digest {
        return Err(ChunkError::Digest {
            expected: chunk.digest,
            actual,
        });
    }
    Ok(())
}

/// Writes a chunked stream back, verifying each chunk on the way and the whole at the end.
#[derive(Debug)]
pub struct Reassembler<W: Write> {
    out: HashingWriter<W>,
    expected: Digest,
    expected_len: u64,
}

impl<W: Write> Reassembler<W> {
    pub fn new(stream: &ChunkedStream, out: W) -> Self {
        Self {
            out: HashingWriter::new(out),
            expected: stream.digest,
            expected_len: stream.length,
        }
    }

    /// Verifies `data` as `chunk` and appends it.
    pub fn push(&mut self, chunk: &ChunkRef, data: &[u8]) -> Result<(), ChunkError> {
        verify_chunk(chunk, data)?;
        self.out.write_all(data).map_err(ChunkError::Write)
    }

    /// Appends `data` as `chunk` when the caller has already verified it (with
    /// [`verify_chunk`] or [`decompress_chunk`]); the whole stream is still checked at the end.
    pub fn push_verified(&mut self, chunk: &ChunkRef, data: &[u8]) -> Result<(), ChunkError> {
        debug_assert_eq!(data.len() as u64, chunk.length);
        self.out.write_all(data).map_err(ChunkError::Write)
    }

    /// Checks the whole stream's digest and length; returns the writer.
    pub fn finish(self) -> Result<W, ChunkError> {
        let (actual, actual_len, out) = self.out.finish();
        if actual != self.expected || actual_len != self.expected_len {
            return Err(ChunkError::Stream {
                expected: self.expected,
                actual,
                expected_len: self.expected_len,
                actual_len,
            });
        }
        Ok(out)
    }
}

/// Compresses a chunk for storage (zstd, level [`LEVEL`]).
#[cfg(feature = "zstd")]
pub fn compress_chunk(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    compress_chunk_into(data, &mut out)?;
    Ok(out)
}

/// Appends the compressed frame of a chunk to `out`. Each thread keeps one compression
/// context: creating one per chunk costs as much as compressing a small chunk.
#[cfg(feature = "zstd")]
pub fn compress_chunk_into(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.reserve(frame_bound(data.len()));
    thread_local! {
        static CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let end = out.len() as u64;
    // A cursor at the end appends; the plain Vec would be written from its start.
    let mut tail = io::Cursor::new(out);
    tail.set_position(end);
    CCTX.with_borrow_mut(|cctx| {
        let cctx = match cctx {
            Some(c) => c,
            None => cctx.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        cctx.compress_to_buffer(data, &mut tail).map(|_| ())
    })
}

/// The largest frame [`compress_chunk_into`] appends for `length` bytes.
#[cfg(feature = "zstd")]
pub fn frame_bound(length: usize) -> usize {
    zstd::zstd_safe::compress_bound(length)
}

/// Decompresses a stored chunk, refusing output larger than the chunk's recorded length (so a
/// hostile store cannot send a decompression bomb), then verifies it.
#[cfg(feature = "zstd")]
pub fn decompress_chunk(chunk: &ChunkRef, stored: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let mut data = Vec::new();
    decompress_into(chunk, stored, &mut data)?;
    Ok(data)
}

/// Checks that each `(chunk, stored)` is a frame of its chunk, as [`decompress_chunk`] does,
/// two at a time: both decompressed into buffers the thread reuses, then hashed at once
/// ([`rel_sha256::digest_pair`]). The error is the first frame's that fails, in order.
#[cfg(feature = "zstd")]
pub fn check_frames<'a>(frames: impl IntoIterator<Item = (ChunkRef, &'a [u8])>) -> Result<(), ChunkError> {
    thread_local! {
        static BUFS: std::cell::RefCell<[Vec<u8>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
    }
    BUFS.with_borrow_mut(|[x, y]| {
        let mut frames = frames.into_iter();
        while let Some((a, stored_a)) = frames.next() {
            decompress_unverified(&a, stored_a, x)?;
            let Some((b, stored_b)) = frames.next() else {
                return verify_chunk(&a, x);
            };
            check_length(&a, x)?;
            if let Err(e) = decompress_unverified(&b, stored_b, y).and_then(|()| check_length(&b, y)) {
                verify_chunk(&a, x)?;
                return Err(e);
            }
            let (da, db) = rel_sha256::digest_pair(x, y);
            check_digest(&a, Digest::from_bytes(da))?;
            check_digest(&b, Digest::from_bytes(db))?;
        }
        Ok(())
    })
}

/// Decompresses each `(chunk, stored)` and verifies it, as [`decompress_chunk`] does, the
/// chunks hashed two at a time; each result stands on its own.
#[cfg(feature = "zstd")]
pub fn decompress_chunks(frames: &[(&ChunkRef, &[u8])]) -> Vec<Result<Vec<u8>, ChunkError>> {
    let mut out: Vec<Result<Vec<u8>, ChunkError>> = frames
        .iter()
        .map(|(chunk, stored)| {
            let mut data = Vec::new();
            decompress_unverified(chunk, stored, &mut data)?;
            check_length(chunk, &data)?;
            Ok(data)
        })
        .collect();
    let whole: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_ok()).collect();
    for pair in whole.chunks(2) {
        let data = |i: usize| out[i].as_deref().unwrap_or_default();
        let digests = match *pair {
            [i, j] => {
                let (a, b) = rel_sha256::digest_pair(data(i), data(j));
                vec![Digest::from_bytes(a), Digest::from_bytes(b)]
            }
            _ => pair.iter().map(|&i| Digest::of(data(i))).collect(),
        };
        for (&i, digest) in pair.iter().zip(digests) {
            if let Err(e) = check_digest(frames[i].0, digest) {
                out[i] = Err(e);
            }
        }
    }
    out
}

/// Decompresses `stored` into `data` (replacing what it held) and verifies it as `chunk`.
#[cfg(feature = "zstd")]
fn decompress_into(chunk: &ChunkRef, stored: &[u8], data: &mut Vec<u8>) -> Result<(), ChunkError> {
    decompress_unverified(chunk, stored, data)?;
    verify_chunk(chunk, data)
}

/// Decompresses `stored` into `data` (replacing what it held), for the caller to verify.
#[cfg(feature = "zstd")]
fn decompress_unverified(chunk: &ChunkRef, stored: &[u8], data: &mut Vec<u8>) -> Result<(), ChunkError> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let capacity = usize::try_from(chunk.length).unwrap_or(usize::MAX).min(MAX_CHUNK);
    data.clear();
    data.reserve(capacity);
    DCTX.with_borrow_mut(|dctx| {
        let dctx = match dctx {
            Some(d) => d,
            None => dctx.insert(zstd::bulk::Decompressor::new()?),
        };
        // Output is capped at the buffer's capacity, which is at least the recorded length;
        // a longer result then fails the length check.
        dctx.decompress_to_buffer(stored, &mut *data)
    })
    .map_err(|source| ChunkError::Decompress {
        digest: chunk.digest,
        source,
    })?;
    Ok(())
}
