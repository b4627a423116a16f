//! Temporary files and folders rel writes beside their final place, named so that a later run
//! can recognise and remove those of a run that was killed: `.<name>.rel-tmp-<pid>-<random>`.
//! A leftover is removed when its process is gone (no `/proc/<pid>`); one written by an older
//! rel without a pid, when it is more than an hour old.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// How old a leftover without a pid must be before it is removed.
const UNOWNED_AGE: Duration = Duration::from_secs(3600);

/// The prefix of this process's temporary files for `name`.
pub fn prefix(name: &str) -> String {
    format!(".{name}.rel-tmp-{}-", std::process::id())
}

/// Removes the leftovers for `name` in `dir` (`name` empty: for any name) of runs that ended
/// without cleaning up. Returns how many were removed; failures are ignored (the next run
/// tries again).
pub fn sweep(dir: &Path, name: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(text) = file_name.to_str() else { continue };
        let Some(rest) = leftover_of(text, name) else { continue };
        let owner: Option<u32> = rest.split_once('-').and_then(|(pid, _)| pid.parse().ok());
        let stale = match owner {
            Some(pid) => pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists(),
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| SystemTime::now().duration_since(m).is_ok_and(|age| age > UNOWNED_AGE)),
        };
        if !stale {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            tracing::info!(path = %path.display(), "removed a leftover of an interrupted run");
            removed += 1;
        }
    }
    removed
}

/// Removes `tempfile`'s default-named files (`.tmpXXXXXX`) more than an hour old from `dir`,
/// a folder only rel writes in (its cache), where an older rel left them.
pub fn sweep_unnamed(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| SystemTime::now().duration_since(m).is_ok_and(|age| age > UNOWNED_AGE));
        let ours = entry.file_name().to_str().is_some_and(|n| n.starts_with(".tmp"));
        if ours && old && entry.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// What follows `.rel-tmp-` in a leftover's name, if `text` is one (for `name`, when given).
fn leftover_of<'a>(text: &'a str, name: Option<&str>) -> Option<&'a str> {
    let rest = text.strip_prefix('.')?;
    match name {
        Some(name) => rest.strip_prefix(name)?.strip_prefix(".rel-tmp-"),
        None => rest.split_once(".rel-tmp-").map(|(_, r)| r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_runs_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".out.rel-tmp-999999999-abc");
        let mine = dir.path().join(format!("{}abc", prefix("out")));
        let other = dir.path().join(".other.rel-tmp-999999999-abc");
        let unowned = dir.path().join(".out.rel-tmp-abcdef");
        std::fs::create_dir_all(dead.join("lib")).unwrap();
        std::fs::write(&mine, b"x").unwrap();
        std::fs::write(&other, b"x").unwrap();
        std::fs::write(&unowned, b"x").unwrap();
        assert_eq!(sweep(dir.path(), Some("out")), 1);
        assert!(!dead.exists() && mine.exists() && other.exists() && unowned.exists());
        assert_eq!(sweep(dir.path(), None), 1);
        assert!(
            !other.exists() && unowned.exists(),
            "a recent leftover without a pid stays"
        );
    }
}
