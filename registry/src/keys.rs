//! Every storage key the registry reads or writes (SPEC.md §7.1), built and read back here
//! and nowhere else. Names and versions are validated before they reach this module, so a
//! segment never holds `/` or `..`.
//!
//! ```text
//! packs/<hex[0..2]>/<hex>.pack                          chunks' zstd frames, write-once
//! packs/<hex[0..2]>/<hex>.idx                           where each chunk is in that pack
//! manifests/<name>/<version>/release.json               signed envelope, write-once
//! manifests/<name>/<version>/upgrade-<fromkey>.json     fromkey: 32 hex of sha256 of the from list
//! channels/<name>/<channel>.json                        signed pointer, compare-and-swap
//! yanked/<name>/<version>                               marker
//! yanked-upgrades/<name>/<version>/upgrade-<fromkey>.json   marker of a yanked upgrade
//! replaced/<name>/<version>/upgrade-<fromkey>.json.<unix>   a yanked upgrade, once replaced
//! gc/marked.json                                        chunks marked by garbage collection
//! registry.json                                         the registry's identity, written once
//! selftest/<nonce>                                      the start-up probe of write-once
//! ```

use object_store::path::Path;
use rel_format::manifest::Kind;
use rel_format::{Digest, Version};

/// Where packs and their indexes live.
pub const PACKS: &str = "packs";
/// Where manifests live, one folder per release name.
pub const MANIFESTS: &str = "manifests";
/// The garbage collector's mark.
pub const GC_MARK: &str = "gc/marked.json";
/// The registry's identity (`{"id": "<32 hex>"}`), created once, shared by replicas.
pub const IDENTITY: &str = "registry.json";

/// Key of the pack named `id` (`rel_format::pack::pack_id`).
pub fn pack(id: &Digest) -> Path {
    let hex = id.hex();
    Path::from(format!("{PACKS}/{}/{hex}.pack", &hex[..2]))
}

/// Key of the index of the pack at `pack`.
pub fn index(pack: &Path) -> Path {
    Path::from(format!("{}.idx", pack.as_ref().trim_end_matches(".pack")))
}

/// Whether `key` is a pack (not its index, nor upload debris).
pub fn is_pack(key: &Path) -> bool {
    key.as_ref().starts_with(PACKS) && key.as_ref().ends_with(".pack")
}

/// Whether `key` is a pack index.
pub fn is_index(key: &Path) -> bool {
    key.as_ref().starts_with(PACKS) && key.as_ref().ends_with(".idx")
}

/// The pack an index belongs to.
pub fn pack_of_index(index: &Path) -> Path {
    Path::from(format!("{}.pack", index.as_ref().trim_end_matches(".idx")))
}

/// The prefix under which the manifests of `name` live.
pub fn manifests_of(name: &str) -> String {
    format!("{MANIFESTS}/{name}")
}

/// Key of a manifest.
pub fn manifest(name: &str, version: &Version, kind: Kind, from: &[Version]) -> Path {
    match kind {
        Kind::Release => Path::from(format!("{MANIFESTS}/{name}/{version}/release.json")),
        Kind::Upgrade => {
            let mut list: Vec<&str> = from.iter().map(Version::as_str).collect();
            list.sort_unstable();
            let key = &Digest::of(list.join("\n").as_bytes()).hex()[..32];
            Path::from(format!("{MANIFESTS}/{name}/{version}/upgrade-{key}.json"))
        }
    }
}

/// Reads `(name, version, kind)` back from a manifest key.
pub fn parse_manifest(key: &Path) -> Option<(String, Version, Kind)> {
    let parts: Vec<_> = key.parts().collect();
    match parts.as_slice() {
        [m, name, version, file] if m.as_ref() == MANIFESTS => {
            let kind = if file.as_ref() == "release.json" {
                Kind::Release
            } else if file.as_ref().starts_with("upgrade-") && file.as_ref().ends_with(".json") {
                Kind::Upgrade
            } else {
                return None;
            };
            Some((name.as_ref().to_owned(), version.as_ref().parse().ok()?, kind))
        }
        _ => None,
    }
}

/// The prefix under which the channels of `name` live.
pub fn channels_of(name: &str) -> String {
    format!("channels/{name}")
}

pub fn channel(name: &str, channel: &str) -> Path {
    Path::from(format!("channels/{name}/{channel}.json"))
}

/// The prefix of the yank markers of `name`'s versions.
pub fn yanked_of(name: &str) -> String {
    format!("yanked/{name}")
}

pub fn yank(name: &str, version: &Version) -> Path {
    Path::from(format!("yanked/{name}/{version}"))
}

/// The version a yank marker of [`yanked_of`] names.
pub fn parse_yank(key: &Path) -> Option<Version> {
    key.filename()?.parse().ok()
}

/// The prefix of the markers of `name`'s yanked upgrades.
pub fn yanked_upgrades_of(name: &str) -> String {
    format!("yanked-upgrades/{name}")
}

/// Marker of a yanked upgrade artifact: its manifest's key under `yanked-upgrades/`.
pub fn yanked_upgrade(manifest: &Path) -> Option<Path> {
    manifest
        .as_ref()
        .strip_prefix(MANIFESTS)
        .map(|rest| Path::from(format!("yanked-upgrades{rest}")))
}

/// The manifest a yanked-upgrade marker stands for.
pub fn manifest_of_yanked_upgrade(marker: &Path) -> Option<Path> {
    let parts: Vec<_> = marker.parts().collect();
    (parts.len() == 4).then(|| {
        Path::from(format!(
            "{MANIFESTS}/{}/{}/{}",
            parts[1].as_ref(),
            parts[2].as_ref(),
            parts[3].as_ref()
        ))
    })
}

/// Where a yanked upgrade's manifest is kept once a corrected one replaced it.
pub fn replaced(manifest: &Path, unix_seconds: i64) -> Path {
    Path::from(format!(
        "replaced/{}.{unix_seconds}",
        manifest.as_ref().trim_start_matches("manifests/")
    ))
}

/// Where the start-up self-test writes its probes.
pub const SELFTEST: &str = "selftest";

/// The probe object of the start-up self-test.
pub fn selftest(nonce: &str) -> Path {
    Path::from(format!("selftest/{nonce}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        let v: Version = "1.0.0+20240101-1-aaaaaaa".parse().unwrap();
        let from: Vec<Version> = vec!["0.9.0".parse().unwrap()];
        let key = manifest("demo", &v, Kind::Upgrade, &from);
        assert_eq!(parse_manifest(&key), Some(("demo".into(), v.clone(), Kind::Upgrade)));
        let marker = yanked_upgrade(&key).unwrap();
        assert!(marker.as_ref().starts_with("yanked-upgrades/demo/"));
        assert_eq!(manifest_of_yanked_upgrade(&marker), Some(key.clone()));
        let p = pack(&Digest::of(b"x"));
        assert!(is_pack(&p) && !is_index(&p));
        assert_eq!(pack_of_index(&index(&p)), p);
        assert_eq!(parse_yank(&yank("demo", &v)), Some(v));
    }
}
