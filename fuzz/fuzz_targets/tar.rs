//! Release archives (tar, gzip, zstd): made canonical or refused with an error naming the
//! member; nothing is written anywhere but the sink.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::tar(data));
