//! External term format: whatever decodes and has an external form (not every decoded term
//! does: `etf`'s module doc says which) encodes to bytes that decode to the same term.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::etf(data));
