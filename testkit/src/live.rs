//! Releases run the way their tools run them: a root installed by `rel install`, started
//! with `bin/<name> daemon` (mix and relx alike), with its own node name, cookie, epmd port
//! and HTTP port, so that tests run side by side on 127.0.0.1. The node and its epmd are
//! stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which tool built the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Mix,
    Relx,
}

/// A running release.
pub struct Running {
    pub root: PathBuf,
    pub name: String,
    pub tool: Tool,
    /// The full node name (`<name>-<port>@127.0.0.1`).
    pub node: String,
    pub cookie: String,
    pub epmd_port: u16,
    pub http_port: u16,
    env: Vec<(String, String)>,
}

impl Running {
    /// The settings of a release of `name` built by `tool` in `root`, on fresh ports. The
    /// HTTP port reaches shop through `SHOP_PORT` (its runtime.exs); ledger takes it from its
    /// sys.config, which the test's host config sets (see [`Running::host_config`]).
    pub fn new(root: &Path, name: &str, tool: Tool) -> Running {
        let http_port = crate::free_port();
        let epmd_port = crate::free_port();
        let node = format!("{name}-{http_port}@127.0.0.1");
        let cookie = format!("cookie{http_port}");
        let mut env = vec![
            ("ERL_EPMD_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
            ("ERL_EPMD_PORT".to_owned(), epmd_port.to_string()),
            ("HOME".to_owned(), root.join("home").display().to_string()),
        ];
        match tool {
            Tool::Mix => env.extend([
                ("RELEASE_NODE".to_owned(), node.clone()),
                ("RELEASE_COOKIE".to_owned(), cookie.clone()),
                ("RELEASE_TMP".to_owned(), root.join("tmp").display().to_string()),
                ("SHOP_PORT".to_owned(), http_port.to_string()),
                ("SHOP_REGION".to_owned(), "eu-test".to_owned()),
            ]),
            Tool::Relx => env.extend([
                ("LEDGER_NODE".to_owned(), node.clone()),
                ("LEDGER_COOKIE".to_owned(), cookie.clone()),
                ("PIPE_DIR".to_owned(), root.join("pipes").display().to_string() + "/"),
                ("RUNNER_LOG_DIR".to_owned(), root.join("log").display().to_string()),
            ]),
        }
        Running {
            root: root.to_owned(),
            name: name.to_owned(),
            tool,
            node,
            cookie,
            epmd_port,
            http_port,
            env,
        }
    }

    /// A host `sys.config` that gives the app `greeting` (shop) or `currency` (ledger) the
    /// host's value, and ledger its HTTP port.
    pub fn host_config(&self) -> String {
        match self.tool {
            Tool::Mix => "[{shop, [{greeting, <<\"from-the-host\">>}]}].\n".to_owned(),
            Tool::Relx => format!(
                "[{{ledger, [{{port, {}}}, {{currency, \"HOST\"}}]}}].\n",
                self.http_port
            ),
        }
    }

    /// `rel-host.toml`: how rel reaches this node, and restarts it (a script with the node's
    /// environment, as a service manager would have it).
    pub fn rel_host_toml(&self, extra: &str) -> String {
        let home = self.root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let cookie_file = home.join("cookie");
        std::fs::write(&cookie_file, &self.cookie).unwrap();
        let restart = home.join("restart.sh");
        let exports: String = self.env.iter().map(|(k, v)| format!("export {k}='{v}'\n")).collect();
        std::fs::write(
            &restart,
            format!(
                "#!/bin/sh\n{exports}cd '{root}'\n\
                 # stop returns before the node is gone, and a node still going holds its name\n\
                 pid=$(bin/{name} pid 2>/dev/null)\n\
                 bin/{name} stop >/dev/null 2>&1\n\
                 while [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; do sleep 0.1; done\n\
                 exec bin/{name} daemon\n",
                root = self.root.display(),
                name = self.name,
            ),
        )
        .unwrap();
        std::fs::set_permissions(&restart, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        format!(
            "[node]\nname = \"{}\"\ncookie_file = \"{}\"\nepmd_port = {}\n\n[restart]\ncommand = [\"{}\"]\ntimeout = \"60s\"\n{extra}",
            self.node,
            cookie_file.display(),
            self.epmd_port,
            restart.display()
        )
    }

    /// The environment the node runs with (rel's restart command needs it too).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.root.join(format!("bin/{}", self.name)))
            .args(args)
            .current_dir(&self.root)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("the start script runs")
    }

    /// Starts the node and waits until it serves HTTP.
    pub fn start(&self) {
        let out = self.script(&["daemon"]);
        assert!(
            out.status.success(),
            "bin/{} daemon: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_serving(Duration::from_secs(60));
    }

    /// Waits until `GET /` answers.
    pub fn wait_serving(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            match crate::load::get(self.http_port) {
                Ok(_) => return,
                Err(e) if started.elapsed() > timeout => {
                    panic!("{} does not serve: {e}\n{}", self.name, self.log_tail())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `GET /` as `key=value` pairs.
    pub fn get(&self) -> std::collections::BTreeMap<String, String> {
        crate::load::get(self.http_port).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// The node's OS process id.
    pub fn os_pid(&self) -> u32 {
        let out = self.script(&["pid"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bin/{} pid: {}", self.name, String::from_utf8_lossy(&out.stderr)))
    }

    /// Stops the node and waits (up to a minute) for its OS process to end: the start
    /// scripts' `stop` returns once the node was asked to, and a node still shutting down
    /// holds its name and port.
    pub fn stop(&self) {
        let pid = self.script(&["pid"]);
        let pid = String::from_utf8_lossy(&pid.stdout).trim().parse::<u32>().ok();
        let _ = self.script(&["stop"]);
        let started = Instant::now();
        while let Some(pid) = pid
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines the node logged (the start scripts' `daemon` logs through `run_erl`).
    fn log_tail(&self) -> String {
        let dirs = [self.root.join("tmp/log"), self.root.join("log")];
        let mut logs: Vec<PathBuf> = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("erlang.log"))
            })
            .collect();
        logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        let Some(log) = logs.last() else {
            return "(no erlang.log)".to_owned();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{}:\n{}",
            log.display(),
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    /// Stops and starts the node the way its tool does.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
        // The epmd the node started for this test.
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
