//! Shared code of the fuzz targets in `fuzz_targets/`.
//!
//! - [`ws`]: WebSocket frames as a hostile client writes them, and a strict
//!   reader of what a server may send back;
//! - [`script`]: the `session` target's input format (a small byte code) and
//!   a builder that writes inputs for the seed corpus;
//! - [`session`]: one live server per fuzz process, the client that plays an
//!   input against it, and the checks on the server's answers;
//! - [`alloc`]: a global allocator that records the largest allocation, for
//!   the `decode` target's "never allocate unboundedly" check.
//!
//! The seed corpora in `corpus/` are written by this crate's tests
//! (`seeds.rs`): `UPDATE_SEEDS=1 cargo test` inside `fuzz/` rewrites them,
//! and plain `cargo test` checks that they are current and that every
//! session seed runs clean. Not for production code: nothing here is
//! used by the server.

pub mod alloc;
pub mod script;
pub mod session;
pub mod ws;

#[cfg(test)]
mod seeds;
