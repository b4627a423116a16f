//! What rel's tests share, in one place: the fixture releases that `fixtures/build.sh` builds
//! with real OTP ([`fixtures`]), live OTP nodes booted from them ([`otp`]), releases run by
//! their tools' own start scripts ([`live`]) under continuous HTTP requests ([`load`]),
//! deterministic bytes ([`noise`]), signed artifacts with real chunks ([`artifacts`]) and a
//! real S3 server ([`s3`]). Nothing here is a mock: every helper drives the real tool or format.
#![allow(missing_debug_implementations, clippy::missing_panics_doc)]

pub mod artifacts;
pub mod fixtures;
pub mod live;
pub mod load;
pub mod otp;
pub mod s3;

/// Deterministic pseudo-random bytes (xorshift), the same for the same seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A free port on 127.0.0.1 (free when asked; tests bind it soon after).
///
/// It is taken below Linux's ephemeral range (32768 and up), at random: a port the kernel
/// hands to someone binding port 0 (a registry, a client's connection) in the moment between
/// this check and the node's own bind could otherwise be this very one, which made a live
/// test fail with `eaddrinuse` when tests ran side by side.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    for _ in 0..200 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}
