//! What changed between two stored releases of a name, module by module, and the appups rel
//! generates for that upgrade (SPEC.md §8.2), for the web view: what `rel appup NAME@A
//! NAME@B` prints, without anyone running it. Both releases are read from their chunks (runs
//! of records read at once, as a batch is) and each module they share is parsed once; the
//! result is computed once a pair, one pair at a time per replica, and remembered.

use std::io::Read;
use std::sync::Arc;

use futures::StreamExt as _;
use rel_format::Version;
use rel_format::chunk::{ChunkRef, decompress_chunk};
use rel_format::pack::{RECORD_HEADER, read_record_header};
use rel_format::snapshot::{ParsedModules, ReleaseSnapshot};

use crate::AppState;
use crate::error::ApiError;

/// Releases larger than this are not read for the web view (their chunks would all be read and
/// decompressed); the page says so.
pub(crate) const MAX_RELEASE_BYTES: u64 = 1 << 30;

/// One application of the upgrade.
#[derive(Debug, Clone)]
pub(crate) struct AppChange {
    pub app: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// The appup rel generates (or the release ships), rendered.
    pub appup: Option<String>,
}

/// What changed from one release to another.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    pub apps: Vec<AppChange>,
    /// What the generator is not sure of (a host would refuse to synthesise this upgrade).
    pub warnings: Vec<String>,
}

/// The changes from release `from` of `name` to release `to`; `None` when either has no stored
/// release, or is over [`MAX_RELEASE_BYTES`].
pub(crate) async fn changes(
    state: &AppState,
    name: &str,
    from: &Version,
    to: &Version,
) -> Result<Option<Arc<Changes>>, ApiError> {
    let compute = || async {
        let (Some(a), Some(b)) = (
            super::releases::stored_release(state, name, from).await?,
            super::releases::stored_release(state, name, to).await?,
        ) else {
            return Ok(None);
        };
        if a.signed.tar.length.max(b.signed.tar.length) > MAX_RELEASE_BYTES {
            return Ok(None);
        }
        let (old, parsed) = snapshot(state, &a.signed.tar.chunks, ParsedModules::default()).await?;
        let (new, _) = snapshot(state, &b.signed.tar.chunks, parsed).await?;
        Ok(Some(compare(&old, &new)))
    };
    state.catalog.changes(name, from, to, compute).await
}

/// The snapshot of the stored release whose tar is `chunks`, each module `parsed` knows not
/// parsed again.
async fn snapshot(
    state: &AppState,
    chunks: &[ChunkRef],
    mut parsed: ParsedModules,
) -> Result<(ReleaseSnapshot, ParsedModules), ApiError> {
    let digests: Vec<_> = chunks.iter().map(|c| c.digest).collect();
    let runs = super::chunks::record_runs(state, &digests)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(16);
    let reading = tokio::task::spawn_blocking(move || {
        let snap = ReleaseSnapshot::from_tar_sharing(ChunkReader::new(rx), None, Some(&mut parsed));
        (snap, parsed)
    });
    let mut records = futures::stream::iter(runs)
        .map(|(pack, range)| {
            let store = state.store.clone();
            async move { store.get_range(&pack, range).await }
        })
        .buffered(4);
    let mut wanted = chunks.iter();
    'runs: while let Some(run) = records.next().await {
        let run = run?;
        let mut at = 0;
        while at + RECORD_HEADER <= run.len() {
            let header: &[u8; RECORD_HEADER] = run[at..at + RECORD_HEADER].try_into().expect("a record header");
            let (digest, length, size) =
                read_record_header(header).map_err(|e| ApiError::Internal(format!("a stored pack: {e}")))?;
            let frame = &run[at + RECORD_HEADER..(at + RECORD_HEADER + size as usize).min(run.len())];
            at += RECORD_HEADER + size as usize;
            let Some(chunk) = wanted.next() else { break 'runs };
            let data = if chunk.digest == digest && chunk.length == u64::from(length) {
                decompress_chunk(chunk, frame).map_err(|e| std::io::Error::other(e.to_string()))
            } else {
                Err(std::io::Error::other(format!(
                    "stored record {digest} where {} was expected",
                    chunk.digest
                )))
            };
            if tx.send(data).await.is_err() {
                // The reader stopped: its error says why.
                break 'runs;
            }
        }
    }
    drop(tx);
    let (snap, parsed) = reading.await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let snap = snap.map_err(|e| ApiError::Internal(format!("a stored release cannot be read: {e}")))?;
    Ok((snap, parsed))
}

/// A tar stream from decompressed chunks as they arrive.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => (self.chunk, self.at) = (chunk?, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The applications added, removed or at another version, their modules, and the appups.
fn compare(old: &ReleaseSnapshot, new: &ReleaseSnapshot) -> Changes {
    let (plans, mut warnings) = rel_format::appup::plan_appups(&[old], new, &|_| None, &|_| None);
    warnings.extend(plans.iter().flat_map(|p| p.warnings.iter().cloned()));
    let mut apps = Vec::new();
    for (name, b) in &new.apps {
        let a = old.apps.get(name);
        if a.is_some_and(|a| a.vsn == b.vsn) {
            continue;
        }
        let mut change = AppChange {
            app: name.clone(),
            from: a.map(|a| a.vsn.clone()),
            to: Some(b.vsn.clone()),
            added: vec![],
            changed: vec![],
            removed: vec![],
            appup: plans.iter().find(|p| &p.app == name).map(rel_format::appup::render),
        };
        for (m, summary) in &b.beams {
            match a.and_then(|a| a.beams.get(m)) {
                None => change.added.push(m.clone()),
                Some(before) if before.identity != summary.identity => change.changed.push(m.clone()),
                Some(_) => {}
            }
        }
        if let Some(a) = a {
            change.removed = a.beams.keys().filter(|m| !b.beams.contains_key(*m)).cloned().collect();
        }
        apps.push(change);
    }
    for (name, a) in old.apps.iter().filter(|(n, _)| !new.apps.contains_key(*n)) {
        apps.push(AppChange {
            app: name.clone(),
            from: Some(a.vsn.clone()),
            to: None,
            added: vec![],
            changed: vec![],
            removed: a.beams.keys().cloned().collect(),
            appup: None,
        });
    }
    Changes { apps, warnings }
}
