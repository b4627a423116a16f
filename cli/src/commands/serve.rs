//! `rel serve`: a registry on a local folder (default) or S3.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rel_format::{PublicKey, TrustedKeys};
use rel_registry::auth::Tokens;
use rel_registry::config::{Config, open_store};
use rel_registry::{AppState, Options};

use crate::cli::ServeArgs;

pub async fn run(args: &ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    // Flags and REL_* (through clap) win over the file.
    let listen = args
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let store_url = args
        .store
        .clone()
        .or(file.store.clone())
        .unwrap_or_else(|| "file://rel-data".into());
    let publisher_paths = if args.publisher_keys.is_empty() {
        file.publisher_keys.clone()
    } else {
        args.publisher_keys.clone()
    };
    let tokens_path = args.tokens.clone().or(file.tokens.clone());
    let insecure = args.insecure || file.insecure.unwrap_or(false);
    let accept_unsafe = args.accept_unsafe_store || file.accept_unsafe_store.unwrap_or(false);

    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("`{listen}` is not an address like 127.0.0.1:7878"))?;
    let tokens = match &tokens_path {
        Some(p) => Tokens::from_file(p)?,
        None => Tokens::open(),
    };
    if tokens.is_open() {
        if !addr.ip().is_loopback() && !insecure {
            bail!(
                "refusing to serve {addr} without tokens: anyone could push; pass --tokens FILE, or --insecure to accept that"
            );
        }
        tracing::warn!(%addr, "no token file: development mode, every request is allowed");
    }
    let mut keys = Vec::new();
    for p in &publisher_paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read publisher key `{}`", p.display()))?;
        keys.push(
            text.trim()
                .parse::<PublicKey>()
                .with_context(|| format!("`{}` is not a public key", p.display()))?,
        );
    }
    if keys.is_empty() {
        tracing::warn!(
            "no --publisher-key: any well-formed signed manifest is accepted; hosts enforce trust at pull time"
        );
    }

    let store = open_store(&store_url, &file.s3)?;
    if let Err(problem) = store.self_test().await {
        if accept_unsafe {
            tracing::error!(store = %store.url, %problem, "the store failed the write-once self-test; continuing because --accept-unsafe-store");
        } else {
            bail!(
                "the store `{}` failed the write-once self-test: {problem}. Versions could be overwritten and channels rolled back. Use a store that honours If-None-Match/If-Match, or pass --accept-unsafe-store",
                store.url
            );
        }
    }
    let options = Options {
        tokens,
        publishers: TrustedKeys::new(keys),
        catalog_ttl: Duration::from_millis(file.catalog_ttl_ms.unwrap_or(2000)),
        gc_grace: Duration::from_secs(file.gc_grace_seconds.unwrap_or(24 * 3600)),
    };
    let state = AppState::new(store.clone(), options);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, store = %store.url, "rel registry listening");
    // Scripts read the address from this line (useful with port 0).
    crate::say(&format!(
        "rel registry listening on http://{local} (store {})",
        store.url
    ));
    let exit_after = args.exit_after;
    let shutdown = async move {
        let timer = async {
            match exit_after {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            () = timer => {}
        }
        tracing::info!("shutting down; finishing in-flight requests");
    };
    rel_registry::serve(listener, state, shutdown).await?;
    Ok(())
}
