//! The format crate on real OTP releases built by `fixtures/build.sh` (Debian's OTP 25).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;

use rel_format::Version;
use rel_format::archive::{Limits, canonicalize};
use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, Reassembler};
use rel_testkit::fixtures::Fixture;

fn versions() -> Vec<String> {
    Fixture::demo().versions()
}

fn tarball(version: &str) -> Vec<u8> {
    std::fs::read(Fixture::demo().tarball(version)).unwrap()
}

/// Canonicalises and chunks an input; returns the chunked stream, the chunk bytes and the
/// canonical tar.
fn ingest(input: &[u8]) -> (ChunkedStream, Vec<(ChunkRef, Vec<u8>)>, rel_format::archive::Ingested) {
    let mut chunks = Vec::new();
    let chunker = Chunker::new(|c: &ChunkRef, d: &[u8]| {
        chunks.push((c.clone(), d.to_vec()));
        Ok(())
    });
    let (chunker, seen) = canonicalize(input, chunker, Limits::default(), &Default::default()).unwrap();
    let (stream, _) = chunker.finish().unwrap();
    (stream, chunks, seen)
}

#[test]
fn fixture_versions_sort_in_build_order() {
    let listed = versions();
    assert_eq!(listed.len(), 3);
    let mut parsed: Vec<Version> = listed.iter().map(|v| v.parse().unwrap()).collect();
    parsed.reverse();
    parsed.sort();
    assert_eq!(parsed.iter().map(Version::as_str).collect::<Vec<_>>(), listed);
    // Plain string order would put the 1000-commit build first.
    let mut as_strings = listed.clone();
    as_strings.sort();
    assert_ne!(as_strings, listed);
}

#[test]
fn reads_the_release_from_each_fixture() {
    for v in versions() {
        let (_, _, seen) = ingest(&tarball(&v));
        let rel = seen.release(None).unwrap();
        assert_eq!(rel.name, "demo");
        assert_eq!(rel.version.as_str(), v);
        let otp = std::fs::read_to_string(Fixture::demo().dir.join("OTP")).unwrap();
        assert_eq!(rel.erts.as_str(), otp.split_whitespace().nth(1).unwrap());
        let demo = rel.app("demo").unwrap();
        assert_eq!(demo.version.as_str(), v, "demo's app vsn is the release vsn");
        assert!(seen.lib_dirs.contains(&format!("demo-{v}")), "{:?}", seen.lib_dirs);
        assert!(rel.app("sasl").is_some());
        assert!(seen.erts_dirs.is_empty(), "fixtures ship no ERTS");
        assert!(
            seen.native.is_none(),
            "fixtures carry no native code: {:?}",
            seen.native
        );
    }
    let (_, _, seen) = ingest(&tarball(&versions()[2]));
    assert!(seen.release(None).unwrap().app("demo_extra").is_some());
}

#[test]
fn canonical_form_ignores_compression_and_round_trips() {
    let v = &versions()[0];
    let gz = tarball(v);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    let zst = zstd::encode_all(plain.as_slice(), 3).unwrap();

    let (from_gz, chunks, _) = ingest(&gz);
    let (from_tar, _, _) = ingest(&plain);
    let (from_zst, _, _) = ingest(&zst);
    assert_eq!(from_gz, from_tar);
    assert_eq!(from_gz, from_zst);

    // Canonicalising the canonical form changes nothing.
    let mut canonical = Reassembler::new(&from_gz, Vec::new());
    for (c, d) in &chunks {
        canonical.push(c, d).unwrap();
    }
    let canonical = canonical.finish().unwrap();
    let (again, _, _) = ingest(&canonical);
    assert_eq!(again, from_gz);

    // The canonical tar holds the same files with the same contents as the input.
    let files = |bytes: &[u8]| {
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(bytes);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type().is_file() {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.push((e.path().unwrap().into_owned(), data));
            }
        }
        out
    };
    assert_eq!(files(&canonical), files(&plain));
    // and every header is normalised.
    let mut ar = tar::Archive::new(canonical.as_slice());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!((h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()), (0, 0, 0));
        assert!(matches!(h.mode().unwrap(), 0o644 | 0o755), "{:o}", h.mode().unwrap());
    }
}

#[test]
fn consecutive_versions_share_most_chunks() {
    let vs = versions();
    let streams: Vec<ChunkedStream> = vs.iter().map(|v| ingest(&tarball(v)).0).collect();
    let mut report = String::new();
    for pair in streams.windows(2).zip(vs.windows(2)) {
        let ([old, new], [from, to]) = pair else { unreachable!() };
        let have: HashSet<&ChunkRef> = old.chunks.iter().collect();
        let shared = new.chunks.iter().filter(|c| have.contains(c)).count();
        let new_bytes: u64 = new.chunks.iter().filter(|c| !have.contains(c)).map(|c| c.length).sum();
        let ratio = shared as f64 / new.chunks.len() as f64;
        writeln!(
            report,
            "{from} -> {to}: {shared}/{} chunks shared ({:.1}%), {new_bytes} of {} bytes new",
            new.chunks.len(),
            ratio * 100.0,
            new.length
        )
        .unwrap();
        assert!(ratio > 0.95, "dedup too low: {report}");
        assert!(
            new_bytes * 20 < new.length,
            "more than 5% of the bytes are new: {report}"
        );
    }
    // Shown with `--nocapture`; the README quotes it.
    print!("{report}");
}
