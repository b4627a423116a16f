//! A typed client for the registry API (SPEC.md §7).

use std::time::Duration;

use bytes::Bytes;
use rel_format::api::{Digests, ErrorBody, GcReport, GcRequest, PackStored, ReleaseNames, Stored, VersionList, Yank};
use rel_format::upgrade_path::Plan;
use rel_format::{Digest, Version};
use reqwest::{StatusCode, Url};

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("registry answered {status} to {method} {url}: {message}")]
    Api {
        method: &'static str,
        url: String,
        status: StatusCode,
        code: String,
        message: String,
        missing: Vec<Digest>,
    },
    #[error("cannot reach the registry at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport { .. } => None,
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

impl Client {
    pub fn new(base: &Url, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
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
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("valid method"),
            url.clone(),
        );
        let url = url.to_string();
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let response = build(req).send().await.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: ErrorBody = serde_json::from_str(&text).unwrap_or(ErrorBody {
            code: "http".into(),
            message: if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text
            },
            missing: vec![],
        });
        Err(ClientError::Api {
            method,
            url,
            status,
            code: body.code,
            message: body.message,
            missing: body.missing,
        })
    }

    async fn bytes(&self, url: Url) -> Result<Bytes, ClientError> {
        let r = self.send("GET", url, |r| r).await?;
        let url = r.url().to_string();
        r.bytes().await.map_err(|source| ClientError::Transport { url, source })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        url: Url,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let r = self.send(method, url, build).await?;
        let url = r.url().to_string();
        r.json().await.map_err(|source| ClientError::Transport { url, source })
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
        self.json("POST", self.at(&["v1", "packs"]), |r| {
            r.header("content-type", "application/octet-stream").body(body)
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
        let url = r.url().to_string();
        r.bytes().await.map_err(|source| ClientError::Transport { url, source })
    }

    pub async fn put_manifest(&self, envelope: Vec<u8>) -> Result<Stored, ClientError> {
        self.json("PUT", self.at(&["v1", "manifests"]), |r| {
            r.header("content-type", "application/json").body(envelope)
        })
        .await
    }

    pub async fn release_manifest(&self, name: &str, version: &Version) -> Result<Bytes, ClientError> {
        self.bytes(self.at(&["v1", "releases", name, "versions", version.as_str(), "release"]))
            .await
    }

    pub async fn upgrade_manifest(&self, name: &str, version: &Version, from: &Version) -> Result<Bytes, ClientError> {
        self.bytes(endpoint(
            &self.base,
            &["v1", "releases", name, "versions", version.as_str(), "upgrade"],
            &[("from", from.as_str())],
        ))
        .await
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
        self.bytes(self.at(&["v1", "releases", name, "channels", channel]))
            .await
    }

    pub async fn put_channel(&self, name: &str, channel: &str, envelope: Vec<u8>) -> Result<(), ClientError> {
        let url = self.at(&["v1", "releases", name, "channels", channel]);
        self.send("PUT", url, |r| {
            r.header("content-type", "application/json").body(envelope)
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
    ) -> Result<(), ClientError> {
        let url = self.at(&["v1", "releases", name, "versions", version.as_str(), "yank"]);
        self.send("PUT", url, |r| r.json(&Yank { yanked, upgrade_from }))
            .await?;
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
