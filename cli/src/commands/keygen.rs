//! `rel keygen`: an ed25519 key pair in `name:base64` form.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};
use rel_format::SecretKey;

use crate::args::KeygenArgs;

pub fn run(args: &KeygenArgs, quiet: bool) -> Result<()> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).context("no randomness from the operating system")?;
    let key = SecretKey::from_seed(&args.name, seed)?;
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("cannot create `{}`", args.out_dir.display()))?;
    let secret = args.out_dir.join(format!("{}.key", args.name));
    let public = args.out_dir.join(format!("{}.pub", args.name));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| {
            format!(
                "cannot create `{}` (an existing key is never overwritten)",
                secret.display()
            )
        })?;
    writeln!(f, "{}", key.to_secret_string())?;
    std::fs::write(&public, format!("{}\n", key.public()))?;
    if args.json {
        crate::print_json(&serde_json::json!({
            "name": args.name,
            "secret_key_file": secret,
            "public_key_file": public,
            "public_key": key.public().to_string(),
        }));
    } else if !quiet {
        crate::say(&format!(
            "wrote {} (secret, mode 0600) and {}",
            secret.display(),
            public.display()
        ));
        crate::say(&key.public().to_string());
    }
    Ok(())
}
