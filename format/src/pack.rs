//! Packs: many compressed chunks in one upload and one stored object (SPEC.md §4.1).
//!
//! A release of a few thousand chunks stored one object per chunk costs a few thousand
//! requests on every push and a few thousand files or S3 PUTs in the store. A pack carries a
//! batch of chunks in one body, which the registry verifies and stores as one object, plus a
//! small index that says where each chunk's frame starts. A pack is self-describing: its
//! index can be rebuilt from it alone.
//!
//! ```text
//! pack  = "RELPACK1" record*
//! record = digest (32 bytes) | length (u32 BE, uncompressed) | size (u32 BE) | frame (size bytes)
//! index = "RELPIDX1" count (u32 BE) entry*        entries sorted by digest, no duplicates
//! entry = digest (32 bytes) | offset (u64 BE, of the frame in the pack) | size (u32 BE) | length (u32 BE)
//! ```

use crate::chunk::{ChunkRef, MAX_CHUNK};
use crate::digest::Digest;

/// What a pack starts with.
pub const PACK_MAGIC: &[u8; 8] = b"RELPACK1";
const INDEX_MAGIC: &[u8; 8] = b"RELPIDX1";
/// Bytes of a record before its frame.
pub const RECORD_HEADER: usize = 32 + 4 + 4;
const INDEX_ENTRY: usize = 32 + 8 + 4 + 4;

/// Largest pack body the registry accepts.
pub const MAX_PACK: usize = 32 * 1024 * 1024;
/// Largest zstd frame of one chunk: an incompressible chunk grows a little.
pub const MAX_FRAME: usize = MAX_CHUNK + 4096;
/// Most records one pack may hold (`rel push` sends 128; a batch answer holds at most 1,024).
/// This bounds the work of checking a pack and the size of its index.
pub const MAX_PACK_RECORDS: usize = 4096;
/// A pack carries on average at least this many uncompressed bytes per record, not counting
/// its [`SHORT_RECORDS_ALLOWED`] shortest: the chunker's minimum, which only the last chunk of
/// a stream may be under. A pack of tiny chunks would cost the registry an index entry for
/// almost no content.
pub const MIN_AVERAGE_CHUNK: u64 = crate::chunk::MIN_CHUNK as u64;
/// Records a pack may hold beyond what [`MIN_AVERAGE_CHUNK`] allows (last chunks of streams).
pub const SHORT_RECORDS_ALLOWED: usize = 16;

/// Why a pack or an index was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackError {
    #[error("not a pack: it does not start with `RELPACK1`")]
    PackMagic,
    #[error("not a pack index: it does not start with `RELPIDX1`")]
    IndexMagic,
    #[error("the pack is {0} bytes, more than the {MAX_PACK} allowed")]
    TooLarge(usize),
    #[error("the pack is cut short in the record at byte {0}")]
    Truncated(usize),
    #[error("chunk {digest} in the pack has length {length}, more than the {MAX_CHUNK} allowed")]
    ChunkTooLong { digest: Digest, length: u32 },
    #[error("chunk {digest} in the pack has a frame of {size} bytes, more than the {MAX_FRAME} allowed")]
    FrameTooLarge { digest: Digest, size: u32 },
    #[error("the pack holds no chunks")]
    Empty,
    #[error("the pack holds more than {MAX_PACK_RECORDS} records")]
    TooManyRecords,
    #[error(
        "the pack holds {records} records for {bytes} bytes of chunks; a pack carries at least {MIN_AVERAGE_CHUNK} bytes a record on average (beyond {SHORT_RECORDS_ALLOWED} short ones)"
    )]
    TooSparse { records: usize, bytes: u64 },
    #[error("the pack index is {actual} bytes, but {count} entries need {expected}")]
    IndexLength { count: u32, expected: usize, actual: usize },
    #[error("the pack index is not sorted by digest, or repeats {0}")]
    IndexOrder(Digest),
}

/// Where one chunk's frame is in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    pub digest: Digest,
    /// Of the frame, from the start of the pack.
    pub offset: u64,
    /// Of the frame.
    pub size: u32,
    /// Of the uncompressed chunk.
    pub length: u32,
}

impl Entry {
    pub fn chunk(&self) -> ChunkRef {
        ChunkRef {
            digest: self.digest,
            length: u64::from(self.length),
        }
    }

    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + u64::from(self.size)
    }
}

/// Builds a pack body, record by record.
#[derive(Debug, Clone)]
pub struct PackWriter {
    body: Vec<u8>,
    entries: usize,
}

impl Default for PackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PackWriter {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A writer whose body holds `bytes` (magic and records) before it must grow: a pack
    /// built in one allocation is not copied as it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut body = Vec::with_capacity(bytes.max(PACK_MAGIC.len()));
        body.extend_from_slice(PACK_MAGIC);
        Self { body, entries: 0 }
    }

    /// Appends the compressed `frame` of `chunk`.
    pub fn push(&mut self, chunk: &ChunkRef, frame: &[u8]) {
        let appended: Result<(), std::convert::Infallible> = self.push_with(chunk, |body| {
            body.extend_from_slice(frame);
            Ok(())
        });
        let Ok(()) = appended;
    }

    /// Appends `chunk` with the frame that `write` appends to the body (compressing straight
    /// into the pack saves a copy of every frame).
    pub fn push_with<E>(
        &mut self,
        chunk: &ChunkRef,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.body.len();
        self.body.extend_from_slice(&record_header(chunk, 0));
        if let Err(e) = write(&mut self.body) {
            self.body.truncate(start);
            return Err(e);
        }
        let size = u32::try_from(self.body.len() - start - RECORD_HEADER).unwrap_or(u32::MAX);
        self.body[start + 36..start + RECORD_HEADER].copy_from_slice(&size.to_be_bytes());
        self.entries += 1;
        Ok(())
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    pub fn finish(self) -> Vec<u8> {
        self.body
    }
}

/// The header of the record of `chunk` with a frame of `size` bytes.
pub fn record_header(chunk: &ChunkRef, size: usize) -> [u8; RECORD_HEADER] {
    let mut header = [0; RECORD_HEADER];
    header[..32].copy_from_slice(chunk.digest.as_bytes());
    header[32..36].copy_from_slice(&u32::try_from(chunk.length).unwrap_or(u32::MAX).to_be_bytes());
    header[36..].copy_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    header
}

/// Reads a record header written by [`record_header`]: the chunk's digest, its length and
/// the frame's size, each within its bound.
pub fn read_record_header(header: &[u8; RECORD_HEADER]) -> Result<(Digest, u32, u32), PackError> {
    let digest = Digest::from_bytes(header[..32].try_into().expect("32 bytes"));
    let length = u32::from_be_bytes(header[32..36].try_into().expect("4 bytes"));
    let size = u32::from_be_bytes(header[36..40].try_into().expect("4 bytes"));
    if length as usize > MAX_CHUNK {
        return Err(PackError::ChunkTooLong { digest, length });
    }
    if size as usize > MAX_FRAME {
        return Err(PackError::FrameTooLarge { digest, size });
    }
    Ok((digest, length, size))
}

/// Reads the records of a pack body; the frames themselves are the caller's to verify.
/// Entries come in the pack's order; a digest may repeat.
pub fn parse_pack(body: &[u8]) -> Result<Vec<Entry>, PackError> {
    if body.len() > MAX_PACK {
        return Err(PackError::TooLarge(body.len()));
    }
    let mut scanner = PackScanner::default();
    let mut entries = Vec::new();
    let used = scanner.scan(body, &mut entries)?;
    scanner.finish(body.len() - used, &entries)?;
    Ok(entries)
}

/// Reads a pack's records as its bytes arrive, so a receiver can check each frame (and
/// refuse the pack) before the rest has come. Sans-IO: the caller keeps the bytes.
///
/// Feed it the bytes not yet consumed, from where it last stopped; it consumes whole records
/// only (and the magic), and says how many bytes that was.
#[derive(Debug, Default, Clone)]
pub struct PackScanner {
    /// Bytes consumed so far, magic included.
    pos: usize,
}

impl PackScanner {
    /// Bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// How many more bytes `rest` (the bytes from [`consumed`](Self::consumed) on) needs
    /// before [`scan`](Self::scan) can consume something: the rest of the magic, of the next
    /// record's header, or of its frame. Zero when it can already. A receiver holding a
    /// record cut short copies just that many, then takes whole records from where they came.
    pub fn wanted(&self, rest: &[u8]) -> Result<usize, PackError> {
        let magic = if self.pos == 0 { PACK_MAGIC.len() } else { 0 };
        let Some(header) = rest.get(magic..).and_then(|r| r.first_chunk::<RECORD_HEADER>()) else {
            return Ok((magic + RECORD_HEADER).saturating_sub(rest.len()));
        };
        let (_, _, size) = read_record_header(header)?;
        Ok((magic + RECORD_HEADER + size as usize).saturating_sub(rest.len()))
    }

    /// Consumes the whole records at the start of `rest` (the bytes from
    /// [`consumed`](Self::consumed) on), appending their entries (offsets from the start of
    /// the pack). Returns how many bytes of `rest` were consumed.
    pub fn scan(&mut self, rest: &[u8], entries: &mut Vec<Entry>) -> Result<usize, PackError> {
        let mut used = 0;
        if self.pos == 0 {
            let n = rest.len().min(PACK_MAGIC.len());
            if rest[..n] != PACK_MAGIC[..n] {
                return Err(PackError::PackMagic);
            }
            if n < PACK_MAGIC.len() {
                return Ok(0);
            }
            used = PACK_MAGIC.len();
            self.pos = used;
        }
        loop {
            let Some(header) = rest[used..].first_chunk::<RECORD_HEADER>() else {
                return Ok(used);
            };
            let (digest, length, size) = read_record_header(header)?;
            if entries.len() >= MAX_PACK_RECORDS {
                return Err(PackError::TooManyRecords);
            }
            let record = RECORD_HEADER + size as usize;
            if rest.len() - used < record {
                return Ok(used);
            }
            entries.push(Entry {
                digest,
                offset: (self.pos + RECORD_HEADER) as u64,
                size,
                length,
            });
            self.pos += record;
            used += record;
            if self.pos > MAX_PACK {
                return Err(PackError::TooLarge(self.pos));
            }
        }
    }

    /// Checks the end of the pack: `left` bytes were not consumed (a record cut short).
    pub fn finish(&self, left: usize, entries: &[Entry]) -> Result<(), PackError> {
        if self.pos < PACK_MAGIC.len() {
            return Err(PackError::PackMagic);
        }
        if left > 0 {
            return Err(PackError::Truncated(self.pos));
        }
        if entries.is_empty() {
            return Err(PackError::Empty);
        }
        Ok(())
    }
}

/// Checks that a pack is not made of tiny chunks: every record beyond the
/// [`SHORT_RECORDS_ALLOWED`] shortest carries [`MIN_AVERAGE_CHUNK`] bytes on average. The
/// registry refuses uploads that are not (SPEC.md §4.1).
pub fn check_density(entries: &[Entry]) -> Result<(), PackError> {
    let bytes: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
    let counted = entries.len().saturating_sub(SHORT_RECORDS_ALLOWED) as u64;
    if bytes < counted * MIN_AVERAGE_CHUNK {
        return Err(PackError::TooSparse {
            records: entries.len(),
            bytes,
        });
    }
    Ok(())
}

/// The name of a pack: the sha256 of its record headers in order (each record without its
/// frame). It names the chunks and frame sizes without hashing every frame a second time;
/// two packs with one name hold valid frames of the same chunks at the same offsets, so
/// either may stand for the other.
pub fn pack_id(entries: &[Entry]) -> Digest {
    let mut headers = Vec::with_capacity(entries.len() * RECORD_HEADER);
    for e in entries {
        headers.extend_from_slice(e.digest.as_bytes());
        headers.extend_from_slice(&e.length.to_be_bytes());
        headers.extend_from_slice(&e.size.to_be_bytes());
    }
    Digest::of(&headers)
}

/// The entries of a pack's index: sorted by digest, the first copy of each digest kept.
pub fn index_entries(entries: &[Entry]) -> Vec<Entry> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| (e.digest, e.offset));
    sorted.dedup_by_key(|e| e.digest);
    sorted
}

/// The index of a pack (see [`index_entries`]).
pub fn encode_index(entries: &[Entry]) -> Vec<u8> {
    let sorted = index_entries(entries);
    let mut out = Vec::with_capacity(12 + sorted.len() * INDEX_ENTRY);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&u32::try_from(sorted.len()).unwrap_or(u32::MAX).to_be_bytes());
    for e in &sorted {
        out.extend_from_slice(e.digest.as_bytes());
        out.extend_from_slice(&e.offset.to_be_bytes());
        out.extend_from_slice(&e.size.to_be_bytes());
        out.extend_from_slice(&e.length.to_be_bytes());
    }
    out
}

/// Reads an index written by [`encode_index`].
pub fn decode_index(bytes: &[u8]) -> Result<Vec<Entry>, PackError> {
    let rest = bytes.strip_prefix(INDEX_MAGIC).ok_or(PackError::IndexMagic)?;
    let Some((count, rest)) = rest.split_first_chunk::<4>() else {
        return Err(PackError::IndexLength {
            count: 0,
            expected: 4,
            actual: rest.len(),
        });
    };
    let count = u32::from_be_bytes(*count);
    let expected = count as usize * INDEX_ENTRY;
    if rest.len() != expected {
        return Err(PackError::IndexLength {
            count,
            expected,
            actual: rest.len(),
        });
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    for raw in rest.chunks_exact(INDEX_ENTRY) {
        let e = Entry {
            digest: Digest::from_bytes(raw[..32].try_into().expect("32 bytes")),
            offset: u64::from_be_bytes(raw[32..40].try_into().expect("8 bytes")),
            size: u32::from_be_bytes(raw[40..44].try_into().expect("4 bytes")),
            length: u32::from_be_bytes(raw[44..48].try_into().expect("4 bytes")),
        };
        if entries.last().is_some_and(|last| last.digest >= e.digest) {
            return Err(PackError::IndexOrder(e.digest));
        }
        entries.push(e);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any bytes, prefixed with the magic or not: an answer, never a panic; and what
        /// parses points inside the body.
        #[test]
        fn hostile_bytes_never_panic(mut body in proptest::collection::vec(any::<u8>(), 0..400), magic in any::<bool>()) {
            if magic {
                body.splice(0..0, PACK_MAGIC.iter().copied());
            }
            if let Ok(entries) = parse_pack(&body) {
                for e in entries {
                    prop_assert!(e.range().end <= body.len() as u64);
                }
            }
            let _ = decode_index(&body);
        }

        /// Packs of arbitrary records parse back to exactly those records.
        #[test]
        fn records_round_trip(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
            let mut w = PackWriter::new();
            for (i, f) in frames.iter().enumerate() {
                w.push(&chunk(&[i as u8]), f);
            }
            let body = w.finish();
            let entries = parse_pack(&body).unwrap();
            prop_assert_eq!(entries.len(), frames.len());
            for (i, (e, f)) in entries.iter().zip(&frames).enumerate() {
                prop_assert_eq!(e.digest, Digest::of(&[i as u8]));
                prop_assert_eq!(&body[e.offset as usize..][..e.size as usize], &f[..]);
            }
            prop_assert_eq!(decode_index(&encode_index(&entries)).unwrap(), index_entries(&entries));
        }

        /// A pack arriving in pieces of any sizes, read the way the registry reads it (a
        /// record cut short completed with just the bytes `wanted` names, whole records
        /// taken where they came), gives the records of the whole pack, consuming all of it.
        #[test]
        fn pieces_of_any_sizes_scan_like_the_whole(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..12),
            cuts in proptest::collection::vec(1usize..120, 1..40),
        ) {
            let mut w = PackWriter::new();
            for (i, f) in frames.iter().enumerate() {
                w.push(&chunk(&[i as u8]), f);
            }
            let body = w.finish();
            let (mut scanner, mut entries, mut pending) = (PackScanner::default(), Vec::new(), Vec::new());
            let (mut taken, mut cut) = (0, 0);
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = cuts[cut % cuts.len()].min(rest.len());
                cut += 1;
                let (mut piece, after) = rest.split_at(n);
                rest = after;
                while !pending.is_empty() && !piece.is_empty() {
                    let wanted = scanner.wanted(&pending).unwrap();
                    prop_assert!(wanted > 0, "a record cut short always wants more");
                    let (head, tail) = piece.split_at(wanted.min(piece.len()));
                    pending.extend_from_slice(head);
                    piece = tail;
                    let used = scanner.scan(&pending, &mut entries).unwrap();
                    pending.drain(..used);
                    taken += used;
                }
                let used = scanner.scan(piece, &mut entries).unwrap();
                taken += used;
                pending.extend_from_slice(&piece[used..]);
            }
            prop_assert!(pending.is_empty());
            prop_assert_eq!(taken, body.len());
            prop_assert_eq!(scanner.consumed(), body.len());
            prop_assert_eq!(entries, parse_pack(&body).unwrap());
        }
    }

    fn chunk(data: &[u8]) -> ChunkRef {
        ChunkRef {
            digest: Digest::of(data),
            length: data.len() as u64,
        }
    }

    fn pack_of(items: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut w = PackWriter::new();
        for (data, frame) in items {
            w.push(&chunk(data), frame);
        }
        w.finish()
    }

    #[test]
    fn records_point_at_their_frames_and_the_index_round_trips() {
        let body = pack_of(&[(b"one", b"frame-1"), (b"two", b"frame-two"), (b"one", b"frame-1")]);
        let entries = parse_pack(&body).unwrap();
        assert_eq!(entries.len(), 3);
        for (e, frame) in entries.iter().zip([&b"frame-1"[..], b"frame-two", b"frame-1"]) {
            assert_eq!(&body[e.offset as usize..][..e.size as usize], frame);
        }
        assert_eq!(entries[1].chunk(), chunk(b"two"));
        let id = pack_id(&entries);
        assert_eq!(id, pack_id(&parse_pack(&body).unwrap()));
        assert_ne!(id, pack_id(&entries[..2]));
        let other = pack_of(&[(b"one", b"frame-1"), (b"two", b"frame-2"), (b"one", b"frame-1")]);
        assert_ne!(id, pack_id(&parse_pack(&other).unwrap()), "a frame of another size");
        let index = encode_index(&entries);
        let back = decode_index(&index).unwrap();
        assert_eq!(back.len(), 2, "a repeated digest is indexed once");
        assert!(back.windows(2).all(|w| w[0].digest < w[1].digest));
        let one = back.iter().find(|e| e.digest == Digest::of(b"one")).unwrap();
        assert_eq!(*one, entries[0], "the first copy is the one indexed");
    }

    #[test]
    fn a_failed_frame_leaves_the_pack_as_it_was() {
        let mut w = PackWriter::new();
        w.push(&chunk(b"one"), b"frame-1");
        let before = w.clone().finish();
        let failed = w.push_with(&chunk(b"two"), |body| {
            body.extend_from_slice(b"half a fr");
            Err("compression failed")
        });
        assert_eq!(failed, Err("compression failed"));
        assert_eq!((w.entries(), w.finish()), (1, before));
    }

    #[test]
    fn bad_packs_are_refused_with_the_reason() {
        assert_eq!(parse_pack(b"RELPACK0"), Err(PackError::PackMagic));
        assert_eq!(parse_pack(b"RELPACK1"), Err(PackError::Empty));
        let body = pack_of(&[(b"one", b"frame-1"), (b"two", b"frame-two")]);
        let boundary = 8 + RECORD_HEADER + 7;
        assert_eq!(parse_pack(&body[..boundary]).unwrap().len(), 1, "a cut between records");
        for cut in (9..body.len()).filter(|&c| c != boundary) {
            let r = parse_pack(&body[..cut]);
            assert!(matches!(r, Err(PackError::Truncated(_))), "cut at {cut}: {r:?}");
        }
        let mut long = pack_of(&[(b"one", b"f")]);
        long[8 + 32..8 + 36].copy_from_slice(&(MAX_CHUNK as u32 + 1).to_be_bytes());
        assert!(matches!(parse_pack(&long), Err(PackError::ChunkTooLong { .. })));
        let mut big = pack_of(&[(b"one", b"f")]);
        big[8 + 36..8 + 40].copy_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(matches!(parse_pack(&big), Err(PackError::FrameTooLarge { .. })));
    }

    #[test]
    fn a_pack_fed_in_pieces_scans_as_a_whole() {
        let body = pack_of(&[(b"one", b"frame-1"), (b"two", b"frame-two"), (b"three", b"3")]);
        let whole = parse_pack(&body).unwrap();
        for step in [1, 3, 41, 1000] {
            let (mut scanner, mut entries, mut pending) = (PackScanner::default(), Vec::new(), Vec::new());
            for piece in body.chunks(step) {
                pending.extend_from_slice(piece);
                let used = scanner.scan(&pending, &mut entries).unwrap();
                pending.drain(..used);
            }
            scanner.finish(pending.len(), &entries).unwrap();
            assert_eq!(entries, whole, "fed {step} bytes at a time");
        }
        // Not a pack: refused at its first wrong byte, before the rest has come.
        let mut scanner = PackScanner::default();
        assert_eq!(scanner.scan(b"RELX", &mut Vec::new()), Err(PackError::PackMagic));
    }

    #[test]
    fn packs_of_too_many_or_too_small_records_are_refused() {
        let mut w = PackWriter::new();
        for i in 0..=MAX_PACK_RECORDS as u32 {
            w.push(&chunk(&i.to_be_bytes()), b"f");
        }
        assert_eq!(parse_pack(&w.finish()), Err(PackError::TooManyRecords));
        let tiny: Vec<Entry> = (0..SHORT_RECORDS_ALLOWED + 2)
            .map(|i| Entry {
                digest: Digest::of(&i.to_be_bytes()),
                offset: 0,
                size: 1,
                length: 100,
            })
            .collect();
        assert!(
            check_density(&tiny[..SHORT_RECORDS_ALLOWED]).is_ok(),
            "a few short chunks"
        );
        assert_eq!(
            check_density(&tiny).unwrap_err().to_string(),
            "the pack holds 18 records for 1800 bytes of chunks; a pack carries at least 4096 bytes a record on average (beyond 16 short ones)"
        );
        let full: Vec<Entry> = tiny
            .iter()
            .map(|e| Entry {
                length: 16 * 1024,
                ..*e
            })
            .collect();
        assert!(check_density(&full).is_ok());
    }

    #[test]
    fn bad_indexes_are_refused() {
        let body = pack_of(&[(b"one", b"frame-1"), (b"two", b"frame-two")]);
        let index = encode_index(&parse_pack(&body).unwrap());
        assert_eq!(decode_index(&index[1..]), Err(PackError::IndexMagic));
        assert!(matches!(
            decode_index(&index[..index.len() - 1]),
            Err(PackError::IndexLength { count: 2, .. })
        ));
        // Swap the two entries: out of order.
        let mut swapped = index[..12].to_vec();
        swapped.extend_from_slice(&index[12 + INDEX_ENTRY..]);
        swapped.extend_from_slice(&index[12..12 + INDEX_ENTRY]);
        assert!(matches!(decode_index(&swapped), Err(PackError::IndexOrder(_))));
    }
}
