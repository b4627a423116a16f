//! Content-defined chunks: independent of how the stream was written, local edits change
//! few chunks, reassembly checks every chunk and the whole, compression refuses bombs.

use std::io::Write;

use fastcdc::v2020::{Normalization, cut, select_masks};
use rel_format::Digest;
use rel_format::chunk::{
    AVG_CHUNK, ChunkError, ChunkRef, ChunkedStream, Chunker, MAX_CHUNK, MIN_CHUNK, Reassembler, check_frames,
    compress_chunk, compress_chunk_into, decompress_chunk, decompress_chunks, verify_chunk,
};
use rel_testkit::noise;

fn chunk_all(data: &[u8], write_size: usize) -> (ChunkedStream, Vec<Vec<u8>>) {
    let mut pieces = Vec::new();
    let mut chunker = Chunker::new(|_: &ChunkRef, d: &[u8]| {
        pieces.push(d.to_vec());
        Ok(())
    });
    for part in data.chunks(write_size) {
        chunker.write_all(part).unwrap();
    }
    let (stream, _) = chunker.finish().unwrap();
    (stream, pieces)
}

#[test]
fn chunks_are_independent_of_write_sizes_and_within_bounds() {
    let data = noise(7, 3_000_000);
    let (a, pieces) = chunk_all(&data, 1);
    let (b, _) = chunk_all(&data, 4096);
    let (c, _) = chunk_all(&data, 1 << 20);
    assert_eq!(a, b);
    assert_eq!(a, c);
    // As SPEC.md §4 defines the cuts: each the one FastCDC finds in the next 64 KiB.
    let (mask_s, mask_l) = select_masks(AVG_CHUNK, Normalization::Level1);
    let mut spec = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let window = &data[pos..data.len().min(pos + MAX_CHUNK)];
        let n = cut(
            window,
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        )
        .1;
        spec.push(n as u64);
        pos += n;
    }
    assert_eq!(a.chunks.iter().map(|c| c.length).collect::<Vec<_>>(), spec);
    assert_eq!(a.digest, Digest::of(&data));
    assert_eq!(pieces.concat(), data);
    // Each chunk's digest, hashed together with the stream's, is its own bytes' digest.
    for (ch, piece) in a.chunks.iter().zip(&pieces) {
        assert_eq!(ch.digest, Digest::of(piece));
    }
    let n = a.chunks.len();
    assert!(n > 10, "expected many chunks, got {n}");
    for (i, ch) in a.chunks.iter().enumerate() {
        assert!(ch.length as usize <= MAX_CHUNK);
        assert!(
            i == n - 1 || ch.length as usize >= MIN_CHUNK,
            "chunk {i} is {} bytes",
            ch.length
        );
    }
}

#[test]
fn a_local_edit_changes_few_chunks() {
    let mut data = noise(9, 4_000_000);
    let (before, _) = chunk_all(&data, 65536);
    data.splice(2_000_000..2_000_010, noise(3, 500));
    let (after, _) = chunk_all(&data, 65536);
    let old: std::collections::HashSet<_> = before.chunks.iter().collect();
    let new_chunks = after.chunks.iter().filter(|c| !old.contains(c)).count();
    assert!(new_chunks <= 3, "{new_chunks} chunks changed for one local edit");
}

#[test]
fn reassembly_checks_every_chunk_and_the_whole() {
    let data = noise(11, 700_000);
    let (stream, pieces) = chunk_all(&data, 8192);
    let mut r = Reassembler::new(&stream, Vec::new());
    for (c, p) in stream.chunks.iter().zip(&pieces) {
        r.push(c, p).unwrap();
    }
    assert_eq!(r.finish().unwrap(), data);

    let mut flipped = pieces[1].clone();
    flipped[5] ^= 1;
    let mut r = Reassembler::new(&stream, Vec::new());
    r.push(&stream.chunks[0], &pieces[0]).unwrap();
    assert!(matches!(
        r.push(&stream.chunks[1], &flipped),
        Err(ChunkError::Digest { .. })
    ));
    let truncated = &pieces[1][..pieces[1].len() - 1];
    assert!(matches!(
        verify_chunk(&stream.chunks[1], truncated),
        Err(ChunkError::Length { .. })
    ));

    // Chunks that verify one by one but are in the wrong order fail the stream check.
    let mut r = Reassembler::new(&stream, Vec::new());
    r.push(&stream.chunks[1], &pieces[1]).unwrap();
    r.push(&stream.chunks[0], &pieces[0]).unwrap();
    for (c, p) in stream.chunks.iter().zip(&pieces).skip(2) {
        r.push(c, p).unwrap();
    }
    assert!(matches!(r.finish(), Err(ChunkError::Stream { .. })));
}

#[cfg(feature = "zstd")]
#[test]
fn compression_round_trips_and_refuses_bombs() {
    let data = vec![b'a'; 60_000];
    let chunk = ChunkRef {
        digest: Digest::of(&data),
        length: data.len() as u64,
    };
    let stored = compress_chunk(&data).unwrap();
    assert!(stored.len() < 1000);
    assert_eq!(decompress_chunk(&chunk, &stored).unwrap(), data);
    let small = ChunkRef {
        digest: chunk.digest,
        length: 10,
    };
    assert!(matches!(
        decompress_chunk(&small, &stored),
        Err(ChunkError::Decompress { .. })
    ));
    assert!(matches!(
        decompress_chunk(&chunk, b"not zstd"),
        Err(ChunkError::Decompress { .. })
    ));
    // Into a buffer: appended after what is there, and the same frame.
    let mut out = b"before".to_vec();
    compress_chunk_into(&data, &mut out).unwrap();
    assert_eq!(&out[..6], b"before");
    assert_eq!(out[6..], stored[..]);
}

/// A pack's frames are checked two at a time; whatever is wrong and wherever, the error is
/// the first bad frame's, in order, as checking them one by one would say.
#[cfg(feature = "zstd")]
#[test]
fn frames_checked_in_pairs_fail_at_the_first_bad_one() {
    let data = noise(13, 400_000);
    let (stream, pieces) = chunk_all(&data, 65536);
    let frames: Vec<Vec<u8>> = pieces.iter().map(|p| compress_chunk(p).unwrap()).collect();
    let all = |frames: &[Vec<u8>], n: usize| {
        check_frames(stream.chunks[..n].iter().cloned().zip(frames.iter().map(Vec::as_slice)))
    };
    assert!(stream.chunks.len() >= 6);
    // Every count, odd and even.
    for n in 0..=6 {
        all(&frames, n).unwrap();
    }
    let flipped = |i: usize| {
        let mut bad = pieces[i].clone();
        bad[3] ^= 1;
        compress_chunk(&bad).unwrap()
    };
    let digest_of = |e: ChunkError| match e {
        ChunkError::Digest { expected, .. } | ChunkError::Decompress { digest: expected, .. } => expected,
        ChunkError::Length { digest, .. } => digest,
        other => panic!("unexpected {other}"),
    };
    // Altered bytes: first of a pair, second of a pair, the odd one at the end.
    for (i, n) in [(0, 6), (1, 6), (4, 5)] {
        let mut f = frames.clone();
        f[i] = flipped(i);
        let e = all(&f, n).unwrap_err();
        assert!(matches!(e, ChunkError::Digest { .. }), "{e}");
        assert_eq!(digest_of(e), stream.chunks[i].digest, "frame {i} of {n}");
    }
    // The first of a pair altered, the second not zstd at all: the first is named.
    let mut f = frames.clone();
    f[2] = flipped(2);
    f[3] = b"not zstd".to_vec();
    assert_eq!(digest_of(all(&f, 6).unwrap_err()), stream.chunks[2].digest);
    // The second of a pair not zstd, the first sound: the second is named.
    let mut f = frames.clone();
    f[3] = b"not zstd".to_vec();
    let e = all(&f, 6).unwrap_err();
    assert!(matches!(e, ChunkError::Decompress { .. }), "{e}");
    assert_eq!(digest_of(e), stream.chunks[3].digest);
    // A frame of another chunk, of another length, in second place.
    let mut f = frames.clone();
    f[1] = frames[2].clone();
    let e = all(&f, 6).unwrap_err();
    assert_eq!(digest_of(e), stream.chunks[1].digest);
}

/// Chunks decompressed together are hashed two at a time, and each result stands alone: a
/// bad one fails by itself, whichever its partner, and the others come back whole.
#[cfg(feature = "zstd")]
#[test]
fn chunks_decompressed_together_each_stand_alone() {
    let data = noise(17, 300_000);
    let (stream, pieces) = chunk_all(&data, 65536);
    assert!(stream.chunks.len() >= 5);
    let mut frames: Vec<Vec<u8>> = pieces.iter().take(5).map(|p| compress_chunk(p).unwrap()).collect();
    let mut altered = pieces[1].clone();
    altered[0] ^= 1;
    frames[1] = compress_chunk(&altered).unwrap();
    frames[3] = b"not zstd".to_vec();
    for n in 0..=5 {
        let asked: Vec<(&ChunkRef, &[u8])> = stream
            .chunks
            .iter()
            .zip(&frames)
            .take(n)
            .map(|(c, f)| (c, f.as_slice()))
            .collect();
        let got = decompress_chunks(&asked);
        assert_eq!(got.len(), n);
        for (i, result) in got.into_iter().enumerate() {
            match i {
                1 => assert!(matches!(result, Err(ChunkError::Digest { .. })), "chunk 1 of {n}"),
                3 => assert!(matches!(result, Err(ChunkError::Decompress { .. })), "chunk 3 of {n}"),
                _ => assert_eq!(result.unwrap(), pieces[i], "chunk {i} of {n}"),
            }
        }
    }
}
