//! Live OTP nodes for tests: a target system built from a release tarball, booted in
//! embedded mode on Debian's ERTS, driven through `rel_test_agent` over 127.0.0.1; and, for
//! the distribution client, a private epmd ([`Epmd`]), plain `erl` nodes ([`ErlNode`]) and
//! the `shop` mix release run as a daemon ([`MixRelease`]).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rel_format::term::{Term, parse_term};

fn erl_eval(expr: &str) -> String {
    let out = Command::new("erl")
        .args(["-noshell", "-noinput", "-eval", expr])
        .stdin(Stdio::null())
        .output()
        .expect("erl runs");
    assert!(
        out.status.success(),
        "erl -eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An OTP target system in a folder: `lib/`, `releases/`, `erts-<vsn>` (a link to the
/// system's ERTS), `releases/RELEASES` and `releases/start_erl.data`.
#[derive(Debug)]
pub struct Target {
    pub root: PathBuf,
    pub erts: String,
}

impl Target {
    /// Installs the release in `tarball` at `root` (which must not exist).
    pub fn install(root: &Path, tarball: &Path, name: &str, vsn: &str) -> Target {
        // The fixtures are trusted: a plain extraction.
        let file = std::fs::File::open(tarball).unwrap();
        tar::Archive::new(flate2::read::GzDecoder::new(file))
            .unpack(root)
            .unwrap();
        let info = erl_eval("io:format(\"~s ~s\", [erlang:system_info(version), code:root_dir()]), halt().");
        let (erts, otp_root) = info.split_once(' ').unwrap();
        std::os::unix::fs::symlink(
            Path::new(otp_root).join(format!("erts-{erts}")),
            root.join(format!("erts-{erts}")),
        )
        .unwrap();
        let rel_file = root.join(format!("releases/{vsn}/{name}.rel"));
        erl_eval(&format!(
            "ok = release_handler:create_RELEASES(\"{}\", \"{}\", \"{}\", []), halt().",
            root.display(),
            root.join("releases").display(),
            rel_file.display()
        ));
        std::fs::write(root.join("releases/start_erl.data"), format!("{erts} {vsn}\n")).unwrap();
        Target {
            root: root.to_owned(),
            erts: erts.to_owned(),
        }
    }

    /// A target root made by someone else (`rel install`).
    pub fn open(root: &Path) -> Target {
        let data = std::fs::read_to_string(root.join("releases/start_erl.data")).unwrap();
        Target {
            root: root.to_owned(),
            erts: data.split_whitespace().next().unwrap().to_owned(),
        }
    }

    /// Boots the release `vsn` in embedded mode, with the test agent.
    pub fn start(&self, vsn: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = self.root.join(format!("erts-{}/bin", self.erts));
        let agent = crate::fixtures::agent();
        let home = self.root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let child = Command::new(bin.join("erlexec"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("ROOTDIR", &self.root)
            .env("BINDIR", &bin)
            .env("EMU", "beam")
            .env("PROGNAME", "erl")
            .arg("-boot")
            .arg(self.root.join(format!("releases/{vsn}/start")))
            .arg("-config")
            .arg(self.root.join(format!("releases/{vsn}/sys")))
            .args(["-mode", "embedded", "-noshell", "-noinput"])
            .arg("-eval")
            .arg(format!(
                "{{module, _}} = code:load_abs(\"{}\"), rel_test_agent:start({port}).",
                agent.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("erlexec starts");
        let started = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("the node did not start its agent: {e}"),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Node {
            port,
            child,
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub port: u16,
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Evaluates `expr` (one line, without the final `.`) and returns the printed result.
    pub fn eval(&mut self, expr: &str) -> String {
        assert!(!expr.contains('\n'));
        self.writer.write_all(format!("{expr}.\n").as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the node closed the connection while evaluating {expr}"
        );
        line.trim_end().to_owned()
    }

    /// Evaluates `expr` and parses the result as a term.
    pub fn term(&mut self, expr: &str) -> Term {
        let text = self.eval(expr);
        parse_term("reply", &format!("{text}.")).unwrap_or_else(|e| panic!("{expr} -> {text}: {e}"))
    }

    pub fn os_pid(&mut self) -> u32 {
        self.term("os:getpid()").as_string().unwrap().parse().unwrap()
    }

    /// Whether the OS process is still the same one (it was not restarted).
    pub fn process_id(&self) -> u32 {
        self.child.id()
    }
}

/// Waits for `ready` to hold, polling every 50 ms; panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name no other test run uses: `prefix-<process id>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// epmd on a port of its own, listening on 127.0.0.1 only, so that tests and a developer's
/// epmd (4369) never meet. Nodes find it through [`Epmd::env`]. Killed on drop, which is
/// why it runs in the foreground rather than as `epmd -daemon`.
#[derive(Debug)]
pub struct Epmd {
    pub port: u16,
    child: Child,
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Epmd {
    pub fn start() -> Epmd {
        let port = crate::free_port();
        let child = Command::new("epmd")
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd is installed with OTP (scripts/setup.sh)");
        let epmd = Epmd { port, child };
        wait_until(Duration::from_secs(10), "epmd listens", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        epmd
    }

    /// What a node (or `bin/<release>`) needs in its environment to use this epmd.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            ("ERL_EPMD_PORT", self.port.to_string()),
        ]
    }

    /// The names registered now (epmd's `NAMES_REQ`).
    pub fn names(&self) -> Vec<String> {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return vec![];
        };
        let mut answer = Vec::new();
        if s.write_all(&[0, 1, b'n']).is_err() || std::io::Read::read_to_end(&mut s, &mut answer).is_err() {
            return vec![];
        }
        String::from_utf8_lossy(answer.get(4..).unwrap_or_default())
            .lines()
            .filter_map(|l| l.strip_prefix("name ")?.split(" at port ").next().map(str::to_owned))
            .collect()
    }

    /// Waits until `alive` is registered.
    pub fn wait_for(&self, alive: &str) {
        wait_until(
            Duration::from_secs(30),
            &format!("`{alive}` registers with epmd"),
            || self.names().iter().any(|n| n == alive),
        );
    }
}

/// A plain `erl` node with distribution on 127.0.0.1 only and `sasl` started, for
/// distribution tests. Killed on drop.
#[derive(Debug)]
pub struct ErlNode {
    /// Its full name, as `node()` says it.
    pub name: String,
    child: Child,
}

impl Drop for ErlNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ErlNode {
    /// `erl <name_flag> <name> -setcookie <cookie> <extra…>` (`name_flag` is `-name` or
    /// `-sname`), registered with `epmd`. Returns once the node runs.
    pub fn start(epmd: &Epmd, name_flag: &str, name: &str, cookie: &str, extra: &[&str]) -> ErlNode {
        ErlNode::spawn(epmd.env(), name_flag, name, cookie, extra)
    }

    /// A `-name` node as relx starts one with `ERL_DIST_PORT`: distribution on `port`, and
    /// no epmd (it looks for one on a port where none listens, and starts none).
    pub fn start_on_port(name: &str, cookie: &str, port: u16) -> ErlNode {
        let env = [
            ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
            ("ERL_EPMD_PORT", crate::free_port().to_string()),
        ];
        ErlNode::spawn(env, "-name", name, cookie, &["-erl_epmd_port", &port.to_string()])
    }

    fn spawn(env: [(&str, String); 2], name_flag: &str, name: &str, cookie: &str, extra: &[&str]) -> ErlNode {
        let mut child = Command::new("erl")
            .envs(env)
            .args([name_flag, name, "-setcookie", cookie, "-start_epmd", "false"])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .args(["-noshell", "-noinput"])
            .args(extra)
            .arg("-eval")
            .arg("{ok, _} = application:ensure_all_started(sasl), io:format(\"~s~n\", [node()]).")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("erl runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let mut node = ErlNode {
            name: String::new(),
            child,
        };
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        assert!(!line.trim().is_empty(), "erl {name_flag} {name} did not start");
        node.name = line.trim().to_owned();
        node
    }

    /// Kills the node now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `mix release`, the `shop` fixture's first version, copied to a folder of its own
/// and started with `bin/shop daemon` against `epmd`, named `shop-<unique>@127.0.0.1`.
/// Stopped with `bin/shop stop` on drop, and killed if it lingers.
#[derive(Debug)]
pub struct MixRelease {
    pub root: PathBuf,
    /// Its full node name.
    pub node: String,
    pub cookie: String,
    env: Vec<(&'static str, String)>,
    os_pid: String,
}

impl MixRelease {
    pub fn start_shop(dir: &Path, epmd: &Epmd, cookie: &str) -> MixRelease {
        let root = dir.join("shop");
        let status = Command::new("cp")
            .arg("-a")
            .arg(crate::fixtures::out_dir().join("shop/build/v1"))
            .arg(&root)
            .status()
            .expect("cp runs");
        assert!(status.success(), "run fixtures/build.sh first (no shop build)");
        let alive = unique_name("shop");
        let http = crate::free_port();
        let mut env: Vec<(&'static str, String)> = epmd.env().into();
        env.extend([
            ("RELEASE_NODE", format!("{alive}@127.0.0.1")),
            ("RELEASE_COOKIE", cookie.to_owned()),
            ("SHOP_PORT", http.to_string()),
            ("RELEASE_TMP", dir.join("tmp").to_string_lossy().into_owned()),
        ]);
        let mut release = MixRelease {
            root,
            node: format!("{alive}@127.0.0.1"),
            cookie: cookie.to_owned(),
            env,
            os_pid: String::new(),
        };
        let out = release.command(&["daemon"]).output().expect("bin/shop runs");
        assert!(
            out.status.success(),
            "bin/shop daemon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        epmd.wait_for(&alive);
        // The shop application, started last, listens on SHOP_PORT once it runs.
        wait_until(Duration::from_secs(30), "the shop release serves HTTP", || {
            TcpStream::connect(("127.0.0.1", http)).is_ok()
        });
        let out = release.command(&["pid"]).output().expect("bin/shop runs");
        release.os_pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(release.os_pid.parse::<u32>().is_ok(), "bin/shop pid: {:?}", out);
        release
    }

    /// `bin/shop <args>` with the release's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.root.join("bin/shop"));
        cmd.args(args).envs(self.env.iter().cloned()).stdin(Stdio::null());
        cmd
    }
}

impl Drop for MixRelease {
    fn drop(&mut self) {
        if let Ok(mut stop) = self
            .command(&["stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let started = Instant::now();
            while matches!(stop.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = stop.kill();
            let _ = stop.wait();
        }
        if self.os_pid.is_empty() {
            return;
        }
        // Running, as opposed to gone or a zombie waiting for a parent to reap it.
        let running = || {
            std::fs::read_to_string(format!("/proc/{}/stat", self.os_pid))
                .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        };
        let started = Instant::now();
        while running() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if running() {
            let _ = Command::new("kill").args(["-9", &self.os_pid]).status();
        }
    }
}
