//! In-process calls through the router, pack uploads and pushes, and a store on the real S3
//! server (moto) of `rel_testkit::s3`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use rel_format::chunk::ChunkRef;
use rel_registry::Store;
pub(crate) use rel_testkit::artifacts::{Artifact, artifact, key};
pub(crate) use rel_testkit::noise;
use rel_testkit::s3::Moto;
use tower::ServiceExt;

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request through the router, in-process.
pub(crate) async fn call(
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

/// `GET uri`, anonymous.
pub(crate) async fn get(app: &axum::Router, uri: &str) -> Reply {
    call(app, "GET", uri, None, &[], "").await
}

/// A pack body holding `chunks` (compressed frames).
pub(crate) fn pack_of<'a>(chunks: impl IntoIterator<Item = &'a (ChunkRef, Vec<u8>)>) -> Vec<u8> {
    let mut w = rel_format::pack::PackWriter::new();
    for (c, frame) in chunks {
        w.push(c, frame);
    }
    w.finish()
}

/// Uploads `chunks` as one pack.
pub(crate) async fn upload(app: &axum::Router, token: Option<&str>, chunks: &[(ChunkRef, Vec<u8>)]) -> Reply {
    call(app, "POST", "/v1/packs", token, &[], pack_of(chunks)).await
}

/// `POST /v1/chunks/missing` for the digests of `chunks`.
pub(crate) async fn missing(app: &axum::Router, chunks: &[(ChunkRef, Vec<u8>)]) -> Reply {
    let digests: Vec<_> = chunks.iter().map(|(c, _)| c.digest.to_string()).collect();
    let body = serde_json::json!({ "digests": digests }).to_string();
    call(
        app,
        "POST",
        "/v1/chunks/missing",
        None,
        &[("content-type", "application/json".into())],
        body,
    )
    .await
}

/// Pushes an artifact's chunks (one pack) and manifest; returns the manifest reply.
pub(crate) async fn push(app: &axum::Router, token: Option<&str>, a: &Artifact) -> Reply {
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

pub(crate) fn s3_store(moto: &Moto) -> Store {
    let settings: BTreeMap<String, toml::Value> = moto
        .settings()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), toml::Value::String(v)))
        .collect();
    rel_registry::config::open_store(&format!("s3://{}/registry", moto.bucket), &settings).unwrap()
}
