//! Two messages hashed at once against `sha2` hashing them one after the other, on the
//! same bytes (1 MiB each), in one run: `cargo bench -p rel-sha256`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::Digest as _;

fn pair(c: &mut Criterion) {
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (a, b) = data.split_at(1 << 20);
    let mut group = c.benchmark_group("sha256 of two 1 MiB messages");
    group.throughput(Throughput::Bytes(2 << 20));
    group.bench_function("baseline: sha2, one after the other", |bench| {
        bench.iter(|| (sha2::Sha256::digest(a), sha2::Sha256::digest(b)))
    });
    group.bench_function("rel_sha256::digest_pair", |bench| {
        bench.iter(|| rel_sha256::digest_pair(a, b))
    });
    group.finish();
}

criterion_group!(benches, pair);
criterion_main!(benches);
