//! Reaching the running node. rel runs on the node's host, and talks to it either as a
//! hidden Erlang node over distribution (one connection for a whole upgrade; the default,
//! with the name and cookie the release's tool gives it) or through a command the host
//! configures (`[node] eval` in `rel-host.toml`), one process per call.
//!
//! The name and cookie, unless `rel-host.toml` sets them, are the release's own:
//!
//! | tool | node name | cookie |
//! |---|---|---|
//! | mix | `RELEASE_NODE` as `releases/<vsn>/env.sh` sets it, else `<name>` | `releases/COOKIE` |
//! | relx | `-name`/`-sname` in `releases/<vsn>/vm.args` (else the newest rendered `releases/*/vm.args`) | `-setcookie` there |
//! | systools | (set `[node] name`) | `~/.erlang.cookie` |
//!
//! where `<vsn>` is the version `start_erl.data` boots. epmd and the node are asked on
//! 127.0.0.1, at `[node] epmd_port`, else `ERL_EPMD_PORT`, else 4369.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rel_format::term::{Term, parse_term};
use tokio::sync::Mutex;

use super::config::NodeSettings;
use super::dist::{self, Connection, Cookie, DistError, NodeName, Options, Route};
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
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error("cannot tell how to reach the node: {0}")]
    Settings(String),
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
    /// The connection, made again when a restart dropped it.
    Dist {
        name: NodeName,
        cookie: Cookie,
        route: Route,
        connection: Mutex<Option<Connection>>,
    },
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
        let (name, cookie) = identity(layout, settings)?;
        let route = match settings.epmd_port {
            Some(port) => Route::Epmd {
                host: "127.0.0.1".into(),
                port,
            },
            None => Route::local_epmd()?,
        };
        let connection = dist::connect(&name, &cookie, &route, &Options::default()).await?;
        Ok(Node {
            root: layout.root.clone(),
            access: Access::Dist {
                name,
                cookie,
                route,
                connection: Mutex::new(Some(connection)),
            },
        })
    }

    /// The connection to a distributed node, made again if it was closed (the node
    /// restarted). A call in flight when a connection drops is not repeated: it may have run.
    async fn connection(&self) -> Result<Option<Connection>, NodeError> {
        let Access::Dist {
            name,
            cookie,
            route,
            connection,
        } = &self.access
        else {
            return Ok(None);
        };
        let mut slot = connection.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.is_connected()) {
            return Ok(Some(c.clone()));
        }
        let c = dist::connect(name, cookie, route, &Options::default()).await?;
        *slot = Some(c.clone());
        Ok(Some(c))
    }

    /// Calls `m:f(args)` on the node and returns what it returned.
    pub async fn call(&self, m: &str, f: &str, args: Vec<Term>) -> Result<Term, NodeError> {
        match &self.access {
            Access::Command(argv) => run_command(&self.root, argv, &call_text(m, f, &args)).await,
            Access::Dist { .. } => {
                let connection = self.connection().await?.expect("a distributed node");
                Ok(connection.call(m, f, args, CALL_TIMEOUT).await?)
            }
        }
    }

    /// Evaluates an Erlang expression on the node (hooks and health checks write them).
    pub async fn eval(&self, expr: &str) -> Result<Term, NodeError> {
        match &self.access {
            Access::Command(argv) => run_command(&self.root, argv, expr).await,
            Access::Dist { .. } => {
                let unexpected = |what: &str, t: &Term| NodeError::NoAnswer {
                    call: expr.to_owned(),
                    why: format!("{what}: {t}"),
                };
                let text = Term::string(&format!("{expr}."));
                let scanned = self.call("erl_scan", "string", vec![text]).await?;
                let tokens = match scanned.as_tuple() {
                    Some([ok, tokens, _]) if ok.as_atom() == Some("ok") => tokens.clone(),
                    _ => return Err(unexpected("it does not scan", &scanned)),
                };
                let parsed = self.call("erl_parse", "parse_exprs", vec![tokens]).await?;
                let exprs = match parsed.as_tuple() {
                    Some([ok, exprs]) if ok.as_atom() == Some("ok") => exprs.clone(),
                    _ => return Err(unexpected("it does not parse", &parsed)),
                };
                let value = self.call("erl_eval", "exprs", vec![exprs, Term::List(vec![])]).await?;
                match value.as_tuple() {
                    Some([tag, v, _]) if tag.as_atom() == Some("value") => Ok(v.clone()),
                    _ => Err(unexpected("unexpected result", &value)),
                }
            }
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

/// The node's name and cookie: `settings`', else the release's own (see the module doc).
fn identity(layout: &Layout, settings: &NodeSettings) -> Result<(NodeName, Cookie), NodeError> {
    let root = &layout.root;
    let booted = super::read_start_erl_data(root).ok().map(|(_, v)| v);
    let vsn_dir = |file: &str| booted.as_ref().map(|v| root.join(format!("releases/{v}/{file}")));
    // relx renders vm.args from vm.args.src at each start: the version that boots next may
    // have none yet (an upgrade made it permanent), and the newest rendered one is the running
    // node's.
    let newest_rendered = || {
        std::fs::read_dir(root.join("releases"))
            .ok()?
            .flatten()
            .map(|e| e.path().join("vm.args"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max()
            .map(|(_, p)| p)
    };
    let vm_args = vsn_dir("vm.args")
        .filter(|p| p.exists())
        .or_else(newest_rendered)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let flag = |name: &str| -> Option<String> {
        vm_args.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(name))
                .then(|| words.next().map(str::to_owned))
                .flatten()
        })
    };
    let name = match (&settings.name, layout.tool) {
        (Some(n), _) => n.clone(),
        (None, Tool::Mix) => vsn_dir("env.sh")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|env| shell_default(&env, "RELEASE_NODE"))
            .unwrap_or_else(|| layout.name.clone()),
        (None, Tool::Relx) => flag("-name").or_else(|| flag("-sname")).ok_or_else(|| {
            NodeError::Settings(format!(
                "releases/{}/vm.args names no node; set `[node] name` in rel-host.toml",
                booted.as_deref().unwrap_or("<vsn>")
            ))
        })?,
        (None, Tool::Systools) => {
            return Err(NodeError::NotConfigured {
                tool: layout.tool,
                root: root.display().to_string(),
            });
        }
    };
    let name: NodeName = name.parse()?;
    let cookie = match (&settings.cookie_file, layout.tool) {
        (Some(file), _) => Cookie::from_file(&root.join(file))?,
        (None, Tool::Mix) => Cookie::from_file(&root.join("releases/COOKIE"))?,
        (None, Tool::Relx) if flag("-setcookie").is_some() => Cookie::new(&flag("-setcookie").unwrap_or_default())?,
        (None, _) => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            Cookie::from_file(&home.join(".erlang.cookie"))?
        }
    };
    Ok((name, cookie))
}

/// The value a shell script gives `var`: `export VAR="${VAR:-default}"` gives `default`,
/// `VAR=value` gives `value`; a value built from other variables is not known.
fn shell_default(script: &str, var: &str) -> Option<String> {
    script.lines().rev().find_map(|line| {
        let line = line.trim().trim_start_matches("export ").trim();
        let value = line.strip_prefix(var)?.strip_prefix('=')?.trim_matches(['"', '\'']);
        let value = match value.strip_prefix(&format!("${{{var}:-")) {
            Some(rest) => rest.strip_suffix('}')?,
            None => value,
        };
        (!value.contains('$') && !value.is_empty()).then(|| value.to_owned())
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_env_sh_gives_the_node_name_only_when_it_is_a_plain_value() {
        let fixture = "#!/bin/sh\nexport RELEASE_DISTRIBUTION=\"${RELEASE_DISTRIBUTION:-name}\"\nexport RELEASE_NODE=\"${RELEASE_NODE:-shop@127.0.0.1}\"\n";
        assert_eq!(
            shell_default(fixture, "RELEASE_NODE").as_deref(),
            Some("shop@127.0.0.1")
        );
        // mix's own template only has the examples, commented out.
        let default = "#!/bin/sh\n# export RELEASE_DISTRIBUTION=name\n# export RELEASE_NODE=<%= @release.name %>\n";
        assert_eq!(shell_default(default, "RELEASE_NODE"), None);
        assert_eq!(
            shell_default("RELEASE_NODE=a@h\nRELEASE_NODE='b@h'\n", "RELEASE_NODE").as_deref(),
            Some("b@h")
        );
        assert_eq!(
            shell_default("export RELEASE_NODE=\"$APP@$(hostname)\"\n", "RELEASE_NODE"),
            None
        );
        assert_eq!(shell_default("export RELEASE_NODES=x@h\n", "RELEASE_NODE"), None);
    }

    fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn the_node_is_reached_as_each_tool_names_it_unless_the_host_says_otherwise() {
        let mix = root(&[
            ("releases/start_erl.data", "13.1.5 1.0\n"),
            (
                "releases/1.0/env.sh",
                "export RELEASE_NODE=\"${RELEASE_NODE:-shop@127.0.0.1}\"\n",
            ),
            ("releases/COOKIE", "SECRET"),
        ]);
        let layout = Layout::detect(mix.path(), "shop");
        assert_eq!(layout.tool, Tool::Mix);
        let (name, _) = identity(&layout, &NodeSettings::default()).unwrap();
        assert_eq!(name.to_string(), "shop@127.0.0.1");
        // Without env.sh's default, the release name (a short name, as mix's default is).
        std::fs::write(mix.path().join("releases/1.0/env.sh"), "#!/bin/sh\n").unwrap();
        let (name, _) = identity(&layout, &NodeSettings::default()).unwrap();
        assert_eq!(name.to_string().split('@').next(), Some("shop"));
        let settings = NodeSettings {
            name: Some("other@10.0.0.1".into()),
            cookie_file: Some("missing".into()),
            ..NodeSettings::default()
        };
        let err = identity(&layout, &settings).unwrap_err().to_string();
        assert!(err.contains("missing"), "the host's cookie file is named: {err}");

        let relx = root(&[
            ("releases/start_erl.data", "13.1.5 2.0\n"),
            ("releases/2.0/vm.args.src", "-name ${NODE}\n"),
            (
                "releases/2.0/vm.args",
                "## rendered\n-name ledger@127.0.0.1\n-setcookie lc\n",
            ),
        ]);
        let layout = Layout::detect(relx.path(), "ledger");
        assert_eq!(layout.tool, Tool::Relx);
        let (name, _) = identity(&layout, &NodeSettings::default()).unwrap();
        assert_eq!(name.to_string(), "ledger@127.0.0.1");
        // Upgraded to 3.0, never started on it: the rendered vm.args of the running 2.0 names it.
        std::fs::create_dir_all(relx.path().join("releases/3.0")).unwrap();
        std::fs::write(relx.path().join("releases/3.0/vm.args.src"), "-name ${NODE}\n").unwrap();
        std::fs::write(relx.path().join("releases/start_erl.data"), "13.1.5 3.0\n").unwrap();
        let (name, _) = identity(&layout, &NodeSettings::default()).unwrap();
        assert_eq!(name.to_string(), "ledger@127.0.0.1");
        std::fs::write(relx.path().join("releases/2.0/vm.args"), "-setcookie lc\n").unwrap();
        let err = identity(&layout, &NodeSettings::default()).unwrap_err().to_string();
        assert!(err.contains("vm.args names no node"), "{err}");

        let systools = root(&[("releases/start_erl.data", "13.1.5 3.0\n")]);
        let layout = Layout::detect(systools.path(), "demo");
        let err = identity(&layout, &NodeSettings::default()).unwrap_err().to_string();
        assert!(err.contains("set `[node] name`"), "{err}");
    }
}
