//! Live OTP nodes for tests: a target system built from a release tarball, booted in
//! embedded mode on Debian's ERTS, driven through `rel_test_agent` over 127.0.0.1.

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
