//! The fuzz targets' bodies (`fuzz/bodies.rs`) on the stable toolchain: seeds like those
//! `scripts/fuzz.sh` starts from, and a few hundred deterministic mutations of each, go
//! through every target. CI builds no fuzz target (they need nightly); this keeps the bodies
//! compiling and their properties holding on real inputs. It is no substitute for fuzzing.

use std::io::Read;

use rel_format::Version;
use rel_format::chunk::{ChunkRef, compress_chunk};
use rel_format::pack::PackWriter;
use rel_testkit::fixtures::Fixture;

#[path = "../../../fuzz/bodies.rs"]
mod bodies;

/// Mutations of `seed`: bytes flipped, cut short, a run repeated, bytes inserted; the same
/// ones every run (xorshift from a fixed state).
fn mutations(seed: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed.len() as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = vec![seed.to_vec(), Vec::new()];
    for _ in 0..n {
        let mut m = seed.to_vec();
        let at = |r: u64, len: usize| if len == 0 { 0 } else { (r % len as u64) as usize };
        match next() % 4 {
            0 => {
                for _ in 0..1 + next() % 4 {
                    let i = at(next(), m.len());
                    if let Some(b) = m.get_mut(i) {
                        *b ^= 1 << (next() % 8);
                    }
                }
            }
            1 => m.truncate(at(next(), m.len())),
            2 => {
                let i = at(next(), m.len());
                let j = (i + 1 + at(next(), 64)).min(m.len());
                let run = m[i..j].to_vec();
                m.splice(i..i, run);
            }
            _ => {
                let i = at(next(), m.len() + 1);
                let byte = (next() & 0xff) as u8;
                m.insert(i, byte);
            }
        }
        out.push(m);
    }
    out
}

/// Files of the demo fixture's first release whose path ends with one of `suffixes`.
fn fixture_files(suffixes: &[&str], max: usize) -> Vec<Vec<u8>> {
    let fixture = Fixture::demo();
    let file = std::fs::File::open(fixture.tarball(&fixture.versions()[0])).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if suffixes.iter().any(|s| path.ends_with(s)) && out.len() < max {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            out.push(bytes);
        }
    }
    assert!(!out.is_empty(), "no {suffixes:?} in the fixture");
    out
}

fn run(target: fn(&[u8]), seeds: &[Vec<u8>], per_seed: usize) {
    for seed in seeds {
        for input in mutations(seed, per_seed) {
            target(&input);
        }
    }
}

#[test]
fn kept_snapshots() {
    let demo = Fixture::demo();
    let mut tar = Vec::new();
    let file = std::fs::File::open(demo.tarball(&demo.versions()[0])).unwrap();
    flate2::read::GzDecoder::new(file).read_to_end(&mut tar).unwrap();
    let digest = rel_format::Digest::of(&tar);
    let (snapshot, spans) =
        rel_format::snapshot::ReleaseSnapshot::from_tar_indexed(tar.as_slice(), None, &mut Default::default()).unwrap();
    let kept = rel_format::snapshot::encode_stored(&digest, &snapshot, &spans).unwrap();
    // The body alone, as the target takes it; `scripts/fuzz.sh` seeds its corpus with it.
    let body = kept[rel_format::snapshot::STORED_MAGIC.len() + 32..kept.len() - 32].to_vec();
    if let Some(dir) = std::env::var_os("REL_FUZZ_SEEDS") {
        std::fs::write(std::path::Path::new(&dir).join("seed-demo"), &body).unwrap();
    }
    run(bodies::snapshot, &[body, kept], 150);
}

#[test]
fn beams() {
    run(bodies::beam, &fixture_files(&[".beam"], 8), 150);
}

#[test]
fn term_files() {
    let seeds: Vec<Vec<u8>> = fixture_files(&[".rel", ".app", "sys.config", ".appup"], 12);
    run(bodies::terms, &seeds, 150);
}

#[test]
fn external_terms() {
    let seeds: Vec<Vec<u8>> = [
        "{ok, [1, 2.5, <<\"bin\">>, \"str\", atom, {nested, -42}]}",
        "#{key => [a | b], <<1,2>> => 'Quoted Atom'}",
        "[{release, {\"shop\", \"0.1.0\"}, {erts, \"13.1.5\"}, []}]",
        "123456789012345678901234567890",
    ]
    .iter()
    .map(|t| rel_format::etf::encode(&rel_format::term::parse_term("seed", &format!("{t}.")).unwrap()).unwrap())
    .collect();
    run(bodies::etf, &seeds, 300);
}

#[test]
fn archives() {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in [
        (
            "releases/1.0.0/demo.rel",
            &b"{release, {\"demo\", \"1.0.0\"}, {erts, \"13.1.5\"}, []}.\n"[..],
        ),
        (
            "lib/demo-1.0.0/ebin/demo.app",
            &b"{application, demo, [{vsn, \"1.0.0\"}]}.\n"[..],
        ),
        ("lib/demo-1.0.0/priv/blob", &[7u8; 1500][..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    run(bodies::tar, &[tar, gz.finish().unwrap()], 150);
}

#[test]
fn deltas() {
    let (base, target, _) = bodies::delta_case();
    let seed = rel_format::delta::encode(&base, &target).unwrap();
    // The seed itself decodes: the body's check has something to check.
    bodies::delta(&seed);
    run(bodies::delta, &[seed], 400);
}

#[test]
fn packs() {
    let mut writer = PackWriter::new();
    for data in [&b"first chunk"[..], &[1u8; 5000][..], &b"third"[..]] {
        let chunk = ChunkRef {
            digest: rel_format::Digest::of(data),
            length: data.len() as u64,
        };
        writer.push(&chunk, &compress_chunk(data).unwrap());
    }
    let mut seed = vec![128];
    seed.extend(writer.finish());
    run(bodies::pack, &[seed], 400);
}

#[test]
fn signed_documents() {
    let key = rel_format::SecretKey::from_seed("seed", [3; 32]).unwrap();
    let pointer = rel_format::channel::ChannelPointer {
        channel: "production".into(),
        created: "2026-11-28T16:00:00Z".parse().unwrap(),
        expires: "2027-05-27T16:00:00Z".parse().unwrap(),
        name: "demo".into(),
        registry: "0123456789abcdef0123456789abcdef".into(),
        schema: rel_format::channel::CHANNEL_SCHEMA.into(),
        sequence: 3,
        version: Version::parse("0.1.0+20240101-381-eddcacc").unwrap(),
    };
    let signed = rel_format::signing::Envelope::sign(pointer, &key).unwrap().to_bytes();
    run(bodies::signed, &[signed], 300);
}

#[test]
fn versions_and_timestamps() {
    let seeds: Vec<Vec<u8>> = [
        "0.1.0+20260101-100-a1b2c3d\n0.1.0+20260105-112-b2c3d4e",
        "1.0.0-rc.1\n1.0.0",
        "2026-11-28T16:38:54Z",
        "0.0.1+20171116-381-eddcacc\n0.0.1+20171116-39-eddcacc",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run(bodies::version, &seeds, 300);
}
