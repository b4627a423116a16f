//! Upgrade paths: how to get a node from the version it runs to the one wanted.
//!
//! The stored upgrade artifacts form a graph over versions: an upgrade to `B` from `[A1, A2]`
//! is an edge `A1 → B` and an edge `A2 → B`, weighted by the bytes a host fetches. The
//! cheapest chain wins (ties: fewer steps, then the artifact stored first). Yanked versions
//! are never a step's target, but a node running one can still leave it. When no chain
//! exists and both releases are stored, a host that runs the from-release can build the
//! upgrade itself from the two signed releases (a *synthesised* step: what it fetches is the
//! target's chunks it lacks, which the registry fills in with [`Plan::set_synthesised_bytes`]);
//! otherwise the answer is the full release, which means a restart. The plan says which, and
//! why.
//!
//! [`UpgradeGraph`] is built once per catalog change and answers queries in microseconds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::manifest::Kind;
use crate::version::Version;

/// What the graph needs to know about one stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSummary {
    pub kind: Kind,
    pub version: Version,
    /// For upgrades, the versions it upgrades from.
    pub from: Vec<Version>,
    /// Bytes a host fetches for it (the canonical tar length).
    pub bytes: u64,
}

/// What a step fetches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// A stored upgrade artifact.
    Upgrade,
    /// The full release (a restart).
    Release,
    /// The target release, from which the host builds the upgrade.
    Synthesised,
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepKind::Upgrade => "upgrade",
            StepKind::Release => "release",
            StepKind::Synthesised => "synthesised",
        })
    }
}

/// One step of a plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    /// For an upgrade step, the version it starts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Version>,
    pub to: Version,
    pub bytes: u64,
}

/// How the plan gets there.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Nothing to do.
    AlreadyThere,
    /// A chain of hot upgrades, no restart.
    HotUpgrade,
    /// One hot upgrade the host builds from the release it runs and the target release.
    Synthesised,
    /// No chain of upgrades exists: install the full release, which restarts the node.
    FullRelease,
}

/// An answer to "from A to B".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub from: Version,
    pub to: Version,
    pub strategy: Strategy,
    pub steps: Vec<Step>,
    pub total_bytes: u64,
    /// Why this plan, in a sentence.
    pub reason: String,
}

impl Plan {
    /// Sets what a synthesised step fetches: `bytes`, the target's chunks the from-release
    /// lacks.
    pub fn set_synthesised_bytes(&mut self, bytes: u64) {
        for step in self.steps.iter_mut().filter(|s| s.kind == StepKind::Synthesised) {
            step.bytes = bytes;
        }
        self.total_bytes = self.steps.iter().map(|s| s.bytes).sum();
    }
}

/// What a host holding `from` fetches to have `to`: the length of `to`'s distinct chunks that
/// `from` does not have.
pub fn delta_bytes(from: &crate::chunk::ChunkedStream, to: &crate::chunk::ChunkedStream) -> u64 {
    let have: HashSet<&crate::Digest> = from.chunks.iter().map(|c| &c.digest).collect();
    let mut counted = HashSet::new();
    to.chunks
        .iter()
        .filter(|c| !have.contains(&c.digest) && counted.insert(&c.digest))
        .map(|c| c.length)
        .sum()
}

/// Why there is no plan.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    #[error("version `{0}` is not stored (neither a release nor an upgrade target)")]
    UnknownTarget(String),
    #[error("version `{0}` is yanked")]
    Yanked(String),
    #[error("no chain of upgrades leads from `{from}` to `{to}`, and the full release of `{to}` is not stored")]
    NoPath { from: String, to: String },
}

/// The upgrade graph of one release name.
#[derive(Debug, Default)]
pub struct UpgradeGraph {
    versions: Vec<Version>,
    index: HashMap<String, usize>,
    /// Per source version: (target, bytes, artifact).
    edges: Vec<Vec<(usize, u64, usize)>>,
    /// Per version: the size of its full release, if stored.
    releases: Vec<Option<u64>>,
    yanked: HashSet<usize>,
    upgrades: Vec<ArtifactSummary>,
}

impl UpgradeGraph {
    pub fn new(
        artifacts: impl IntoIterator<Item = ArtifactSummary>,
        yanked: impl IntoIterator<Item = Version>,
    ) -> Self {
        let mut g = UpgradeGraph::default();
        for a in artifacts {
            let to = g.node(&a.version);
            match a.kind {
                Kind::Release => {
                    let slot = &mut g.releases[to];
                    *slot = Some(slot.map_or(a.bytes, |b| b.min(a.bytes)));
                }
                Kind::Upgrade => {
                    let id = g.upgrades.len();
                    for f in &a.from {
                        let from = g.node(f);
                        g.edges[from].push((to, a.bytes, id));
                    }
                    g.upgrades.push(a);
                }
            }
        }
        for v in yanked {
            if let Some(&i) = g.index.get(v.as_str()) {
                g.yanked.insert(i);
            }
        }
        g
    }

    fn node(&mut self, v: &Version) -> usize {
        if let Some(&i) = self.index.get(v.as_str()) {
            return i;
        }
        let i = self.versions.len();
        self.versions.push(v.clone());
        self.index.insert(v.as_str().to_owned(), i);
        self.edges.push(Vec::new());
        self.releases.push(None);
        i
    }

    /// Number of versions the graph knows.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The cheapest way from `from` to `to`.
    pub fn path(&self, from: &Version, to: &Version) -> Result<Plan, PathError> {
        let Some(&target) = self.index.get(to.as_str()) else {
            return Err(PathError::UnknownTarget(to.to_string()));
        };
        if self.yanked.contains(&target) {
            return Err(PathError::Yanked(to.to_string()));
        }
        let plan = |strategy, steps: Vec<Step>, reason: String| {
            let total_bytes = steps.iter().map(|s| s.bytes).sum();
            Plan {
                from: from.clone(),
                to: to.clone(),
                strategy,
                steps,
                total_bytes,
                reason,
            }
        };
        if from == to {
            return Ok(plan(
                Strategy::AlreadyThere,
                vec![],
                format!("the node already runs `{to}`"),
            ));
        }
        if let Some(&start) = self.index.get(from.as_str())
            && let Some(steps) = self.dijkstra(start, target)
        {
            let n = steps.len();
            let reason = if n == 1 {
                format!("one stored upgrade goes from `{from}` to `{to}`")
            } else {
                format!("the cheapest chain of {n} stored upgrades from `{from}` to `{to}`")
            };
            return Ok(plan(Strategy::HotUpgrade, steps, reason));
        }
        let from_stored = self
            .index
            .get(from.as_str())
            .is_some_and(|&i| self.releases[i].is_some());
        match self.releases[target] {
            Some(bytes) if from_stored => Ok(plan(
                Strategy::Synthesised,
                vec![Step {
                    kind: StepKind::Synthesised,
                    from: Some(from.clone()),
                    to: to.clone(),
                    bytes,
                }],
                format!(
                    "no chain of stored upgrades starts at `{from}`; both releases are stored, so a host running `{from}` builds the upgrade from them, live"
                ),
            )),
            Some(bytes) => Ok(plan(
                Strategy::FullRelease,
                vec![Step {
                    kind: StepKind::Release,
                    from: None,
                    to: to.clone(),
                    bytes,
                }],
                format!(
                    "no chain of stored upgrades starts at `{from}`, and its release is not stored to build one from; installing the full release restarts the node"
                ),
            )),
            None => Err(PathError::NoPath {
                from: from.to_string(),
                to: to.to_string(),
            }),
        }
    }

    fn dijkstra(&self, start: usize, target: usize) -> Option<Vec<Step>> {
        let n = self.versions.len();
        let mut best: Vec<Option<(u64, u32)>> = vec![None; n];
        let mut via: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut heap = BinaryHeap::new();
        best[start] = Some((0, 0));
        heap.push(Reverse((0u64, 0u32, start)));
        while let Some(Reverse((cost, steps, node))) = heap.pop() {
            if best[node] != Some((cost, steps)) {
                continue;
            }
            if node == target {
                break;
            }
            for &(next, bytes, artifact) in &self.edges[node] {
                if self.yanked.contains(&next) {
                    continue;
                }
                let cand = (cost + bytes, steps + 1);
                if best[next].is_none_or(|b| cand < b) {
                    best[next] = Some(cand);
                    via[next] = Some((node, artifact));
                    heap.push(Reverse((cand.0, cand.1, next)));
                }
            }
        }
        best[target]?;
        let mut steps = Vec::new();
        let mut node = target;
        while node != start {
            let (prev, artifact) = via[node].expect("every reached node has a predecessor");
            let a = &self.upgrades[artifact];
            steps.push(Step {
                kind: StepKind::Upgrade,
                from: Some(self.versions[prev].clone()),
                to: a.version.clone(),
                bytes: a.bytes,
            });
            node = prev;
        }
        steps.reverse();
        Some(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn release(ver: &str, bytes: u64) -> ArtifactSummary {
        ArtifactSummary {
            kind: Kind::Release,
            version: v(ver),
            from: vec![],
            bytes,
        }
    }

    fn upgrade(from: &[&str], to: &str, bytes: u64) -> ArtifactSummary {
        ArtifactSummary {
            kind: Kind::Upgrade,
            version: v(to),
            from: from.iter().map(|f| v(f)).collect(),
            bytes,
        }
    }

    fn hops(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| format!("{}>{}", s.from.as_ref().map_or("-", |f| f.as_str()), s.to))
            .collect()
    }

    #[test]
    fn picks_the_cheapest_chain() {
        let g = UpgradeGraph::new(
            [
                release("1", 1000),
                release("2", 1000),
                release("3", 1000),
                upgrade(&["1"], "2", 10),
                upgrade(&["2"], "3", 10),
                upgrade(&["1"], "3", 50),
            ],
            [],
        );
        let p = g.path(&v("1"), &v("3")).unwrap();
        assert_eq!(
            (p.strategy, hops(&p), p.total_bytes),
            (Strategy::HotUpgrade, vec!["1>2".into(), "2>3".into()], 20)
        );
        assert!(p.reason.contains("chain of 2"), "{}", p.reason);
    }

    #[test]
    fn skips_yanked_versions_but_can_leave_one() {
        let ups = [
            upgrade(&["1"], "2", 10),
            upgrade(&["2"], "3", 10),
            upgrade(&["1"], "3", 50),
            release("3", 900),
        ];
        let g = UpgradeGraph::new(ups.clone(), [v("2")]);
        let p = g.path(&v("1"), &v("3")).unwrap();
        assert_eq!(hops(&p), vec!["1>3"]);
        let g = UpgradeGraph::new(ups.clone(), [v("1")]);
        assert_eq!(hops(&g.path(&v("1"), &v("3")).unwrap()), vec!["1>2", "2>3"]);
        let g = UpgradeGraph::new(ups, [v("3")]);
        assert_eq!(g.path(&v("1"), &v("3")).unwrap_err(), PathError::Yanked("3".into()));
    }

    #[test]
    fn synthesises_between_stored_releases_else_falls_back_to_the_full_release() {
        let g = UpgradeGraph::new([release("1", 100), release("3", 900), upgrade(&["2"], "3", 10)], []);
        let mut p = g.path(&v("1"), &v("3")).unwrap();
        assert_eq!(p.strategy, Strategy::Synthesised);
        assert_eq!(
            p.steps,
            vec![Step {
                kind: StepKind::Synthesised,
                from: Some(v("1")),
                to: v("3"),
                bytes: 900
            }]
        );
        assert!(p.reason.contains("builds the upgrade from them"), "{}", p.reason);
        p.set_synthesised_bytes(42);
        assert_eq!((p.steps[0].bytes, p.total_bytes), (42, 42));
        // A stored chain, even a long one, wins: it may carry hand-written appups.
        assert_eq!(g.path(&v("2"), &v("3")).unwrap().strategy, Strategy::HotUpgrade);
        // The running version's release is not stored: the full release.
        let p = g.path(&v("0.9"), &v("3")).unwrap();
        assert_eq!(p.strategy, Strategy::FullRelease);
        assert_eq!(
            p.steps,
            vec![Step {
                kind: StepKind::Release,
                from: None,
                to: v("3"),
                bytes: 900
            }]
        );
        assert!(p.reason.contains("restarts the node"));
    }

    #[test]
    fn delta_bytes_count_each_missing_chunk_once() {
        use crate::chunk::{ChunkRef, ChunkedStream};
        let c = |n: u8, len: u64| ChunkRef {
            digest: crate::Digest::of(&[n]),
            length: len,
        };
        let stream = |chunks: Vec<ChunkRef>| ChunkedStream {
            digest: crate::Digest::of(b"s"),
            length: chunks.iter().map(|c| c.length).sum(),
            chunking: "test".into(),
            chunks,
        };
        let from = stream(vec![c(1, 10), c(2, 20)]);
        let to = stream(vec![c(1, 10), c(3, 30), c(3, 30), c(4, 5)]);
        assert_eq!(delta_bytes(&from, &to), 35);
    }

    #[test]
    fn errors_say_what_is_missing() {
        let g = UpgradeGraph::new([upgrade(&["1"], "2", 10)], []);
        assert_eq!(
            g.path(&v("1"), &v("9")).unwrap_err(),
            PathError::UnknownTarget("9".into())
        );
        assert_eq!(
            g.path(&v("0"), &v("2")).unwrap_err().to_string(),
            "no chain of upgrades leads from `0` to `2`, and the full release of `2` is not stored"
        );
        assert_eq!(g.path(&v("2"), &v("2")).unwrap().strategy, Strategy::AlreadyThere);
    }

    #[test]
    fn multi_from_upgrades_are_edges_from_each() {
        let g = UpgradeGraph::new([upgrade(&["1", "2"], "3", 30)], []);
        assert_eq!(hops(&g.path(&v("2"), &v("3")).unwrap()), vec!["2>3"]);
        assert_eq!(hops(&g.path(&v("1"), &v("3")).unwrap()), vec!["1>3"]);
    }
}
