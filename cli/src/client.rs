//! A typed client for the registry API (SPEC.md §7).

use std::time::Duration;

use bytes::Bytes;
use rel_format::api::{Digests, ErrorBody, GcReport, GcRequest, PackStored, ReleaseNames, Stored, VersionList, Yank};
use rel_format::upgrade_path::Plan;
use rel_format::{Digest, Version};
use reqwest::StatusCode;

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

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .expect("the HTTP client builds");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: &'static str,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("valid method"),
            &url,
        );
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

    async fn bytes(&self, path: &str) -> Result<Bytes, ClientError> {
        let r = self.send("GET", path, |r| r).await?;
        let url = r.url().to_string();
        r.bytes().await.map_err(|source| ClientError::Transport { url, source })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let r = self.send(method, path, build).await?;
        let url = r.url().to_string();
        r.json().await.map_err(|source| ClientError::Transport { url, source })
    }

    pub async fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, ClientError> {
        let mut out = Vec::new();
        for batch in digests.chunks(10_000) {
            let body = Digests {
                digests: batch.to_vec(),
            };
            let r: Digests = self.json("POST", "/v1/chunks/missing", |r| r.json(&body)).await?;
            out.extend(r.digests);
        }
        Ok(out)
    }

    pub async fn put_pack(&self, body: Vec<u8>) -> Result<PackStored, ClientError> {
        self.json("POST", "/v1/packs", |r| {
            r.header("content-type", "application/octet-stream").body(body)
        })
        .await
    }

    /// The chunks `digests`, as a pack whose records are in the order asked.
    pub async fn get_chunks(&self, digests: &[Digest]) -> Result<Bytes, ClientError> {
        let body = Digests {
            digests: digests.to_vec(),
        };
        let r = self.send("POST", "/v1/chunks/batch", |r| r.json(&body)).await?;
        let url = r.url().to_string();
        r.bytes().await.map_err(|source| ClientError::Transport { url, source })
    }

    pub async fn put_manifest(&self, envelope: Vec<u8>) -> Result<Stored, ClientError> {
        self.json("PUT", "/v1/manifests", |r| {
            r.header("content-type", "application/json").body(envelope)
        })
        .await
    }

    pub async fn release_manifest(&self, name: &str, version: &Version) -> Result<Bytes, ClientError> {
        self.bytes(&format!(
            "/v1/releases/{}/versions/{}/release",
            enc(name),
            enc(version.as_str())
        ))
        .await
    }

    pub async fn upgrade_manifest(&self, name: &str, version: &Version, from: &Version) -> Result<Bytes, ClientError> {
        self.bytes(&format!(
            "/v1/releases/{}/versions/{}/upgrade?from={}",
            enc(name),
            enc(version.as_str()),
            enc(from.as_str())
        ))
        .await
    }

    pub async fn names(&self) -> Result<ReleaseNames, ClientError> {
        self.json("GET", "/v1/releases", |r| r).await
    }

    pub async fn versions(&self, name: &str) -> Result<VersionList, ClientError> {
        self.json("GET", &format!("/v1/releases/{}", enc(name)), |r| r).await
    }

    pub async fn path(&self, name: &str, from: &Version, to: &Version) -> Result<Plan, ClientError> {
        let path = format!(
            "/v1/releases/{}/upgrade-path?from={}&to={}",
            enc(name),
            enc(from.as_str()),
            enc(to.as_str())
        );
        self.json("GET", &path, |r| r).await
    }

    pub async fn channel(&self, name: &str, channel: &str) -> Result<Bytes, ClientError> {
        self.bytes(&format!("/v1/releases/{}/channels/{}", enc(name), enc(channel)))
            .await
    }

    pub async fn put_channel(&self, name: &str, channel: &str, envelope: Vec<u8>) -> Result<(), ClientError> {
        let path = format!("/v1/releases/{}/channels/{}", enc(name), enc(channel));
        self.send("PUT", &path, |r| {
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
        let path = format!("/v1/releases/{}/versions/{}/yank", enc(name), enc(version.as_str()));
        self.send("PUT", &path, |r| r.json(&Yank { yanked, upgrade_from }))
            .await?;
        Ok(())
    }

    pub async fn gc(&self, req: GcRequest) -> Result<GcReport, ClientError> {
        self.json("POST", "/v1/admin/gc", |r| r.json(&req)).await
    }
}
