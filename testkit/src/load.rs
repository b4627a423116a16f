//! Continuous HTTP/1.1 requests on keep-alive connections, to prove that a node kept
//! answering while it was upgraded: every request that does not get a `200` with a body is
//! a failure, counted and described; a connection that closes is a failure too (the fixture
//! servers never close one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// Latency of every successful request.
    pub latencies: Vec<Duration>,
}

impl Stats {
    /// The latency below which `q` (0..=1) of the requests were answered.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// Requests running on `connections` connections until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// One request on `stream`: the body of a 200, or why not.
fn request(reader: &mut BufReader<TcpStream>, path: &str) -> Result<String, String> {
    reader
        .get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: rel-test\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| format!("read: {e}"))?;
    if status.is_empty() {
        return Err("the connection closed".into());
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| format!("bad length `{line}`"))?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{} {}", status.trim(), body.trim()));
    }
    Ok(body)
}

/// One request on a new connection to 127.0.0.1:`port`: the `key=value` pairs of the body.
pub fn get(port: u16) -> Result<std::collections::BTreeMap<String, String>, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let body = request(&mut BufReader::new(stream), "/")?;
    Ok(body
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

impl Load {
    /// Starts requesting `GET /` of 127.0.0.1:`port` on `connections` connections.
    pub fn start(port: u16, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let threads = (0..connections)
            .map(|_| {
                let (stop, stats) = (stop.clone(), stats.clone());
                std::thread::spawn(move || {
                    let connect = || -> Result<BufReader<TcpStream>, String> {
                        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
                        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                        s.set_nodelay(true).ok();
                        Ok(BufReader::new(s))
                    };
                    let mut conn = connect();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let result = match &mut conn {
                            Ok(reader) => request(reader, "/"),
                            Err(e) => Err(e.clone()),
                        };
                        let mut s = stats.lock().unwrap();
                        match result {
                            Ok(_) => {
                                s.ok += 1;
                                s.latencies.push(started.elapsed());
                            }
                            Err(why) => {
                                s.failed += 1;
                                if s.failures.len() < 20 {
                                    s.failures.push(why);
                                }
                                drop(s);
                                std::thread::sleep(Duration::from_millis(10));
                                conn = connect();
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stop, stats, threads }
    }

    /// What was seen so far.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }

    /// Stops, and returns what was seen.
    pub fn stop(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.stats.lock().unwrap().clone()
    }
}
