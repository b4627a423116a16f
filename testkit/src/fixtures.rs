//! The fixture releases, built from `fixtures/` by `fixtures/build.sh` with real OTP.

use std::path::PathBuf;

/// One fixture release in all its versions.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The release name.
    pub name: &'static str,
    /// Where its tarballs and `VERSIONS` are.
    pub dir: PathBuf,
}

/// `fixtures/out` of this checkout.
pub fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/out")
}

impl Fixture {
    /// `demo`, three versions built with `systools` (OTP's kernel, stdlib and sasl
    /// included, no ERTS).
    pub fn demo() -> Fixture {
        Fixture {
            name: "demo",
            dir: out_dir(),
        }
    }

    /// `shop` (Elixir), four versions built with `mix release` (ERTS included).
    pub fn shop() -> Fixture {
        Fixture {
            name: "shop",
            dir: out_dir().join("shop"),
        }
    }

    /// `ledger` (Erlang), three versions built with `rebar3 as prod tar` (beams
    /// gzip-compressed).
    pub fn ledger() -> Fixture {
        Fixture {
            name: "ledger",
            dir: out_dir().join("ledger"),
        }
    }

    /// The release versions, oldest first.
    pub fn versions(&self) -> Vec<String> {
        let file = self.dir.join("VERSIONS");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}; run fixtures/build.sh first", file.display()))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The tarball of version `v`.
    pub fn tarball(&self, v: &str) -> PathBuf {
        self.dir.join(format!("{}-{v}.tar.gz", self.name))
    }

    /// The bytes of every member of version `v`'s tarball whose path `want` accepts.
    pub fn members(&self, v: &str, want: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
        let file = std::fs::File::open(self.tarball(v)).expect("the fixture tarball exists");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut out = Vec::new();
        for entry in archive.entries().expect("a tar") {
            let mut entry = entry.expect("a member");
            let path = entry.path().expect("a path").to_string_lossy().into_owned();
            if entry.header().entry_type().is_file() && want(&path) {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).expect("readable");
                out.push((path, bytes));
            }
        }
        out
    }
}

/// `fixtures/out/agent/rel_test_agent`: the test agent that live nodes load.
pub fn agent() -> PathBuf {
    let path = out_dir().join("agent/rel_test_agent");
    assert!(
        path.with_extension("beam").exists(),
        "run fixtures/build.sh first (no {})",
        path.display()
    );
    path
}
