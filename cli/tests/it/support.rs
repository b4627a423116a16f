//! Shared by the CLI tests: a real registry process and a hermetic `rel` command.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rel_testkit::fixtures::Fixture;

/// `rel serve` on a loopback port; killed on drop.
#[derive(Debug)]
pub(crate) struct Registry {
    child: Child,
    pub(crate) url: String,
    pub(crate) store: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub(crate) fn start(store: &Path, extra: &[&str]) -> Registry {
        Self::start_on(store, "127.0.0.1:0", extra)
    }

    /// On a given address (a restarted registry on the port its clients know).
    pub(crate) fn start_on(store: &Path, listen: &str, extra: &[&str]) -> Registry {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rel"))
            .args(["serve", "--listen", listen, "--exit-after", "300"])
            .arg("--store")
            .arg(format!("file://{}", store.display()))
            .args(extra)
            .env("REL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rel serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines.next().expect("rel serve printed its address").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Registry {
            child,
            url,
            store: store.to_owned(),
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch home for one test: keys, cache, state, config, outputs.
#[derive(Debug)]
pub(crate) struct Home {
    pub(crate) dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    pub(crate) fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = home
            .rel(None)
            .args(["keygen", "ci", "--out-dir"])
            .arg(home.path("keys"))
            .output()
            .unwrap();
        assert!(out.status.success());
        home
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rel` with a hermetic environment: this home's config, cache, state and keys, and
    /// nothing of the developer's.
    fn hermetic(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rel"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("REL_CACHE_DIR", self.path("cache"))
            .env("REL_STATE_DIR", self.path("state"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("REL_TRUSTED_KEYS", self.path("keys/ci.pub"))
            .env("REL_KEY", self.path("keys/ci.key"));
        cmd
    }

    /// `rel` with a hermetic environment pointing at `registry`.
    pub(crate) fn rel(&self, registry: Option<&Registry>) -> assert_cmd::Command {
        let mut cmd = self.hermetic();
        if let Some(r) = registry {
            cmd.env("REL_REGISTRY", &r.url);
        }
        assert_cmd::Command::from_std(cmd)
    }

    /// `rel` as a plain process (to spawn and watch), with the same environment as
    /// [`Home::rel`] and `REL_REGISTRY` set to `url`.
    pub(crate) fn process(&self, url: &str) -> Command {
        let mut cmd = self.hermetic();
        cmd.env("REL_REGISTRY", url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `rel pull ARGS --trusted-key KEY --json` and parses stdout.
    /// Pushes the demo fixture's tarballs of `versions`, quietly, each asserted to succeed.
    pub(crate) fn push_versions(&self, registry: &Registry, versions: &[String]) {
        for v in versions {
            self.rel(Some(registry))
                .arg("push")
                .arg(tarball(v))
                .arg("--quiet")
                .assert()
                .success();
        }
    }

    pub(crate) fn pull(&self, registry: &Registry, trusted: impl AsRef<Path>, args: &[&str]) -> serde_json::Value {
        let trusted = trusted.as_ref().to_str().unwrap();
        let args: Vec<&str> = ["pull"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--trusted-key", trusted])
            .collect();
        self.json(registry, &args)
    }

    /// Runs `rel ... --json` and parses stdout.
    pub(crate) fn json(&self, registry: &Registry, args: &[&str]) -> serde_json::Value {
        let out = self.rel(Some(registry)).args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "rel {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The demo fixture's versions, oldest first.
pub(crate) fn versions() -> Vec<String> {
    Fixture::demo().versions()
}

/// The demo fixture's tarball of version `v`.
pub(crate) fn tarball(v: &str) -> PathBuf {
    Fixture::demo().tarball(v)
}

/// Entries of `dir` (sorted), to prove nothing was left behind.
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
