//! Hostile archives are refused with an error naming the member, and nothing is written
//! outside (or, on refusal, inside) the target; folders pack deterministically.

use std::fs;
use std::path::{Path, PathBuf};

use rel::fs::{ExtractError, archive_folder, extract};
use rel_format::archive::{ArchiveError, Limits, canonicalize};
use rel_format::chunk::{ChunkRef, Chunker};

/// One raw tar member, written without any of the `tar` crate's checks.
struct Raw<'a> {
    name: &'a [u8],
    kind: u8,
    mode: u32,
    link: &'a [u8],
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        kind: b'0',
        mode: 0o644,
        link: b"",
        data,
    }
}

fn raw_tar(members: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..m.name.len()].copy_from_slice(m.name);
        h.as_old_mut().linkname[..m.link.len()].copy_from_slice(m.link);
        h.set_mode(m.mode);
        h.set_size(m.data.len() as u64);
        h.set_entry_type(tar::EntryType::new(m.kind));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A scratch area: `work/` holds targets, `outside/` must stay untouched.
struct Scratch {
    _dir: tempfile::TempDir,
    work: PathBuf,
    outside: PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work/deep");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(&outside).unwrap();
    Scratch {
        work,
        outside,
        _dir: dir,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Extracts `tar` into a fresh target and expects a refusal; checks nothing was left.
fn refuse(tar: &[u8], limits: Limits) -> ArchiveError {
    let s = scratch();
    let target = s.work.join("release");
    let err = extract(tar, &target, limits).unwrap_err();
    assert!(!target.exists(), "a refused extraction left {}", target.display());
    assert!(
        listing(&s.work).is_empty(),
        "leftovers in the work dir: {:?}",
        listing(&s.work)
    );
    assert!(
        listing(&s.outside).is_empty(),
        "something was written outside: {:?}",
        listing(&s.outside)
    );
    match err {
        ExtractError::Refused { source, .. } => source,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn parent_dir_members_are_refused() {
    let tar = raw_tar(&[file("ok.txt", b"fine"), file("../../outside/evil", b"x")]);
    let err = refuse(&tar, Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `../../outside/evil` has a `..` component"
    );
}

#[test]
fn absolute_members_are_refused() {
    let err = refuse(&raw_tar(&[file("/tmp/evil", b"x")]), Limits::default());
    assert_eq!(err.to_string(), "archive member `/tmp/evil` has an absolute path");
}

#[test]
fn escaping_symlinks_are_refused() {
    let link = |name: &'static str, target: &'static str| Raw {
        name: name.as_bytes(),
        kind: b'2',
        mode: 0o777,
        link: target.as_bytes(),
        data: b"",
    };
    let err = refuse(&raw_tar(&[link("etc", "/etc")]), Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `etc` is a symlink to `/etc`, which leaves the archive's root"
    );
    let err = refuse(&raw_tar(&[link("lib/up", "../../outside")]), Limits::default());
    assert!(matches!(err, ArchiveError::SymlinkEscape { .. }), "{err}");
}

#[test]
fn members_through_symlinks_are_refused() {
    // The link itself stays inside, but writing through it is refused all the same.
    let tar = raw_tar(&[
        Raw {
            name: b"dir",
            kind: b'5',
            mode: 0o755,
            link: b"",
            data: b"",
        },
        Raw {
            name: b"via",
            kind: b'2',
            mode: 0o777,
            link: b"dir",
            data: b"",
        },
        file("via/x", b"through a link"),
    ]);
    let err = refuse(&tar, Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `via/x` goes through `via`, which is not a directory"
    );
}

#[test]
fn hard_links_must_target_earlier_files_inside() {
    let hard = |name: &'static str, target: &'static str| Raw {
        name: name.as_bytes(),
        kind: b'1',
        mode: 0o644,
        link: target.as_bytes(),
        data: b"",
    };
    let err = refuse(&raw_tar(&[hard("passwd", "/etc/passwd")]), Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `passwd` is a hard link to `/etc/passwd`, which is not an earlier regular file of the archive"
    );
    let err = refuse(
        &raw_tar(&[hard("early", "later"), file("later", b"x")]),
        Limits::default(),
    );
    assert!(matches!(err, ArchiveError::HardLinkTarget { .. }), "{err}");
}

#[test]
fn devices_and_setid_bits_are_refused() {
    let dev = Raw {
        name: b"dev/sda",
        kind: b'4',
        mode: 0o600,
        link: b"",
        data: b"",
    };
    let err = refuse(&raw_tar(&[dev]), Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `dev/sda` is a block device; only files, directories and links are allowed"
    );
    let suid = Raw {
        name: b"bin/su",
        kind: b'0',
        mode: 0o4755,
        link: b"",
        data: b"x",
    };
    let err = refuse(&raw_tar(&[suid]), Limits::default());
    assert_eq!(
        err.to_string(),
        "archive member `bin/su` has mode 4755 with the setuid or setgid bit"
    );
}

#[test]
fn size_count_and_duplicate_limits() {
    let limits = Limits {
        max_total_bytes: 8,
        max_entries: 2,
        max_path_len: 64,
    };
    let err = refuse(&raw_tar(&[file("a", b"12345"), file("b", b"67890")]), limits);
    assert_eq!(
        err.to_string(),
        "archive holds more than 8 bytes of contents (at member `b`)"
    );
    let err = refuse(&raw_tar(&[file("a", b""), file("b", b""), file("c", b"")]), limits);
    assert_eq!(err.to_string(), "archive holds more than 2 members (at member `c`)");
    let err = refuse(&raw_tar(&[file("a", b"1"), file("./a", b"2")]), Limits::default());
    assert_eq!(err.to_string(), "archive member `a` appears twice");
}

#[test]
fn truncated_archives_leave_nothing() {
    let mut tar = raw_tar(&[file("a", &[7u8; 5000])]);
    tar.truncate(512 + 1000);
    let err = refuse(&tar, Limits::default());
    assert!(
        matches!(err, ArchiveError::SizeMismatch { .. } | ArchiveError::Read(_)),
        "{err:?}"
    );
}

#[test]
fn an_existing_target_is_left_alone() {
    let s = scratch();
    let target = s.work.join("release");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"mine").unwrap();
    let err = extract(
        raw_tar(&[file("keep", b"theirs")]).as_slice(),
        &target,
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ExtractError::TargetExists(_)), "{err}");
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"mine");
}

#[test]
fn a_good_archive_extracts_with_links_and_modes() {
    let s = scratch();
    let target = s.work.join("release");
    let tar = raw_tar(&[
        Raw {
            name: b"bin/start",
            kind: b'0',
            mode: 0o750,
            link: b"",
            data: b"#!/bin/sh\n",
        },
        file("releases/1/sys.config", b"[]."),
        Raw {
            name: b"releases/1/sys.link",
            kind: b'2',
            mode: 0o777,
            link: b"sys.config",
            data: b"",
        },
        Raw {
            name: b"releases/copy",
            kind: b'1',
            mode: 0o644,
            link: b"releases/1/sys.config",
            data: b"",
        },
    ]);
    let report = extract(tar.as_slice(), &target, Limits::default()).unwrap();
    assert_eq!((report.entries, report.bytes), (4, 13));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(target.join("bin/start")).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(fs::read(target.join("releases/1/sys.link")).unwrap(), b"[].");
    assert_eq!(fs::read(target.join("releases/copy")).unwrap(), b"[].");
    assert_eq!(listing(&s.work), vec!["release"]);
}

fn fixture_tarball() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/out");
    let first = fs::read_to_string(dir.join("VERSIONS")).expect("run fixtures/build.sh first");
    dir.join(format!("demo-{}.tar.gz", first.lines().next().unwrap()))
}

fn digest_of_folder(dir: &Path) -> rel_format::Digest {
    let chunker = Chunker::new(|_: &ChunkRef, _: &[u8]| Ok(()));
    let (chunker, _) = archive_folder(dir, chunker, Limits::default(), &Default::default()).unwrap();
    chunker.finish().unwrap().0.digest
}

#[test]
fn a_real_release_extracts_and_packs_deterministically() {
    let s = scratch();
    let target = s.work.join("demo");
    let report = extract(fs::File::open(fixture_tarball()).unwrap(), &target, Limits::default()).unwrap();
    assert!(report.entries > 100, "{report:?}");

    let (_, seen) = archive_folder(&target, std::io::sink(), Limits::default(), &Default::default()).unwrap();
    let rel = seen.release(None).unwrap();
    assert_eq!(rel.name, "demo");

    let before = digest_of_folder(&target);
    // mtimes do not matter...
    let beam = fs::read_dir(target.join(format!("lib/demo-{}/ebin", rel.version)))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let f = fs::File::options().write(true).open(&beam).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    assert_eq!(digest_of_folder(&target), before);
    // ...the executable bit does.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&beam, fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(digest_of_folder(&target), before);

    // The same release from the tarball and from the folder gives the same .rel.
    let (_, from_tar) = canonicalize(
        fs::File::open(fixture_tarball()).unwrap(),
        std::io::sink(),
        Limits::default(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(from_tar.release(None).unwrap(), rel);
}

#[test]
fn packing_refuses_escaping_symlinks_in_a_folder() {
    let s = scratch();
    let dir = s.work.join("rel");
    fs::create_dir_all(dir.join("releases/1")).unwrap();
    std::os::unix::fs::symlink("/etc/demo/sys.config", dir.join("releases/1/sys.config")).unwrap();
    let err = archive_folder(&dir, std::io::sink(), Limits::default(), &Default::default()).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        chain.contains("is a symlink to `/etc/demo/sys.config`, which leaves the archive's root"),
        "{chain}"
    );
}
