//! `NAME@VERSION` wherever a command names one stored version (`rel show shop@0.2.0`, `rel
//! pull shop@0.2.0 -o shop.tar.gz`, `rel upgrade shop@0.3.0 --root …`), as cargo and hex
//! write it. The token right after the command is spelled out into the command's own
//! arguments before clap reads them, so every rule about them (validation, conflicts, help)
//! stays clap's: the version becomes the next positional for `show`, `promote` and `yank`,
//! `--version` for `pull` and `install` (`--digest` for `pull NAME@sha256:…`), `--to` for
//! `upgrade`. `appup` reads `NAME@VERSION` itself (its arguments may also be files).

use std::ffi::OsString;

/// Global options that take a value, which may stand before the command.
const GLOBAL_VALUES: &[&str] = &["--registry", "--token", "--client-config", "--cache-dir"];

/// How each command takes a version.
fn version_arg(command: &str) -> Option<Option<&'static str>> {
    match command {
        "show" | "promote" | "yank" => Some(None),
        "pull" | "install" => Some(Some("--version")),
        "upgrade" => Some(Some("--to")),
        _ => None,
    }
}

/// `args` with a `NAME@VERSION` right after a command that takes one spelled out.
pub fn expand(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while i < args.len() {
        let Some(a) = args[i].to_str() else { return args };
        if GLOBAL_VALUES.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    let Some(how) = args.get(i).and_then(|c| c.to_str()).and_then(version_arg) else {
        return args;
    };
    let Some((name, version)) = args
        .get(i + 1)
        .and_then(|t| t.to_str())
        .and_then(|t| t.split_once('@'))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
    else {
        return args;
    };
    let mut out: Vec<OsString> = args[..=i].to_vec();
    out.push(name.into());
    // `pull NAME@sha256:…` names the artifact by its manifest's digest.
    let by_digest = args[i] == "pull" && version.starts_with("sha256:");
    if let Some(flag) = how {
        out.push(if by_digest { "--digest" } else { flag }.into());
    }
    out.push(version.into());
    out.extend(args[i + 2..].iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> String {
        let args = line.split(' ').map(OsString::from).collect();
        expand(args)
            .iter()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn name_at_version_becomes_each_commands_own_arguments() {
        assert_eq!(run("rel show shop@0.2.0 --json"), "rel show shop 0.2.0 --json");
        assert_eq!(
            run("rel pull shop@0.2.0 -o s.tgz"),
            "rel pull shop --version 0.2.0 -o s.tgz"
        );
        assert_eq!(
            run("rel --registry http://r -q upgrade shop@0.3.0 --root /opt/shop"),
            "rel --registry http://r -q upgrade shop --to 0.3.0 --root /opt/shop"
        );
        assert_eq!(
            run("rel pull shop@sha256:ab12 -o s.tgz"),
            "rel pull shop --digest sha256:ab12 -o s.tgz"
        );
        assert_eq!(
            run("rel install shop@0.1.0+1-a --root r"),
            "rel install shop --version 0.1.0+1-a --root r"
        );
        assert_eq!(
            run("rel promote shop@1.0.0 --channel p"),
            "rel promote shop 1.0.0 --channel p"
        );
        // Left alone: other commands, plain names, and half-written ones (clap says what is wrong).
        assert_eq!(
            run("rel appup shop@1 shop@2 --out a"),
            "rel appup shop@1 shop@2 --out a"
        );
        assert_eq!(run("rel show shop 0.2.0"), "rel show shop 0.2.0");
        assert_eq!(run("rel show shop@"), "rel show shop@");
        assert_eq!(run("rel versions shop@1"), "rel versions shop@1");
    }
}
