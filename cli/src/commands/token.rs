//! `rel token`: the registry's tokens file, edited in place. A token is 32 random bytes
//! (`rel_` and 64 hex digits), printed once and stored only as its sha256, with its scope,
//! release globs and expiry. The file keeps its comments and layout (`toml_edit`), is checked
//! as the registry reads it before it replaces the old one, and is written atomically: a
//! running registry sees the new contents at its next request, and a revoked token is
//! refused from then on.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rel_registry::auth::TokenFile;
use serde::Serialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::args::{ScopeArg, TokenCommand, TokenCreateArgs};

pub fn run(command: &TokenCommand, quiet: bool) -> Result<()> {
    match command {
        TokenCommand::Create(args) => create(args, quiet),
        TokenCommand::List(args) => list(&args.file.file, args.json),
        TokenCommand::Revoke(args) => {
            let path = &args.file.file;
            let mut doc = read(path)?;
            let tokens = tokens_mut(&mut doc, path)?;
            let Some(i) = tokens
                .iter()
                .position(|t| t.get("name").and_then(Item::as_str) == Some(&args.name))
            else {
                bail!("no token named `{}` in `{}`", args.name, path.display());
            };
            tokens.remove(i);
            write(path, &doc)?;
            if args.json {
                crate::print_json(&serde_json::json!({ "revoked": args.name, "file": path }));
            } else if !quiet {
                crate::say(&format!(
                    "token `{}` revoked: the registry refuses it from its next request",
                    args.name
                ));
            }
            Ok(())
        }
    }
}

/// The file as a document; a missing file is an empty one.
fn read(path: &Path) -> Result<DocumentMut> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read the tokens file `{}`", path.display())),
    };
    // Only a file the registry accepts is edited: an edit never hides an earlier mistake.
    TokenFile::parse(path, &text)?;
    text.parse::<DocumentMut>()
        .with_context(|| format!("the tokens file `{}` is not TOML", path.display()))
}

fn tokens_mut<'d>(doc: &'d mut DocumentMut, path: &Path) -> Result<&'d mut ArrayOfTables> {
    doc.entry("tokens")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .with_context(|| format!("`tokens` in `{}` is not a list of [[tokens]] tables", path.display()))
}

/// Checks the new contents as the registry will read them, then replaces the file.
fn write(path: &Path, doc: &DocumentMut) -> Result<()> {
    let text = doc.to_string();
    TokenFile::parse(path, &text)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write beside `{}`", path.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    // Hashes only, but who may do what is the operator's business.
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct Created<'a> {
    name: &'a str,
    token: &'a str,
    scope: &'a str,
    releases: &'a [String],
    expires: rel_format::Timestamp,
}

fn create(args: &TokenCreateArgs, quiet: bool) -> Result<()> {
    let path = &args.file.file;
    let mut doc = read(path)?;
    let tokens = tokens_mut(&mut doc, path)?;
    if tokens
        .iter()
        .any(|t| t.get("name").and_then(Item::as_str) == Some(&args.name))
    {
        bail!(
            "`{}` already has a token named `{}`; revoke it first (`rel token revoke {}`) or pick another name",
            path.display(),
            args.name,
            args.name
        );
    }
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).context("no randomness for the token")?;
    let token = format!("rel_{}", hex::encode(secret));
    let scope = match args.scope {
        ScopeArg::Pull => "pull",
        ScopeArg::Push => "push",
        ScopeArg::Admin => "admin",
    };
    let releases = if args.releases.is_empty() {
        vec!["*".to_owned()]
    } else {
        args.releases.clone()
    };
    let expires = crate::now().plus_seconds(args.expires_in.seconds);
    let mut entry = Table::new();
    entry.insert("name", value(&args.name));
    entry.insert("sha256", value(rel_format::Digest::of(token.as_bytes()).hex()));
    entry.insert("scopes", value(Array::from_iter([scope])));
    entry.insert("releases", value(Array::from_iter(releases.iter().map(String::as_str))));
    entry.insert("expires", value(expires.to_string()));
    tokens.push(entry);
    write(path, &doc)?;
    if args.json {
        crate::print_json(&Created {
            name: &args.name,
            token: &token,
            scope,
            releases: &releases,
            expires,
        });
    } else {
        crate::print_raw(&format!("{token}\n"));
        if !quiet {
            crate::say(&format!(
                "token `{}` ({scope} on {}) valid until {expires}, stored hashed in `{}`: copy it now, it is not shown again",
                args.name,
                releases.join(", "),
                path.display()
            ));
        }
    }
    Ok(())
}

fn list(path: &Path, json: bool) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the tokens file `{}`", path.display()))?;
    let file = TokenFile::parse(path, &text)?;
    let now = crate::now();
    #[derive(Serialize)]
    struct Listed<'a> {
        name: &'a str,
        scopes: Vec<String>,
        releases: &'a [String],
        expires: rel_format::Timestamp,
        expired: bool,
    }
    let listed: Vec<Listed> = file
        .tokens
        .iter()
        .map(|t| Listed {
            name: &t.name,
            scopes: t.scopes.iter().map(ToString::to_string).collect(),
            releases: &t.releases,
            expires: t.expires,
            expired: now >= t.expires,
        })
        .collect();
    if json {
        crate::print_json(&serde_json::json!({ "anonymous_pull": file.anonymous_pull, "tokens": listed }));
        return Ok(());
    }
    let width = listed.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    for t in &listed {
        out.push_str(&format!(
            "{:<width$}  {:<6} {:<24} {}{}\n",
            t.name,
            t.scopes.join(","),
            t.releases.join(","),
            t.expires,
            if t.expired { "  (expired)" } else { "" }
        ));
    }
    if file.anonymous_pull {
        out.push_str("(anyone may pull without a token)\n");
    }
    crate::print_raw(&out);
    Ok(())
}
