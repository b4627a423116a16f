//! Test support: artifacts with real chunks and signatures, in-process calls, and a real S3
//! server (moto) that stops with the test.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, compress_chunk};
use rel_format::manifest::{AppRef, Kind, Manifest, Platform, SCHEMA};
use rel_format::{SecretKey, Version};
use rel_registry::Store;
use tower::ServiceExt;

pub fn key(name: &str) -> SecretKey {
    let seed = rel_format::Digest::of(name.as_bytes());
    SecretKey::from_seed(name, *seed.as_bytes()).unwrap()
}

/// Deterministic bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An artifact ready to push: its signed envelope and its compressed chunks.
pub struct Artifact {
    pub manifest: Manifest,
    pub envelope: Vec<u8>,
    pub chunks: Vec<(ChunkRef, Vec<u8>)>,
}

pub fn artifact(name: &str, version: &str, kind: Kind, from: &[&str], data: &[u8], signer: &SecretKey) -> Artifact {
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(|c: &ChunkRef, d: &[u8]| {
        chunks.push((c.clone(), compress_chunk(d)?));
        Ok(())
    });
    chunker.write_all(data).unwrap();
    let (stream, _): (ChunkedStream, _) = chunker.finish().unwrap();
    let version: Version = version.parse().unwrap();
    let manifest = Manifest {
        schema: SCHEMA.into(),
        kind,
        name: name.into(),
        version: version.clone(),
        from: from.iter().map(|f| f.parse().unwrap()).collect(),
        tar: stream,
        platform: Platform {
            erts: "13.1.5".parse().unwrap(),
            erts_included: false,
            os: None,
            arch: None,
            libc: None,
        },
        apps: vec![AppRef {
            name: name.into(),
            version,
        }],
        created: "2026-01-01T00:00:00Z".into(),
        builder: "rel tests".into(),
    };
    let envelope = signer.sign(&manifest).unwrap().to_bytes();
    Artifact {
        manifest,
        envelope,
        chunks,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request through the router, in-process.
pub async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let response = app.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, body }
}

/// A pack body holding `chunks` (compressed frames).
pub fn pack_of<'a>(chunks: impl IntoIterator<Item = &'a (ChunkRef, Vec<u8>)>) -> Vec<u8> {
    let mut w = rel_format::pack::PackWriter::new();
    for (c, frame) in chunks {
        w.push(c, frame);
    }
    w.finish()
}

/// Uploads `chunks` as one pack.
pub async fn upload(app: &axum::Router, token: Option<&str>, chunks: &[(ChunkRef, Vec<u8>)]) -> Reply {
    call(app, "POST", "/v1/packs", token, &[], pack_of(chunks)).await
}

/// Pushes an artifact's chunks (one pack) and manifest; returns the manifest reply.
pub async fn push(app: &axum::Router, token: Option<&str>, a: &Artifact) -> Reply {
    let r = upload(app, token, &a.chunks).await;
    assert!(r.status.is_success(), "pack upload: {} {}", r.status, r.text());
    call(
        app,
        "PUT",
        "/v1/manifests",
        token,
        &[("content-type", "application/json".into())],
        a.envelope.clone(),
    )
    .await
}

/// moto in server mode on a free loopback port, with one bucket; killed on drop.
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

pub fn moto_server_path() -> PathBuf {
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

pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(moto_server_path())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 30, "moto did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let bucket = format!(
        "rel-{}",
        &rel_format::Digest::of(format!("{port}{:?}", std::time::SystemTime::now()).as_bytes()).hex()[..12]
    );
    // Create the bucket with a plain PUT, as any S3 client would.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "bucket creation failed: {reply}");
    Moto {
        child,
        endpoint,
        bucket,
    }
}

pub fn s3_settings(moto: &Moto) -> BTreeMap<String, toml::Value> {
    [
        ("endpoint", moto.endpoint.as_str()),
        ("region", "us-east-1"),
        ("access_key_id", "testing"),
        ("secret_access_key", "testing"),
        ("allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), toml::Value::String(v.to_owned())))
    .collect()
}

pub fn s3_store(moto: &Moto) -> Store {
    rel_registry::config::open_store(&format!("s3://{}/registry", moto.bucket), &s3_settings(moto)).unwrap()
}
