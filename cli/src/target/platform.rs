//! Whether a release can run on this host, checked before a byte of it is written: the
//! native code it carries (its OS, CPU and C library, from its ELF or Mach-O headers, as the
//! manifest records them) against this machine's, and the ERTS it needs against the one it
//! ships or the host has. An artifact built on another platform or OTP fails halfway through
//! an unpack otherwise, which is the worst moment to find out.

use std::path::{Path, PathBuf};

use rel_format::Manifest;

/// This machine, in the manifest's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlatform {
    pub os: String,
    pub arch: String,
    /// `gnu` or `musl` on Linux.
    pub libc: Option<String>,
}

impl HostPlatform {
    pub fn detect() -> HostPlatform {
        let os = std::env::consts::OS;
        let libc = (os == "linux").then(|| {
            let musl = std::fs::read_dir("/lib")
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("ld-musl-"))
                })
                .unwrap_or(false);
            if musl { "musl" } else { "gnu" }.to_owned()
        });
        HostPlatform {
            os: os.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            libc,
        }
    }
}

impl std::fmt::Display for HostPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(libc) = &self.libc {
            write!(f, "-{libc}")?;
        }
        Ok(())
    }
}

/// Why a release cannot run here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    #[error(
        "{release} carries native code for {artifact} (e.g. its ERTS or NIFs), and this host is {host}: build it on (or for) {host}"
    )]
    Native {
        release: String,
        artifact: String,
        host: String,
    },
    #[error(
        "{release} needs ERTS {erts}, which it does not ship and this host lacks ({why}); install OTP with ERTS {erts}, pass --erts DIR, or build the release with ERTS included"
    )]
    MissingErts { release: String, erts: String, why: String },
}

/// Checks that the release of `manifest` can run here: its native code, and its ERTS
/// (shipped, in `erts_dir` when given, else the host's `erl`). Returns the ERTS folder to
/// link when the release ships none.
pub fn check(
    manifest: &Manifest,
    host: &HostPlatform,
    erts_dir: Option<&Path>,
) -> Result<Option<PathBuf>, PlatformError> {
    check_native(manifest, host)?;
    if manifest.platform.erts_included {
        return Ok(None);
    }
    check_erts(manifest, erts_dir)
}

/// The native-code part of [`check`] (also what an upgrade step is checked against: its
/// ERTS is the running node's).
pub fn check_native(manifest: &Manifest, host: &HostPlatform) -> Result<(), PlatformError> {
    let p = &manifest.platform;
    if let (Some(os), Some(arch)) = (&p.os, &p.arch) {
        let libc_differs = matches!((&p.libc, &host.libc), (Some(a), Some(b)) if a != b);
        if *os != host.os || *arch != host.arch || libc_differs {
            let artifact = format!(
                "{os}/{arch}{}",
                p.libc.as_ref().map(|l| format!("-{l}")).unwrap_or_default()
            );
            return Err(PlatformError::Native {
                release: format!("{} {}", manifest.name, manifest.version),
                artifact,
                host: host.to_string(),
            });
        }
    }
    Ok(())
}

/// The ERTS part of [`check`]: the ERTS the release ships, or the one in `erts_dir`, or the
/// host's.
fn check_erts(manifest: &Manifest, erts_dir: Option<&Path>) -> Result<Option<PathBuf>, PlatformError> {
    let release = format!("{} {}", manifest.name, manifest.version);
    let p = &manifest.platform;
    let erts = p.erts.to_string();
    let missing = |why: String| PlatformError::MissingErts {
        release: release.clone(),
        erts: erts.clone(),
        why,
    };
    let dir = match erts_dir {
        Some(d) => d.to_owned(),
        None => super::system_erts_dir(&erts).map_err(|e| missing(e.to_string()))?,
    };
    if !dir.join("bin/erlexec").is_file() {
        return Err(missing(format!("`{}` has no bin/erlexec", dir.display())));
    }
    let named = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if named.starts_with("erts-") && named != format!("erts-{erts}") {
        return Err(missing(format!("`{}` is another ERTS", dir.display())));
    }
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let (stream, _) = rel_format::chunk::Chunker::new(|_: &rel_format::chunk::ChunkRef, _: &[u8]| Ok(()))
            .finish()
            .unwrap();
        rel_testkit::artifacts::manifest("shop", "0.1.0", rel_format::Kind::Release, &[], stream)
    }

    fn host() -> HostPlatform {
        HostPlatform {
            os: "linux".into(),
            arch: "x86_64".into(),
            libc: Some("gnu".into()),
        }
    }

    #[test]
    fn foreign_native_code_is_refused_naming_both_sides() {
        let mut m = sample();
        m.platform.os = Some("linux".into());
        m.platform.arch = Some("aarch64".into());
        m.platform.erts_included = true;
        let e = check(&m, &host(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shop 0.1.0 carries native code for linux/aarch64 (e.g. its ERTS or NIFs), and this host is linux/x86_64-gnu: build it on (or for) linux/x86_64-gnu"
        );
        m.platform.arch = Some("x86_64".into());
        m.platform.libc = Some("musl".into());
        assert!(
            check(&m, &host(), None)
                .unwrap_err()
                .to_string()
                .contains("linux/x86_64-musl")
        );
        m.platform.libc = Some("gnu".into());
        assert_eq!(check(&m, &host(), None), Ok(None));
    }

    #[test]
    fn a_missing_erts_is_refused() {
        let mut m = sample();
        m.platform.erts = "99.0".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = check(&m, &host(), Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("needs ERTS 99.0"), "{e}");
        assert!(e.to_string().contains("has no bin/erlexec"), "{e}");
    }
}
