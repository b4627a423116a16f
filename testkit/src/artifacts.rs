//! Signed artifacts with real chunks: what a push would produce, without a release behind it.

use std::io::Write;

use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, compress_chunk};
use rel_format::manifest::{AppRef, Kind, Manifest, Platform, SCHEMA};
use rel_format::{SecretKey, Version};

/// A signing key derived from its name: the same name, the same key.
pub fn key(name: &str) -> SecretKey {
    let seed = rel_format::Digest::of(name.as_bytes());
    SecretKey::from_seed(name, *seed.as_bytes()).expect("a valid key name")
}

/// A manifest of `kind` for `name` `version` over the chunked stream `tar`.
pub fn manifest(name: &str, version: &str, kind: Kind, from: &[&str], tar: ChunkedStream) -> Manifest {
    let version: Version = version.parse().expect("a valid version");
    Manifest {
        schema: SCHEMA.into(),
        kind,
        name: name.into(),
        version: version.clone(),
        from: from.iter().map(|f| f.parse().expect("a valid version")).collect(),
        tar,
        platform: Platform {
            erts: "13.1.5".parse().expect("a valid version"),
            erts_included: false,
            os: None,
            arch: None,
            libc: None,
        },
        apps: vec![AppRef {
            name: name.into(),
            version,
        }],
        created: "2026-01-01T00:00:00Z".parse().expect("a valid timestamp"),
        builder: "rel tests".into(),
    }
}

/// An artifact ready to push: its signed envelope and its compressed chunks.
pub struct Artifact {
    pub manifest: Manifest,
    pub envelope: Vec<u8>,
    pub chunks: Vec<(ChunkRef, Vec<u8>)>,
}

/// Chunks `data`, describes it with [`manifest`] and signs it with `signer`.
pub fn artifact(name: &str, version: &str, kind: Kind, from: &[&str], data: &[u8], signer: &SecretKey) -> Artifact {
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(|c: &ChunkRef, d: &[u8]| {
        chunks.push((c.clone(), compress_chunk(d)?));
        Ok(())
    });
    chunker.write_all(data).expect("chunking into memory");
    let (stream, _) = chunker.finish().expect("chunking into memory");
    let manifest = manifest(name, version, kind, from, stream);
    let envelope = signer.sign(&manifest).expect("signable").to_bytes();
    Artifact {
        manifest,
        envelope,
        chunks,
    }
}
