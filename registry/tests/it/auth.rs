//! Every endpoint × every kind of caller gives the right status.

use std::sync::Arc;

use crate::support::{artifact, call, get, key, noise, push};
use rel_format::Kind;
use rel_format::channel::{CHANNEL_SCHEMA, ChannelPointer, SignedChannel};
use rel_registry::auth::Tokens;
use rel_registry::{AppState, Options, Store, app};

const TOKENS: [(&str, &str, &str, &str); 5] = [
    ("pull", "tok-pull", r#"["pull"]"#, r#"["demo"]"#),
    ("push", "tok-push", r#"["push"]"#, r#"["demo"]"#),
    ("admin", "tok-admin", r#"["admin"]"#, r#"["*"]"#),
    ("other", "tok-other", r#"["admin"]"#, r#"["other*"]"#),
    ("expired", "tok-expired", r#"["admin"]"#, r#"["*"]"#),
];

fn token_file(dir: &std::path::Path, anonymous_pull: bool, skip: &[&str]) -> std::path::PathBuf {
    let mut text = format!("anonymous_pull = {anonymous_pull}\n");
    for (name, secret, scopes, releases) in TOKENS {
        if skip.contains(&name) {
            continue;
        }
        let expires = if name == "expired" {
            "2020-01-01T00:00:00Z"
        } else {
            "2099-01-01T00:00:00Z"
        };
        let hash = rel_format::Digest::of(secret.as_bytes()).hex();
        text += &format!(
            "[[tokens]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nscopes = {scopes}\nreleases = {releases}\nexpires = \"{expires}\"\n"
        );
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup(anonymous_pull: bool) -> (axum::Router, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = token_file(dir.path(), anonymous_pull, &[]);
    let options = Options {
        tokens: Tokens::from_file(&path).unwrap(),
        ..Options::default()
    };
    let app = app(AppState::new(
        Store::new(Arc::new(object_store::memory::InMemory::new()), "memory://"),
        options,
    ));
    // Seed: release demo 1.0.0, pushed with admin rights.
    assert_eq!(push(&app, Some("tok-admin"), &release("1.0.0", 1)).await.status, 201);
    (app, dir, path)
}

fn release(v: &str, seed: u64) -> crate::support::Artifact {
    artifact("demo", v, Kind::Release, &[], &noise(seed, 20_000), &key("ci"))
}

fn pointer(seq: u64, registry: &str) -> Vec<u8> {
    let p = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        name: "demo".into(),
        channel: "staging".into(),
        registry: registry.into(),
        version: "1.0.0".parse().unwrap(),
        sequence: seq,
        expires: "2099-01-01T00:00:00Z".parse().unwrap(),
        created: "2026-01-01T00:00:00Z".parse().unwrap(),
    };
    SignedChannel::sign(p, &key("ci")).unwrap().to_bytes()
}

/// Callers, in the order of the status columns below.
const CALLERS: [Option<&str>; 5] = [
    None,
    Some("tok-pull"),
    Some("tok-push"),
    Some("tok-admin"),
    Some("tok-other"),
];

#[tokio::test]
async fn matrix() {
    let (app, _dir, _) = setup(false).await;
    let chunk = release("1.0.0", 1).chunks[0].clone();
    let chunk_url = format!("/v1/chunks/{}", chunk.0.digest);
    let missing_body = format!(r#"{{"digests":["{}"]}}"#, chunk.0.digest);

    // (method, uri, body, statuses for: none, pull, push, admin, other)
    type Row = (&'static str, String, Vec<u8>, [u16; 5]);
    let rows: Vec<Row> = vec![
        ("GET", "/healthz".into(), vec![], [200, 200, 200, 200, 200]),
        ("GET", "/v1/openapi.json".into(), vec![], [200, 200, 200, 200, 200]),
        ("GET", "/v1/registry".into(), vec![], [200, 200, 200, 200, 200]),
        ("GET", "/v1/releases".into(), vec![], [401, 200, 200, 200, 200]),
        ("GET", "/v1/releases/demo".into(), vec![], [401, 200, 200, 200, 403]),
        (
            "GET",
            "/v1/releases/demo/versions/1.0.0/release".into(),
            vec![],
            [401, 200, 200, 200, 403],
        ),
        (
            "GET",
            "/v1/releases/demo/versions/1.0.0/upgrade?from=0.9".into(),
            vec![],
            [401, 404, 404, 404, 403],
        ),
        (
            "GET",
            "/v1/releases/demo/upgrade-path?from=1.0.0&to=1.0.0".into(),
            vec![],
            [401, 200, 200, 200, 403],
        ),
        (
            "GET",
            "/v1/releases/demo/channels/staging".into(),
            vec![],
            [401, 404, 404, 404, 403],
        ),
        ("GET", chunk_url.clone(), vec![], [401, 200, 200, 200, 200]),
        ("HEAD", chunk_url.clone(), vec![], [401, 200, 200, 200, 200]),
        (
            "POST",
            "/v1/chunks/missing".into(),
            missing_body.clone().into_bytes(),
            [401, 403, 200, 200, 200],
        ),
        (
            "POST",
            "/v1/chunks/batch".into(),
            missing_body.into_bytes(),
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/v1/chunks/delta".into(),
            format!(r#"{{"base":["{0}"],"chunks":["{0}"]}}"#, chunk.0.digest).into_bytes(),
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/v1/packs".into(),
            crate::support::pack_of([&chunk]),
            [401, 403, 201, 200, 200],
        ),
        (
            "PUT",
            "/v1/releases/demo/versions/1.0.0/yank".into(),
            br#"{"yanked":false}"#.to_vec(),
            [401, 403, 403, 200, 403],
        ),
        (
            "POST",
            "/v1/admin/gc".into(),
            br#"{"dry_run":true}"#.to_vec(),
            [401, 403, 403, 200, 403],
        ),
    ];
    let mut failures = Vec::new();
    for (method, uri, body, expected) in &rows {
        for (caller, want) in CALLERS.iter().zip(expected) {
            let headers = [("content-type", "application/json".to_owned())];
            let r = call(&app, method, uri, *caller, &headers, body.clone()).await;
            if r.status.as_u16() != *want {
                failures.push(format!(
                    "{method} {uri} as {caller:?}: {} (want {want}) {}",
                    r.status,
                    r.text()
                ));
            }
        }
    }
    // Writes that change state: each caller pushes its own version and moves the channel.
    for (i, (caller, want)) in CALLERS.iter().zip([401, 403, 201, 201, 403]).enumerate() {
        let r = push_manifest(&app, *caller, &release(&format!("2.0.{i}"), 10 + i as u64)).await;
        if r.status.as_u16() != want {
            failures.push(format!(
                "PUT /v1/manifests as {caller:?}: {} (want {want}) {}",
                r.status,
                r.text()
            ));
        }
    }
    let registry = get(&app, "/v1/registry").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seq = 1;
    for (caller, want) in CALLERS.iter().zip([401, 403, 200, 200, 403]) {
        let r = call(
            &app,
            "PUT",
            "/v1/releases/demo/channels/staging",
            *caller,
            &[],
            pointer(seq, &registry),
        )
        .await;
        if r.status.as_u16() != want {
            failures.push(format!(
                "PUT channel as {caller:?}: {} (want {want}) {}",
                r.status,
                r.text()
            ));
        }
        if r.status.is_success() {
            seq += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Uploads chunks with admin rights, then the manifest as `caller`.
async fn push_manifest(
    app: &axum::Router,
    caller: Option<&str>,
    a: &crate::support::Artifact,
) -> crate::support::Reply {
    crate::support::upload(app, Some("tok-admin"), &a.chunks).await;
    call(app, "PUT", "/v1/manifests", caller, &[], a.envelope.clone()).await
}

#[tokio::test]
async fn anonymous_pull_when_allowed() {
    let (app, _dir, _) = setup(true).await;
    assert_eq!(get(&app, "/v1/releases/demo").await.status, 200);
    let a = release("3.0.0", 30);
    let r = crate::support::upload(&app, None, &a.chunks[..1]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        call(&app, "PUT", "/v1/manifests", None, &[], a.envelope.clone())
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn expired_malformed_and_revoked_tokens() {
    let (app, dir, path) = setup(false).await;
    let r = call(&app, "GET", "/v1/releases/demo", Some("tok-expired"), &[], "").await;
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("token `expired` expired at 2020-01-01T00:00:00Z"),
        "{}",
        r.text()
    );
    let r = call(&app, "GET", "/v1/releases/demo", Some("made-up"), &[], "").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["message"].as_str()),
        (401, Some("unknown or revoked token"))
    );
    let mut req = axum::http::Request::get("/v1/releases/demo").header("authorization", "Basic abc");
    req = req.header("x-request-id", "abc");
    let response = tower::ServiceExt::oneshot(app.clone(), req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-request-id"], "abc");
    // Without one, the registry's own: this process's random part, then a counter.
    let given = |n: usize| {
        let app = app.clone();
        async move {
            let req = axum::http::Request::get(format!("/v1/releases/demo{n}")).body(axum::body::Body::empty());
            let response = tower::ServiceExt::oneshot(app, req.unwrap()).await.unwrap();
            response.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    let (a, b) = (given(1).await, given(2).await);
    let (pa, na) = a.split_once('-').unwrap();
    let (pb, nb) = b.split_once('-').unwrap();
    assert!(
        pa == pb && pa.len() == 8 && pa.bytes().all(|c| c.is_ascii_hexdigit()),
        "{a} {b}"
    );
    assert!(nb.parse::<u64>().unwrap() > na.parse::<u64>().unwrap(), "{a} {b}");

    // Revoking: remove the entry; the file is re-read when it changes.
    assert_eq!(
        call(&app, "GET", "/v1/releases/demo", Some("tok-pull"), &[], "")
            .await
            .status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    token_file(dir.path(), false, &["pull"]);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let r = call(&app, "GET", "/v1/releases/demo", Some("tok-pull"), &[], "").await;
    assert_eq!(r.status, 401, "a revoked token still works: {}", r.text());
}
