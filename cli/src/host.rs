//! The host side: an OTP target layout on disk and the running node it serves.
//!
//! A target root holds `lib/<app>-<vsn>/`, `releases/<vsn>/`, `releases/RELEASES`,
//! `releases/start_erl.data` and `erts-<vsn>/`. rel reaches the running node through a
//! command the host configures (`rel-host.toml`), because every release tool has its own:
//!
//! ```toml
//! # Evaluates an Erlang expression on the running node; the last line of its output is the
//! # result printed as a term. {expr} is the expression; {expr_elixir} is Elixir code that
//! # evaluates it and prints the result (for `bin/<name> rpc` of mix releases).
//! eval = ["bin/shop", "rpc", "{expr_elixir}"]
//!
//! [hooks]
//! # Run before and after each upgrade step, with REL_NAME, REL_FROM, REL_TO, REL_ROOT,
//! # REL_STEP and REL_STEPS set. A failing pre hook stops before the step.
//! pre_step = [["logger", "upgrading"]]
//! post_step = [["bin/shop", "rpc", "Phoenix.Config.clear_cache(ShopWeb.Endpoint)"]]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rel_format::release::ReleaseSpec;
use rel_format::term::{Term, parse_term, parse_terms};
use serde::Deserialize;

/// The host's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub eval: Vec<String>,
    #[serde(default)]
    pub hooks: Hooks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default)]
    pub pre_step: Vec<Vec<String>>,
    #[serde(default)]
    pub post_step: Vec<Vec<String>>,
}

impl HostConfig {
    /// Reads `path`, or `root/rel-host.toml` if present.
    pub fn load(root: &Path, path: Option<&Path>) -> Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => (root.join("rel-host.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid host config `{}`", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(HostConfig::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read host config `{}`", path.display())),
        }
    }

    /// Runs the hooks of one phase; the first failure stops.
    pub fn run_hooks(&self, pre: bool, env: &[(&str, String)]) -> Result<()> {
        let hooks = if pre {
            &self.hooks.pre_step
        } else {
            &self.hooks.post_step
        };
        for hook in hooks {
            let (program, args) = hook.split_first().context("an empty hook command")?;
            let status = Command::new(program)
                .args(args)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .status()
                .with_context(|| format!("cannot run hook `{}`", hook.join(" ")))?;
            if !status.success() {
                bail!("hook `{}` failed ({status})", hook.join(" "));
            }
        }
        Ok(())
    }
}

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
