//! The HTTP API in-process (`oneshot`) over an in-memory store.

use std::sync::Arc;

use crate::support::{Artifact, artifact, call, get, key, missing, noise, pack_of, push, upload};
use rel_format::Kind;
use rel_format::channel::{CHANNEL_SCHEMA, ChannelPointer, SignedChannel};
use rel_format::chunk::decompress_chunk;
use rel_registry::{AppState, Options, Store, app};

fn memory() -> Store {
    Store::new(Arc::new(object_store::memory::InMemory::new()), "memory://")
}

fn open_app() -> axum::Router {
    app(AppState::new(memory(), Options::default()))
}

/// The status of `GET /v1/chunks/{digest}`.
async fn chunk_status(app: &axum::Router, digest: &rel_format::Digest) -> axum::http::StatusCode {
    call(app, "GET", &format!("/v1/chunks/{digest}"), None, &[], "")
        .await
        .status
}

/// One garbage collection run with the registry's defaults; its report.
async fn gc(app: &axum::Router) -> serde_json::Value {
    call(app, "POST", "/v1/admin/gc", None, &[], "").await.json()
}

/// A registry on `store` whose garbage collection sweeps at once (no grace period).
fn collecting(store: &Store) -> axum::Router {
    let options = Options {
        gc_grace: std::time::Duration::from_secs(0),
        ..Options::default()
    };
    app(AppState::new(store.clone(), options))
}

fn release(version: &str, seed: u64) -> Artifact {
    artifact("demo", version, Kind::Release, &[], &noise(seed, 200_000), &key("ci"))
}

#[tokio::test]
async fn push_is_content_first_and_write_once() {
    let app = open_app();
    let a = release("0.1.0+20240101-381-eddcacc", 1);

    // The manifest alone is refused and the missing chunks are named.
    let r = call(&app, "PUT", "/v1/manifests", None, &[], a.envelope.clone()).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "missing_chunks");
    assert_eq!(r.json()["missing"].as_array().unwrap().len(), a.chunks.len());

    let r = push(&app, None, &a).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["kind"], "release");

    // Same name, version and kind again: 409, and the stored manifest is untouched.
    let again = release("0.1.0+20240101-381-eddcacc", 2);
    let r = push(&app, None, &again).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("already stored"));
    let r = get(&app, "/v1/releases/demo/versions/0.1.0+20240101-381-eddcacc/release").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.as_ref(),
        a.envelope.as_slice(),
        "stored bytes are the canonical envelope of the first push"
    );

    // Every chunk of the stored manifest is now reported present.
    let r = missing(&app, &a.chunks).await;
    assert_eq!(r.json()["digests"], serde_json::json!([]));
}

#[tokio::test]
async fn packs_are_verified_before_they_are_stored() {
    let app = open_app();
    let a = release("1.0.0", 3);
    let (c, data) = &a.chunks[0];
    let post = |body: Vec<u8>| {
        let app = app.clone();
        async move { call(&app, "POST", "/v1/packs", None, &[], body).await }
    };
    // Another chunk's bytes under this digest: the whole pack is refused, naming the chunk.
    let swapped = (c.clone(), a.chunks[1].1.clone());
    let r = post(pack_of([&a.chunks[2], &swapped])).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains(&c.digest.to_string()), "{}", r.text());
    // Wrong declared length.
    let longer = (
        rel_format::chunk::ChunkRef {
            digest: c.digest,
            length: c.length + 1,
        },
        data.clone(),
    );
    assert_eq!(post(pack_of([&longer])).await.status, 422);
    // Not zstd at all.
    let garbage = (c.clone(), b"garbage".to_vec());
    assert_eq!(post(pack_of([&garbage])).await.status, 422);
    // Not a pack; cut short; empty.
    let good = pack_of([&a.chunks[0]]);
    for (body, says) in [
        (b"PK\x03\x04".to_vec(), "RELPACK1"),
        (good[..good.len() - 3].to_vec(), "cut short"),
        (b"RELPACK1".to_vec(), "no chunks"),
    ] {
        let r = post(body).await;
        assert_eq!(
            (r.status.as_u16(), r.json()["code"].as_str()),
            (422, Some("invalid")),
            "{}",
            r.text()
        );
        assert!(r.text().contains(says), "{says}: {}", r.text());
    }
    // A bad digest text on download.
    let r = get(&app, "/v1/chunks/sha256:zz").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["code"].as_str()),
        (400, Some("bad_request"))
    );
    // Nothing was stored by the refusals.
    for (c, _) in &a.chunks {
        assert_eq!(chunk_status(&app, &c.digest).await, 404);
    }
    // Arriving in pieces that cut records (headers and frames) anywhere: a bad frame is
    // still found, and a good pack is taken whole.
    let in_pieces = |body: Vec<u8>| {
        let mut pieces = Vec::new();
        let mut rest = &body[..];
        for n in [1, 7, 40, 3, 1000, 41, 5].into_iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(n.min(rest.len()));
            pieces.push(Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(piece)));
            rest = after;
        }
        axum::body::Body::from_stream(futures::stream::iter(pieces))
    };
    let r = call(
        &app,
        "POST",
        "/v1/packs",
        None,
        &[],
        in_pieces(pack_of([&a.chunks[2], &swapped])),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains(&c.digest.to_string()), "{}", r.text());
    let whole = pack_of(a.chunks.iter().rev());
    let r = call(&app, "POST", "/v1/packs", None, &[], in_pieces(whole.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let records = rel_format::pack::parse_pack(&whole).unwrap();
    assert_eq!(r.json()["pack"], rel_format::pack::pack_id(&records).to_string());
    for (c, frame) in &a.chunks {
        let r = get(&app, &format!("/v1/chunks/{}", c.digest)).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &frame[..]), "{}", c.digest);
    }

    // The right bytes: 201 naming the pack and its distinct chunks, then 200 when sent again.
    let body = pack_of(a.chunks.iter().chain([&a.chunks[0]]));
    let r = post(body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["chunks"], a.chunks.len());
    let records = rel_format::pack::parse_pack(&body).unwrap();
    assert_eq!(r.json()["pack"], rel_format::pack::pack_id(&records).to_string());
    assert_eq!(post(body).await.status, 200);
    // Each chunk is served as its own frame, with immutable caching.
    for (c, frame) in &a.chunks {
        let response = tower::ServiceExt::oneshot(
            app.clone(),
            axum::http::Request::get(format!("/v1/chunks/{}", c.digest))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let got = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&got[..], &frame[..]);
    }
}

#[tokio::test]
async fn versions_are_listed_in_rel_order_with_upgrade_paths() {
    let app = open_app();
    let (v1, v2, v3) = (
        "0.1.0+20240101-381-eddcacc",
        "0.1.0+20240101-1000-49ab6e0",
        "0.2.0+20240110-1012-77aa0c1",
    );
    // Pushed out of order.
    for (i, v) in [v3, v1, v2].iter().enumerate() {
        assert_eq!(push(&app, None, &release(v, 10 + i as u64)).await.status, 201);
    }
    let up12 = artifact("demo", v2, Kind::Upgrade, &[v1], &noise(20, 30_000), &key("ci"));
    let up23 = artifact("demo", v3, Kind::Upgrade, &[v2], &noise(21, 30_000), &key("ci"));
    assert_eq!(push(&app, None, &up12).await.status, 201);
    assert_eq!(push(&app, None, &up23).await.status, 201);

    let r = get(&app, "/v1/releases/demo").await;
    let listed: Vec<String> = r.json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        vec![v1, v2, v3],
        "string order would put the 1000-commit build first"
    );

    let path = format!("/v1/releases/demo/upgrade-path?from={}&to={}", enc(v1), enc(v3));
    let r = get(&app, &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = r.json();
    assert_eq!(plan["strategy"], "hot-upgrade");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 2);
    assert_eq!(plan["steps"][0]["to"], v2);
    assert_eq!(plan["total_bytes"], up12.manifest.tar.length + up23.manifest.tar.length);

    // The upgrade manifest is found by its from-version.
    let r = get(
        &app,
        &format!("/v1/releases/demo/versions/{}/upgrade?from={}", enc(v2), enc(v1)),
    )
    .await;
    assert_eq!(r.body.as_ref(), up12.envelope.as_slice());
    let r = get(
        &app,
        &format!("/v1/releases/demo/versions/{}/upgrade?from={}", enc(v3), enc(v1)),
    )
    .await;
    assert_eq!(r.status, 404);

    // Yanking v2 breaks the chain: with both releases stored, a host running v1 builds the
    // upgrade itself, fetching what v3 adds to v1. A reason is one short line.
    let yank = |body: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                "PUT",
                &format!("/v1/releases/demo/versions/{}/yank", enc(v2)),
                None,
                &[("content-type", "application/json".into())],
                body,
            )
            .await
        }
    };
    for bad in ["x".repeat(501), "two\nlines".into(), " ".into()] {
        let r = yank(serde_json::json!({"yanked": true, "reason": bad}).to_string()).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    assert_eq!(
        get(&app, "/v1/releases/demo").await.json()["versions"][1]["yanked"],
        false
    );
    let r = yank(r#"{"yanked":true,"reason":"loses sessions on upgrade (#412)"}"#.into()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = get(&app, &path).await.json();
    assert_eq!(plan["strategy"], "synthesised", "{plan}");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .contains("builds the upgrade from them"),
        "{plan}"
    );
    let listing = get(&app, "/v1/releases/demo").await.json();
    let full = listing["versions"][2]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "release")
        .unwrap()["bytes"]
        .as_u64()
        .unwrap();
    let fetched = plan["total_bytes"].as_u64().unwrap();
    // These releases are noise and share no chunk: the delta is all of v3.
    assert_eq!(fetched, full);
    assert_eq!(plan["steps"][0]["bytes"].as_u64(), Some(fetched));
    let listing = get(&app, "/v1/releases/demo").await.json();
    assert_eq!(listing["versions"][1]["yanked"], true);
    assert_eq!(
        listing["versions"][1]["yank_reason"],
        "loses sessions on upgrade (#412)"
    );
    // A yanked target is refused.
    let to_yanked = format!("/v1/releases/demo/upgrade-path?from={}&to={}", enc(v1), enc(v2));
    assert_eq!(get(&app, &to_yanked).await.status, 409);
}

fn enc(v: &str) -> String {
    v.replace('+', "%2B")
}

fn pointer(version: &str, seq: u64, registry: &str) -> Vec<u8> {
    let p = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        name: "demo".into(),
        channel: "production".into(),
        registry: registry.into(),
        version: version.parse().unwrap(),
        sequence: seq,
        expires: "2099-01-01T00:00:00Z".parse().unwrap(),
        created: "2026-01-01T00:00:00Z".parse().unwrap(),
    };
    SignedChannel::sign(p, &key("ci")).unwrap().to_bytes()
}

#[tokio::test]
async fn channels_move_by_growing_sequence_only() {
    let app = open_app();
    push(&app, None, &release("1.0.0", 30)).await;
    push(&app, None, &release("1.1.0", 31)).await;
    let url = "/v1/releases/demo/channels/production";
    let registry = get(&app, "/v1/registry").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&app, url).await.status, 404);
    // A pointer signed for another registry is refused.
    let r = call(
        &app,
        "PUT",
        url,
        None,
        &[],
        pointer("1.0.0", 1, "0123456789abcdef0123456789abcdef"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("signed for registry"), "{}", r.text());
    assert_eq!(
        call(&app, "PUT", url, None, &[], pointer("1.0.0", 1, &registry))
            .await
            .status,
        200
    );
    let r = call(&app, "PUT", url, None, &[], pointer("1.1.0", 1, &registry)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("must carry 2, not 1"), "{}", r.text());
    assert_eq!(
        call(&app, "PUT", url, None, &[], pointer("1.1.0", 2, &registry))
            .await
            .status,
        200
    );
    let r = get(&app, url).await;
    let (env, _) =
        SignedChannel::verify_signature(&r.body, &rel_format::TrustedKeys::new([key("ci").public()])).unwrap();
    assert_eq!((env.signed.version.as_str(), env.signed.sequence), ("1.1.0", 2));
    let listing = get(&app, "/v1/releases/demo").await.json();
    assert_eq!(listing["versions"][1]["channels"], serde_json::json!(["production"]));
    // A version that is not stored cannot be promoted.
    assert_eq!(
        call(&app, "PUT", url, None, &[], pointer("9.9.9", 3, &registry))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn publisher_keys_are_enforced() {
    let options = Options {
        publishers: rel_format::TrustedKeys::new([key("ci").public()]),
        ..Options::default()
    };
    let app = app(AppState::new(memory(), options));
    let rogue = artifact("demo", "1.0.0", Kind::Release, &[], &noise(40, 50_000), &key("rogue"));
    let r = push(&app, None, &rogue).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("not signed by any trusted key (signed by: rogue; trusted: ci)"),
        "{}",
        r.text()
    );
    assert_eq!(push(&app, None, &release("1.0.0", 41)).await.status, 201);
    let r = push(
        &app,
        None,
        &Artifact {
            envelope: tamper(&release("1.0.1", 42).envelope),
            ..release("1.0.1", 42)
        },
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

fn tamper(envelope: &[u8]) -> Vec<u8> {
    String::from_utf8(envelope.to_vec())
        .unwrap()
        .replace("rel tests", "rel tEsts")
        .into_bytes()
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let app = open_app();
    for (method, uri, status) in [
        ("GET", "/v1/releases/..%2Fetc", 400),
        ("GET", "/v1/releases/demo/versions/1.0%2F..%2Fx/release", 400),
        ("GET", "/v1/releases/demo/upgrade-path?from=1&to=", 400),
        ("GET", "/v1/releases/nothing", 404),
        ("GET", "/v1/nowhere", 404),
        ("PUT", "/v1/manifests", 422),
    ] {
        let r = call(&app, method, uri, None, &[], "{}").await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text());
        let body = r.json();
        assert!(body["code"].is_string() && body["message"].is_string(), "{body}");
    }
    let huge = vec![b'{'; 40 << 20];
    let r = call(&app, "PUT", "/v1/manifests", None, &[], huge).await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn operations_endpoints() {
    let app = open_app();
    assert_eq!(get(&app, "/healthz").await.text(), "ok\n");
    push(&app, None, &release("1.0.0", 50)).await;
    let metrics = get(&app, "/metrics").await.text();
    assert!(
        metrics.contains("rel_manifests_stored_total{kind=\"release\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rel_http_requests_total{method=\"POST\",route=\"/v1/packs\",status=\"201\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn garbage_collection_marks_then_sweeps_and_spares_pushes() {
    let store = memory();
    let app = collecting(&store);
    let kept = release("1.0.0", 60);
    assert_eq!(push(&app, None, &kept).await.status, 201);
    // An abandoned push: chunks without a manifest, in a pack of their own and in a pack
    // shared with a chunk the stored release references.
    let orphan = release("2.0.0", 61);
    let half = orphan.chunks.len() / 2;
    assert_eq!(upload(&app, None, &orphan.chunks[..half]).await.status, 201);
    let mut mixed = orphan.chunks[half..].to_vec();
    mixed.push(kept.chunks[0].clone());
    assert_eq!(upload(&app, None, &mixed).await.status, 201);
    // Times are compared in whole seconds (S3 reports no finer), and a chunk written in the
    // mark's second counts as refreshed; step past it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let first = gc(&app).await;
    assert_eq!(first["chunks_deleted"], 0, "the first run only marks: {first}");
    // A push of the orphan's content now is told to re-upload the marked chunks...
    let missing = missing(&app, &orphan.chunks).await.json();
    assert_eq!(missing["digests"].as_array().unwrap().len(), orphan.chunks.len());
    // ...and one chunk re-uploaded after the mark survives the sweep, the rest go.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let c = &orphan.chunks[0].0;
    assert_eq!(upload(&app, None, &orphan.chunks[..1]).await.status, 201);
    let second = gc(&app).await;
    assert_eq!(
        (
            second["chunks_deleted"].as_u64().unwrap(),
            second["packs_deleted"].as_u64().unwrap(),
            second["packs_rewritten"].as_u64().unwrap()
        ),
        (orphan.chunks.len() as u64 - 1, 1, 1),
        "{second}"
    );
    assert_eq!(chunk_status(&app, &c.digest).await, 200);
    for (c, _) in &orphan.chunks[1..] {
        assert_eq!(chunk_status(&app, &c.digest).await, 404, "{c:?} survived");
    }
    let packs = store.list("packs").await.unwrap();
    assert_eq!(
        packs.len(),
        2 * 3,
        "kept, rewritten and re-uploaded packs, each with its index"
    );
    // The stored release is whole.
    for (c, _) in &kept.chunks {
        assert_eq!(chunk_status(&app, &c.digest).await, 200);
    }
}

#[tokio::test]
async fn a_yanked_upgrade_can_be_replaced_but_a_release_never() {
    let store = memory();
    let app = app(AppState::new(store.clone(), Options::default()));
    push(&app, None, &release("1.0.0", 70)).await;
    push(&app, None, &release("2.0.0", 71)).await;
    let bad = artifact(
        "demo",
        "2.0.0",
        Kind::Upgrade,
        &["1.0.0"],
        &noise(72, 20_000),
        &key("ci"),
    );
    let fixed = artifact(
        "demo",
        "2.0.0",
        Kind::Upgrade,
        &["1.0.0"],
        &noise(73, 20_000),
        &key("ci"),
    );
    assert_eq!(push(&app, None, &bad).await.status, 201);
    let r = push(&app, None, &fixed).await;
    assert_eq!(r.status, 409);
    assert!(
        r.text().contains("to replace a bad upgrade, yank it first"),
        "{}",
        r.text()
    );

    let path = "/v1/releases/demo/upgrade-path?from=1.0.0&to=2.0.0";
    assert_eq!(get(&app, path).await.json()["strategy"], "hot-upgrade");
    let yank = r#"{"yanked":true,"upgrade_from":"1.0.0"}"#;
    let r = call(
        &app,
        "PUT",
        "/v1/releases/demo/versions/2.0.0/yank",
        None,
        &[("content-type", "application/json".into())],
        yank,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The yanked upgrade is listed as such and no longer part of a path.
    assert_eq!(get(&app, path).await.json()["strategy"], "synthesised");
    let listing = get(&app, "/v1/releases/demo").await.json();
    let yanked: Vec<bool> = listing["versions"][1]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["yanked"].as_bool().unwrap_or(false))
        .collect();
    assert!(yanked.contains(&true), "{listing}");

    // The corrected upgrade replaces it; the bad one is archived.
    assert_eq!(push(&app, None, &fixed).await.status, 201);
    assert_eq!(get(&app, path).await.json()["strategy"], "hot-upgrade");
    let served = get(&app, "/v1/releases/demo/versions/2.0.0/upgrade?from=1.0.0").await;
    assert_eq!(served.body.as_ref(), fixed.envelope.as_slice());
    let archived = store.list("replaced/demo").await.unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(
        store.get(&archived[0].key).await.unwrap().bytes.as_ref(),
        bad.envelope.as_slice()
    );
    // Replacing needs a new yank.
    assert_eq!(push(&app, None, &bad).await.status, 409);

    // A yanked release stays what it was.
    let r = call(
        &app,
        "PUT",
        "/v1/releases/demo/versions/2.0.0/yank",
        None,
        &[("content-type", "application/json".into())],
        r#"{"yanked":true}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(push(&app, None, &release("2.0.0", 74)).await.status, 409);
}

#[tokio::test]
async fn replicas_find_each_others_packs_and_follow_collection() {
    let store = memory();
    let (a, b) = (collecting(&store), collecting(&store));
    let kept = release("1.0.0", 80);
    // B has listed the store before A stores anything...
    assert_eq!(chunk_status(&b, &kept.chunks[0].0.digest).await, 404);
    assert_eq!(upload(&a, None, &kept.chunks).await.status, 201);
    // ...and still accepts a manifest naming A's chunks at once, and serves them.
    let r = call(&b, "PUT", "/v1/manifests", None, &[], kept.envelope.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    for (c, _) in &kept.chunks {
        assert_eq!(chunk_status(&b, &c.digest).await, 200);
    }
    // A pack mixing an abandoned push with a kept chunk, which B serves from it.
    let orphan = release("2.0.0", 81);
    let mut mixed = orphan.chunks.clone();
    mixed.push(kept.chunks[0].clone());
    assert_eq!(upload(&a, None, &mixed).await.status, 201);
    assert_eq!(chunk_status(&b, &orphan.chunks[0].0.digest).await, 200);
    // A collects: the mixed pack is rewritten without the abandoned chunks.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    gc(&a).await;
    let report = gc(&a).await;
    assert_eq!(report["packs_rewritten"], 1, "{report}");
    // B's cached locations point at the deleted pack: it lists again and finds the new one.
    assert_eq!(chunk_status(&b, &kept.chunks[0].0.digest).await, 200);
    assert_eq!(chunk_status(&b, &orphan.chunks[0].0.digest).await, 404);
}

#[tokio::test]
async fn batches_come_back_as_one_pack_in_the_order_asked() {
    let app = open_app();
    let a = release("1.0.0", 90);
    let b = release("2.0.0", 91);
    assert_eq!(upload(&app, None, &a.chunks).await.status, 201);
    assert_eq!(upload(&app, None, &b.chunks).await.status, 201);
    // Across two packs, out of their order, one chunk twice.
    let asked: Vec<_> = [
        &b.chunks[1],
        &a.chunks[0],
        &a.chunks[1],
        &a.chunks[2],
        &b.chunks[0],
        &a.chunks[0],
    ]
    .into_iter()
    .cloned()
    .collect();
    let body = serde_json::json!({ "digests": asked.iter().map(|(c, _)| c.digest.to_string()).collect::<Vec<_>>() });
    let json = [("content-type", "application/json".to_owned())];
    let r = call(&app, "POST", "/v1/chunks/batch", None, &json, body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let records = rel_format::pack::parse_pack(&r.body).unwrap();
    assert_eq!(records.len(), asked.len());
    for (record, (c, frame)) in records.iter().zip(&asked) {
        assert_eq!((record.digest, u64::from(record.length)), (c.digest, c.length));
        assert_eq!(&r.body[record.offset as usize..][..record.size as usize], &frame[..]);
    }
    // One unknown chunk: 404 naming it, nothing else.
    let unknown = rel_format::Digest::of(b"never stored");
    let body = serde_json::json!({ "digests": [a.chunks[0].0.digest.to_string(), unknown.to_string()] });
    let r = call(&app, "POST", "/v1/chunks/batch", None, &json, body.to_string()).await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains(&unknown.to_string()), "{}", r.text());
    // Too many at once.
    let many = vec![unknown.to_string(); rel_format::api::MAX_BATCH + 1];
    let body = serde_json::json!({ "digests": many });
    let r = call(&app, "POST", "/v1/chunks/batch", None, &json, body.to_string()).await;
    assert_eq!(r.status, 413, "{}", r.text());
}

#[tokio::test]
async fn deltas_give_the_chunks_against_the_base_and_are_bounded() {
    let store = memory();
    let app = app(AppState::new(store.clone(), Options::default()));
    let old = noise(92, 300_000);
    // The next version: a few bytes changed here and there, a few inserted.
    let mut new = old.clone();
    for at in [10_000, 90_000, 200_000] {
        new[at..at + 8].copy_from_slice(b"changed!");
    }
    new.splice(150_000..150_000, *b"inserted");
    let a = artifact("demo", "1.0.0", Kind::Release, &[], &old, &key("ci"));
    let b = artifact("demo", "2.0.0", Kind::Release, &[], &new, &key("ci"));
    assert_eq!(upload(&app, None, &a.chunks).await.status, 201);
    assert_eq!(upload(&app, None, &b.chunks).await.status, 201);
    let held: std::collections::HashSet<_> = a.chunks.iter().map(|(c, _)| c.digest).collect();
    let wanted: Vec<_> = b.chunks.iter().filter(|(c, _)| !held.contains(&c.digest)).collect();
    assert!(
        wanted.len() >= 3 && wanted.len() < b.chunks.len(),
        "{} of {}",
        wanted.len(),
        b.chunks.len()
    );
    let json = [("content-type", "application/json".to_owned())];
    let ask = |base: Vec<String>, chunks: Vec<String>| {
        let app = app.clone();
        let body = serde_json::json!({ "base": base, "chunks": chunks }).to_string();
        let json = json.clone();
        async move { call(&app, "POST", "/v1/chunks/delta", None, &json, body).await }
    };
    let names = |chunks: &[&(rel_format::chunk::ChunkRef, Vec<u8>)]| {
        chunks.iter().map(|(c, _)| c.digest.to_string()).collect::<Vec<_>>()
    };
    let base: Vec<_> = a.chunks.iter().collect();
    let r = ask(names(&base), names(&wanted)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.body.clone();
    let base_data: Vec<u8> = base.iter().flat_map(|(c, f)| decompress_chunk(c, f).unwrap()).collect();
    let refs: Vec<_> = wanted.iter().map(|(c, _)| c.clone()).collect();
    let got = rel_format::delta::decode(&base_data, &r.body, &refs).unwrap();
    let whole: usize = wanted.iter().map(|(_, frame)| frame.len()).sum();
    assert!(
        r.body.len() * 20 < whole,
        "a delta of {} bytes for {whole} bytes of frames",
        r.body.len()
    );
    for (data, (c, frame)) in got.iter().zip(&wanted) {
        assert_eq!(data, &decompress_chunk(c, frame).unwrap());
    }

    let unknown = rel_format::Digest::of(b"never stored").to_string();
    // A base chunk not stored: 404 naming it; nothing asked for: 400.
    let r = ask(vec![unknown.clone()], names(&wanted)).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains(&unknown) && r.text().contains("base"), "{}", r.text());
    assert_eq!(ask(names(&base), vec![]).await.status, 400);
    // Over 1,024 chunks, or over 4 MiB (one chunk named many times): refused before reading.
    let many = vec![unknown; rel_format::delta::MAX_DELTA_CHUNKS + 1];
    assert_eq!(ask(many, names(&wanted)).await.status, 413);
    let big = vec![names(&base)[0].clone(); 1000];
    let r = ask(names(&base), big).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["code"].as_str()),
        (413, Some("too_large")),
        "{}",
        r.text()
    );
    assert!(r.text().contains("wanted"), "{}", r.text());

    // Asked again, it is not computed again: with every pack gone from the store, the same
    // request still has its answer, and another one needing the same chunks has none.
    for listed in store.list("packs").await.unwrap() {
        store.delete(&listed.key).await.unwrap();
    }
    let again = ask(names(&base), names(&wanted)).await;
    assert_eq!((again.status.as_u16(), &again.body), (200, &first));
    let reversed: Vec<_> = base.iter().rev().copied().collect();
    assert_ne!(ask(names(&reversed), names(&wanted)).await.status, 200);
}

#[tokio::test]
async fn a_pack_left_without_its_index_is_collected_after_the_grace_period() {
    let store = memory();
    let app = collecting(&store);
    let kept = release("1.0.0", 95);
    assert_eq!(push(&app, None, &kept).await.status, 201);
    // An upload that stopped between the pack and its index.
    let stray = object_store::path::Path::from("packs/ab/abandoned.pack");
    let body = pack_of(&release("2.0.0", 96).chunks);
    store
        .put_create(&stray, bytes::Bytes::from(body.clone()))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = gc(&app).await;
    assert_eq!(report["packs_deleted"], 1, "{report}");
    assert_eq!(report["bytes_deleted"], body.len(), "{report}");
    assert!(!store.exists(&stray).await.unwrap());
    // The indexed pack stays.
    for (c, _) in &kept.chunks {
        assert_eq!(chunk_status(&app, &c.digest).await, 200);
    }
}

#[tokio::test]
async fn a_replica_with_a_stale_index_accepts_no_manifest_naming_collected_chunks() {
    let store = memory();
    let (a, b) = (collecting(&store), collecting(&store));
    let json = [("content-type", "application/json".to_owned())];
    // An abandoned push through A; B reads its index by serving a chunk of it.
    let orphan = release("2.0.0", 97);
    assert_eq!(upload(&a, None, &orphan.chunks).await.status, 201);
    let asked = serde_json::json!({ "digests": [orphan.chunks[0].0.digest.to_string()] }).to_string();
    assert_eq!(
        call(&b, "POST", "/v1/chunks/batch", None, &json, asked.clone())
            .await
            .status,
        200
    );
    // A collects it: marked, then swept.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    gc(&a).await;
    let swept = gc(&a).await;
    assert_eq!(swept["packs_deleted"], 1, "{swept}");
    // B still has the pack in its index; the manifest is refused all the same, naming the
    // chunks to upload again.
    let r = call(&b, "PUT", "/v1/manifests", None, &[], orphan.envelope.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["code"].as_str()),
        (422, Some("missing_chunks")),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["missing"].as_array().unwrap().len(), orphan.chunks.len());
    // Uploaded again through B, the push completes.
    assert_eq!(upload(&b, None, &orphan.chunks).await.status, 201);
    assert_eq!(
        call(&b, "PUT", "/v1/manifests", None, &[], orphan.envelope.clone())
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_batch_cut_short_by_a_sweep_succeeds_when_asked_again() {
    let store = memory();
    let (a, b) = (collecting(&store), collecting(&store));
    let kept = release("1.0.0", 98);
    let orphan = release("2.0.0", 99);
    let mut mixed = orphan.chunks.clone();
    mixed.push(kept.chunks[0].clone());
    assert_eq!(push(&a, None, &kept).await.status, 201);
    assert_eq!(upload(&a, None, &mixed).await.status, 201);
    // B points the kept chunk at the mixed pack, its newest.
    let asked = serde_json::json!({ "digests": [kept.chunks[0].0.digest.to_string()] }).to_string();
    let fetch = |app: axum::Router| {
        let asked = asked.clone();
        async move {
            let req = axum::http::Request::post("/v1/chunks/batch")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(asked))
                .unwrap();
            let response = tower::ServiceExt::oneshot(app, req).await.unwrap();
            assert_eq!(response.status(), 200);
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .map(|b| b.to_bytes())
        }
    };
    assert!(fetch(b.clone()).await.is_ok());
    // A rewrites the mixed pack without the abandoned chunks and deletes it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    gc(&a).await;
    let swept = gc(&a).await;
    assert_eq!(swept["packs_rewritten"], 1, "{swept}");
    // B's first answer is cut short; asked again, it reads the chunk where it is now.
    assert!(fetch(b.clone()).await.is_err(), "the stale read was not noticed");
    let body = fetch(b.clone()).await.unwrap();
    let records = rel_format::pack::parse_pack(&body).unwrap();
    assert_eq!(records[0].digest, kept.chunks[0].0.digest);
    assert_eq!(
        &body[records[0].offset as usize..][..records[0].size as usize],
        &kept.chunks[0].1[..]
    );
}

/// The OpenAPI document is generated (utoipa) and complete: every route the routers declare,
/// with each of its methods, is in it; every operation has a unique operationId, a tag, a
/// success and the errors it may answer; the API's need a token; every body has a schema and
/// every schema reference resolves.
#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = open_app();
    let doc = get(&app, "/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    // What the routers declare: `.route("PATH", get(..).head(..))`, read from their source.
    let routes = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");
    let mut declared = std::collections::BTreeSet::new();
    for file in std::fs::read_dir(routes).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for (_, line) in text.lines().filter_map(|l| l.split_once(".route(\"")) {
            let path = line.split('"').next().unwrap().to_owned();
            for method in ["get", "put", "post", "delete"] {
                if line.contains(&format!("{method}(")) {
                    declared.insert((method.to_owned(), path.clone()));
                }
            }
        }
    }
    assert!(declared.len() >= 19, "{declared:?}");
    let mut documented = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let what = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{what}: operationId {id} twice");
            assert!(op["tags"][0].is_string(), "{what}: no tag");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|k| k.starts_with('2')), "{what}: no success");
            assert!(responses.contains_key("503"), "{what}: no 503");
            if path.starts_with("/v1/") && !["/v1/registry", "/v1/openapi.json"].contains(&path.as_str()) {
                for status in ["400", "401", "403", "413"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what}: {status}"
                    );
                }
                assert!(op["security"][0]["token"].is_array(), "{what}: no token");
            }
            if ["put", "post"].contains(&method.as_str()) && path != "/v1/admin/gc" {
                assert!(op["requestBody"]["required"] == true, "{what}: no required body");
            }
        }
    }
    assert_eq!(declared, documented, "routes and the document differ");
    // Every reference resolves.
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
    }
    // The bodies' shapes are the types', e.g. a manifest envelope and a digest's pattern.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Digest"]["pattern"], "^sha256:[0-9a-f]{64}$");
    assert!(
        schemas["Manifest"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "tar")
    );
    assert_eq!(
        schemas["Strategy"]["enum"],
        serde_json::json!(["already-there", "hot-upgrade", "synthesised", "full-release"])
    );
}
