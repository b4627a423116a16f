//! `rel serve`: a registry on a local folder (default) or S3. The policy (precedence,
//! defaults, the loopback guard, the store's self-test) is the registry's own
//! (`rel_registry::config`); this command only passes the flags and waits for a signal.

use std::time::Duration;

use anyhow::{Context, Result};
use rel_registry::AppState;
use rel_registry::config::{Flags, Settings};

use crate::args::ServeArgs;

pub async fn run(args: &ServeArgs) -> Result<()> {
    let settings = Settings::resolve(&Flags {
        listen: args.listen.clone(),
        store: args.store.clone(),
        config: args.config.clone(),
        publisher_keys: args.publisher_keys.clone(),
        tokens: args.tokens.clone(),
        insecure: args.insecure,
        accept_unsafe_store: args.accept_unsafe_store,
    })?;
    let addr = settings.listen;
    let (store, options) = settings.open().await?;
    let url = store.url.clone();
    let state = AppState::new(store, options);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, store = %url, "rel registry listening");
    // Scripts read the address from this line (useful with port 0).
    crate::say(&format!("rel registry listening on http://{local} (store {url})"));
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
