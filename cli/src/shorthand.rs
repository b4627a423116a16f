//! Versions as people type them: `rel promote shop 0.2.0` where the registry holds
//! `0.2.0+20240110-1012-77aa0c1`. A version that is not stored as typed stands for the one
//! stored version it is a prefix of, cut where a version's parts are cut (before `.`, `-` or
//! `+`); several such versions are an error that lists them, and none (or no listing) leaves
//! the version as typed, for the command to report as not found.

use anyhow::{Result, bail};
use rel_format::Version;

use crate::client::Client;

/// The stored version of `name` that `typed` stands for.
pub async fn resolve(client: &Client, name: &str, typed: &Version, quiet: bool) -> Result<Version> {
    let list = match client.versions(name).await {
        Ok(list) => list,
        // No listing (an unknown release, no registry, a refusal): the version stays as
        // typed, and the command's own request says what is wrong.
        Err(e) => {
            tracing::debug!(error = %e, "no listing to resolve {typed} against");
            return Ok(typed.clone());
        }
    };
    let stored: Vec<&Version> = list.versions.iter().map(|v| &v.version).collect();
    match expand(typed, &stored)? {
        Some(v) => {
            if !quiet {
                crate::say(&format!("{name} {typed} is {v}"));
            }
            Ok(v)
        }
        None => Ok(typed.clone()),
    }
}

/// `Some` when `typed` is a prefix of exactly one stored version and not one itself.
fn expand(typed: &Version, stored: &[&Version]) -> Result<Option<Version>> {
    if stored.contains(&typed) {
        return Ok(None);
    }
    let t = typed.as_str();
    let matches: Vec<&Version> = stored
        .iter()
        .copied()
        .filter(|v| {
            v.as_str()
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with(['.', '-', '+']))
        })
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => {
            let listed: Vec<&str> = many.iter().rev().take(10).map(|v| v.as_str()).collect();
            bail!(
                "`{t}` could be any of {} stored versions: {}{}; name one in full",
                many.len(),
                listed.join(", "),
                if many.len() > 10 { ", …" } else { "" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn a_unique_prefix_stands_for_its_version_at_part_boundaries() {
        let stored = [
            v("0.1.0+20240101-381-eddcacc"),
            v("0.1.0+20240101-1000-49ab6e0"),
            v("0.2.0+20240110-1012-77aa0c1"),
            v("0.2.10"),
        ];
        let stored: Vec<&Version> = stored.iter().collect();
        assert_eq!(
            expand(&v("0.2.0"), &stored).unwrap(),
            Some(v("0.2.0+20240110-1012-77aa0c1"))
        );
        // Exact, or no prefix at a boundary: left as typed.
        assert_eq!(expand(&v("0.2.10"), &stored).unwrap(), None);
        assert_eq!(expand(&v("0.2.1"), &stored).unwrap(), None);
        assert_eq!(expand(&v("0.3.0"), &stored).unwrap(), None);
        // Several: named, newest first.
        let e = expand(&v("0.1.0"), &stored).unwrap_err().to_string();
        assert_eq!(
            e,
            "`0.1.0` could be any of 2 stored versions: 0.1.0+20240101-1000-49ab6e0, 0.1.0+20240101-381-eddcacc; name one in full"
        );
        assert_eq!(
            expand(&v("0.1.0+20240101-381"), &stored).unwrap(),
            Some(v("0.1.0+20240101-381-eddcacc"))
        );
    }
}
