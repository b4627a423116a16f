//! Deltas from a hostile registry: the wanted chunks, verified, or a refusal; never a panic.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::delta(data));
