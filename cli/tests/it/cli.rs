//! The real `rel` binary against a real registry on 127.0.0.1.

use std::fs;

use crate::support::{Home, Registry, listing, tarball, versions};

#[test]
fn push_twice_uploads_nothing_and_the_next_version_only_what_changed() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    let first = home.json(&reg, &["push", tarball(&vs[0]).to_str().unwrap()]);
    assert_eq!(
        first["uploaded_chunks"], first["chunks"],
        "a fresh registry needs every chunk"
    );

    // Again: nothing uploaded, the same manifest is already there.
    let again = home.json(&reg, &["push", tarball(&vs[0]).to_str().unwrap()]);
    assert_eq!(
        (again["uploaded_chunks"].as_u64(), again["already_stored"].as_bool()),
        (Some(0), Some(true))
    );

    // The next version: only the changed chunks.
    let next = home.json(&reg, &["push", tarball(&vs[1]).to_str().unwrap()]);
    let (uploaded, total) = (
        next["uploaded_chunks"].as_u64().unwrap(),
        next["chunks"].as_u64().unwrap(),
    );
    assert!(uploaded <= 3 && uploaded > 0, "uploaded {uploaded} of {total} chunks");

    // A host with an empty cache pulls v1 whole, then v2 fetches only what changed.
    let host = Home::new();
    let v1 = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &[
            "demo",
            "--version",
            &vs[0],
            "-o",
            host.path("v1.tar.gz").to_str().unwrap(),
        ],
    );
    assert_eq!(v1["fetched_chunks"], v1["chunks"]);
    let v2 = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &["demo", "--version", &vs[1], "-o", host.path("v2.tar").to_str().unwrap()],
    );
    assert!(v2["fetched_chunks"].as_u64().unwrap() <= 3, "{v2}");
    assert!(
        v2["fetched_bytes"].as_u64().unwrap() * 10 < v2["bytes"].as_u64().unwrap(),
        "{v2}"
    );
    // Those chunks came as deltas against v1's, and cost less than whole: another host with
    // v1 cached asks for them whole.
    assert_eq!(v2["delta_chunks"], v2["fetched_chunks"], "{v2}");
    let plain_host = Home::new();
    for (v, out, extra) in [(&vs[0], "v1.tar", None), (&vs[1], "v2.tar", Some("--no-deltas"))] {
        let mut args = vec!["demo", "--version", v, "-o"];
        let out = plain_host.path(out);
        args.push(out.to_str().unwrap());
        args.extend(extra);
        let plain = plain_host.pull(&reg, home.path("keys/ci.pub"), &args);
        if extra.is_some() {
            assert_eq!(
                (&plain["fetched_chunks"], &plain["delta_chunks"]),
                (&v2["fetched_chunks"], &0.into())
            );
            let (delta, whole) = (
                v2["fetched_bytes"].as_u64().unwrap(),
                plain["fetched_bytes"].as_u64().unwrap(),
            );
            assert!(delta * 2 < whole, "deltas {delta} bytes, whole {whole}");
        }
    }
    assert_eq!(
        rel_digest_of(&plain_host.path("v2.tar")),
        rel_digest_of(&tarball(&vs[1]))
    );

    // What was pulled is the release: same files as the original tarball.
    let original = rel_digest_of(&tarball(&vs[1]));
    assert_eq!(rel_digest_of(&host.path("v2.tar")), original);
    assert_eq!(rel_digest_of(&host.path("v1.tar.gz")), rel_digest_of(&tarball(&vs[0])));
    assert_eq!(
        fs::metadata(host.path("v2.tar")).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

use std::os::unix::fs::PermissionsExt;

/// The canonical digest of a release file.
fn rel_digest_of(path: &std::path::Path) -> rel_format::Digest {
    let chunker = rel_format::chunk::Chunker::new(|_: &rel_format::chunk::ChunkRef, _: &[u8]| Ok(()));
    let (chunker, _) = rel_format::archive::canonicalize(
        fs::File::open(path).unwrap(),
        chunker,
        Default::default(),
        &Default::default(),
    )
    .unwrap();
    chunker.finish().unwrap().0.digest
}

#[test]
fn pull_into_a_folder_and_versions_listing() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    for v in vs.iter().rev() {
        home.rel(Some(&reg)).arg("push").arg(tarball(v)).assert().success();
    }
    let out = home.rel(Some(&reg)).args(["versions", "demo"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(order, vs.iter().map(String::as_str).collect::<Vec<_>>(), "{text}");

    let into = home.path("release");
    home.rel(Some(&reg))
        .args(["pull", "demo", "--version", &vs[2], "--into"])
        .arg(&into)
        .assert()
        .success();
    assert!(into.join(format!("releases/{}/demo.rel", vs[2])).exists());
    assert!(into.join("lib/demo_extra-1.0.0/ebin/demo_extra.app").exists());
}

#[test]
fn two_registries_on_one_store_serve_each_others_pushes() {
    let home = Home::new();
    let (a, b) = (
        Registry::start(&home.path("store"), &[]),
        Registry::start(&home.path("store"), &[]),
    );
    let vs = versions();
    // B has looked at the (empty) store before A stores anything.
    let out = home.rel(Some(&b)).args(["versions", "demo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let first = home.json(&a, &["push", tarball(&vs[0]).to_str().unwrap()]);
    // B takes the next version's manifest at once and asks only for what is new...
    let next = home.json(&b, &["push", tarball(&vs[1]).to_str().unwrap()]);
    assert!(
        next["uploaded_chunks"].as_u64().unwrap() <= 3,
        "B found A's chunks: {next} (A stored {first})"
    );
    // ...and serves both versions whole, verified.
    let host = Home::new();
    fs::create_dir_all(host.path("keys")).unwrap();
    fs::copy(home.path("keys/ci.pub"), host.path("keys/ci.pub")).unwrap();
    for v in &vs[..2] {
        let pulled = host.json(
            &b,
            &[
                "pull",
                "demo",
                "--version",
                v,
                "-o",
                host.path(&format!("{v}.tar")).to_str().unwrap(),
            ],
        );
        assert_eq!(pulled["version"], v.as_str());
        assert_eq!(
            rel_digest_of(&host.path(&format!("{v}.tar"))),
            rel_digest_of(&tarball(v))
        );
    }
}

/// Runs a pull that must be refused; checks the message and that nothing was written.
fn refused_pull(home: &Home, reg: &Registry, args: &[&str], expect: &str) -> String {
    let target = home.path("out/refused.tar.gz");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    let out = home
        .rel(Some(reg))
        .arg("pull")
        .args(args)
        .arg("-o")
        .arg(&target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in:\n{stderr}");
    assert!(
        listing(&home.path("out")).is_empty(),
        "something was written: {:?}",
        listing(&home.path("out"))
    );
    stderr
}

/// The stored packs, each with the path of its index.
pub(crate) fn pack_files(store: &std::path::Path) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = fs::read_dir(store.join("packs")) else {
        return out;
    };
    for dir in dirs {
        for f in fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "pack") {
                out.push((path.clone(), path.with_extension("idx")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn tampering_is_refused_and_nothing_is_written() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs[..2]);
    let puller = Home::new();
    let trusted = home.path("keys/ci.pub");
    let pull = |extra: &[&str]| {
        let mut args = vec!["demo", "--trusted-key", trusted.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let strs = |v: &Vec<String>| v.iter().map(String::as_str).collect::<Vec<_>>().join("\u{0}");

    // A manifest of another version served in place of the asked one.
    let m1 = home.path("store/manifests/demo").join(&vs[0]).join("release.json");
    let m2 = home.path("store/manifests/demo").join(&vs[1]).join("release.json");
    let saved = fs::read(&m2).unwrap();
    fs::write(&m2, fs::read(&m1).unwrap()).unwrap();
    let args = pull(&["--version", &vs[1]]);
    refused_pull(
        &puller,
        &reg,
        &strs(&args).split('\u{0}').collect::<Vec<_>>(),
        &format!(
            "the registry sent release `demo` `{}`, but release `demo` `{}` was asked for",
            vs[0], vs[1]
        ),
    );
    fs::write(&m2, saved).unwrap();

    // A flipped byte in a stored chunk, then a truncated chunk.
    // The victim: a chunk of the first version, in whichever pack holds it.
    let first: serde_json::Value = serde_json::from_slice(&fs::read(&m1).unwrap()).unwrap();
    let wanted: Vec<String> = first["signed"]["tar"]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["digest"].as_str().unwrap().to_owned())
        .collect();
    let (pack, index, mut entries, victim) = pack_files(&home.path("store"))
        .into_iter()
        .find_map(|(pack, index)| {
            let entries = rel_format::pack::decode_index(&fs::read(&index).unwrap()).unwrap();
            let victim = entries
                .iter()
                .position(|e| wanted[wanted.len() / 2] == e.digest.to_string())?;
            Some((pack, index, entries, victim))
        })
        .expect("a pack holds the chunk");
    let original = fs::read(&pack).unwrap();
    let saved_index = fs::read(&index).unwrap();
    let mut flipped = original.clone();
    flipped[(entries[victim].offset + u64::from(entries[victim].size) / 2) as usize] ^= 0x40;
    fs::write(&pack, &flipped).unwrap();
    let args = pull(&["--version", &vs[0]]);
    refused_pull(
        &puller,
        &reg,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "the registry sent a bad chunk",
    );
    fs::write(&pack, &original).unwrap();
    // The index says the frame is 7 bytes shorter: the registry serves it cut, and what
    // follows it no longer lines up.
    entries[victim].size -= 7;
    fs::write(&index, rel_format::pack::encode_index(&entries)).unwrap();
    drop(reg);
    let reg = Registry::start(&home.path("store"), &[]);
    refused_pull(
        &puller,
        &reg,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "the registry sent a malformed batch of chunks",
    );
    fs::write(&index, &saved_index).unwrap();
    drop(reg);
    let reg = Registry::start(&home.path("store"), &[]);
    puller
        .rel(Some(&reg))
        .arg("pull")
        .args(&args)
        .arg("-o")
        .arg(puller.path("ok.tar.gz"))
        .assert()
        .success();

    // A manifest signed by a key the host does not trust...
    let rogue = Home::new();
    rogue
        .rel(None)
        .args(["keygen", "rogue", "--out-dir"])
        .arg(rogue.path("keys"))
        .assert()
        .success();
    rogue
        .rel(Some(&reg))
        .arg("push")
        .arg(tarball(&vs[2]))
        .arg("--key")
        .arg(rogue.path("keys/rogue.key"))
        .assert()
        .success();
    let args = pull(&["--version", &vs[2]]);
    let stderr = refused_pull(
        &puller,
        &reg,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "manifest is not signed by any trusted key (signed by: rogue; trusted: ci)",
    );
    assert!(
        stderr.contains("hint: add the publisher's public key with --trusted-key"),
        "{stderr}"
    );
    // ...or by an impostor key that borrowed the trusted key's name.
    let impostor_store = home.path("store2");
    let reg2 = Registry::start(&impostor_store, &[]);
    rogue
        .rel(Some(&reg2))
        .arg("push")
        .arg(tarball(&vs[2]))
        .assert()
        .success();
    refused_pull(
        &puller,
        &reg2,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "the signature of `ci` on the manifest does not verify",
    );
}

#[test]
fn channels_refuse_replayed_and_expired_pointers() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs[..2]);
    let channel = home.path("store/channels/demo/production.json");
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[0], "--channel", "production"])
        .assert()
        .success();
    let old_pointer = fs::read(&channel).unwrap();
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "production"])
        .assert()
        .success();

    let host = Home::new();
    let trusted = home.path("keys/ci.pub");
    let pulled = host.pull(
        &reg,
        &trusted,
        &[
            "demo",
            "--channel",
            "production",
            "-o",
            host.path("p.tar.gz").to_str().unwrap(),
        ],
    );
    assert_eq!(pulled["version"], vs[1].as_str());

    // The registry (or someone in the middle) replays the older pointer.
    fs::write(&channel, &old_pointer).unwrap();
    let args = [
        "demo",
        "--channel",
        "production",
        "--trusted-key",
        trusted.to_str().unwrap(),
    ];
    let stderr = refused_pull(
        &host,
        &reg,
        &args,
        "channel pointer demo/production has sequence 1, older than 2 already accepted",
    );
    assert!(
        stderr.contains("hint: if you really mean to go back, pass --allow-downgrade"),
        "{stderr}"
    );
    let out = host
        .rel(Some(&reg))
        .arg("pull")
        .args(args)
        .arg("--allow-downgrade")
        .arg("-o")
        .arg(host.path("down.tar.gz"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: channel pointer demo/production has sequence 1"));

    // An expired pointer is refused, even to a host that never saw the channel.
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "staging", "--expires-in", "1s"])
        .assert()
        .success();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let fresh = Home::new();
    let args = [
        "demo",
        "--channel",
        "staging",
        "--trusted-key",
        trusted.to_str().unwrap(),
    ];
    refused_pull(&fresh, &reg, &args, "channel pointer demo/staging expired at");
}

/// `promote --renew` signs the channel's current version again with the next sequence and a
/// new expiry, but only a pointer signed by the promoter's key or a trusted one: a registry
/// cannot choose what gets renewed.
#[test]
fn a_channel_is_renewed_at_its_version_only_from_a_pointer_it_trusts() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs[..2]);
    let channel = home.path("store/channels/demo/production.json");
    let pointer = || -> serde_json::Value { serde_json::from_slice(&fs::read(&channel).unwrap()).unwrap() };
    let renew = |home: &Home, extra: &[&str]| {
        home.rel(Some(&reg))
            .args(["promote", "demo", "--channel", "production", "--renew"])
            .args(extra)
            .output()
            .unwrap()
    };

    // Nothing to renew yet.
    let out = renew(&home, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot renew channel production of demo: it has no pointer to renew"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    home.rel(Some(&reg))
        .args([
            "promote",
            "demo",
            &vs[0],
            "--channel",
            "production",
            "--expires-in",
            "1h",
        ])
        .assert()
        .success();
    let first = pointer();
    let out = renew(&home, &["--expires-in", "400d"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("channel production of demo still points at {}", vs[0])),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let renewed = pointer();
    assert_eq!(renewed["signed"]["version"], vs[0].as_str());
    assert_eq!(renewed["signed"]["sequence"], 2);
    assert!(
        renewed["signed"]["expires"].as_str().unwrap() > first["signed"]["expires"].as_str().unwrap(),
        "{renewed} vs {first}"
    );

    // Another publisher's pointer is renewed only if trusted.
    let other = Home::new();
    other
        .rel(None)
        .args(["keygen", "other", "--out-dir"])
        .arg(other.path("keys"))
        .assert()
        .success();
    other
        .rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "production", "--key"])
        .arg(other.path("keys/other.key"))
        .assert()
        .success();
    let out = renew(&home, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("the current pointer of channel production of demo is not signed by your key or a --trusted-key"),
        "{stderr}"
    );
    assert_eq!(pointer()["signed"]["sequence"], 3, "nothing was promoted");
    let trusted = other.path("keys/other.pub");
    let out = renew(&home, &["--trusted-key", trusted.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        (
            pointer()["signed"]["version"].as_str(),
            pointer()["signed"]["sequence"].as_u64()
        ),
        (Some(vs[1].as_str()), Some(4))
    );

    // A version and --renew together is a usage error.
    let out = renew(&home, &[&vs[0]]);
    assert_eq!(out.status.code(), Some(2));
}

/// `rel list`: every release with its latest version that is not yanked, its counts and
/// channels, as text and as JSON.
#[test]
fn list_shows_each_release_with_its_latest_version_and_channels() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let out = home.rel(Some(&reg)).arg("list").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no releases stored yet"));

    let vs = versions();
    home.push_versions(&reg, &vs[..3]);
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[0], "--channel", "production", "--quiet"])
        .assert()
        .success();
    // A reason is one line of text.
    let out = home
        .rel(Some(&reg))
        .args(["yank", "demo", &vs[2], "--reason", "two\nlines"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    home.rel(Some(&reg))
        .args([
            "yank",
            "demo",
            &vs[2],
            "--quiet",
            "--reason",
            "crashes at boot without PORT",
        ])
        .assert()
        .success();
    let versions = home.rel(Some(&reg)).args(["versions", "demo"]).output().unwrap();
    let text = String::from_utf8_lossy(&versions.stdout);
    assert!(text.contains("(yanked: crashes at boot without PORT)"), "{text}");
    // Channels with their pointers' expiry, and what to do about an expired one.
    assert!(text.contains("  [production until 20"), "{text}");
    home.rel(Some(&reg))
        .args([
            "promote",
            "demo",
            &vs[1],
            "--channel",
            "staging",
            "--expires-in",
            "1s",
            "--quiet",
        ])
        .assert()
        .success();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let versions = home.rel(Some(&reg)).args(["versions", "demo"]).output().unwrap();
    let text = String::from_utf8_lossy(&versions.stdout);
    assert!(
        text.contains("[staging EXPIRED ") && text.contains(": rel promote demo --channel staging --renew]"),
        "{text}"
    );
    let versions = home
        .rel(Some(&reg))
        .args(["versions", "demo", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    let channels = json["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{json}");
    assert_eq!(
        (channels[0]["channel"].as_str(), channels[0]["expired"].as_bool()),
        (Some("production"), Some(false))
    );
    assert_eq!(
        (channels[1]["channel"].as_str(), channels[1]["expired"].as_bool()),
        (Some("staging"), Some(true))
    );
    assert_eq!(channels[1]["version"], vs[1].as_str());
    let shown = home
        .rel(Some(&reg))
        .args(["show", &format!("demo@{}", vs[1])])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("  channel   staging EXPIRED "), "{text}");
    let out = home.rel(Some(&reg)).args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"releases": [{
            "name": "demo", "latest": vs[1], "versions": 3, "yanked": 1,
            "channels": {"production": vs[0], "staging": vs[1]},
        }], "schema_version": 1})
    );
    let out = home.rel(Some(&reg)).arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("demo  {}", vs[1])), "{text}");
    assert!(text.contains("3 versions, 1 yanked  [production="), "{text}");
}

/// `push --dry-run` says what a push would upload and whether the version is stored, and
/// stores nothing; it needs no key.
#[test]
fn a_dry_run_push_uploads_nothing_and_says_what_a_push_would() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    let dry = |v: &str| -> serde_json::Value {
        let out = home
            .rel(Some(&reg))
            .env_remove("REL_KEY")
            .args(["push", "--dry-run", "--json"])
            .arg(tarball(v))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = dry(&vs[0]);
    assert_eq!(first["dry_run"], true);
    assert_eq!(first["already_stored"], false);
    assert!(first["uploaded_chunks"].as_u64().unwrap() > 0);
    assert_eq!(
        first["uploaded_chunks"], first["chunks"],
        "an empty registry lacks every chunk"
    );
    assert!(!home.path("store/manifests").exists(), "nothing stored");
    assert!(!home.path("store/packs").exists(), "nothing uploaded");

    home.rel(Some(&reg)).arg("push").arg(tarball(&vs[0])).assert().success();
    let again = dry(&vs[0]);
    assert_eq!(
        (again["already_stored"].as_bool(), again["uploaded_chunks"].as_u64()),
        (Some(true), Some(0))
    );
    let next = dry(&vs[1]);
    let (lacked, all) = (
        next["uploaded_chunks"].as_u64().unwrap(),
        next["chunks"].as_u64().unwrap(),
    );
    assert!(
        lacked > 0 && lacked < all / 2,
        "the next version shares most chunks: {lacked} of {all}"
    );

    let out = home
        .rel(Some(&reg))
        .args(["push", "--dry-run"])
        .arg(tarball(&vs[1]))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("is not stored;") && said.contains("nothing was uploaded"),
        "{said}"
    );
}

/// `rel token`: minted tokens work against a running registry at once, are listed without
/// their secrets, and stop working when revoked; the file keeps what the operator wrote.
#[test]
fn tokens_are_minted_listed_and_revoked_in_the_file_the_registry_reads() {
    let home = Home::new();
    let file = home.path("tokens.toml");
    fs::write(
        &file,
        "# Who may do what on the release registry.\nanonymous_pull = false\n",
    )
    .unwrap();
    let token = |args: &[&str]| {
        home.rel(None)
            .arg("token")
            .args(args)
            .arg("--file")
            .arg(&file)
            .output()
            .unwrap()
    };
    let created = token(&["create", "ci", "--scope", "push", "--release", "demo", "--json"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let ci = created["token"].as_str().unwrap().to_owned();
    assert!(ci.starts_with("rel_") && ci.len() == 68, "{ci}");
    let host = token(&["create", "host", "--scope", "pull", "--expires-in", "30d"]);
    assert!(host.status.success());
    let host = String::from_utf8(host.stdout).unwrap().trim().to_owned();
    let again = token(&["create", "ci", "--scope", "pull"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a token named `ci`"));
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# Who may do what on the release registry.\n"),
        "{text}"
    );
    assert!(
        !text.contains(&ci) && !text.contains(&host),
        "secrets are stored hashed: {text}"
    );

    let listed = token(&["list", "--json"]);
    let out = String::from_utf8(listed.stdout).unwrap();
    assert!(!out.contains(&ci) && !out.contains("sha256"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["tokens"][0]["name"], "ci");
    assert_eq!(listed["tokens"][0]["scopes"], serde_json::json!(["push"]));
    assert_eq!(listed["tokens"][0]["releases"], serde_json::json!(["demo"]));
    assert_eq!(listed["tokens"][1]["releases"], serde_json::json!(["*"]));
    assert_eq!(listed["tokens"][1]["expired"], false);

    let reg = Registry::start(&home.path("store"), &["--tokens", file.to_str().unwrap()]);
    let vs = versions();
    let push = |token: &str, v: &str| {
        home.rel(Some(&reg))
            .env("REL_TOKEN", token)
            .arg("push")
            .arg(tarball(v))
            .output()
            .unwrap()
    };
    let pushed = push(&ci, &vs[0]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let refused = push(&host, &vs[1]);
    assert_eq!(refused.status.code(), Some(1));
    let revoked = token(&["revoke", "ci", "--json"]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let said: serde_json::Value = serde_json::from_slice(&revoked.stdout).unwrap();
    assert_eq!(
        (said["revoked"].as_str(), said["schema_version"].as_u64()),
        (Some("ci"), Some(1))
    );
    let after = push(&ci, &vs[1]);
    assert_eq!(after.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("unknown or revoked token"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let unknown = token(&["revoke", "ci"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no token named `ci`"));
}

/// A version typed short stands for the one stored version it begins, in every command
/// that names a stored version; an ambiguous one lists the candidates.
#[test]
fn short_versions_stand_for_the_one_stored_version_they_begin() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs);
    let short = vs[2].split('+').next().unwrap().to_owned();
    assert!(vs[..2].iter().all(|v| !v.starts_with(&short)), "{short} is unique");
    let out = home
        .rel(Some(&reg))
        .args(["show", "demo", &short, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["version"], vs[2].as_str());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("demo {short} is {}", vs[2])));
    home.rel(Some(&reg))
        .args(["promote", "demo", &short, "--channel", "production", "--quiet"])
        .assert()
        .success();
    let pointer: serde_json::Value =
        serde_json::from_slice(&fs::read(home.path("store/channels/demo/production.json")).unwrap()).unwrap();
    assert_eq!(pointer["signed"]["version"], vs[2].as_str());

    // NAME@VERSION where a command names a version, short or full.
    let out = home
        .rel(Some(&reg))
        .args(["show", &format!("demo@{short}"), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["version"], vs[2].as_str());
    let pulled = home.path("at.tar.gz");
    home.rel(Some(&reg))
        .args([
            "pull",
            &format!("demo@{}", vs[1]),
            "-o",
            pulled.to_str().unwrap(),
            "--quiet",
        ])
        .assert()
        .success();
    assert!(pulled.exists());

    let ambiguous = vs[0].split('+').next().unwrap();
    let out = home.rel(Some(&reg)).args(["yank", "demo", ambiguous]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "`{ambiguous}` could be any of 2 stored versions: {}, {}",
            vs[1], vs[0]
        )),
        "{stderr}"
    );
}

/// `--json` results for the commands that change something, and errors as one JSON object on
/// stderr when `--json` is asked for, usage errors included.
#[test]
fn json_results_and_json_errors() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    let json_out = |args: &[&str]| -> serde_json::Value {
        let out = home.rel(Some(&reg)).args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let key = json_out(&["keygen", "other", "--out-dir", home.path("other").to_str().unwrap()]);
    assert_eq!(key["name"], "other");
    assert!(key["public_key"].as_str().unwrap().starts_with("other:"));
    assert!(std::path::Path::new(key["secret_key_file"].as_str().unwrap()).exists());

    home.rel(Some(&reg)).arg("push").arg(tarball(&vs[0])).assert().success();
    let pointer = json_out(&["promote", "demo", &vs[0], "--channel", "production"]);
    assert_eq!(
        (pointer["version"].as_str(), pointer["sequence"].as_u64()),
        (Some(vs[0].as_str()), Some(1))
    );
    let yank = json_out(&["yank", "demo", &vs[0], "--reason", "bad build"]);
    assert_eq!(
        yank,
        serde_json::json!({"name": "demo", "version": vs[0], "upgrade_from": null, "yanked": true, "reason": "bad build", "schema_version": 1})
    );

    let err = |args: &[&str], code: i32| -> serde_json::Value {
        let out = home.rel(Some(&reg)).args(args).arg("--json").output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{stderr}: {e}"))
    };
    let missing = err(&["versions", "nothing"], 1);
    assert_eq!(missing["error"]["kind"], "failure");
    assert_eq!(missing["error"]["message"], "release `nothing` is not stored");
    assert_eq!(missing["error"]["exit_code"], 1);
    assert!(
        missing["error"]["request_id"].as_str().unwrap().starts_with("rel-"),
        "{missing}"
    );
    let text = home.rel(Some(&reg)).args(["versions", "nothing"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stderr).contains("request id: rel-"));
    let usage = err(
        &[
            "promote",
            "demo",
            &vs[0],
            "--channel",
            "production",
            "--expires-in",
            "soon",
        ],
        2,
    );
    assert_eq!(usage["error"]["exit_code"], 2);
    assert!(
        usage["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`soon` is not a duration"),
        "{usage}"
    );
}

/// `serve --log-format json`: one JSON object a log line, with the request's id and outcome.
#[test]
fn the_registry_logs_json_lines_when_asked() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let home = Home::new();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rel"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--exit-after",
            "60",
            "--log-format",
            "json",
            "--store",
        ])
        .arg(format!("file://{}", home.path("store").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("rel serve printed its address").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut conn = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-request-id: from-the-test\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let handled = loop {
        let line = lines.next().expect("a log line for the request").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        if v["fields"]["message"] == "handled" {
            break v;
        }
    };
    assert_eq!(handled["fields"]["status"], 200, "{handled}");
    assert_eq!(handled["span"]["id"], "from-the-test", "{handled}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Where nothing has ever answered, a refused connection is said at once, not retried: the
/// retries are for a registry that answered and then went away (the restart test above).
#[test]
fn no_registry_is_said_at_once() {
    let home = Home::new();
    let port = rel_testkit::free_port();
    let out = home
        .process(&format!("http://127.0.0.1:{port}"))
        .args(["versions", "demo", "-v"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the registry"), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

/// A release big enough that its upload takes a while: 40 MB of noise in a folder.
fn big_release(home: &Home) -> std::path::PathBuf {
    let rel_dir = home.path("big");
    fs::create_dir_all(rel_dir.join("releases/1.0.0")).unwrap();
    fs::create_dir_all(rel_dir.join("lib/big-1.0.0/priv")).unwrap();
    let rel = r#"{release,{"big","1.0.0"},{erts,"13.1.5"},[{kernel,"8.5.3"},{stdlib,"4.2"},{big,"1.0.0"}]}."#;
    fs::write(rel_dir.join("releases/big.rel"), rel).unwrap();
    fs::write(rel_dir.join("releases/1.0.0/big.rel"), rel).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..40_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(rel_dir.join("lib/big-1.0.0/priv/blob"), noise).unwrap();
    rel_dir
}

/// A push of `rel_dir` to `url`, returned once it stored three packs.
fn push_under_way(
    home: &Home,
    url: &str,
    rel_dir: &std::path::Path,
    store: &std::path::Path,
    extra: &[&str],
) -> std::process::Child {
    let push = std::process::Command::new(env!("CARGO_BIN_EXE_rel"))
        .args(["push", "--jobs", "1"])
        .args(extra)
        .arg(rel_dir)
        .env("REL_REGISTRY", url)
        .env("REL_KEY", home.path("keys/ci.key"))
        .env("REL_CACHE_DIR", home.path("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while pack_files(store).len() < 3 {
        assert!(started.elapsed().as_secs() < 120, "the push never started uploading");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    push
}

/// A registry restarted in the middle of a push: the push waits for it (retries with
/// backoff) and completes, reusing what was uploaded before the restart.
#[test]
fn a_push_survives_a_registry_restart_in_the_middle() {
    let home = Home::new();
    let store = home.path("store");
    let mut reg = Registry::start(&store, &[]);
    let rel_dir = big_release(&home);
    let url = reg.url.clone();
    let push = push_under_way(&home, &url, &rel_dir, &store, &["--json", "-v"]);
    reg.kill();
    let before = pack_files(&store).len();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let reg = Registry::start_on(&store, url.trim_start_matches("http://"), &[]);
    let out = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no answer from the registry; retrying"),
        "it did retry: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["already_stored"], false, "{report}");
    assert!(before >= 3, "the registry was killed after {before} packs");
    let host = Home::new();
    let pulled = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &[
            "big",
            "--version",
            "1.0.0",
            "-o",
            host.path("big.tar").to_str().unwrap(),
        ],
    );
    assert_eq!(pulled["version"], "1.0.0");
}

/// A pull killed half-way keeps the chunks it verified: the next pull of the same release
/// fetches only the rest, and the one after that nothing.
#[test]
fn a_pull_killed_half_way_resumes_with_what_it_fetched() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let rel_dir = big_release(&home);
    home.rel(Some(&reg))
        .arg("push")
        .arg(&rel_dir)
        .arg("--quiet")
        .assert()
        .success();
    let host = Home::new();
    let cache = host.path("cache");
    let partial_size = || -> u64 {
        fs::read_dir(&cache)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "partial"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let mut pull = host
        .process(&reg.url)
        .args(["pull", "big", "--version", "1.0.0", "--jobs", "1", "-o"])
        .arg(host.path("first.tar"))
        .arg("--trusted-key")
        .arg(home.path("keys/ci.pub"))
        .env("REL_CACHE_DIR", &cache)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while partial_size() < 8 << 20 {
        assert!(started.elapsed().as_secs() < 120, "the pull never got going");
        assert!(
            pull.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();
    let kept = partial_size();

    let again = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &[
            "big",
            "--version",
            "1.0.0",
            "-o",
            host.path("second.tar").to_str().unwrap(),
        ],
    );
    let (fetched, chunks) = (
        again["fetched_chunks"].as_u64().unwrap(),
        again["chunks"].as_u64().unwrap(),
    );
    let fetched_bytes = again["fetched_bytes"].as_u64().unwrap();
    assert!(
        fetched > 0 && fetched < chunks,
        "{fetched} of {chunks} chunks fetched again"
    );
    // What was kept (less a record cut short and the pack's magic) is not fetched again.
    let total = fs::metadata(host.path("second.tar")).unwrap().len();
    assert!(
        fetched_bytes + kept >= total * 99 / 100 && fetched_bytes <= (total + (1 << 20)).saturating_sub(kept),
        "fetched {fetched_bytes} bytes after keeping {kept} of a {total}-byte release"
    );
    let third = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &[
            "big",
            "--version",
            "1.0.0",
            "-o",
            host.path("third.tar").to_str().unwrap(),
        ],
    );
    assert_eq!(third["fetched_chunks"], 0, "{third}");
    assert_eq!(partial_size(), 0, "the partial pack became the cached one");
}

#[test]
fn a_registry_killed_during_a_push_shows_nothing_partial() {
    let home = Home::new();
    let store = home.path("store");
    let mut reg = Registry::start(&store, &[]);
    let rel_dir = big_release(&home);

    // Kill the registry once the upload is under way.
    let mut push = push_under_way(&home, &reg.url, &rel_dir, &store, &["--quiet"]);
    reg.kill();
    let status = push.wait().unwrap();
    assert!(
        !status.success(),
        "the push finished before the registry was killed; the test proved nothing"
    );
    assert!(
        !store.join("manifests").exists() || listing(&store.join("manifests")).is_empty(),
        "a manifest became visible"
    );

    // Restarted on the same folder: nothing of the push is visible, and it can be pushed again.
    let reg = Registry::start(&store, &[]);
    let out = home.rel(Some(&reg)).args(["versions", "big"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("release `big` is not stored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = home.json(&reg, &["push", rel_dir.to_str().unwrap()]);
    assert!(
        report["uploaded_chunks"].as_u64().unwrap() < report["chunks"].as_u64().unwrap(),
        "chunks stored before the crash are reused: {report}"
    );
    let host = Home::new();
    let pulled = host.pull(
        &reg,
        home.path("keys/ci.pub"),
        &[
            "big",
            "--version",
            "1.0.0",
            "--into",
            host.path("big").to_str().unwrap(),
        ],
    );
    assert_eq!(pulled["version"], "1.0.0");
    assert_eq!(
        fs::metadata(host.path("big/lib/big-1.0.0/priv/blob")).unwrap().len(),
        40_000_000
    );
}

#[test]
fn the_readme_demo_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("REL_BIN", env!("CARGO_BIN_EXE_rel"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let shop = rel_testkit::fixtures::Fixture::shop();
    let vs = shop.versions();
    let (v1, v2) = (&vs[0], &vs[1]);
    for expected in [
        format!("pushed shop {v1} (release)"),
        format!("pushed shop {v2} (release)"),
        format!("upgrade shop {v1} -> {v2}:"),
        "hot upgrade, no restart".to_owned(),
        format!("installed shop {v1} (mix release"),
        format!("shop upgraded live from {v1} to {v2} in 1 step, no restart"),
        format!("running {v2}"),
        format!("shop rolled back from {v2} to {v1} (live, 1 step, no restart)"),
        " served, 0 failed".to_owned(),
    ] {
        assert!(text.contains(&expected), "the demo did not print {expected:?}:\n{text}");
    }
    // The node answered on v1, v2, then v1 again: same process and state, the host's config.
    let answers: Vec<&str> = text.lines().filter(|l| l.starts_with("GET / -> ")).collect();
    assert_eq!(answers.len(), 3, "{text}");
    let field = |line: &str, key: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .to_owned()
    };
    for (line, vsn) in answers.iter().zip([v1, v2, v1]) {
        assert_eq!(&field(line, "code_vsn"), vsn, "{line}");
        assert_eq!(field(line, "greeting"), "hello-from-the-host", "{line}");
        assert_eq!(field(line, "store_pid"), field(answers[0], "store_pid"), "{line}");
        assert_eq!(
            line.rsplit_once("(OS pid ").unwrap().1,
            answers[0].rsplit_once("(OS pid ").unwrap().1
        );
    }
    let hits: Vec<u64> = answers.iter().map(|l| field(l, "hits").parse().unwrap()).collect();
    assert!(
        hits[0] < hits[1] && hits[1] < hits[2],
        "the store kept counting: {hits:?}"
    );
}

#[test]
fn a_damaged_cache_is_refetched_not_trusted() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs[..2]);
    let host = Home::new();
    let trusted = home.path("keys/ci.pub");
    let pull = |v: &str, out: &str| {
        host.pull(
            &reg,
            &trusted,
            &["demo", "--version", v, "-o", host.path(out).to_str().unwrap()],
        )
    };
    pull(&vs[0], "v1.tar");
    // Scribble over every cached pack.
    let mut scribbled = 0;
    for e in fs::read_dir(host.path("cache")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            scribbled += 1;
            let len = fs::metadata(&p).unwrap().len() as usize;
            fs::write(&p, vec![0x5a; len]).unwrap();
        }
    }
    assert_eq!(scribbled, 1);
    let v2 = pull(&vs[1], "v2.tar");
    assert_eq!(
        v2["fetched_chunks"], v2["chunks"],
        "damaged cache entries must be fetched again: {v2}"
    );
    assert_eq!(rel_digest_of(&host.path("v2.tar")), rel_digest_of(&tarball(&vs[1])));
}

#[test]
fn verify_checks_envelopes_and_local_releases_against_the_registry() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let v = &versions()[0];
    home.rel(Some(&reg))
        .arg("push")
        .arg(tarball(v))
        .arg("--quiet")
        .assert()
        .success();

    // A stored envelope verifies; one changed byte does not.
    let envelope = home.path(&format!("store/manifests/demo/{v}/release.json"));
    let out = home.json(&reg, &["verify", envelope.to_str().unwrap()]);
    assert_eq!(
        (out["name"].as_str(), out["signer"].as_str()),
        (Some("demo"), Some("ci"))
    );
    let tampered = home.path("tampered.json");
    fs::write(
        &tampered,
        fs::read_to_string(&envelope)
            .unwrap()
            .replacen("\"length\":", "\"length\":1", 1),
    )
    .unwrap();
    let out = home.rel(Some(&reg)).arg("verify").arg(&tampered).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The release file is what the registry signed; a modified copy is not.
    let out = home.json(&reg, &["verify", tarball(v).to_str().unwrap()]);
    assert_eq!(out["matches_registry"], true);
    let copy = home.path("copy");
    rel::fs::extract(fs::File::open(tarball(v)).unwrap(), &copy, Default::default()).unwrap();
    fs::write(
        copy.join(format!("releases/{v}/sys.config")),
        "[{demo, [{greeting, \"changed\"}]}].\n",
    )
    .unwrap();
    let out = home.rel(Some(&reg)).arg("verify").arg(&copy).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("its contents differ from what the registry signed"),
        "{stderr}"
    );
}

#[test]
fn appup_show_gc_and_completions() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    // Appups from two release files, without a registry.
    let out = home.json(
        &reg,
        &[
            "appup",
            tarball(&vs[0]).to_str().unwrap(),
            tarball(&vs[1]).to_str().unwrap(),
            "--out",
            home.path("appups").to_str().unwrap(),
        ],
    );
    assert_eq!(out["appups"][0]["app"], "demo");
    assert_eq!(out["schema_version"], 1);
    let appup = fs::read_to_string(home.path("appups/demo.appup")).unwrap();
    assert!(
        appup.contains("{update,demo_server,{advanced,[]},[demo_lib]}") && appup.contains("{add_module,demo_new,[]}"),
        "{appup}"
    );

    home.push_versions(&reg, &vs[..2]);
    let shown = home.json(&reg, &["show", "demo", &vs[1]]);
    assert_eq!(shown["signer"], "ci");
    assert_eq!(shown["platform"]["erts"], "13.1.5");
    assert_eq!(shown["shared_with_previous"]["version"], vs[0].as_str());
    assert!(
        shown["shared_with_previous"]["chunks"].as_u64().unwrap() > 300,
        "{shown}"
    );
    // Chunks counted, not listed: a summary, small whatever the release.
    assert!(
        shown["tar"]["chunks"].as_u64().unwrap() > 300 && shown.to_string().len() < 4096,
        "{shown}"
    );
    assert!(shown.get("signed_manifest").is_none());
    // With --signed, the stored manifest too, which `rel verify` reads as it is.
    let signed = home.json(&reg, &["show", "demo", &vs[1], "--signed"]);
    assert_eq!(signed["signed_manifest"]["signed"]["version"], vs[1].as_str());
    fs::write(home.path("shown.json"), serde_json::to_vec(&signed).unwrap()).unwrap();
    fs::write(home.path("summary.json"), serde_json::to_vec(&shown).unwrap()).unwrap();
    let verified = home.json(&reg, &["verify", home.path("shown.json").to_str().unwrap()]);
    assert_eq!(
        (verified["signer"].as_str(), verified["version"].as_str()),
        (Some("ci"), Some(vs[1].as_str()))
    );
    let out = home
        .rel(Some(&reg))
        .args(["verify", home.path("summary.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--json --signed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let gc = home.json(&reg, &["gc", "--dry-run"]);
    assert_eq!(
        (
            gc["manifests"].as_u64(),
            gc["chunks_deleted"].as_u64(),
            gc["dry_run"].as_bool()
        ),
        (Some(2), Some(0), Some(true))
    );
    let out = home.rel(Some(&reg)).args(["gc", "--dry-run"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("2 manifests reference")
            && said.contains("0 packs deleted, 0 rewritten")
            && said.ends_with("(dry run)\n"),
        "{said}"
    );

    let out = home.rel(None).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("build-upgrade"));
}

/// What a meddling registry makes of an answer: its status and body in, the ones sent out.
type Meddle = fn(u16, Vec<u8>) -> (u16, Vec<u8>);

/// A registry in front of `upstream` that passes every request through, one per connection,
/// but answers `POST /v1/chunks/delta` with what `meddle` makes of the upstream's answer (its
/// status and body): a hostile registry, or one older than deltas. It stops with the test.
fn meddling(upstream: &str, meddle: Meddle) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let (Ok(conn), upstream) = (conn, upstream.clone()) else {
                break;
            };
            std::thread::spawn(move || {
                let _ = pass_one(conn, &upstream, meddle);
            });
        }
    });
    url
}

/// One HTTP/1.1 message from `from`: its head and its body (by `content-length`).
fn read_message(from: &mut std::net::TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = from.read(&mut piece)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = from.read(&mut piece)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&piece[..n]);
    }
    Ok((head, buf[head_end..head_end + length].to_vec()))
}

fn pass_one(mut conn: std::net::TcpStream, upstream: &str, meddle: Meddle) -> std::io::Result<()> {
    use std::io::{Read, Write};
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let (head, body) = read_message(&mut conn)?;
    let mut lines = head.trim_end().split("\r\n");
    let request = lines.next().unwrap_or_default().to_owned();
    let headers: String = lines
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let mut up = std::net::TcpStream::connect(upstream)?;
    up.write_all(format!("{request}\r\n{headers}connection: close\r\n\r\n").as_bytes())?;
    up.write_all(&body)?;
    if !request.starts_with("POST /v1/chunks/delta ") {
        let mut answer = Vec::new();
        up.read_to_end(&mut answer)?;
        return conn.write_all(&answer);
    }
    let (head, body) = read_message(&mut up)?;
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let (status, body) = meddle(status, body);
    let kind = if status == 200 {
        "application/zstd"
    } else {
        "application/json"
    };
    conn.write_all(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    conn.write_all(&body)
}

#[test]
fn a_bad_delta_is_refused_and_one_not_given_is_served_whole() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    home.push_versions(&reg, &vs[..2]);
    let trusted = home.path("keys/ci.pub");
    let host = Home::new();
    host.pull(
        &reg,
        &trusted,
        &["demo", "--version", &vs[0], "-o", host.path("v1.tar").to_str().unwrap()],
    );
    let indexes = || {
        listing(&host.path("cache"))
            .into_iter()
            .filter(|p| p.ends_with(".idx"))
            .count()
    };
    assert_eq!(indexes(), 1);
    let v1_cached = listing(&host.path("cache"));
    fs::create_dir_all(host.path("out")).unwrap();
    let pull_v2 = |url: &str| {
        host.process(url)
            .args(["pull", "demo", "--version", &vs[1], "--json", "--trusted-key"])
            .arg(&trusted)
            .arg("-o")
            .arg(host.path("out/v2.tar"))
            .output()
            .unwrap()
    };
    // Bytes scrambled; a valid frame of as many bytes, all zero; a frame that says more bytes
    // than the chunks hold. Each is refused, naming the delta, and nothing is written: no
    // tarball, no cache entry.
    let meddles: [(Meddle, &str); 3] = [
        (
            |s, body| (s, body.iter().map(|b| b ^ 0x55).collect()),
            "not a valid zstd frame",
        ),
        (
            |s, body| {
                let n = zstd::zstd_safe::get_frame_content_size(&body).unwrap().unwrap();
                (s, rel_format::delta::encode(&[], &vec![0; n as usize]).unwrap())
            },
            "its bytes were altered",
        ),
        (
            |s, body| {
                let n = zstd::zstd_safe::get_frame_content_size(&body).unwrap().unwrap();
                (s, rel_format::delta::encode(&[], &vec![0; n as usize + 100]).unwrap())
            },
            "not a valid zstd frame",
        ),
    ];
    for (meddle, says) in meddles {
        let out = pull_v2(&meddling(&reg.url, meddle));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the registry sent a bad delta") && stderr.contains(says),
            "{says}: {stderr}"
        );
        assert!(
            listing(&host.path("out")).is_empty(),
            "{:?}",
            listing(&host.path("out"))
        );
        assert_eq!(indexes(), 1, "a refused pull entered the cache");
    }
    // A registry that does not serve deltas, or fails to compute one: the chunks come whole.
    let declines: [Meddle; 2] = [
        |_, _| (404, br#"{"code":"not_found","message":"no such endpoint"}"#.to_vec()),
        |_, _| (500, br#"{"code":"internal","message":"a stored chunk: bad"}"#.to_vec()),
    ];
    for decline in declines {
        let _ = fs::remove_file(host.path("out/v2.tar"));
        let out = pull_v2(&meddling(&reg.url, decline));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["delta_chunks"], 0, "{report}");
        assert!(report["fetched_chunks"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(rel_digest_of(&host.path("out/v2.tar")), rel_digest_of(&tarball(&vs[1])));
        // Start again from v1 alone in the cache.
        for p in listing(&host.path("cache")) {
            if !v1_cached.contains(&p) {
                let _ = fs::remove_file(host.path("cache").join(&p));
            }
        }
    }
}
