//! What an uploader with push scope can make the registry hold: packs of too many or too
//! small records are refused whole, and the chunk index costs about twice the entries
//! themselves (measured from `/proc`, against the entries alone in the same process; the
//! figures are printed with `--no-capture`).
#![allow(clippy::print_stderr)]

use std::sync::Arc;

use rel_format::Digest;
use rel_format::chunk::{ChunkRef, compress_chunk};
use rel_format::pack::{Entry, MAX_PACK_RECORDS};
use rel_registry::packs::{Pack, Packs};
use rel_registry::{AppState, Options, Store, app};

use crate::support::{call, pack_of};

fn memory() -> Store {
    Store::new(Arc::new(object_store::memory::InMemory::new()), "memory://")
}

/// `n` distinct chunks of `len` bytes, with their frames.
fn chunks(n: usize, len: usize) -> Vec<(ChunkRef, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut data = vec![0u8; len];
            data[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let chunk = ChunkRef {
                digest: Digest::of(&data),
                length: len as u64,
            };
            (chunk, compress_chunk(&data).unwrap())
        })
        .collect()
}

/// Finding 5: 550,000 tiny chunks in one pack are refused, and so are packs whose chunks
/// are too small to be a release's; nothing is indexed.
#[tokio::test]
async fn packs_of_tiny_or_too_many_chunks_are_refused() {
    let state = AppState::new(memory(), Options::default());
    let app = app(state.clone());
    let many = pack_of(&chunks(MAX_PACK_RECORDS + 1, 4096));
    let r = call(&app, "POST", "/v1/packs", None, &[], many).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("more than 4096 records"), "{}", r.text());
    let tiny = pack_of(&chunks(200, 64));
    let r = call(&app, "POST", "/v1/packs", None, &[], tiny).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("at least 4096 bytes a record"), "{}", r.text());
    assert_eq!(state.packs.chunk_count(), 0);
    // A release's chunks (4 KiB to 64 KiB) pass.
    let r = call(&app, "POST", "/v1/packs", None, &[], pack_of(&chunks(128, 16 * 1024))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(state.packs.chunk_count(), 128);
}

fn rss() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// The index of 262,144 chunks (2,048 packs of 128) costs less than 3 times the bytes of
/// the entries alone (48 bytes each), measured in the same process. A location per chunk, as
/// the index kept before, cost about five times (2.45 now: 128 bytes a chunk).
#[test]
fn the_chunk_index_is_compact() {
    const PACKS: usize = 2048;
    const PER_PACK: usize = 128;
    let entries = |p: usize| -> Vec<Entry> {
        let mut v: Vec<Entry> = (0..PER_PACK)
            .map(|i| Entry {
                digest: Digest::of(&((p * PER_PACK + i) as u64).to_be_bytes()),
                offset: 8 + (i as u64) * 4000,
                size: 4000,
                length: 16_384,
            })
            .collect();
        v.sort_by_key(|e| e.digest);
        v
    };
    let before = rss();
    let plain: Vec<Vec<Entry>> = (0..PACKS).map(entries).collect();
    let plain_cost = rss().saturating_sub(before);
    drop(plain);

    let packs = Packs::new(memory());
    let before = rss();
    for p in 0..PACKS {
        packs.insert(Pack {
            key: Arc::new(object_store::path::Path::from(format!("packs/{p:04x}.pack"))),
            last_modified: std::time::SystemTime::UNIX_EPOCH,
            size: 0,
            entries: entries(p).into(),
        });
    }
    let index_cost = rss().saturating_sub(before);
    assert_eq!(packs.chunk_count(), PACKS * PER_PACK);
    let per_chunk = index_cost / (PACKS * PER_PACK) as u64;
    let ratio = index_cost as f64 / plain_cost.max(1) as f64;
    eprintln!(
        "index of {} chunks: {} KiB ({per_chunk} B a chunk); the entries alone: {} KiB; ratio {ratio:.2}",
        PACKS * PER_PACK,
        index_cost / 1024,
        plain_cost / 1024
    );
    assert!(ratio < 3.0, "the index costs {ratio:.2} times its entries");
}
