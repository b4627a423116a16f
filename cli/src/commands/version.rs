//! `rel version`: the AUTO_VERSION string edeliver would give this work tree.
//!
//! Tokens are edeliver's, normalised the same way (split at `+` and white space; prefixes
//! `append-`, `git-`, `build-` and suffixes `-branches`, `-all` dropped; `_` read as `-`). The
//! first one is joined to the base version with `+`, the others with `-`, as edeliver's
//! `release.version` task does (it starts every base as having no metadata).
//!
//! `branch` is `$BRANCH` when set; otherwise, like edeliver, the first line of
//! `git branch --contains <HEAD>` that does not mention `detached` or `head`, stripped to
//! `[A-Za-z0-9-]`. A commit on several branches makes that guess arbitrary: set `BRANCH`.
//! `time` (`HHMMSS`, local) is rel's addition, read from the same clock reading as `date`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use rel_format::Version;
use rel_format::term::{Term, parse_terms};

use crate::UsageError;
use crate::args::VersionArgs;

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// edeliver's token normalisation.
pub(crate) fn normalise(token: &str) -> String {
    let mut t = token.trim().replace('_', "-").to_ascii_lowercase();
    for prefix in ["append-", "git-", "build-"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest.to_owned();
        }
    }
    for suffix in ["-branches", "-all"] {
        if let Some(rest) = t.strip_suffix(suffix) {
            t = rest.to_owned();
        }
    }
    t
}

fn branch(dir: &Path) -> Result<String> {
    let raw = match std::env::var("BRANCH") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            let head = git(dir, &["rev-parse", "HEAD"])?;
            git(dir, &["branch", "--contains", &head])?
                .lines()
                .filter(|l| !l.contains("detached") && !l.contains("head") && !l.contains("HEAD"))
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        }
    };
    Ok(raw.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect())
}

/// The base version from mix.exs, an .app.src or rebar.config.
fn base_version(dir: &Path) -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("mix.exs"))
        && let Some(v) = text.split("version:").nth(1).and_then(|rest| rest.split('"').nth(1))
    {
        return Ok(v.to_owned());
    }
    let src = dir.join("src");
    if let Ok(entries) = std::fs::read_dir(&src) {
        for e in entries.flatten() {
            let path = e.path();
            if path.to_string_lossy().ends_with(".app.src") {
                let text = std::fs::read_to_string(&path)?;
                let terms = parse_terms(&path.to_string_lossy(), &text)?;
                let vsn = terms
                    .first()
                    .and_then(Term::as_tuple)
                    .and_then(|t| t.get(2))
                    .and_then(Term::as_list)
                    .and_then(|props| {
                        props.iter().find_map(|p| match p.as_tuple() {
                            Some([k, v]) if k.as_atom() == Some("vsn") => v.as_string(),
                            _ => None,
                        })
                    });
                if let Some(v) = vsn {
                    return Ok(v);
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("rebar.config")) {
        let terms = parse_terms("rebar.config", &text)?;
        for t in &terms {
            if let Some([k, opts]) = t.as_tuple()
                && k.as_atom() == Some("relx")
            {
                for o in opts.as_list().unwrap_or_default().iter() {
                    if let Some([r, nv, ..]) = o.as_tuple()
                        && r.as_atom() == Some("release")
                        && let Some(v) = nv.as_tuple().and_then(|x| x.get(1)).and_then(Term::as_string)
                    {
                        return Ok(v);
                    }
                }
            }
        }
    }
    bail!(
        "no base version: pass --base, or run in a project with mix.exs, src/*.app.src or a relx release in rebar.config"
    )
}

/// The metadata value of one token; `None` for `branch-unless-master` on master.
fn token_value(dir: &Path, token: &str, now: &str) -> Result<Option<String>> {
    Ok(Some(match token {
        "revision" => git(dir, &["rev-parse", "--short", "HEAD"])?,
        "commit-count" => git(dir, &["rev-list", "--all", "--count"])?,
        "commit-count-branch" => git(dir, &["rev-list", "--count", "HEAD"])?,
        "date" => now[..8].to_owned(),
        "time" => now[8..14].to_owned(),
        "branch" => branch(dir)?,
        "branch-unless-master" => {
            let b = branch(dir)?;
            if b == "master" {
                return Ok(None);
            }
            b
        }
        "mix-env" => std::env::var("MIX_ENV").unwrap_or_else(|_| "dev".into()),
        other => {
            return Err(UsageError::new(format!(
                "unknown AUTO_VERSION token `{other}`: use date, time, commit-count, commit-count-branch, revision, branch, branch-unless-master or mix-env"
            ))
            .into());
        }
    }))
}

pub fn compute(args: &VersionArgs) -> Result<Version> {
    let base = match &args.base {
        Some(b) => b.to_string(),
        None => base_version(&args.dir)?,
    };
    // One reading of the local clock for both date and time.
    let now = String::from_utf8(
        Command::new("date")
            .arg("+%Y%m%d%H%M%S")
            .output()
            .context("cannot run date")?
            .stdout,
    )?;
    let mut version = base;
    let mut has_metadata = version.contains('+');
    for token in args
        .auto_version
        .as_deref()
        .unwrap_or("")
        .split(['+', ','])
        .filter(|t| !t.trim().is_empty())
    {
        if let Some(value) = token_value(&args.dir, &normalise(token), now.trim())? {
            version.push(if has_metadata { '-' } else { '+' });
            version.push_str(&value);
            has_metadata = true;
        }
    }
    version
        .parse()
        .with_context(|| format!("`{version}` is not a valid version"))
}

pub fn run(args: &VersionArgs) -> Result<()> {
    crate::print_raw(&format!("{}\n", compute(args)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn tokens_normalise_like_edeliver() {
        assert_eq!(normalise("build-date"), "date");
        assert_eq!(normalise("git-revision"), "revision");
        assert_eq!(normalise("append-git-revision"), "revision");
        assert_eq!(normalise("commit_count_all_branches"), "commit-count");
        assert_eq!(normalise("commit-count-branch"), "commit-count-branch");
        assert_eq!(normalise("branch_unless_master"), "branch-unless-master");
    }
}
