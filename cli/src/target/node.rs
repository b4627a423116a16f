//! Reaching the running node: through the command the host configures (`eval` in
//! `rel-host.toml`), whose last line of output is the result printed as a term.

use std::process::Command;
use std::time::Duration;

use rel_format::term::{Term, parse_term};

use super::config::HostConfig;
use std::path::Path;

/// Elixir code that evaluates the Erlang expression `expr` and prints the result.
fn elixir_wrapper(expr: &str) -> String {
    let escaped = expr.replace('\\', "\\\\").replace('"', "\\\"").replace("#{", "\\#{");
    format!(
        "{{:ok, t, _}} = :erl_scan.string(String.to_charlist(\"{escaped}.\")); {{:ok, e}} = :erl_parse.parse_exprs(t); {{:value, v, _}} = :erl_eval.exprs(e, []); IO.puts(:io_lib.format(~c\"~0p\", [v]))"
    )
}

/// Why the node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no way to reach the node: set `eval` in the host config (rel-host.toml)")]
    NotConfigured,
    #[error("the node did not answer `{expr}`: {why}")]
    NoAnswer { expr: String, why: String },
}

/// The running node, reached through the configured command.
#[derive(Debug)]
pub struct Node<'a> {
    config: &'a HostConfig,
    root: &'a Path,
}

impl<'a> Node<'a> {
    pub fn new(config: &'a HostConfig, root: &'a Path) -> Self {
        Self { config, root }
    }

    /// Evaluates `expr` on the node and parses the printed result.
    pub fn eval(&self, expr: &str) -> Result<Term, NodeError> {
        let (program, args) = self.config.eval.split_first().ok_or(NodeError::NotConfigured)?;
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{expr_elixir}", &elixir_wrapper(expr))
                    .replace("{expr}", expr)
            })
            .collect();
        let no_answer = |why: String| NodeError::NoAnswer {
            expr: expr.to_owned(),
            why,
        };
        let mut child = Command::new(program)
            .args(&args)
            .current_dir(self.root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| no_answer(format!("cannot run `{program}`: {e}")))?;
        let started = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() > Duration::from_secs(300) => {
                    let _ = child.kill();
                    return Err(no_answer("no answer within 300 s".into()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(no_answer(e.to_string())),
            }
        }
        let out = child.wait_with_output().map_err(|e| no_answer(e.to_string()))?;
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

    /// The version the node runs: the `current` release, else the `permanent` one.
    pub fn running_version(&self) -> Result<String, NodeError> {
        let t = self.eval(
            "begin L = release_handler:which_releases(), case [V || {_, V, _, current} <- L] of [C] -> C; [] -> hd([V || {_, V, _, permanent} <- L]) end end",
        )?;
        t.as_string().ok_or_else(|| NodeError::NoAnswer {
            expr: "which_releases".into(),
            why: format!("unexpected reply {t}"),
        })
    }
}
