//! Erlang terms as text (`.rel`, `.app`, `sys.config`, `.appup`, rel's `.extra`): parsed or
//! refused; a parsed term printed by rel reads back as the same term.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::terms(data));
