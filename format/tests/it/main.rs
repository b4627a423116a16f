//! The format crate's integration tests, one binary: the examples in SPEC.md, the BEAM reader
//! and relups against OTP itself, the fixture releases built with real OTP, and supervisors
//! read from code against what running nodes report.
#![allow(clippy::print_stdout)] // the dedup report is printed on purpose

mod beam;
mod chunk;
mod etf;
mod fixtures;
mod fuzz_seeds;
mod relup;
mod spec;
mod supervision;
