//! `releases/RELEASES`, OTP's own record of the releases of a target system, as
//! `release_handler` reads it at boot: `[{release, Name, Vsn, ErtsVsn, Libs, Status}]` with
//! `Libs = [{App, Vsn, Dir}]` and `Status` one of `permanent`, `current`, `old`, `unpacked`.
//! rel writes it where `release_handler` cannot: a cold install (as
//! `release_handler:create_RELEASES/4` would) and a restart deploy (the new release
//! permanent, the previous one old), always atomically, always before the node boots it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rel_format::release::ReleaseSpec;
use rel_format::term::{Term, parse_terms};

use super::write_atomic;

/// The entries of a `RELEASES` file.
#[derive(Debug, Clone, Default)]
pub struct ReleasesFile {
    entries: Vec<Term>,
}

impl ReleasesFile {
    /// Reads `root/releases/RELEASES`; an empty list when there is none.
    pub fn read(root: &Path) -> Result<Self> {
        let path = root.join("releases/RELEASES");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        let terms = parse_terms(&path.display().to_string(), &text)?;
        let Some(list) = terms.first().and_then(Term::as_list) else {
            bail!("`{}` is not a list of releases", path.display());
        };
        Ok(Self {
            entries: list.into_owned(),
        })
    }

    /// `(version, status)` of every release.
    pub fn releases(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|r| match r.as_tuple() {
                Some([_, _, v, _, _, s]) => Some((v.as_string()?, s.as_atom()?.to_owned())),
                _ => None,
            })
            .collect()
    }

    /// The version with `status`, if any.
    pub fn with_status(&self, status: &str) -> Option<String> {
        self.releases().into_iter().find(|(_, s)| s == status).map(|(v, _)| v)
    }

    /// Makes the release of `spec` (libraries under `lib_root/lib`) the permanent one; the
    /// previous permanent and current ones become `old`. Adds it when it is not listed.
    pub fn set_permanent(&mut self, spec: &ReleaseSpec, lib_root: &Path) {
        let vsn = spec.version.as_str();
        for entry in &mut self.entries {
            if let Term::Tuple(parts) = entry
                && parts.len() == 6
            {
                let mine = parts[2].as_string().as_deref() == Some(vsn);
                let status = parts[5].as_atom().unwrap_or_default().to_owned();
                if mine {
                    parts[5] = Term::atom("permanent");
                } else if status == "permanent" || status == "current" {
                    parts[5] = Term::atom("old");
                }
            }
        }
        if !self.releases().iter().any(|(v, _)| v == vsn) {
            self.entries.push(entry(spec, lib_root, "permanent"));
        }
    }

    /// Writes `root/releases/RELEASES` as `release_handler` writes it.
    pub fn write(&self, root: &Path) -> Result<()> {
        let text = format!("%% coding: utf-8\n{}.\n", Term::List(self.entries.clone()));
        write_atomic(&root.join("releases/RELEASES"), text.as_bytes())
    }

    /// The file of a cold install: the release of `spec`, permanent.
    pub fn one(spec: &ReleaseSpec, lib_root: &Path) -> Self {
        Self {
            entries: vec![entry(spec, lib_root, "permanent")],
        }
    }
}

/// `{release, Name, Vsn, ErtsVsn, Libs, Status}` for `spec`.
fn entry(spec: &ReleaseSpec, lib_root: &Path, status: &str) -> Term {
    let libs: Vec<Term> = spec
        .apps
        .iter()
        .map(|a| {
            let dir = lib_root.join(format!("lib/{}-{}", a.name, a.version));
            Term::Tuple(vec![
                Term::atom(&a.name),
                Term::string(a.version.as_str()),
                Term::string(&dir.to_string_lossy()),
            ])
        })
        .collect();
    Term::Tuple(vec![
        Term::atom("release"),
        Term::string(&spec.name),
        Term::string(spec.version.as_str()),
        Term::string(spec.erts.as_str()),
        Term::List(libs),
        Term::atom(status),
    ])
}
