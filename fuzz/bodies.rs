//! The fuzz targets' bodies, one function a target: what each checks of its input. The
//! targets (`fuzz_targets/`, libFuzzer, nightly) call them, and so does a stable test that
//! replays seeds and their mutations through them (`format/tests/it/fuzz_seeds.rs`), so they
//! are compiled and exercised in every CI run.

#![allow(dead_code)]
use rel_format::archive::{self, Limits, Selection};
use rel_format::beam::Beam;
use rel_format::channel::SignedChannel;
use rel_format::chunk;
use rel_format::etf;
use rel_format::pack::{self, PackScanner, PackWriter};
use rel_format::{SecretKey, SignedManifest, TrustedKeys};
use rel_format::{Timestamp, Version};
use rel_format::{appup, release::ReleaseSpec, sysconfig::SysConfig, term};

/// BEAM files: every question rel asks of a module answers or errs, never panics.
pub(crate) fn beam(data: &[u8]) {
    let Ok(beam) = Beam::parse("fuzz.beam", data.to_vec()) else {
        return;
    };
    let _ = beam.module();
    let _ = beam.identity();
    let _ = beam.compile_info();
    let _ = beam.behaviours();
    let _ = beam.called_modules();
    let _ = beam.exports("code_change", 3);
    let _ = beam.literals();
    let _ = beam.lambdas();
    let _ = beam.code();
    let _ = beam.literal_child_ids();
}

/// External term format: whatever decodes and has an external form (not every decoded term
/// does: `etf`'s module doc says which) encodes to bytes that decode to the same term.
pub(crate) fn etf(data: &[u8]) {
    let _ = etf::decode_prefix_bounded(data, 10_000);
    if let Ok(term) = etf::decode(data)
        && let Ok(bytes) = etf::encode(&term)
    {
        assert_eq!(etf::decode(&bytes).expect("an encoded term decodes"), term);
    }
}

/// Packs and pack indexes: a pack read whole and a pack read as it arrives, cut anywhere,
/// agree; a read pack written again reads back the same.
pub(crate) fn pack(data: &[u8]) {
    let _ = pack::decode_index(data);
    let Some((&cut, body)) = data.split_first() else { return };
    let whole = pack::parse_pack(body);

    // The same bytes in two pieces, the first ending anywhere.
    let cut = (cut as usize * body.len() / 255).min(body.len());
    let mut scanner = PackScanner::default();
    let mut entries = Vec::new();
    let streamed = (|| {
        let used = scanner.scan(&body[..cut], &mut entries)?;
        let used = used + scanner.scan(&body[used..], &mut entries)?;
        scanner.finish(body.len() - used, &entries)?;
        Ok::<_, pack::PackError>(())
    })();
    match (&whole, streamed) {
        (Ok(w), Ok(())) => assert_eq!(w, &entries),
        (Err(_), Err(_)) => {}
        (w, s) => panic!("whole: {w:?}, streamed: {s:?}"),
    }

    if let Ok(entries) = whole {
        let mut writer = PackWriter::new();
        for e in &entries {
            writer.push(&e.chunk(), &body[e.range().start as usize..e.range().end as usize]);
        }
        let again = writer.finish();
        assert_eq!(pack::parse_pack(&again).expect("a written pack reads"), entries);

        // Frames checked two at a time (a registry's check, a host's pull) are refused when
        // checked alone they are, and the first refused is the one named. (How one is
        // refused may differ: a frame that decompresses past its length fails to decompress
        // into a buffer of that length, or decompresses into a larger one and fails the
        // length check.)
        let frames: Vec<_> = entries
            .iter()
            .map(|e| (e.chunk(), &body[e.range().start as usize..e.range().end as usize]))
            .collect();
        let alone: Vec<_> = frames.iter().map(|(c, f)| chunk::decompress_chunk(c, f)).collect();
        let together = chunk::decompress_chunks(&frames.iter().map(|(c, f)| (c, *f)).collect::<Vec<_>>());
        for (a, t) in alone.iter().zip(&together) {
            match (a, t) {
                (Ok(x), Ok(y)) => assert_eq!(x, y),
                (Err(_), Err(_)) => {}
                (a, t) => panic!("alone: {a:?}, together: {t:?}"),
            }
        }
        let checked = chunk::check_frames(frames.iter().map(|(c, f)| (c.clone(), *f)));
        let first_refused = alone
            .iter()
            .zip(&frames)
            .find(|(a, _)| a.is_err())
            .map(|(_, (c, _))| c.digest);
        match (checked, first_refused) {
            (Ok(()), None) => {}
            (Err(e), Some(first)) => assert_eq!(named(&e), first, "{e}"),
            (c, first) => panic!("checked in pairs: {c:?}, first refused alone: {first:?}"),
        }
    }
}

/// The chunk a chunk error names.
fn named(e: &chunk::ChunkError) -> rel_format::Digest {
    match e {
        chunk::ChunkError::Digest { expected, .. } => *expected,
        chunk::ChunkError::Length { digest, .. } | chunk::ChunkError::Decompress { digest, .. } => *digest,
        other => panic!("not a chunk's error: {other}"),
    }
}

/// The bytes deltas are decoded against in [`delta`], and the chunks they must give.
pub(crate) fn delta_case() -> (Vec<u8>, Vec<u8>, Vec<rel_format::chunk::ChunkRef>) {
    let base: Vec<u8> = (0..6000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut target = base.clone();
    target[100..108].copy_from_slice(b"changed!");
    target.extend_from_slice(b"and more at the end");
    let chunks = target
        .chunks(4000)
        .map(|d| rel_format::chunk::ChunkRef {
            digest: rel_format::Digest::of(d),
            length: d.len() as u64,
        })
        .collect();
    (base, target, chunks)
}

/// Deltas from a hostile registry: a frame decodes against its base to exactly the chunks
/// asked for, every one verified, or is refused; never a panic, never more output than asked.
pub(crate) fn delta(data: &[u8]) {
    let (base, target, chunks) = delta_case();
    if let Ok(got) = rel_format::delta::decode(&base, data, &chunks) {
        assert_eq!(got.concat(), target, "a delta decoded to other bytes than its chunks");
    }
}

/// Signed manifests and channel pointers: read or refused within their bounds; a read
/// envelope written again is the same envelope, and a signature never verifies under a key
/// that did not make it.
pub(crate) fn signed(data: &[u8]) {
    if let Ok(m) = SignedManifest::parse_unverified(data) {
        let again = SignedManifest::parse_unverified(&m.to_bytes()).expect("written manifests read");
        assert_eq!(again, m);
    }
    if let Ok(p) = SignedChannel::parse_unverified(data) {
        let again = SignedChannel::parse_unverified(&p.to_bytes()).expect("written pointers read");
        assert_eq!(again, p);
    }
    let key = SecretKey::from_seed("ci", [7; 32]).expect("a seed makes a key");
    let trusted = TrustedKeys::new([key.public()]);
    assert!(SignedManifest::verify_signature(data, &trusted).is_err());
    assert!(SignedChannel::verify_signature(data, &trusted).is_err());
}

/// Release archives (tar, gzip, zstd): made canonical or refused with an error naming the
/// member; nothing is written anywhere but the sink.
pub(crate) fn tar(data: &[u8]) {
    let limits = Limits {
        max_total_bytes: 1 << 22,
        max_entries: 10_000,
        max_path_len: 4096,
    };
    let _ = archive::canonicalize(data, std::io::sink(), limits, &Selection::default());
}

/// Erlang terms as text (`.rel`, `.app`, `sys.config`, `.appup`, rel's `.extra`): parsed or
/// refused; a parsed term printed by rel reads back as the same term.
pub(crate) fn terms(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ReleaseSpec::parse("fuzz.rel", text);
    let _ = SysConfig::parse("sys.config", text);
    let _ = appup::Extra::parse("fuzz.extra", text);
    if let Ok(terms) = term::parse_terms("fuzz.config", text) {
        for t in terms {
            let printed = t.to_string();
            let back = term::parse_term("printed", &format!("{printed}."))
                .unwrap_or_else(|e| panic!("{printed:?} does not read back: {e}"));
            assert_eq!(back, t, "{printed}");
        }
    }
}

/// Versions and timestamps: a parsed one prints and parses back the same, and versions
/// compare as a total order (two versions from one input, cut at its first newline).
pub(crate) fn version(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = text.parse::<Timestamp>() {
        assert_eq!(t.to_string().parse::<Timestamp>().expect("printed timestamps parse"), t);
    }
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    let parsed: Vec<Version> = [a, b].iter().filter_map(|s| Version::parse(s).ok()).collect();
    for v in &parsed {
        let back = Version::parse(&v.to_string()).expect("printed versions parse");
        assert_eq!(&back, v);
        assert_eq!(back.cmp(v), std::cmp::Ordering::Equal);
    }
    if let [x, y] = parsed.as_slice() {
        assert_eq!(x.cmp(y), y.cmp(x).reverse());
        assert_eq!(x == y, x.cmp(y) == std::cmp::Ordering::Equal);
    }
}

/// Kept snapshots (SPEC.md §8.5): `data` is the body, given a whole file's magic, digest and
/// checksum so that the decoder reads it. It reads back or errs, never panics nor runs out of
/// stack; one that reads back is stored again as the same bytes.
pub(crate) fn snapshot(data: &[u8]) {
    use rel_format::snapshot::{STORED_MAGIC, decode_stored, encode_stored};
    let tar = rel_format::Digest::of(b"a release");
    let _ = decode_stored(&tar, data);
    let mut file = STORED_MAGIC.to_vec();
    file.extend_from_slice(tar.as_bytes());
    file.extend_from_slice(data);
    let sum = rel_format::Digest::of(&file);
    file.extend_from_slice(sum.as_bytes());
    if let Ok((snapshot, spans)) = decode_stored(&tar, &file) {
        let again = encode_stored(&tar, &snapshot, &spans).expect("a snapshot read back stores again");
        let (snapshot, spans) = decode_stored(&tar, &again).expect("a stored snapshot reads back");
        assert_eq!(encode_stored(&tar, &snapshot, &spans).expect("stores again"), again);
    }
}
