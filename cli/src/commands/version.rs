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
    let mix = dir.join("mix.exs");
    if let Ok(text) = std::fs::read_to_string(&mix) {
        return mix_version(dir, &text).map_err(|why| {
            UsageError::new(format!(
                "cannot read the version in `{}`: {why}; pass --base VERSION, or keep the version in a VERSION file that mix.exs reads (`@version File.read!(\"VERSION\") |> String.trim()`)",
                mix.display()
            ))
            .into()
        });
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

/// The source of `mix.exs` with comments and the insides of strings blanked out (kept the
/// same length, so positions still match the original).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    for c in text.chars() {
        let keep = match () {
            _ if in_comment => {
                in_comment = c != '\n';
                c == '\n'
            }
            _ if in_string => {
                let closing = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                in_string = !closing;
                closing
            }
            _ => {
                in_comment = c == '#';
                in_string = c == '"';
                !in_comment
            }
        };
        out.push(if keep || c == '\n' { c } else { ' ' });
    }
    out
}

/// The version `mix.exs` declares, read without running mix: `version:` in the project's
/// keyword list, as a string literal, a module attribute (`@version "1.4.2"`), a zero-arity
/// function returning a literal, or `File.read!("VERSION")` (trimmed). Anything computed
/// otherwise (`System.get_env/2`, `git describe`) is refused with the reason.
fn mix_version(dir: &Path, text: &str) -> Result<String, String> {
    let code = code_only(text);
    // The first `version:` keyword in code (not in a string or a comment): the project's.
    let at = code
        .match_indices("version:")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '@'))
        .ok_or("it has no `version:` key")?;
    resolve_mix_value(dir, text, &code, &text[at + "version:".len()..], 0)
}

/// The value of a version expression at the start of `expr`.
fn resolve_mix_value(dir: &Path, text: &str, code: &str, expr: &str, depth: u8) -> Result<String, String> {
    if depth > 4 {
        return Err("its version refers to itself".into());
    }
    let expr = expr.trim_start();
    let end = expr.find([',', '\n', ']']).unwrap_or(expr.len());
    let shown = expr[..end].trim().to_owned();
    if let Some(rest) = expr.strip_prefix('"') {
        return rest
            .split_once('"')
            .map(|(v, _)| v.to_owned())
            .ok_or_else(|| format!("`{shown}` is not a closed string"));
    }
    if let Some(rest) = expr.strip_prefix("File.read!(\"") {
        let file = rest.split_once('"').map(|(f, _)| f).ok_or("an unclosed File.read!")?;
        return std::fs::read_to_string(dir.join(file))
            .map(|v| v.trim().to_owned())
            .map_err(|e| format!("`{shown}`: {file}: {e}"));
    }
    // `__DIR__ |> Path.join("VERSION") |> File.read!()`, `File.read!(Path.join(__DIR__,
    // "VERSION"))` and the like: one file beside mix.exs.
    let line = expr.lines().next().unwrap_or_default();
    if line.contains("File.read!") && line.contains("__DIR__") {
        let literals: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        if let [file] = literals.as_slice() {
            return std::fs::read_to_string(dir.join(file))
                .map(|v| v.trim().to_owned())
                .map_err(|e| format!("`{shown}`: {file}: {e}"));
        }
    }
    let ident: String = expr
        .trim_start_matches('@')
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        return Err(format!("the version is computed (`{shown}`)"));
    }
    if expr.starts_with('@') {
        // `@version <value>` at the top of the module.
        let decl = format!("@{ident} ");
        let at = code
            .match_indices(&decl)
            .map(|(i, _)| i)
            .next()
            .ok_or_else(|| format!("`@{ident}` is never given a value"))?;
        return resolve_mix_value(dir, text, code, &text[at + decl.len()..], depth + 1);
    }
    let after = expr[ident.len()..].trim_start();
    if !after.is_empty() && !after.starts_with(['(', ',', '\n', ']']) {
        return Err(format!("the version is computed (`{shown}`)"));
    }
    // `defp version, do: <value>` or `defp version do <value> end`.
    for def in ["defp", "def"] {
        for form in [format!("{def} {ident}, do:"), format!("{def} {ident}(), do:")] {
            if let Some((i, _)) = code.match_indices(&form).next() {
                return resolve_mix_value(dir, text, code, &text[i + form.len()..], depth + 1);
            }
        }
        for form in [format!("{def} {ident} do"), format!("{def} {ident}() do")] {
            if let Some((i, _)) = code.match_indices(&form).next() {
                return resolve_mix_value(dir, text, code, &text[i + form.len()..], depth + 1);
            }
        }
    }
    Err(format!("the version is computed (`{shown}`)"))
}

/// Whether the work tree has changes git would commit.
fn dirty(dir: &Path) -> Result<bool> {
    Ok(!git(dir, &["status", "--porcelain", "--untracked-files=no"])?.is_empty())
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
    // edeliver appends nothing for a dirty work tree, so a release built from uncommitted
    // changes carries the revision of a commit it is not. rel marks it.
    let from_git = args
        .auto_version
        .as_deref()
        .unwrap_or("")
        .split(['+', ','])
        .map(normalise)
        .any(|t| {
            matches!(
                t.as_str(),
                "revision" | "commit-count" | "commit-count-branch" | "branch"
            )
        });
    if from_git && dirty(&args.dir)? {
        crate::warn("the work tree has uncommitted changes: the version is marked `dirty`, as it is no commit's");
        version.push(if has_metadata { '-' } else { '+' });
        version.push_str("dirty");
    }
    version
        .parse()
        .map_err(|e| UsageError::new(format!("`{version}` is not a valid version: {e}")).into())
}

pub fn run(args: &VersionArgs) -> Result<()> {
    let version = compute(args)?;
    if args.json {
        crate::print_json(&serde_json::json!({ "version": version }));
    } else {
        crate::print_raw(&format!("{version}\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{mix_version, normalise};

    #[test]
    fn mix_versions_are_read_without_running_mix() {
        let dir = tempfile::tempdir().unwrap();
        let v = |text: &str| mix_version(dir.path(), text);
        let project = |body: &str| {
            format!(
                "defmodule Shop.MixProject do\n  use Mix.Project\n{body}\n  def application, do: [extra_applications: [:sasl]]\nend\n"
            )
        };
        // The standard form: elixir's requirement must not be taken for the version.
        assert_eq!(
            v(&project(
                "  @version \"1.4.2\"\n  def project do\n    [app: :shop, elixir: \"~> 1.14\", version: @version]\n  end"
            )),
            Ok("1.4.2".into())
        );
        assert_eq!(
            v(&project("  def project, do: [app: :shop, version: \"0.3.0\"]")),
            Ok("0.3.0".into())
        );
        assert_eq!(
            v(&project(
                "  def project, do: [version: version()]\n  defp version, do: \"2.0.0-rc.1\""
            )),
            Ok("2.0.0-rc.1".into())
        );
        std::fs::write(dir.path().join("VERSION"), "0.9.1\n").unwrap();
        assert_eq!(
            v(&project(
                "  @version File.read!(\"VERSION\") |> String.trim()\n  def project, do: [version: @version]"
            )),
            Ok("0.9.1".into())
        );
        for read in [
            "__DIR__ |> Path.join(\"VERSION\") |> File.read!() |> String.trim()",
            "File.read!(Path.join(__DIR__, \"VERSION\")) |> String.trim()",
        ] {
            assert_eq!(
                v(&project(&format!(
                    "  @version {read}\n  def project, do: [version: @version]"
                ))),
                Ok("0.9.1".into()),
                "{read}"
            );
        }
        // A comment or a string mentioning `version:` is not the key.
        assert_eq!(
            v(&project(
                "  # version: \"9.9.9\"\n  @doc \"version: 8\"\n  def project, do: [version: \"1.0.0\"]"
            )),
            Ok("1.0.0".into())
        );
        let computed = v(&project(
            "  def project, do: [version: System.get_env(\"V\", \"0.1.0\")]",
        ))
        .unwrap_err();
        assert!(computed.contains("computed (`System.get_env"), "{computed}");
    }

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
