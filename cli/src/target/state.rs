//! What rel knows about a root it manages, kept in `ROOT/.rel/state.json` and written
//! atomically: the release, the tool that built it, the host's own config files, the
//! versions rel put there (with the signer of each), and the last operation and how it ended.
//! `rel status` reads it; every install, upgrade and rollback writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::layout::{HostFiles, Tool};
use super::write_atomic;

/// The state of one root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub name: String,
    pub tool: Tool,
    #[serde(default)]
    pub config: HostFiles,
    /// By version.
    #[serde(default)]
    pub installed: BTreeMap<String, Installed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Operation>,
    /// An operation begun and not finished: what a `kill -9` interrupted, for the next run
    /// to complete or undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Operation>,
    /// The channel `rel upgrade --channel` last followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// A version rel put in the root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// `release` when installed whole, `upgrade` when it came as an upgrade.
    pub by: String,
    pub signer: String,
    pub at: rel_format::Timestamp,
}

/// The last operation on the root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub op: String,
    pub from: Option<String>,
    pub to: String,
    pub result: String,
    pub at: rel_format::Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl State {
    fn path(root: &Path) -> PathBuf {
        root.join(".rel/state.json")
    }

    /// The state of `root`, if rel manages it.
    pub fn load(root: &Path) -> Result<Option<State>> {
        let path = Self::path(root);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).with_context(|| format!("corrupt state file `{}`", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let path = Self::path(root);
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        write_atomic(&path, &serde_json::to_vec_pretty(self)?)
    }

    /// Records that an operation begins.
    pub fn begin(&mut self, op: &str, from: Option<&str>, to: &str) {
        self.pending = Some(Operation {
            op: op.to_owned(),
            from: from.map(str::to_owned),
            to: to.to_owned(),
            result: "in progress".to_owned(),
            at: crate::now(),
            message: String::new(),
        });
    }

    /// Records how an operation ended.
    pub fn finish(&mut self, op: &str, from: Option<&str>, to: &str, result: &str, message: &str) {
        self.pending = None;
        self.last = Some(Operation {
            op: op.to_owned(),
            from: from.map(str::to_owned),
            to: to.to_owned(),
            result: result.to_owned(),
            at: crate::now(),
            message: message.to_owned(),
        });
    }
}
