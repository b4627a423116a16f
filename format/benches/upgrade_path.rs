//! Upgrade-path queries over 10,000 versions and 30,000 stored upgrades. The baseline, in
//! the same process, is one pass over the 30,000 upgrades (what any unindexed answer costs).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rel_format::Version;
use rel_format::manifest::Kind;
use rel_format::upgrade_path::{ArtifactSummary, UpgradeGraph};

fn artifacts() -> (Vec<Version>, Vec<ArtifactSummary>) {
    let versions: Vec<Version> = (0..10_000)
        .map(|i| {
            format!("1.{}.{}+20240101-{i}-abcdef0", i / 100, i % 100)
                .parse()
                .unwrap()
        })
        .collect();
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        out.push(ArtifactSummary {
            kind: Kind::Release,
            version: v.clone(),
            from: vec![],
            bytes: 80_000_000,
        });
        for back in 1..=3 {
            if i >= back {
                let bytes = 40_000 * back as u64 + (i as u64 * 7919) % 10_000;
                out.push(ArtifactSummary {
                    kind: Kind::Upgrade,
                    version: v.clone(),
                    from: vec![versions[i - back].clone()],
                    bytes,
                });
            }
        }
    }
    (versions, out)
}

fn bench(c: &mut Criterion) {
    let (versions, arts) = artifacts();
    let upgrades = arts.iter().filter(|a| a.kind == Kind::Upgrade).count();
    assert!(upgrades >= 29_990, "{upgrades}");
    let graph = UpgradeGraph::new(arts.clone(), []);
    let (first, last) = (&versions[0], &versions[9_999]);
    let plan = graph.path(first, last).unwrap();
    assert_eq!(plan.steps.last().unwrap().to, *last);

    let mut g = c.benchmark_group("upgrade_path");
    g.bench_function("baseline: one pass over 30,000 upgrades", |b| {
        b.iter(|| {
            black_box(&arts)
                .iter()
                .filter(|a| a.from.first() == Some(first))
                .map(|a| a.bytes)
                .sum::<u64>()
        })
    });
    g.bench_function("path across all 10,000 versions", |b| {
        b.iter(|| graph.path(black_box(first), black_box(last)).unwrap())
    });
    g.bench_function("path across 10 versions", |b| {
        b.iter(|| {
            graph
                .path(black_box(&versions[5_000]), black_box(&versions[5_010]))
                .unwrap()
        })
    });
    g.bench_function("build the graph", |b| {
        b.iter(|| UpgradeGraph::new(black_box(arts.clone()), []))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
