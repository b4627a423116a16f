//! BEAM files: every question rel asks of a module answers or errs, never panics.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::beam(data));
