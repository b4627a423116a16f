//! Reaching the running node. rel runs on the node's host, and talks to it either as a
//! hidden Erlang node over distribution (one connection for a whole upgrade; the default,
//! with the name and cookie the release's tool gives it) or through a command the host
//! configures (`[node] eval` in `rel-host.toml`), one process per call.

use std::path::Path;
use std::time::Duration;

use rel_format::term::{Term, parse_term};

use super::config::NodeSettings;
use super::layout::{Layout, Tool};

/// Why the node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "cannot tell how to reach the node of this {tool} release: set `[node] name` and `cookie_file` (or `eval`) in {root}/rel-host.toml"
    )]
    NotConfigured { tool: Tool, root: String },
    #[error("the node did not answer `{call}`: {why}")]
    NoAnswer { call: String, why: String },
    #[error("`{call}` failed on the node: {reason}")]
    Failed { call: String, reason: Term },
}

/// How long one call may take: `install_release` of a large release can take a while.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The running node.
#[derive(Debug)]
pub struct Node {
    root: std::path::PathBuf,
    access: Access,
}

#[derive(Debug)]
enum Access {
    Command(Vec<String>),
}

/// Elixir code that evaluates the Erlang expression `expr` and prints the result.
fn elixir_wrapper(expr: &str) -> String {
    let escaped = expr.replace('\\', "\\\\").replace('"', "\\\"").replace("#{", "\\#{");
    format!(
        "{{:ok, t, _}} = :erl_scan.string(String.to_charlist(\"{escaped}.\")); {{:ok, e}} = :erl_parse.parse_exprs(t); {{:value, v, _}} = :erl_eval.exprs(e, []); IO.puts(:io_lib.format(~c\"~0p\", [v]))"
    )
}

/// `M:F(A1, ...)` as Erlang source.
fn call_text(m: &str, f: &str, args: &[Term]) -> String {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    format!("{}:{}({})", Term::atom(m), Term::atom(f), args.join(", "))
}

impl Node {
    /// Reaches the node of the release in `layout`, as `settings` say or its tool implies.
    pub async fn connect(layout: &Layout, settings: &NodeSettings) -> Result<Node, NodeError> {
        if !settings.eval.is_empty() {
            return Ok(Node {
                root: layout.root.clone(),
                access: Access::Command(settings.eval.clone()),
            });
        }
        Err(NodeError::NotConfigured {
            tool: layout.tool,
            root: layout.root.display().to_string(),
        })
    }

    /// Calls `m:f(args)` on the node and returns what it returned.
    pub async fn call(&self, m: &str, f: &str, args: Vec<Term>) -> Result<Term, NodeError> {
        match &self.access {
            Access::Command(argv) => run_command(&self.root, argv, &call_text(m, f, &args)).await,
        }
    }

    /// Evaluates an Erlang expression on the node (hooks and health checks write them).
    pub async fn eval(&self, expr: &str) -> Result<Term, NodeError> {
        match &self.access {
            Access::Command(argv) => run_command(&self.root, argv, expr).await,
        }
    }

    /// The version the node runs: the `current` release, else the `permanent` one.
    pub async fn running_version(&self) -> Result<String, NodeError> {
        let releases = self.call("release_handler", "which_releases", vec![]).await?;
        let bad = || NodeError::NoAnswer {
            call: "release_handler:which_releases()".into(),
            why: format!("unexpected reply {releases}"),
        };
        let list = releases.as_list().ok_or_else(bad)?;
        let with = |status: &str| {
            list.iter().find_map(|r| match r.as_tuple() {
                Some([_, v, _, s]) if s.as_atom() == Some(status) => v.as_string(),
                _ => None,
            })
        };
        with("current").or_else(|| with("permanent")).ok_or_else(bad)
    }

    /// `release_handler:which_releases()` as `(version, status)` pairs.
    pub async fn releases(&self) -> Result<Vec<(String, String)>, NodeError> {
        let releases = self.call("release_handler", "which_releases", vec![]).await?;
        Ok(releases
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| match r.as_tuple() {
                Some([_, v, _, s]) => Some((v.as_string()?, s.as_atom()?.to_owned())),
                _ => None,
            })
            .collect())
    }
}

/// Runs the configured command for one expression; the last line it prints is the result.
async fn run_command(root: &Path, argv: &[String], expr: &str) -> Result<Term, NodeError> {
    let no_answer = |why: String| NodeError::NoAnswer {
        call: expr.to_owned(),
        why,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| no_answer("the eval command is empty".into()))?;
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{expr_elixir}", &elixir_wrapper(expr))
                .replace("{expr}", expr)
        })
        .collect();
    let child = tokio::process::Command::new(program)
        .args(&args)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| no_answer(format!("cannot run `{program}`: {e}")))?;
    let out = tokio::time::timeout(CALL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| no_answer(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
        .map_err(|e| no_answer(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if !out.status.success() || line.is_empty() {
        return Err(no_answer(format!(
            "{} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_term("node reply", &format!("{line}.")).map_err(|e| no_answer(format!("unreadable reply `{line}`: {e}")))
}
