//! `rel install`: what cannot run here is refused before a byte is written, and a retry
//! with a fixed artifact succeeds in the same root.

use std::fs;

use crate::support::{Home, Registry, listing, tarball, versions};

/// An ELF header for `machine` (e_machine), enough for the native-code scan.
fn elf(machine: u16) -> Vec<u8> {
    let mut head = vec![0u8; 64];
    head[..4].copy_from_slice(b"\x7fELF");
    head[4] = 2; // 64-bit
    head[5] = 1; // little endian
    head[18..20].copy_from_slice(&machine.to_le_bytes());
    head
}

#[test]
fn foreign_native_code_is_refused_and_nothing_is_written() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let v = &versions()[0];
    // The demo release with a NIF built for aarch64.
    let folder = home.path("arm");
    rel::fs::extract(fs::File::open(tarball(v)).unwrap(), &folder, Default::default()).unwrap();
    let priv_dir = folder.join(format!("lib/demo-{v}/priv"));
    fs::create_dir_all(&priv_dir).unwrap();
    fs::write(priv_dir.join("demo_nif.so"), elf(0xB7)).unwrap();
    home.rel(Some(&reg))
        .arg("push")
        .arg(&folder)
        .arg("--quiet")
        .assert()
        .success();

    let hosts = home.path("hosts");
    fs::create_dir_all(&hosts).unwrap();
    let root = hosts.join("demo");
    let out = home
        .rel(Some(&reg))
        .args(["install", "demo", "--version", v, "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("carries native code for linux/aarch64") && stderr.contains("this host is linux/x86_64"),
        "{stderr}"
    );
    assert_eq!(listing(&hosts), Vec::<String>::new(), "something was written");
}

#[test]
fn a_missing_erts_is_refused_before_writing_and_a_retry_succeeds() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let v = &versions()[0];
    home.rel(Some(&reg))
        .arg("push")
        .arg(tarball(v))
        .arg("--quiet")
        .assert()
        .success();
    let hosts = home.path("hosts");
    fs::create_dir_all(hosts.join("not-an-erts")).unwrap();
    let root = hosts.join("demo");
    let install = |erts: Option<&std::path::Path>| {
        let mut cmd = home.rel(Some(&reg));
        cmd.args(["install", "demo", "--version", v, "--root"]).arg(&root);
        if let Some(e) = erts {
            cmd.arg("--erts").arg(e);
        }
        cmd.output().unwrap()
    };
    let out = install(Some(&hosts.join("not-an-erts")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs ERTS 13.1.5") && stderr.contains("has no bin/erlexec"),
        "{stderr}"
    );
    assert_eq!(listing(&hosts), vec!["not-an-erts"], "something was written");
    // A folder that does not exist is a usage error, as it always was.
    let out = install(Some(&hosts.join("nope")));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // Fixed (the host's own ERTS), the same root installs.
    let out = install(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(root.join("releases/RELEASES").exists());
    assert_eq!(listing(&hosts), vec!["demo", "not-an-erts"], "staging left behind");
}
