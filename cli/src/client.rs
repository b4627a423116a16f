//! A typed client for the registry API (SPEC.md §7).
//!
//! A registry, or whoever answers in its place, is not trusted with the client's memory:
//! every answer is read as it streams with the bound the registry itself holds to (SPEC.md
//! §7.6), and refused past it: manifests 32 MiB, channel pointers 64 KiB, a batch of `n`
//! chunks `n` records of at most 68 KiB, other JSON 32 MiB, and of an error body the first
//! 64 KiB are read. Messages from the registry reach the terminal with their control
//! characters escaped. A `503` with `Retry-After` (the registry's limit on uploads at once)
//! is retried a few times.
//!
//! Every request rel makes is safe to send again: chunks and packs are content-addressed,
//! manifests write-once (the same one again is "already stored"), channel pointers
//! compare-and-swap on their sequence, yanks and collections idempotent. So a request that
//! did not get an answer (the registry restarting, a connection reset, a proxy's 502 or 504)
//! is retried with exponential backoff and jitter (`backon`), for about 4 s in all. A
//! connection refused before the registry ever answered this process is not retried: nothing
//! is running there, and saying so at once is the help.

use std::time::Duration;

use bytes::Bytes;
use rel_format::api::{Digests, ErrorBody, GcReport, GcRequest, PackStored, ReleaseNames, Stored, VersionList, Yank};
use rel_format::channel::MAX_POINTER_BYTES;
use rel_format::manifest::MAX_MANIFEST_BYTES;
use rel_format::pack::{MAX_FRAME, PACK_MAGIC, RECORD_HEADER};
use rel_format::upgrade_path::Plan;
use rel_format::{Digest, Version};
use reqwest::{StatusCode, Url};

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry's own message; its status and the request are logged (`-v`).
    #[error("{message}")]
    Api {
        method: &'static str,
        url: String,
        status: StatusCode,
        code: String,
        message: String,
        missing: Vec<Digest>,
        /// The id this request was sent with (`x-request-id`), which the registry logs.
        request_id: String,
    },
    #[error("cannot reach the registry at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the registry's answer to {url} is over {limit} bytes, the most a {what} may be; refused")]
    TooLarge {
        url: String,
        what: &'static str,
        limit: u64,
    },
    #[error("the registry's answer to {url} is not a valid {what}: {message}")]
    Malformed {
        url: String,
        what: &'static str,
        message: String,
    },
}

/// The most of an error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most of a JSON answer (listings, plans, reports) read.
const MAX_JSON: u64 = 32 << 20;
/// How many times a `503` with `Retry-After` is retried, and the longest wait honoured.
const BUSY_RETRIES: u32 = 5;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Whether a registry answered this process yet: until one did, a refused connection means
/// none is running, not one restarting.
static ANSWERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A request's id: 16 random hex digits, sent as `x-request-id` (the registry logs it with
/// the request) and shown with the errors it leads to.
fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    format!("rel-{}", hex::encode(bytes))
}

/// The waits between attempts of a request that got no answer: 0.25 s doubling to 2 s, four
/// of them, each with jitter so that many clients do not come back at once.
fn unanswered_backoff() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(4))
        .with_max_times(4)
        .with_jitter()
        .build()
}

/// Reads `response`'s body as it streams, refusing it past `limit` bytes (a declared
/// `Content-Length` over it before any byte is read).
async fn read_limited(mut response: reqwest::Response, limit: u64, what: &'static str) -> Result<Bytes, ClientError> {
    let url = response.url().to_string();
    let too_large = || ClientError::TooLarge {
        url: url.clone(),
        what,
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = bytes::BytesMut::new();
    while let Some(piece) = response.chunk().await.map_err(|source| ClientError::Transport {
        url: url.clone(),
        source,
    })? {
        if out.len() as u64 + piece.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&piece);
    }
    Ok(out.freeze())
}

/// The first `MAX_ERROR_BODY` bytes of an error answer; the rest is not read.
async fn error_text(mut response: reqwest::Response) -> String {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(piece)) => out.extend_from_slice(&piece[..piece.len().min(MAX_ERROR_BODY - out.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport { .. } | ClientError::TooLarge { .. } | ClientError::Malformed { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    token: Option<String>,
}

/// A path under the registry's base URL, from unencoded segments and query pairs: the URL
/// library encodes each one, so a version's `+` or a name never changes the path's shape.
fn endpoint(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("registry URLs are http(s) URLs with a path")
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// Whether the client needs the system's root certificates: for a registry over TLS, or a
/// plain-HTTP one reached through a TLS proxy (`env` gives the proxy variables reqwest reads).
/// Loading them reads a file per certificate (about 150 on Debian, 3 ms) at every command's
/// start, for nothing when neither is.
fn needs_roots(base: &Url, env: impl Fn(&str) -> Option<String>) -> bool {
    base.scheme() != "http"
        || ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .filter_map(|k| env(k))
            .any(|proxy| proxy.trim().to_ascii_lowercase().starts_with("https://"))
}

impl Client {
    pub fn new(base: &Url, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .tls_built_in_root_certs(needs_roots(base, |k| std::env::var(k).ok()))
            .build()
            .expect("the HTTP client builds");
        Self {
            base: base.clone(),
            http,
            token,
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    async fn send(
        &self,
        method: &'static str,
        url: Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 0;
        let mut unanswered = unanswered_backoff();
        let request_id = new_request_id();
        let started = std::time::Instant::now();
        loop {
            let mut req = self.http.request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("valid method"),
                url.clone(),
            );
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            req = req.header("x-request-id", &request_id);
            let response = match build(req).send().await {
                Ok(response) => {
                    ANSWERED.store(true, std::sync::atomic::Ordering::Relaxed);
                    response
                }
                Err(source) => match unanswered.next() {
                    Some(wait)
                        if !source.is_builder()
                            && (ANSWERED.load(std::sync::atomic::Ordering::Relaxed) || !source.is_connect()) =>
                    {
                        tracing::info!(%url, error = %source, "no answer from the registry; retrying in {wait:?}");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    _ => {
                        return Err(ClientError::Transport {
                            url: url.to_string(),
                            source,
                        });
                    }
                },
            };
            if response.status().is_success() {
                tracing::info!(
                    %method,
                    %url,
                    status = %response.status(),
                    %request_id,
                    ms = started.elapsed().as_millis() as u64,
                    "answered"
                );
                return Ok(response);
            }
            let status = response.status();
            if matches!(status, StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT)
                && let Some(wait) = unanswered.next()
            {
                tracing::info!(%url, %status, "the registry's proxy had no answer; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if status == StatusCode::SERVICE_UNAVAILABLE
                && let Some(secs) = retry_after
                && attempt < BUSY_RETRIES
            {
                attempt += 1;
                tracing::info!(%url, attempt, "the registry is busy; retrying in {secs} s");
                tokio::time::sleep(Duration::from_secs(secs).min(MAX_RETRY_AFTER)).await;
                continue;
            }
            let text = error_text(response).await;
            tracing::info!(%method, %url, %status, %request_id, "the registry answered with an error");
            let body: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|_| {
                // Not a rel registry's error (a proxy's page, another server): its body is
                // not shown, only said to be foreign.
                tracing::info!(body = %rel_format::untrusted::escape_controls(&text.chars().take(500).collect::<String>()), "the answer's body");
                ErrorBody {
                    code: "http".into(),
                    message: format!(
                        "{method} {url} was answered {status}, and not with a rel registry's error: is the registry's URL right?"
                    ),
                    missing: vec![],
                }
            });
            return Err(ClientError::Api {
                method,
                url: url.to_string(),
                status,
                code: rel_format::untrusted::escape_controls(&body.code).into_owned(),
                message: rel_format::untrusted::escape_controls(&body.message).into_owned(),
                missing: body.missing,
                request_id,
            });
        }
    }

    async fn bytes(&self, url: Url, limit: u64, what: &'static str) -> Result<Bytes, ClientError> {
        let r = self.send("GET", url, |r| r).await?;
        read_limited(r, limit, what).await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        url: Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let r = self.send(method, url, build).await?;
        let url = r.url().to_string();
        let bytes = read_limited(r, MAX_JSON, "JSON answer").await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Malformed {
            url,
            what: "JSON answer",
            message: e.to_string(),
        })
    }

    pub async fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, ClientError> {
        let mut out = Vec::new();
        for batch in digests.chunks(10_000) {
            let body = Digests {
                digests: batch.to_vec(),
            };
            let r: Digests = self
                .json("POST", self.at(&["v1", "chunks", "missing"]), |r| r.json(&body))
                .await?;
            out.extend(r.digests);
        }
        Ok(out)
    }

    pub async fn put_pack(&self, body: Vec<u8>) -> Result<PackStored, ClientError> {
        let body = Bytes::from(body);
        self.json("POST", self.at(&["v1", "packs"]), |r| {
            r.header("content-type", "application/octet-stream").body(body.clone())
        })
        .await
    }

    /// The chunks `digests`, as a pack whose records are in the order asked.
    pub async fn get_chunks(&self, digests: &[Digest]) -> Result<Bytes, ClientError> {
        let body = Digests {
            digests: digests.to_vec(),
        };
        let r = self
            .send("POST", self.at(&["v1", "chunks", "batch"]), |r| r.json(&body))
            .await?;
        let limit = PACK_MAGIC.len() as u64 + digests.len() as u64 * (RECORD_HEADER + MAX_FRAME) as u64;
        read_limited(r, limit, "batch of chunks").await
    }

    /// The chunks `chunks` (of `length` bytes in all) as one zstd frame compressed against the
    /// chunks `base` (SPEC.md §4.2); the answer is read up to the frame bound of that length.
    pub async fn get_delta(&self, base: &[Digest], chunks: &[Digest], length: u64) -> Result<Bytes, ClientError> {
        let body = rel_format::api::DeltaRequest {
            base: base.to_vec(),
            chunks: chunks.to_vec(),
        };
        let r = self
            .send("POST", self.at(&["v1", "chunks", "delta"]), |r| r.json(&body))
            .await?;
        let limit = rel_format::chunk::frame_bound(usize::try_from(length).unwrap_or(usize::MAX)) as u64;
        read_limited(r, limit, "delta").await
    }

    pub async fn put_manifest(&self, envelope: Vec<u8>) -> Result<Stored, ClientError> {
        let envelope = Bytes::from(envelope);
        self.json("PUT", self.at(&["v1", "manifests"]), |r| {
            r.header("content-type", "application/json").body(envelope.clone())
        })
        .await
    }

    pub async fn release_manifest(&self, name: &str, version: &Version) -> Result<Bytes, ClientError> {
        self.bytes(
            self.at(&["v1", "releases", name, "versions", version.as_str(), "release"]),
            MAX_MANIFEST_BYTES as u64,
            "manifest",
        )
        .await
    }

    pub async fn upgrade_manifest(&self, name: &str, version: &Version, from: &Version) -> Result<Bytes, ClientError> {
        self.bytes(
            endpoint(
                &self.base,
                &["v1", "releases", name, "versions", version.as_str(), "upgrade"],
                &[("from", from.as_str())],
            ),
            MAX_MANIFEST_BYTES as u64,
            "manifest",
        )
        .await
    }

    /// The registry's identity (`GET /v1/registry`).
    pub async fn registry(&self) -> Result<rel_format::api::RegistryInfo, ClientError> {
        self.json("GET", self.at(&["v1", "registry"]), |r| r).await
    }

    pub async fn names(&self) -> Result<ReleaseNames, ClientError> {
        self.json("GET", self.at(&["v1", "releases"]), |r| r).await
    }

    pub async fn versions(&self, name: &str) -> Result<VersionList, ClientError> {
        self.json("GET", self.at(&["v1", "releases", name]), |r| r).await
    }

    pub async fn path(&self, name: &str, from: &Version, to: &Version) -> Result<Plan, ClientError> {
        let url = endpoint(
            &self.base,
            &["v1", "releases", name, "upgrade-path"],
            &[("from", from.as_str()), ("to", to.as_str())],
        );
        self.json("GET", url, |r| r).await
    }

    pub async fn channel(&self, name: &str, channel: &str) -> Result<Bytes, ClientError> {
        self.bytes(
            self.at(&["v1", "releases", name, "channels", channel]),
            MAX_POINTER_BYTES as u64,
            "channel pointer",
        )
        .await
    }

    pub async fn put_channel(&self, name: &str, channel: &str, envelope: Vec<u8>) -> Result<(), ClientError> {
        let url = self.at(&["v1", "releases", name, "channels", channel]);
        let envelope = Bytes::from(envelope);
        self.send("PUT", url, |r| {
            r.header("content-type", "application/json").body(envelope.clone())
        })
        .await?;
        Ok(())
    }

    pub async fn yank(
        &self,
        name: &str,
        version: &Version,
        yanked: bool,
        upgrade_from: Option<Version>,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        let url = self.at(&["v1", "releases", name, "versions", version.as_str(), "yank"]);
        let yank = Yank {
            yanked,
            upgrade_from,
            reason,
        };
        self.send("PUT", url, |r| r.json(&yank)).await?;
        Ok(())
    }

    pub async fn gc(&self, req: GcRequest) -> Result<GcReport, ClientError> {
        self.json("POST", self.at(&["v1", "admin", "gc"]), |r| r.json(&req))
            .await
    }

    /// The stored manifest with the same identity as `m`.
    pub async fn release_or_upgrade(&self, m: &rel_format::Manifest) -> Result<Bytes, ClientError> {
        match m.kind {
            rel_format::Kind::Release => self.release_manifest(&m.name, &m.version).await,
            rel_format::Kind::Upgrade => self.upgrade_manifest(&m.name, &m.version, &m.from[0]).await,
        }
    }

    fn at(&self, segments: &[&str]) -> Url {
        endpoint(&self.base, segments, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_certificates_only_for_tls_to_the_registry_or_a_proxy() {
        let url = |u: &str| Url::parse(u).unwrap();
        let none = |_: &str| None;
        assert!(needs_roots(&url("https://rel.example.com"), none));
        assert!(!needs_roots(&url("http://127.0.0.1:7878"), none));
        let tls_proxy = |k: &str| (k == "http_proxy").then(|| " HTTPS://proxy:3128".to_owned());
        assert!(needs_roots(&url("http://127.0.0.1:7878"), tls_proxy));
        let plain_proxy = |k: &str| (k == "HTTP_PROXY").then(|| "http://proxy:3128".to_owned());
        assert!(!needs_roots(&url("http://127.0.0.1:7878"), plain_proxy));
    }
}
