//! Cross-crate end-to-end scenarios live in `e2e.rs`; this crate has no library code.
