//! The registry's integration tests, one binary: the HTTP API in-process, every endpoint ×
//! every kind of caller, real listeners with racing pushes, and one storage conformance suite
//! for memory, a folder and a real S3 server.

mod api;
mod auth;
mod listener;
mod memory;
mod storage;
mod support;
