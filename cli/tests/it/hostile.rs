//! `rel serve` under hostile load, over loopback (issue 11): what an anonymous or slow client
//! can hold of the server. Memory figures come from `/proc`, against a baseline taken in the
//! same run; every loop is bounded in count and time. The figures are printed for the record
//! (`cargo nextest run -p rel hostile --no-capture`).
#![allow(clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Registry;

/// A field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

const MIB: u64 = 1024 * 1024;

/// A token file with one token per `(token, scope)`.
fn tokens_file(path: &Path, tokens: &[(&str, &str)]) {
    let mut text = String::new();
    for (token, scope) in tokens {
        let sha = rel_format::Digest::of(token.as_bytes()).hex();
        text.push_str(&format!(
            "[[tokens]]\nname = \"{token}\"\nsha256 = \"{sha}\"\nscopes = [\"{scope}\"]\nexpires = \"2099-01-01T00:00:00Z\"\n\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn connect(url: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One request over a new connection; the raw answer (head and body), read until the server
/// closes or the read times out.
fn raw(url: &str, request: &[u8]) -> String {
    let mut s = connect(url);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The registry answers `/healthz` with 200 on a fresh connection.
fn assert_serving(registry: &Registry) {
    let answer = raw(
        &registry.url,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(answer.contains("200 OK"), "{answer}");
}

/// The status and JSON body of an answer read by [`raw`].
fn status_and_json(answer: &str) -> (u16, serde_json::Value) {
    let status = answer.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON body: {answer:?}"));
    (status, json)
}

fn config(dir: &Path, limits: &str) -> std::path::PathBuf {
    let path = dir.join("registry.toml");
    std::fs::write(&path, format!("[limits]\n{limits}")).unwrap();
    path
}

/// Finding 1: 24 anonymous clients each sending a 32 MiB − 1 byte pack and holding their
/// connection. The server refuses them from their headers and reads none of it: its peak
/// RSS grows by less than 64 MiB (it grew by 770 MiB when bodies were read before the
/// caller was known).
#[test]
fn anonymous_bodies_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    tokens_file(&tokens, &[("pusher", "push")]);
    let registry = Registry::start(&dir.path().join("store"), &["--tokens", tokens.to_str().unwrap()]);
    assert_serving(&registry);
    let pid = registry.pid();
    let baseline = proc_status(pid, "VmRSS");
    let len = 32 * MIB as usize - 1;
    let clients: Vec<_> = (0..24)
        .map(|i| {
            let url = registry.url.clone();
            std::thread::spawn(move || {
                let target = if i % 2 == 0 {
                    "POST /v1/packs"
                } else {
                    "PUT /v1/manifests"
                };
                let mut s = connect(&url);
                let head = format!(
                    "{target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
                );
                s.write_all(head.as_bytes()).unwrap();
                let mut writer = s.try_clone().unwrap();
                let sender = std::thread::spawn(move || {
                    let piece = vec![b'['; 1 << 20];
                    let mut sent = 0;
                    while sent < len {
                        let n = piece.len().min(len - sent);
                        if writer.write_all(&piece[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    sent
                });
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                let sent = sender.join().unwrap();
                (String::from_utf8_lossy(&answer).into_owned(), sent, s)
            })
        })
        .collect();
    let held: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = proc_status(pid, "VmHWM");
    for (answer, _, _) in &held {
        if !answer.is_empty() {
            let (status, json) = status_and_json(answer);
            assert_eq!((status, json["code"].as_str()), (401, Some("unauthorized")), "{answer}");
        }
    }
    assert!(held.iter().any(|(a, _, _)| a.contains("401")), "no client read its 401");
    let grown = peak.saturating_sub(baseline);
    eprintln!(
        "server RSS {} MiB before, peak {} MiB with 24 anonymous 32 MiB bodies held",
        baseline / MIB,
        peak / MIB
    );
    assert!(grown < 64 * MIB, "the server grew by {} MiB", grown / MIB);
}

/// Finding 2: connections that send nothing, half a head, a body that stops, or nothing
/// after their first request are closed within the configured timeouts; a declared length
/// over the limit is refused at once; the server still answers.
#[test]
fn silent_slow_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "header_timeout_ms = 500\nbody_timeout_ms = 500\n");
    let registry = Registry::start(&dir.path().join("store"), &["--config", cfg.to_str().unwrap()]);
    let started = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(("silent", connect(&registry.url)));
    }
    for _ in 0..10 {
        let mut s = connect(&registry.url);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
        sockets.push(("half a head", s));
    }
    for _ in 0..10 {
        let mut s = connect(&registry.url);
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        sockets.push(("idle keep-alive", s));
    }
    for _ in 0..5 {
        let mut s = connect(&registry.url);
        s.write_all(b"POST /v1/chunks/missing HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"dig")
            .unwrap();
        sockets.push(("stopped body", s));
    }
    // A body declared too large is refused before any of it is sent.
    let answer = raw(
        &registry.url,
        b"POST /v1/packs HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000000000\r\n\r\n",
    );
    let (status, json) = status_and_json(&answer);
    assert_eq!((status, json["code"].as_str()), (413, Some("too_large")), "{answer}");

    for (what, s) in &mut sockets {
        let mut out = Vec::new();
        // Read until the server closes (or 10 s pass, and the test fails below).
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        if *what == "stopped body" {
            let (status, json) = status_and_json(&text);
            assert_eq!((status, json["code"].as_str()), (408, Some("timeout")), "{text}");
        }
    }
    let took = started.elapsed();
    eprintln!("45 hostile connections all closed after {took:?} (timeouts 500 ms)");
    assert!(took < Duration::from_secs(3), "closed only after {took:?}");
    assert_serving(&registry);
}

/// A body that trickles in (one byte every 100 ms) is refused once it falls below the
/// minimum pace, though it never stops long enough for the body timeout.
#[test]
fn a_trickled_body_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "body_timeout_ms = 400\nbody_min_bytes_per_second = 1000\n");
    let registry = Registry::start(&dir.path().join("store"), &["--config", cfg.to_str().unwrap()]);
    let mut s = connect(&registry.url);
    s.write_all(b"POST /v1/packs HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\nRELPACK1")
        .unwrap();
    let started = Instant::now();
    let mut writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(&[0]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let (status, json) = status_and_json(&text);
    assert_eq!((status, json["code"].as_str()), (408, Some("timeout")), "{text}");
    assert!(json["message"].as_str().unwrap().contains("slower than"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(s);
    trickle.join().unwrap();
}

/// Past `max_connections`, a connection is answered 503 with `Retry-After` and closed at
/// once; when the others go, the server answers again.
#[test]
fn connections_past_the_cap_are_answered_busy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "max_connections = 8\nheader_timeout_ms = 5000\n");
    let registry = Registry::start(&dir.path().join("store"), &["--config", cfg.to_str().unwrap()]);
    let idle: Vec<_> = (0..8).map(|_| connect(&registry.url)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let answer = raw(&registry.url, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    let (status, json) = status_and_json(&answer);
    assert_eq!((status, json["code"].as_str()), (503, Some("busy")), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert_serving(&registry);
}

/// Past `max_expensive_requests` uploads at once, one more is answered 503 with
/// `Retry-After`; cheap requests are still served.
#[test]
fn expensive_requests_past_the_limit_are_answered_busy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "max_expensive_requests = 2\nbody_timeout_ms = 5000\n");
    let registry = Registry::start(&dir.path().join("store"), &["--config", cfg.to_str().unwrap()]);
    let holding: Vec<_> = (0..2)
        .map(|_| {
            let mut s = connect(&registry.url);
            s.write_all(b"POST /v1/packs HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\nRELPACK1")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let answer = raw(
        &registry.url,
        b"POST /v1/packs HTTP/1.1\r\nhost: x\r\ncontent-length: 8\r\nconnection: close\r\n\r\nRELPACK1",
    );
    let (status, json) = status_and_json(&answer);
    assert_eq!((status, json["code"].as_str()), (503, Some("busy")), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    let answer = raw(
        &registry.url,
        b"GET /v1/releases HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(answer.contains("200 OK"), "{answer}");
    drop(holding);
}

/// Finding 3: thousands of random paths and methods, and a path with a quote, leave the
/// metrics page small and parseable: routes are templates or `unmatched`.
#[test]
fn metrics_stay_small_whatever_the_paths() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let mut s = connect(&registry.url);
    let mut reader = s.try_clone().unwrap();
    let answers = std::thread::spawn(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    });
    let mut sent = 0;
    for i in 0..3000u32 {
        let method = if i % 10 == 0 { format!("M{i}") } else { "GET".to_owned() };
        let path = match i {
            0 => "/v1/a\"b".to_owned(),
            1 => "/v1/releases/a%22b".to_owned(),
            _ => format!("/v1/{:08x}/{}", i.wrapping_mul(2_654_435_761), i),
        };
        s.write_all(format!("{method} {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .unwrap();
        sent += 1;
    }
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let out = answers.join().unwrap();
    let text = String::from_utf8_lossy(&out);
    let answers = text.matches("HTTP/1.1 ").count();
    assert_eq!(answers, sent + 1, "every request answered");
    let page = text.rsplit("\r\n\r\n").next().unwrap();
    eprintln!("metrics page after {sent} hostile requests: {} bytes", page.len());
    assert!(page.len() < 32 * 1024, "{} bytes of metrics", page.len());
    assert!(page.contains("# HELP rel_http_requests"), "{page}");
    assert!(page.trim_end().ends_with("# EOF"), "{page}");
    for line in page.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        if let Some(route) = line.split("route=\"").nth(1) {
            let route = route.split('"').next().unwrap();
            assert!(route == "unmatched" || route.starts_with('/'), "{line}");
            assert!(!route.contains("a\\\"b") && !route.contains("0000"), "{line}");
        }
        if let Some(method) = line.split("method=\"").nth(1) {
            let method = method.split('"').next().unwrap();
            assert!(
                ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "OTHER"].contains(&method),
                "{line}"
            );
        }
    }
}

/// Finding 9 and 14: revocation by deleting the file, by a broken edit and by a replacement
/// with the same mtime; a lowercase `bearer` is a bearer.
#[test]
fn tokens_fail_closed_and_follow_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    tokens_file(&tokens, &[("alice", "pull"), ("bob", "pull")]);
    let registry = Registry::start(&dir.path().join("store"), &["--tokens", tokens.to_str().unwrap()]);
    let status = |auth: &str| {
        let answer = raw(
            &registry.url,
            format!("GET /v1/releases HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        );
        status_and_json(&answer).0
    };
    // Within 3 s of a change, `auth` gets `want`.
    let eventually = |auth: &str, want: u16| {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let got = status(auth);
            if got == want {
                return;
            }
            assert!(Instant::now() < until, "{auth}: {got}, not {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(status("Bearer alice"), 200);
    assert_eq!(status("bearer alice"), 200);
    assert_eq!(status("BEARER bob"), 200);

    std::fs::remove_file(&tokens).unwrap();
    eventually("Bearer alice", 401);
    eventually("Bearer bob", 401);

    tokens_file(&tokens, &[("alice", "pull"), ("bob", "pull")]);
    eventually("Bearer alice", 200);
    // Alice's entry removed and a syntax error added in the same write: nobody gets in.
    std::fs::write(&tokens, "[[tokens]\nbroken").unwrap();
    eventually("Bearer alice", 401);
    eventually("Bearer bob", 401);

    tokens_file(&tokens, &[("alice", "pull"), ("bob", "pull")]);
    eventually("Bearer alice", 200);
    // A replacement with the same size and mtime: the contents decide.
    let mtime = std::fs::metadata(&tokens).unwrap().modified().unwrap();
    tokens_file(&tokens, &[("alicf", "pull"), ("bob", "pull")]);
    std::fs::File::options()
        .write(true)
        .open(&tokens)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    eventually("Bearer alice", 401);
    assert_eq!(status("Bearer bob"), 200);
}

/// Finding 10: whatever is wrong with a request, the answer is the documented JSON with a
/// code, including what the framework rejects before a handler runs.
#[test]
fn every_error_answer_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let json = "content-type: application/json";
    let long = format!("/v1/releases/{}", "a".repeat(20_000));
    let manifest = r#"{"signed":{},"signatures":["k:AAAA"]}"#;
    // (request line, a header, body, status, code)
    let cases: Vec<(&str, &str, &str, u16, &str)> = vec![
        ("POST /v1/chunks/missing", json, "{", 400, "bad_request"),
        (
            "POST /v1/chunks/missing",
            "x-none: 1",
            "{}",
            415,
            "unsupported_media_type",
        ),
        ("POST /v1/chunks/missing", json, r#"{"digests":1}"#, 400, "bad_request"),
        (
            "GET /v1/releases/demo/upgrade-path?from=1.0.0",
            "x-none: 1",
            "",
            400,
            "bad_request",
        ),
        ("GET /v1/releases/%FF", "x-none: 1", "", 400, "bad_request"),
        ("GET /v1/releases/a%22b", "x-none: 1", "", 400, "bad_request"),
        ("POST /v1/packs", "x-none: 1", "RELPACK1abcd", 422, "invalid"),
        ("DELETE /v1/releases", "x-none: 1", "", 405, "method_not_allowed"),
        ("GET /nowhere", "x-none: 1", "", 404, "not_found"),
        (&long, "x-none: 1", "", 414, "too_large"),
        ("PUT /v1/releases/demo/channels/prod", json, "nope!", 422, "invalid"),
        ("PUT /v1/manifests", json, manifest, 422, "invalid"),
    ];
    let long_get = format!("GET {long}");
    let cases: Vec<_> = cases
        .into_iter()
        .map(|(line, header, body, want, code)| {
            let line = if line == long { long_get.as_str() } else { line };
            let request = format!(
                "{line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{header}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            (request, want, code)
        })
        .chain([(
            "POST /v1/packs HTTP/1.1\r\nhost: x\r\ncontent-length: 40000000\r\n\r\n".to_owned(),
            413,
            "too_large",
        )])
        .collect();
    for (request, want, code) in cases {
        let answer = raw(&registry.url, request.as_bytes());
        let (status, body) = status_and_json(&answer);
        let line = request.lines().next().unwrap();
        assert_eq!((status, body["code"].as_str()), (want, Some(code)), "{line}: {answer}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{line}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("content-type: application/json"),
            "{line}: {answer}"
        );
    }
}

/// Finding 8: after a host accepted sequence 2, another validly signed pointer of sequence 2
/// (the loser of a promotion race) is refused, and so is sequence 1 reached by another
/// spelling of the registry's URL: the host's memory is keyed by the registry's identity.
#[test]
fn channels_refuse_an_equal_sequence_loser_and_another_url_spelling() {
    use rel_format::channel::{CHANNEL_SCHEMA, ChannelPointer, SignedChannel};

    let (home, reg, vs) = demo_registry(2);
    let channel = home.path("store/channels/demo/production.json");
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[0], "--channel", "production"])
        .assert()
        .success();
    let first = std::fs::read(&channel).unwrap();
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "production"])
        .assert()
        .success();
    let winner = SignedChannel::parse_unverified(&std::fs::read(&channel).unwrap()).unwrap();
    assert_eq!(winner.signed.sequence, 2);
    // The pointer a racing promotion of the older version signed, and lost with.
    let key: rel_format::SecretKey = std::fs::read_to_string(home.path("keys/ci.key"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let loser = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        version: vs[0].parse().unwrap(),
        ..winner.signed.clone()
    };
    let loser = SignedChannel::sign(loser, &key).unwrap().to_bytes();

    let host = crate::support::Home::new();
    let trusted = home.path("keys/ci.pub");
    let pull = |url: &str, out: &str| {
        host.rel(Some(&reg))
            .env("REL_REGISTRY", url)
            .args(["pull", "demo", "--channel", "production", "--trusted-key"])
            .arg(&trusted)
            .arg("-o")
            .arg(host.path(out))
            .output()
            .unwrap()
    };
    let out = pull(&reg.url, "accepted.tar.gz");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    std::fs::write(&channel, &loser).unwrap();
    let out = pull(&reg.url, "loser.tar.gz");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "has sequence 2, already accepted for `{}`, but names `{}`",
            vs[1], vs[0]
        )),
        "{stderr}"
    );

    // The first pointer, replayed to the same host through `localhost` instead of 127.0.0.1.
    std::fs::write(&channel, &first).unwrap();
    let aliased = reg.url.replace("127.0.0.1", "localhost");
    let out = pull(&aliased, "aliased.tar.gz");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has sequence 1, older than 2 already accepted"),
        "{stderr}"
    );
    assert!(!host.path("loser.tar.gz").exists() && !host.path("aliased.tar.gz").exists());
}

/// Runs `cmd` to its end, watching its peak RSS (`VmHWM`, read from `/proc` every few
/// milliseconds while it runs). Returns its exit status, stderr and peak in bytes.
fn run_watched(mut cmd: std::process::Command) -> (std::process::ExitStatus, String, u64) {
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
    });
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kib) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kib * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    out.join().unwrap();
    (status, err.join().unwrap(), peak)
}

/// A registry in the wrong hands: answers every request with `status` and a body that never
/// ends (until the client goes, or 1 GiB, or 60 s). Returns its URL.
fn endless_registry(status: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                let started = Instant::now();
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n[")
                        .as_bytes(),
                );
                let piece = vec![b' '; 1 << 20];
                for _ in 0..1024 {
                    if started.elapsed() > Duration::from_secs(60) || conn.write_all(&piece).is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// Finding 6: a registry (or a man in the middle) answering with endless bodies gets the
/// client to read no more than its bound: a manifest 32 MiB, a channel pointer 64 KiB, an
/// error body 64 KiB. Peak RSS against a baseline run of the same command against a registry
/// that has nothing.
#[test]
fn the_client_reads_no_more_than_its_bound() {
    let home = crate::support::Home::new();
    let dir = tempfile::tempdir().unwrap();
    let empty = Registry::start(&dir.path().join("store"), &[]);
    let pull = |url: &str, args: &[&str]| {
        let mut cmd = home.process(url);
        cmd.arg("pull")
            .arg("demo")
            .args(args)
            .arg("-o")
            .arg(home.path("out.tar.gz"));
        run_watched(cmd)
    };
    let (status, stderr, baseline) = pull(&empty.url, &["--version", "1.0.0"]);
    assert!(!status.success() && stderr.contains("not stored"), "{stderr}");

    let (status, stderr, manifest) = pull(&endless_registry("200 OK"), &["--version", "1.0.0"]);
    assert!(!status.success());
    assert!(
        stderr.contains("is over 33554432 bytes, the most a manifest may be"),
        "{stderr}"
    );
    let (status, stderr, pointer) = pull(&endless_registry("200 OK"), &["--channel", "production"]);
    assert!(!status.success());
    assert!(
        stderr.contains("is over 65536 bytes, the most a channel pointer may be"),
        "{stderr}"
    );
    let (status, stderr, error) = pull(&endless_registry("404 Not Found"), &["--version", "1.0.0"]);
    assert!(
        !status.success() && stderr.contains("was answered 404 Not Found, and not with a rel registry's error"),
        "{stderr}"
    );
    assert!(stderr.len() < 128 * 1024, "{} bytes of stderr", stderr.len());
    eprintln!(
        "client peak RSS: baseline {} MiB; endless manifest {} MiB, endless pointer {} MiB, endless 404 body {} MiB",
        baseline / MIB,
        manifest / MIB,
        pointer / MIB,
        error / MIB
    );
    assert!(manifest < baseline + 48 * MIB, "{} MiB", manifest / MIB);
    assert!(pointer < baseline + 16 * MIB, "{} MiB", pointer / MIB);
    assert!(error < baseline + 16 * MIB, "{} MiB", error / MIB);
}

/// Finding 12: a member named with terminal escapes, and tar header fields of raw bytes,
/// reach the terminal escaped.
#[test]
fn control_characters_never_reach_the_terminal() {
    let home = crate::support::Home::new();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let evil = |name: &[u8], size_field: Option<&[u8]>| {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Char);
        if let Some(field) = size_field {
            h.as_old_mut().size[..field.len()].copy_from_slice(field);
        }
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.resize(tar.len() + 1024, 0);
        let path = home.path(&format!("evil-{}.tar", tar.len() + name.len()));
        std::fs::write(&path, tar).unwrap();
        path
    };
    for tar in [
        evil(b"lib/\x1b]0;PWNED\x07\x1b[2J", None),
        evil(b"lib/x", Some(b"\x1b[2J\x1b]0;X\x07")),
    ] {
        let mut cmd = home.process(&registry.url);
        cmd.arg("push").arg(&tar);
        let (status, stderr, _) = run_watched(cmd);
        assert!(!status.success(), "{stderr}");
        assert!(
            !stderr.bytes().any(|b| b == 0x1b || b == 0x07),
            "raw control characters on the terminal: {stderr:?}"
        );
        assert!(stderr.contains("\\u{1b}"), "{stderr}");
    }
}

/// Finding 7: a release with 20,000 files whose paths are 3,965 bytes long pushes and pulls
/// (`--into`) within a bounded memory: a push's peak RSS grows by less than 64 MiB over the
/// same push of the release whose 20,000 files have short paths (it grew by about 8 KiB a
/// member when paths were kept), and both stay under the 200 MiB SPEC.md §3.3 states. A pull
/// grows more than a push: its tar is 100 MB of long-name headers instead of 20 MB, and the
/// windows it has in flight (8 of 128 chunks) hold more of it.
#[test]
fn archives_of_long_paths_cost_bounded_memory() {
    use flate2::write::GzEncoder;

    let home = crate::support::Home::new();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let vs = crate::support::versions();
    let base = crate::support::tarball(&vs[0]);
    // The same release, plus 20,000 empty files under its application's priv/: with short
    // paths (the baseline) and with paths of 3,965 bytes.
    let with_files = |out: &Path, long: bool| {
        let input = flate2::read::GzDecoder::new(std::fs::File::open(&base).unwrap());
        let mut archive = tar::Archive::new(input);
        let gz = GzEncoder::new(std::fs::File::create(out).unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        let mut app_dir = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().into_owned();
            let text = path.to_string_lossy().trim_start_matches("./").to_owned();
            if app_dir.is_none() && text.starts_with("lib/demo-") && text.matches('/').count() >= 2 {
                app_dir = Some(text.splitn(3, '/').take(2).collect::<Vec<_>>().join("/"));
            }
            let mut header = entry.header().clone();
            builder.append_data(&mut header, &path, &mut entry).unwrap();
        }
        let app_dir = app_dir.expect("the release has lib/demo-*");
        let deep: String = if long {
            (0..15)
                .map(|i| format!("/{}", char::from(b'a' + i).to_string().repeat(250)))
                .collect()
        } else {
            "/s".into()
        };
        let prefix = format!("{app_dir}/priv{deep}/");
        for i in 0..20_000 {
            let name = if long {
                format!("{i:06}{}", "x".repeat(3965 - prefix.len() - 6))
            } else {
                format!("{i:06}")
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, format!("{prefix}{name}"), std::io::empty())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    };
    let short = home.path("short-paths.tar.gz");
    let big = home.path("long-paths.tar.gz");
    with_files(&short, false);
    with_files(&big, true);
    let base = short;
    // Each on its own registry: the two are the same release version.
    let dir_b = tempfile::tempdir().unwrap();
    let registry_b = Registry::start(&dir_b.path().join("store"), &[]);
    let run = |url: &str, args: &[&std::ffi::OsStr]| {
        let mut cmd = home.process(url);
        cmd.args(args);
        let (status, stderr, peak) = run_watched(cmd);
        assert!(status.success(), "{args:?}: {stderr}");
        peak
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let push_base = run(&registry.url, &[&os("push"), base.as_os_str()]);
    let push_big = run(&registry_b.url, &[&os("push"), big.as_os_str()]);
    let pull = |url: &str, into: &str| {
        let into = home.path(into);
        run(
            url,
            &[
                &os("pull"),
                &os("demo"),
                &os("--version"),
                &os(&vs[0]),
                &os("--into"),
                into.as_os_str(),
            ],
        )
    };
    let pull_base = pull(&registry.url, "base-into");
    let pull_big = pull(&registry_b.url, "big-into");
    let files = walk_count(&home.path("big-into"));
    assert!(files >= 20_000, "{files} entries extracted");
    eprintln!(
        "peak RSS, release alone / with 20,000 members of 3,965-byte paths: push {} / {} MiB, pull --into {} / {} MiB",
        push_base / MIB,
        push_big / MIB,
        pull_base / MIB,
        pull_big / MIB
    );
    assert!(
        push_big < push_base + 64 * MIB,
        "push grew by {} MiB",
        (push_big - push_base) / MIB
    );
    assert!(
        push_big < 200 * MIB && pull_big < 200 * MIB,
        "push {} MiB, pull {} MiB at their peaks",
        push_big / MIB,
        pull_big / MIB
    );
}

/// Entries under `dir`, recursively.
fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            1 + if e.file_type().unwrap().is_dir() {
                walk_count(&e.path())
            } else {
                0
            }
        })
        .sum()
}

/// Finding 11: what interrupted runs leave is collected: the store's staging files by the
/// registry's garbage collection, a pull's temporary folder and cache files by the next pull.
#[test]
fn leftovers_of_interrupted_runs_are_collected() {
    let home = crate::support::Home::new();
    let registry = Registry::start(&home.path("store"), &[]);
    let vs = crate::support::versions();
    home.rel(Some(&registry))
        .arg("push")
        .arg(crate::support::tarball(&vs[0]))
        .assert()
        .success();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    let aged = |path: &Path, bytes: usize| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![7u8; bytes]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    };
    // A pack upload killed between object_store's staging write and its rename.
    let staged = home.path("store/packs/ab/abcdef.pack#1");
    aged(&staged, 2 << 20);
    let fresh = home.path("store/packs/ab/abcdef.pack#2");
    std::fs::write(&fresh, b"being written").unwrap();
    let report = home.json(&registry, &["gc"]);
    assert_eq!(report["debris_deleted"], 1, "{report}");
    assert_eq!(report["debris_bytes"], 2 << 20, "{report}");
    assert!(!staged.exists() && fresh.exists());

    // A pull --into and a cache entry killed half-way, by a process that is gone; and a
    // temporary file an older rel left in the cache.
    let host = crate::support::Home::new();
    let stale_dir = host.path(".into.rel-tmp-999999999-abcdef");
    std::fs::create_dir_all(stale_dir.join("lib/demo")).unwrap();
    std::fs::write(stale_dir.join("lib/demo/big"), vec![0u8; 1 << 20]).unwrap();
    let stale_cache = host.path("cache/.cache.rel-tmp-999999999-abcdef");
    aged(&stale_cache, 1 << 20);
    let old_tmp = host.path("cache/.tmpAbC123");
    aged(&old_tmp, 1 << 20);
    let out = host
        .rel(Some(&registry))
        .args(["pull", "demo", "--version", &vs[0], "--trusted-key"])
        .arg(home.path("keys/ci.pub"))
        .arg("--into")
        .arg(host.path("into"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stale_dir.exists() && !stale_cache.exists() && !old_tmp.exists());
    assert!(host.path("into/releases").is_dir());
}

/// Sends `GET /v1/releases/NAME` for each of `names` over one connection (pipelined) and
/// waits for every answer.
fn ask_names(url: &str, names: impl Iterator<Item = String>) -> usize {
    let mut s = connect(url);
    let mut reader = s.try_clone().unwrap();
    let answers = std::thread::spawn(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).matches("HTTP/1.1 404").count()
    });
    let mut batch = String::new();
    for name in names {
        batch.push_str(&format!("GET /v1/releases/{name} HTTP/1.1\r\nhost: x\r\n\r\n"));
        if batch.len() > 64 * 1024 {
            s.write_all(batch.as_bytes()).unwrap();
            batch.clear();
        }
    }
    batch.push_str("GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    s.write_all(batch.as_bytes()).unwrap();
    answers.join().unwrap()
}

/// Finding 4: asking about tens of thousands of release names that do not exist leaves the
/// registry's memory where it was once its catalog is full: the catalog is bounded.
#[test]
fn the_catalog_is_bounded_whatever_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let pid = registry.pid();
    let name = |i: u32| format!("n{i:07}_{}", "x".repeat(40));
    // Fill the catalog (4,096 names), then measure.
    assert_eq!(ask_names(&registry.url, (0..5_000).map(name)), 5_000);
    let full = proc_status(pid, "VmRSS");
    assert_eq!(ask_names(&registry.url, (5_000..65_000).map(name)), 60_000);
    let after = proc_status(pid, "VmRSS");
    eprintln!(
        "server RSS after 5,000 names {} MiB, after 60,000 more {} MiB",
        full / MIB,
        after / MIB
    );
    assert!(after < full + 6 * MIB, "grew by {} KiB", (after - full) / 1024);
}

/// A pusher's manifest near the 32 MiB bound (300,000 chunks) costs the registry its body,
/// its chunk list and the answer naming the missing chunks, not a tree of JSON values: the
/// server's peak RSS grows by less than four times the document (80 MiB for 28 MiB; it grew
/// by 275 MiB when manifests were read through `serde_json::Value`).
#[test]
fn a_large_manifest_costs_the_registry_about_its_size() {
    use rel_format::Kind;
    use rel_format::chunk::ChunkRef;

    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("store"), &[]);
    let key = rel_testkit::artifacts::key("ci");
    let mut m = rel_testkit::artifacts::artifact("big", "1.0.0", Kind::Release, &[], b"x", &key).manifest;
    let n = 300_000;
    m.tar.chunks = (0..n)
        .map(|i| ChunkRef {
            digest: rel_format::Digest::of(&(i as u64).to_be_bytes()),
            length: 16_384,
        })
        .collect();
    m.tar.length = 16_384 * n as u64;
    let doc = rel_format::SignedManifest::sign(m, &key).unwrap().to_bytes();
    let pid = registry.pid();
    assert_serving(&registry);
    let baseline = proc_status(pid, "VmHWM");
    let mut request = format!(
        "PUT /v1/manifests HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        doc.len()
    )
    .into_bytes();
    request.extend_from_slice(&doc);
    let answer = raw(&registry.url, &request);
    let (status, json) = status_and_json(&answer);
    // Parsed whole: it names chunks the store lacks.
    assert_eq!(
        (status, json["code"].as_str()),
        (422, Some("missing_chunks")),
        "{}",
        &answer[..200.min(answer.len())]
    );
    let grown = proc_status(pid, "VmHWM").saturating_sub(baseline);
    eprintln!(
        "a manifest of {n} chunks ({} MiB): the registry's peak RSS grew by {} MiB",
        doc.len() as u64 / MIB,
        grown / MIB
    );
    assert!(grown < 4 * doc.len() as u64, "grew by {} MiB", grown / MIB);
}

/// `rel pull --digest` (and `NAME@sha256:…`) takes the release whose manifest has that
/// digest, exactly: an unknown digest is a usage error, and a registry whose listing names
/// one version for the digest but serves another manifest gets nothing pulled.
#[test]
fn a_pull_by_digest_takes_exactly_that_manifest() {
    let (home, reg, vs) = demo_registry(2);
    let shown = |v: &str| -> serde_json::Value {
        let out = home
            .rel(Some(&reg))
            .args(["show", &format!("demo@{v}"), "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (first, second) = (shown(&vs[0]), shown(&vs[1]));
    let digest = second["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:") && digest != first["digest"].as_str().unwrap());
    for (i, args) in [
        vec![
            "pull".to_owned(),
            "demo".to_owned(),
            "--digest".to_owned(),
            digest.clone(),
        ],
        vec!["pull".to_owned(), format!("demo@{digest}")],
    ]
    .into_iter()
    .enumerate()
    {
        let out = home.path(&format!("by-digest-{i}.tar"));
        let pulled = home
            .rel(Some(&reg))
            .args(&args)
            .arg("-o")
            .arg(&out)
            .arg("--json")
            .output()
            .unwrap();
        assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
        let report: serde_json::Value = serde_json::from_slice(&pulled.stdout).unwrap();
        assert_eq!(report["version"], vs[1].as_str(), "{args:?}");
    }
    let unknown = format!("sha256:{}", "0".repeat(64));
    let out = home
        .rel(Some(&reg))
        .args(["pull", "demo", "--digest", &unknown, "-o"])
        .arg(home.path("none.tar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("no release of demo has manifest digest {unknown}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A registry that lists the second version's digest against the first version.
    let listing = {
        let got = reqwest_free_get(&format!("{}/v1/releases/demo", reg.url));
        let mut v: serde_json::Value = serde_json::from_str(&got).unwrap();
        for artifact in v["versions"][0]["artifacts"].as_array_mut().unwrap() {
            artifact["digest"] = serde_json::Value::from(digest.clone());
        }
        for artifact in v["versions"][1]["artifacts"].as_array_mut().unwrap() {
            artifact["digest"] = first["digest"].clone();
        }
        v.to_string()
    };
    let lying = lying_registry(reg.url.clone(), listing);
    let out = home
        .rel(None)
        .env("REL_REGISTRY", &lying)
        .args(["pull", "demo", "--digest", &digest, "-o"])
        .arg(home.path("lied.tar"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the registry lists demo {} with manifest digest {digest}, but serves a manifest of digest",
            vs[0]
        )),
        "{err}"
    );
    assert!(!home.path("lied.tar").exists());
}

/// A GET over plain HTTP/1.1, the body as text.
fn reqwest_free_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    raw(
        &format!("http://{host}"),
        format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .split_once("\r\n\r\n")
    .unwrap()
    .1
    .to_owned()
}

/// A registry in front of `real` that answers the version listing with `listing` and passes
/// every other GET through.
fn lying_registry(real: String, listing: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(mut conn) = conn else { continue };
            let (real, listing) = (real.clone(), listing.clone());
            std::thread::spawn(move || {
                let mut head = vec![0u8; 8192];
                let n = conn.read(&mut head).unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = if path == "/v1/releases/demo" {
                    listing
                } else {
                    reqwest_free_get(&format!("{real}{path}"))
                };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    url
}

/// A registry holding the first `n` versions of the demo fixture, and its versions.
fn demo_registry(n: usize) -> (crate::support::Home, Registry, Vec<String>) {
    let home = crate::support::Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = crate::support::versions();
    for v in &vs[..n] {
        home.rel(Some(&reg))
            .arg("push")
            .arg(crate::support::tarball(v))
            .assert()
            .success();
    }
    (home, reg, vs)
}
