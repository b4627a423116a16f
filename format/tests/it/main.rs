//! The format crate's integration tests, one binary: the examples in SPEC.md, the BEAM reader
//! and relups against OTP itself, and the fixture releases built with real OTP.
#![allow(clippy::print_stdout)] // the dedup report is printed on purpose

mod beam;
mod chunk;
mod etf;
mod fixtures;
mod relup;
mod spec;
