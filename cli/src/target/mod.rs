//! The host side: an OTP target system on disk and the running node it serves.
//!
//! A target root holds `lib/<app>-<vsn>/`, `releases/<vsn>/`, `releases/RELEASES`,
//! `releases/start_erl.data` and `erts-<vsn>/`, as `release_handler` expects them.
//! [`config`] is the host's own settings, [`node`] how rel reaches the node through a
//! configured command, [`dist`] how it talks to the node directly as a hidden distribution
//! node, and [`release_handler`] the calls that move the node between releases.

pub mod config;
pub mod dist;
pub mod node;
pub mod release_handler;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rel_format::release::ReleaseSpec;
use rel_format::term::{Term, parse_terms};

/// An Erlang string literal.
pub fn erl_string(s: &str) -> String {
    Term::string(s).to_string()
}

/// `releases/start_erl.data`: the ERTS and release versions a restart boots.
pub fn read_start_erl_data(root: &Path) -> Result<(String, String)> {
    let path = root.join("releases/start_erl.data");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(erts), Some(vsn)) => Ok((erts.to_owned(), vsn.to_owned())),
        _ => bail!("`{}` is not `<erts> <vsn>`", path.display()),
    }
}

/// The release spec of version `vsn` in a target root: `releases/<vsn>/<name>.rel`, else
/// `releases/<name>.rel`.
pub fn release_spec(root: &Path, name: &str, vsn: &str) -> Result<ReleaseSpec> {
    for path in [
        root.join(format!("releases/{vsn}/{name}.rel")),
        root.join(format!("releases/{name}.rel")),
    ] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let spec = ReleaseSpec::parse(&path.to_string_lossy(), &text)?;
            if spec.version.as_str() == vsn {
                return Ok(spec);
            }
        }
    }
    bail!("no {name}.rel for version {vsn} under `{}/releases`", root.display())
}

/// Writes `releases/RELEASES` as `release_handler:create_RELEASES/4` does, for one
/// permanent release.
pub fn write_releases_file(root: &Path, spec: &ReleaseSpec) -> Result<()> {
    let libs: Vec<Term> = spec
        .apps
        .iter()
        .map(|a| {
            let dir = root.join(format!("lib/{}-{}", a.name, a.version));
            Term::Tuple(vec![
                Term::atom(&a.name),
                Term::string(a.version.as_str()),
                Term::string(&dir.to_string_lossy()),
            ])
        })
        .collect();
    let release = Term::Tuple(vec![
        Term::atom("release"),
        Term::string(&spec.name),
        Term::string(spec.version.as_str()),
        Term::string(spec.erts.as_str()),
        Term::List(libs),
        Term::atom("permanent"),
    ]);
    let text = format!("%% coding: utf-8\n{}.\n", Term::List(vec![release]));
    write_atomic(&root.join("releases/RELEASES"), text.as_bytes())
}

/// Writes a file by temporary file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a path with a parent")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The host's ERTS of version `erts`, from the system `erl`.
pub fn system_erts(erts: &str) -> Result<PathBuf> {
    let out = Command::new("erl")
        .args([
            "-noshell",
            "-noinput",
            "-eval",
            "io:format(\"~s\", [code:root_dir()]), halt().",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .context("the release ships no ERTS and there is no `erl` on this host; pass --erts DIR")?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(format!("erts-{erts}"));
    if !dir.join("bin").is_dir() {
        bail!(
            "the release needs ERTS {erts}, which it does not ship and this host's OTP lacks (no `{}`); pass --erts DIR",
            dir.display()
        );
    }
    Ok(dir)
}

/// The downgrade targets in `releases/<vsn>/relup`.
pub fn relup_downgrades(root: &Path, vsn: &str) -> Result<Vec<String>> {
    let path = root.join(format!("releases/{vsn}/relup"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("release {vsn} was installed without a relup (`{}`)", path.display()))?;
    let terms = parse_terms(&path.to_string_lossy(), &text)?;
    let relup = terms
        .first()
        .and_then(Term::as_tuple)
        .filter(|t| t.len() == 3)
        .with_context(|| format!("`{}` is not a relup", path.display()))?;
    Ok(relup[2]
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.as_tuple().and_then(|t| t.first()).and_then(Term::as_string))
        .collect())
}
