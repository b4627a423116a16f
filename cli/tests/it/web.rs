//! The registry's web view, loaded in a real headless Chromium (Debian's, which
//! `scripts/setup.sh` installs) against a registry holding fixture releases: each page's
//! rendered DOM is checked for what it must show, and a screenshot of each is kept under
//! `target/tmp/web-screenshots/` for a look.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Home, Registry, tarball, versions};

/// Chromium, headless, on a fresh profile, with nothing that reaches outside the machine.
fn chromium(home: &Home, what: &[String], url: &str) -> String {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is needed for the web view's tests: scripts/setup.sh installs Debian's `chromium`");
    let out = Command::new("timeout")
        .args(["120", browser])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", home.path("chromium").display()))
        .args(what)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The page's DOM once the browser has rendered it.
fn dom(home: &Home, url: &str) -> String {
    chromium(home, &["--dump-dom".into()], url)
}

fn screenshot(home: &Home, url: &str, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    chromium(home, &[format!("--screenshot={}", file.display())], url);
    let png = std::fs::read(&file).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} is not a page",
        file.display()
    );
}

/// The whole answer to a GET, status line and headers included.
fn get(url: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn query(v: &str) -> String {
    v.replace('+', "%2B")
}

#[test]
fn the_web_view_shows_releases_versions_the_upgrade_graph_and_what_changed() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = versions();
    for v in &vs {
        home.rel(Some(&reg)).arg("push").arg(tarball(v)).assert().success();
    }
    home.rel(Some(&reg))
        .args([
            "build-upgrade",
            "demo",
            "--from",
            &vs[0],
            "--to",
            &vs[1],
            "--push",
            "--quiet",
        ])
        .assert()
        .success();
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "production", "--quiet"])
        .assert()
        .success();
    home.rel(Some(&reg))
        .args(["yank", "demo", &vs[2], "--quiet", "--reason", "<b>leaks</b> sockets"])
        .assert()
        .success();

    // The releases.
    let index = dom(&home, &format!("{}/", reg.url));
    assert!(index.contains(r#"<a href="/ui/releases/demo">demo</a>"#), "{index}");
    assert!(index.contains(&format!("production → {}", vs[1])), "{index}");
    // The latest version not yanked.
    assert!(index.contains(&format!(r#"<td class="v">{}</td>"#, vs[1])), "{index}");
    screenshot(&home, &format!("{}/", reg.url), "releases");

    // One release: from the first version to the second, by the stored upgrade.
    let url = format!(
        "{}/ui/releases/demo?from={}&to={}",
        reg.url,
        query(&vs[0]),
        query(&vs[1])
    );
    let page = dom(&home, &url);
    for v in &vs {
        assert!(page.contains(&format!(r#"id="v-{v}""#)), "{v} listed: {page}");
    }
    // Versions newest first, the yanked one struck through.
    let rows: Vec<usize> = vs
        .iter()
        .map(|v| page.find(&format!(r#"id="v-{v}""#)).unwrap())
        .collect();
    assert!(rows[2] < rows[1] && rows[1] < rows[0], "newest first");
    assert!(
        page.contains(&format!(
            r#"<td class="v yanked" title="&lt;b&gt;leaks&lt;/b&gt; sockets">{}</td>"#,
            vs[2]
        )),
        "{page}"
    );
    // The reason, escaped: text, not markup.
    assert!(
        page.contains(r#"<span class="tag y">yanked: &lt;b&gt;leaks&lt;/b&gt; sockets</span>"#),
        "{page}"
    );
    // Signers, the channel, the upgrade artifact, and how much the previous release holds.
    assert!(page.contains("<td>ci</td>"), "signer: {page}");
    assert!(page.contains(r#"<span class="tag">production</span>"#), "{page}");
    assert!(
        page.contains(&format!("{} · ", vs[0])),
        "the upgrade from {}: {page}",
        vs[0]
    );
    let shared = page
        .split(&format!(r#"id="v-{}""#, vs[1]))
        .nth(1)
        .and_then(|row| row.split(r#"<td class="share">"#).nth(1))
        .and_then(|cell| cell.split('%').next())
        .and_then(|n| n.parse::<u32>().ok())
        .expect("a share for the second version");
    assert!(
        (90..=100).contains(&shared),
        "{shared}% of the second release already held"
    );
    // The plan, and the graph with exactly that step drawn on it.
    assert!(
        page.contains(&format!(
            "stored upgrade <span class=\"v\">{}</span> → <span class=\"v\">{}</span>",
            vs[0], vs[1]
        )),
        "{page}"
    );
    assert_eq!(page.matches(r#"class="edge on-path""#).count(), 1, "{page}");
    assert!(page.contains("<svg"), "{page}");
    // What changed in the applications.
    let diff = page.split(r#"id="diff""#).nth(1).expect("a diff section");
    assert!(diff.contains("<td>demo</td>") && diff.contains("changed"), "{diff}");
    // Module by module, and the appup: what `rel appup` generates for the same two releases.
    home.rel(Some(&reg))
        .args([
            "appup",
            &format!("demo@{}", vs[0]),
            &format!("demo@{}", vs[1]),
            "--quiet",
            "--out",
        ])
        .arg(home.path("appups"))
        .assert()
        .success();
    let appup = std::fs::read_to_string(home.path("appups/demo.appup")).unwrap();
    // As the browser serialises text: `&`, `<` and `>` escaped.
    let escaped = appup.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(
        diff.contains(&format!(
            "<details><summary>appup</summary><pre>{escaped}</pre></details>"
        )),
        "the appup {appup} in {diff}"
    );
    let changed = diff
        .split(r#"<div class="changed">changed ("#)
        .nth(1)
        .and_then(|d| d.split("<code>").nth(1))
        .and_then(|d| d.split("</code>").next())
        .expect("changed modules");
    for module in changed.split(", ") {
        assert!(appup.contains(module), "{module} changed, and not in the appup {appup}");
    }
    screenshot(&home, &url, "release");

    // A path that needs the host: to the third version (yanked, so refused) and then from
    // the second to the first (a downgrade: no stored upgrade, a full release).
    let to_yanked = dom(
        &home,
        &format!(
            "{}/ui/releases/demo?from={}&to={}",
            reg.url,
            query(&vs[0]),
            query(&vs[2])
        ),
    );
    assert!(
        to_yanked.contains(&format!("version `{}` is yanked", vs[2])),
        "{to_yanked}"
    );
    let down = dom(
        &home,
        &format!(
            "{}/ui/releases/demo?from={}&to={}",
            reg.url,
            query(&vs[1]),
            query(&vs[0])
        ),
    );
    assert_eq!(
        down.matches(r#"class="edge on-path""#).count(),
        1,
        "one step drawn: {down}"
    );
    assert!(
        down.contains("stroke-dasharray"),
        "a step without a stored upgrade is dashed: {down}"
    );

    // Errors are pages too, with the API's status.
    let missing = get(&reg.url, "/ui/releases/nothing");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing.to_ascii_lowercase().contains("content-type: text/html"),
        "{missing}"
    );
    assert!(missing.contains("release `nothing` is not stored"), "{missing}");
}

/// A registry that needs a token to read shows a page that says so, not the releases.
#[test]
fn a_registry_that_needs_a_token_says_so() {
    let home = Home::new();
    let tokens = home.path("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\nname = \"ci\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nscopes = [\"pull\"]\nexpires = \"2099-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let reg = Registry::start(&home.path("store"), &["--tokens", tokens.to_str().unwrap()]);
    let page = dom(&home, &format!("{}/", reg.url));
    assert!(page.contains("401 Unauthorized"), "{page}");
    assert!(page.contains("Authorization: Bearer TOKEN"), "{page}");
    assert!(!page.contains("<table"), "{page}");
}
