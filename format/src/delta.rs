//! Deltas: the chunks a host lacks, fetched as one zstd frame compressed against chunks it has.
//!
//! Content-defined chunks already make a next version cheap: only chunks that changed travel.
//! But a changed chunk travels whole, though most of its bytes are usually in a chunk the host
//! holds: a module recompiled with one function changed, the same modules under an
//! application folder renamed for its new vsn, a boot script that differs in version strings.
//! So a host may ask for a run of chunks it lacks as one zstd frame whose *prefix* (zstd's
//! raw-content dictionary, as `zstd --patch-from`) is the concatenation of chunks it has
//! (SPEC.md §4.2). The registry signs nothing new: the host decompresses against its own
//! bytes and checks every chunk against the digest its signed manifest names, as for any
//! fetched chunk.
//!
//! Which chunks to use as the base is the host's choice, made here without I/O by
//! [`Aligner`]: the chunks a target stream shares with a stream the host holds are anchors,
//! and a run of missing chunks between two anchors is compressed against what lies between
//! the same anchors in the held stream.

use std::ops::Range;

use crate::chunk::ChunkRef;
use crate::digest::Digest;

/// Most bytes of chunks a delta may be compressed against, and most bytes it may carry.
pub const MAX_DELTA_BYTES: u64 = 4 * 1024 * 1024;
/// Most chunks a delta request may name as its base, and most it may ask for.
pub const MAX_DELTA_CHUNKS: usize = 1024;
/// The largest window (log2) a delta frame may need: its base and its content together.
pub const WINDOW_LOG_MAX: u32 = 23;
/// The level the registry compresses deltas at: they are computed per request, so the
/// registry's time counts as much as the bytes.
pub const LEVEL: i32 = 3;

/// Bytes of the held stream taken beyond the estimated counterpart of a run on each side, when
/// it is placed by one anchor's offset only.
const SLACK: u64 = 64 * 1024;

/// One delta to ask for: target chunks `want`, compressed against held chunks `base`
/// (indices into the two streams given to [`Aligner::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub want: Range<usize>,
    pub base: Range<usize>,
}

/// Places runs of a target stream's missing chunks against a held stream.
#[derive(Debug)]
pub struct Aligner {
    base_ends: Vec<u64>,
    target_ends: Vec<u64>,
    /// For each target chunk, where the held stream has it (its first copy).
    anchor: Vec<Option<usize>>,
    /// For each target index, the nearest anchored index at or before / at or after it.
    prev: Vec<Option<usize>>,
    next: Vec<Option<usize>>,
}

fn ends(chunks: &[ChunkRef]) -> Vec<u64> {
    chunks
        .iter()
        .scan(0u64, |at, c| {
            *at += c.length;
            Some(*at)
        })
        .collect()
}

impl Aligner {
    pub fn new(base: &[ChunkRef], target: &[ChunkRef]) -> Self {
        let mut first = std::collections::HashMap::<Digest, usize>::with_capacity(base.len());
        for (i, c) in base.iter().enumerate() {
            first.entry(c.digest).or_insert(i);
        }
        let anchor: Vec<Option<usize>> = target.iter().map(|c| first.get(&c.digest).copied()).collect();
        let mut prev = Vec::with_capacity(target.len());
        let mut last = None;
        for (i, a) in anchor.iter().enumerate() {
            if a.is_some() {
                last = Some(i);
            }
            prev.push(last);
        }
        let mut next = vec![None; target.len()];
        let mut last = None;
        for (i, a) in anchor.iter().enumerate().rev() {
            if a.is_some() {
                last = Some(i);
            }
            next[i] = last;
        }
        Self {
            base_ends: ends(base),
            target_ends: ends(target),
            anchor,
            prev,
            next,
        }
    }

    /// How many of the target's chunks the held stream has.
    pub fn shared(&self) -> usize {
        self.anchor.iter().filter(|a| a.is_some()).count()
    }

    fn base_start(&self, i: usize) -> u64 {
        if i == 0 { 0 } else { self.base_ends[i - 1] }
    }

    fn target_start(&self, i: usize) -> u64 {
        if i == 0 { 0 } else { self.target_ends[i - 1] }
    }

    /// The deltas for the chunks of `window` (target indices) for which `missing` holds: runs
    /// of consecutive missing chunks, each cut at `max_want` bytes, paired with the held chunks
    /// that correspond to them. A run with no anchor on either side gets no piece: it is
    /// fetched plainly.
    pub fn plan(&self, window: Range<usize>, max_want: u64, missing: impl Fn(usize) -> bool) -> Vec<Piece> {
        let max_want = max_want.clamp(1, MAX_DELTA_BYTES);
        let mut pieces = Vec::new();
        let mut i = window.start;
        while i < window.end {
            if !missing(i) {
                i += 1;
                continue;
            }
            let (mut end, mut bytes) = (i, 0);
            while end < window.end && missing(end) && end - i < MAX_DELTA_CHUNKS {
                let length = self.target_ends[end] - self.target_start(end);
                if end > i && bytes + length > max_want {
                    break;
                }
                bytes += length;
                end += 1;
            }
            if let Some(base) = self.base_for(i..end) {
                pieces.push(Piece { want: i..end, base });
            }
            i = end;
        }
        pieces
    }

    /// The held chunks that correspond to the target chunks `run`.
    fn base_for(&self, run: Range<usize>) -> Option<Range<usize>> {
        let base_len = *self.base_ends.last()?;
        let (t_start, t_end) = (self.target_start(run.start), self.target_ends[run.end - 1]);
        let before = run.start.checked_sub(1).and_then(|i| self.prev[i]);
        let after = self.next.get(run.end).copied().flatten();
        let held = |t: usize| self.anchor[t].expect("an anchor is held");
        // Bytes of the held stream. Between two anchors in order: what lies between them in the
        // held stream, whole when the run is the whole gap and that fits, else the same share
        // of it as the run is of the gap (a run cut at `max_want` or at a window's end), with
        // slack. With one anchor: the run's size placed by that anchor's offset, with slack.
        let shifted = |delta: i128| {
            let at = |x: u64| (i128::from(x) + delta).clamp(0, i128::from(base_len)) as u64;
            (at(t_start.saturating_sub(SLACK)), at(t_end + SLACK))
        };
        let (lo, hi) = match (before, after) {
            (Some(b), Some(a)) if held(b) < held(a) => {
                let (lo, hi) = (self.base_ends[held(b)], self.base_start(held(a)));
                let (gap_lo, gap_hi) = (self.target_ends[b], self.target_start(a));
                if (t_start, t_end) == (gap_lo, gap_hi) && hi - lo <= MAX_DELTA_BYTES {
                    (lo, hi)
                } else {
                    let share =
                        |t: u64| lo + ((hi - lo) as u128 * (t - gap_lo) as u128 / (gap_hi - gap_lo) as u128) as u64;
                    (
                        share(t_start).saturating_sub(SLACK).max(lo),
                        (share(t_end) + SLACK).min(hi),
                    )
                }
            }
            (Some(b), _) => shifted(i128::from(self.base_ends[held(b)]) - i128::from(self.target_ends[b])),
            (None, Some(a)) => shifted(i128::from(self.base_start(held(a))) - i128::from(self.target_start(a))),
            (None, None) => return None,
        };
        if lo >= hi {
            return None;
        }
        // The held chunks overlapping [lo, hi), at most MAX_DELTA_BYTES and MAX_DELTA_CHUNKS.
        let first = self.base_ends.partition_point(|&e| e <= lo);
        let mut last = first;
        while last < self.base_ends.len()
            && self.base_start(last) < hi
            && last - first < MAX_DELTA_CHUNKS
            && self.base_ends[last] - self.base_start(first) <= MAX_DELTA_BYTES
        {
            last += 1;
        }
        (first < last).then_some(first..last)
    }
}

/// Why a delta was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    #[error("the delta for chunks {first}..{last} is not a valid zstd frame against its base: {reason}")]
    Decompress {
        first: Digest,
        last: Digest,
        reason: String,
    },
    #[error("the delta for chunks {first}..{last} gives {actual} bytes; the chunks are {expected}")]
    Length {
        first: Digest,
        last: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("cannot compress a delta: {0}")]
    Compress(String),
    #[error(
        "a delta may carry at most {MAX_DELTA_BYTES} bytes in {MAX_DELTA_CHUNKS} chunks against as many; this one is {bytes} bytes in {chunks} chunks"
    )]
    TooLarge { bytes: u64, chunks: usize },
    #[error(transparent)]
    Chunk(#[from] crate::chunk::ChunkError),
}

/// Checks the bounds of one delta: `chunks` chunks of `bytes` in all, for the base or the wanted.
pub fn check_bounds(bytes: u64, chunks: usize) -> Result<(), DeltaError> {
    if bytes > MAX_DELTA_BYTES || chunks > MAX_DELTA_CHUNKS {
        return Err(DeltaError::TooLarge { bytes, chunks });
    }
    Ok(())
}

#[cfg(feature = "zstd")]
/// The window (log2) that lets content of `total` bytes, base included, reach all of it.
fn window_log(total: usize) -> u32 {
    (usize::BITS - total.max(1 << 10).saturating_sub(1).leading_zeros()).min(WINDOW_LOG_MAX)
}

/// Compresses `wanted` (the asked chunks, concatenated) against `base` (the base chunks,
/// concatenated) into one zstd frame.
#[cfg(feature = "zstd")]
pub fn encode(base: &[u8], wanted: &[u8]) -> Result<Vec<u8>, DeltaError> {
    use zstd::zstd_safe::{CCtx, CParameter};
    check_bounds(base.len() as u64, 0)?;
    check_bounds(wanted.len() as u64, 0)?;
    let failed = |code| DeltaError::Compress(zstd::zstd_safe::get_error_name(code).to_owned());
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(LEVEL))
        .map_err(failed)?;
    cctx.set_parameter(CParameter::WindowLog(window_log(base.len() + wanted.len())))
        .map_err(failed)?;
    cctx.ref_prefix(base).map_err(failed)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(wanted.len()));
    cctx.compress2(&mut out, wanted).map_err(failed)?;
    Ok(out)
}

/// Decompresses a delta `frame` against `base` into the chunks `wanted`, each verified against
/// its digest and length. Output beyond the chunks' total length is refused before it is
/// made, and so is a frame that needs a window over [`WINDOW_LOG_MAX`].
#[cfg(feature = "zstd")]
pub fn decode(base: &[u8], frame: &[u8], wanted: &[ChunkRef]) -> Result<Vec<Vec<u8>>, DeltaError> {
    use zstd::zstd_safe::{DCtx, DParameter};
    let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
        return Ok(Vec::new());
    };
    let expected: u64 = wanted.iter().map(|c| c.length).sum();
    check_bounds(expected, wanted.len())?;
    check_bounds(base.len() as u64, 0)?;
    let failed = |code| DeltaError::Decompress {
        first: first.digest,
        last: last.digest,
        reason: zstd::zstd_safe::get_error_name(code).to_owned(),
    };
    let mut dctx = DCtx::create();
    dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
        .map_err(failed)?;
    dctx.ref_prefix(base).map_err(failed)?;
    // One byte of room beyond the expected length tells a longer frame from an exact one.
    let mut out = Vec::with_capacity(expected as usize + 1);
    let written = dctx.decompress(&mut out, frame).map_err(failed)?;
    if written as u64 != expected {
        return Err(DeltaError::Length {
            first: first.digest,
            last: last.digest,
            expected,
            actual: written as u64,
        });
    }
    let mut chunks = Vec::with_capacity(wanted.len());
    let mut at = 0usize;
    for c in wanted {
        let data = &out[at..at + c.length as usize];
        crate::chunk::verify_chunk(c, data)?;
        chunks.push(data.to_vec());
        at += c.length as usize;
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn refs(lengths: &[(u8, u64)]) -> Vec<ChunkRef> {
        lengths
            .iter()
            .map(|&(tag, length)| ChunkRef {
                digest: Digest::of(&[tag]),
                length,
            })
            .collect()
    }

    #[test]
    fn a_run_between_two_anchors_is_compressed_against_what_lies_between_them_in_the_held_stream() {
        // Held: A x y B; target: A x' y' z' B.
        let base = refs(&[(1, 100), (2, 50), (3, 50), (4, 100)]);
        let target = refs(&[(1, 100), (12, 40), (13, 40), (14, 40), (4, 100)]);
        let a = Aligner::new(&base, &target);
        assert_eq!(a.shared(), 2);
        let missing = |i: usize| (1..4).contains(&i);
        assert_eq!(
            a.plan(0..5, MAX_DELTA_BYTES, missing),
            vec![Piece { want: 1..4, base: 1..3 }]
        );
        // Cut at 80 bytes a piece: each part still between the same anchors.
        assert_eq!(
            a.plan(0..5, 80, missing),
            vec![Piece { want: 1..3, base: 1..3 }, Piece { want: 3..4, base: 1..3 }]
        );
        // A window that holds only part of the run plans only that part.
        assert_eq!(
            a.plan(2..5, MAX_DELTA_BYTES, missing),
            vec![Piece { want: 2..4, base: 1..3 }]
        );
    }

    #[test]
    fn a_run_cut_in_parts_takes_each_part_against_its_share_of_the_gap() {
        // Held: A, eight chunks, B; target: A, eight changed chunks, B. Cut two chunks a piece,
        // each piece goes against the held chunks at its place in the gap, not the whole gap.
        let base = refs(&[
            (1, 100),
            (2, 60_000),
            (3, 60_000),
            (4, 60_000),
            (5, 60_000),
            (6, 60_000),
            (7, 60_000),
            (8, 60_000),
            (9, 60_000),
            (10, 100),
        ]);
        let target = refs(&[
            (1, 100),
            (12, 60_000),
            (13, 60_000),
            (14, 60_000),
            (15, 60_000),
            (16, 60_000),
            (17, 60_000),
            (18, 60_000),
            (19, 60_000),
            (10, 100),
        ]);
        let a = Aligner::new(&base, &target);
        let pieces = a.plan(0..10, 120_000, |i| (1..9).contains(&i));
        let bases: Vec<_> = pieces.iter().map(|p| p.base.clone()).collect();
        // Gap bytes [k*120,000, (k+1)*120,000) and 64 KiB more on each side.
        assert_eq!(bases, vec![1..5, 1..7, 3..9, 5..9]);
        // The whole gap at once: the whole stretch between the anchors.
        assert_eq!(
            a.plan(0..10, MAX_DELTA_BYTES, |i| (1..9).contains(&i)),
            vec![Piece { want: 1..9, base: 1..9 }]
        );
    }

    #[test]
    fn a_run_with_one_anchor_is_placed_by_its_offset_and_one_with_none_is_fetched_plainly() {
        // Held: A p q r s; target: A p' q' (the end changed), then an unrelated stream.
        let base = refs(&[(1, 100_000), (2, 60_000), (3, 60_000), (4, 60_000), (5, 60_000)]);
        let target = refs(&[(1, 100_000), (12, 60_000), (13, 60_000)]);
        let a = Aligner::new(&base, &target);
        // Bytes 100,000..220,000 of the target, with 64 KiB of slack: held chunks 0..5 overlap
        // 34,464..285,536.
        assert_eq!(
            a.plan(0..3, MAX_DELTA_BYTES, |i| i > 0),
            vec![Piece { want: 1..3, base: 0..5 }]
        );
        let other = refs(&[(20, 10), (21, 10)]);
        let a = Aligner::new(&base, &other);
        assert_eq!(a.shared(), 0);
        assert!(a.plan(0..2, MAX_DELTA_BYTES, |_| true).is_empty());
    }

    #[test]
    fn frames_decode_to_the_chunks_and_anything_else_is_refused() {
        let base: Vec<u8> = (0..50_000u32).flat_map(|i| (i * 7919).to_le_bytes()).collect();
        let mut changed = base.clone();
        changed[1000..1010].copy_from_slice(b"0123456789");
        let chunks: Vec<(ChunkRef, &[u8])> = changed
            .chunks(70_000)
            .map(|d| {
                (
                    ChunkRef {
                        digest: Digest::of(d),
                        length: d.len() as u64,
                    },
                    d,
                )
            })
            .collect();
        let wanted: Vec<ChunkRef> = chunks.iter().map(|(c, _)| c.clone()).collect();
        let frame = encode(&base, &changed).unwrap();
        assert!(frame.len() < 1000, "a 10-byte change cost {} bytes", frame.len());
        let got = decode(&base, &frame, &wanted).unwrap();
        assert_eq!(got.concat(), changed);

        // Against other bytes, the frame cannot give the chunks.
        let mut other = base.clone();
        other[5] ^= 1;
        assert!(matches!(
            decode(&other, &frame, &wanted),
            Err(DeltaError::Chunk(crate::chunk::ChunkError::Digest { .. }))
        ));
        // More or fewer bytes than the chunks, or no frame at all.
        assert!(matches!(
            decode(&base, &frame, &wanted[1..]),
            Err(DeltaError::Decompress { .. })
        ));
        let longer = encode(&base, &[&changed[..], b"!"].concat()).unwrap();
        assert!(matches!(
            decode(&base, &longer, &wanted),
            Err(DeltaError::Length { actual: 200_001, .. })
        ));
        let shorter = encode(&base, &changed[1..]).unwrap();
        assert!(matches!(
            decode(&base, &shorter, &wanted),
            Err(DeltaError::Length { actual: 199_999, .. })
        ));
        assert!(matches!(
            decode(&base, b"not zstd", &wanted),
            Err(DeltaError::Decompress { .. })
        ));
    }

    /// The chunks of `data` as the chunker cuts them, with their bytes.
    #[cfg(feature = "zstd")]
    fn chunked(data: &[u8]) -> Vec<(ChunkRef, Vec<u8>)> {
        let mut out = Vec::new();
        let mut chunker = crate::chunk::Chunker::new(|c: &ChunkRef, d: &[u8]| {
            out.push((c.clone(), d.to_vec()));
            Ok(())
        });
        std::io::Write::write_all(&mut chunker, data).unwrap();
        let (_stream, _sink) = chunker.finish().unwrap();
        out
    }

    #[cfg(feature = "zstd")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// A next version made by edits anywhere (bytes changed, inserted, removed), chunked
        /// for real and planned window by window as a host does: every piece's frame gives
        /// exactly its chunks against its base, and costs less than its chunks compressed
        /// whole when the edits are small.
        #[test]
        fn deltas_of_an_edited_stream_give_its_chunks(
            seed in 0u64..1000,
            edits in proptest::collection::vec((0usize..600_000, 0usize..3, 1usize..200), 1..6),
        ) {
            let base = rel_testkit::noise(seed, 600_000);
            let mut next = base.clone();
            for (at, kind, len) in edits {
                let at = at.min(next.len());
                let (cut, with) = match kind {
                    0 => (at..(at + len).min(next.len()), rel_testkit::noise(seed + 1, len)),
                    1 => (at..at, rel_testkit::noise(seed + 2, len)),
                    _ => (at..(at + len).min(next.len()), Vec::new()),
                };
                next.splice(cut, with);
            }
            let (held, wanted) = (chunked(&base), chunked(&next));
            let held_refs: Vec<ChunkRef> = held.iter().map(|(c, _)| c.clone()).collect();
            let wanted_refs: Vec<ChunkRef> = wanted.iter().map(|(c, _)| c.clone()).collect();
            let have: std::collections::HashSet<Digest> = held_refs.iter().map(|c| c.digest).collect();
            let a = Aligner::new(&held_refs, &wanted_refs);
            let (mut delta_bytes, mut whole_bytes) = (0, 0);
            for start in (0..wanted.len()).step_by(128) {
                let window = start..(start + 128).min(wanted.len());
                for p in a.plan(window, 1 << 20, |i| !have.contains(&wanted_refs[i].digest)) {
                    let base: Vec<u8> = held[p.base.clone()].iter().flat_map(|(_, d)| d.clone()).collect();
                    let want: Vec<u8> = wanted[p.want.clone()].iter().flat_map(|(_, d)| d.clone()).collect();
                    let frame = encode(&base, &want).unwrap();
                    let got = decode(&base, &frame, &wanted_refs[p.want.clone()]).unwrap();
                    prop_assert_eq!(got.concat(), want.clone());
                    delta_bytes += frame.len();
                    whole_bytes += crate::chunk::compress_chunk(&want).unwrap().len();
                }
            }
            prop_assert!(whole_bytes > 0, "an edited stream got no delta");
            // Noise does not compress: whole chunks cost their size; deltas, the edits.
            prop_assert!(delta_bytes * 4 <= whole_bytes.max(4096), "deltas {} bytes, whole {}", delta_bytes, whole_bytes);
        }
    }

    proptest! {
        /// Whatever the streams, pieces lie in the window, ask only for missing chunks, in
        /// order and never twice, and stay within the protocol's bounds.
        #[test]
        fn pieces_are_within_bounds(
            base in proptest::collection::vec((0u8..20, 1u64..70_000), 0..60),
            target in proptest::collection::vec((0u8..30, 1u64..70_000), 1..60),
            holes in proptest::collection::vec(any::<bool>(), 60),
            cut in 0usize..60,
            max_want in 1u64..300_000,
        ) {
            let (base, target) = (refs(&base), refs(&target));
            let a = Aligner::new(&base, &target);
            let start = cut.min(target.len() - 1);
            let missing = |i: usize| holes[i];
            let pieces = a.plan(start..target.len(), max_want, missing);
            let mut after = start;
            for p in &pieces {
                prop_assert!(p.want.start >= after && p.want.start < p.want.end && p.want.end <= target.len());
                prop_assert!(p.want.clone().all(missing));
                after = p.want.end;
                let want: u64 = target[p.want.clone()].iter().map(|c| c.length).sum();
                prop_assert!(p.want.len() == 1 || want <= max_want);
                let held: u64 = base[p.base.clone()].iter().map(|c| c.length).sum();
                prop_assert!(!p.base.is_empty() && p.base.end <= base.len());
                prop_assert!(p.base.len() == 1 || held <= MAX_DELTA_BYTES);
            }
        }
    }
}
