//! A real S3 server for the S3 backend tests: moto in server mode, installed by
//! `scripts/setup.sh`, on a free loopback port, with one fresh bucket; killed on drop.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running moto server.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server_path() -> PathBuf {
    let tools = std::env::var_os("REL_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools"));
    let bin = tools.join("moto/bin/moto_server");
    assert!(
        bin.exists(),
        "moto is not installed at {}: run scripts/setup.sh",
        bin.display()
    );
    bin
}

impl Moto {
    /// Starts moto and creates a bucket with a plain PUT, as any S3 client would.
    pub fn start() -> Moto {
        let port = crate::free_port();
        let child = Command::new(moto_server_path())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 30, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let bucket = format!(
            "rel-{}",
            &rel_format::Digest::of(format!("{port}{:?}", std::time::SystemTime::now()).as_bytes()).hex()[..12]
        );
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("moto accepts");
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("moto reads");
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut stream, &mut reply).expect("moto answers");
        assert!(reply.starts_with("HTTP/1.1 200"), "bucket creation failed: {reply}");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
        }
    }

    /// The `[s3]` settings that reach this server.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("endpoint", self.endpoint.clone()),
            ("region", "us-east-1".into()),
            ("access_key_id", "testing".into()),
            ("secret_access_key", "testing".into()),
            ("allow_http", "true".into()),
        ]
    }
}
