//! Signed manifests and channel pointers: read or refused within their bounds; a read
//! envelope written again is the same envelope, and a signature never verifies under a key
//! that did not make it.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::signed(data));
