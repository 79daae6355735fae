//! Fuzzes the server's handling of one client's byte stream against a live
//! room: the connection layer (`server/src/net/conn.rs`: handshake,
//! fragments, control frames, close handling, rate limits) and what lies
//! behind it (lobby, rooms, resume and takeover).
//!
//! One server is built per process (`fuzz::session::harness`); each input
//! is parsed by `fuzz::script` into either raw bytes after an optional
//! `Hello`, or a script of frames, pauses and takeovers, played over an
//! in-memory stream handed to `Sessions::serve`.
//!
//! Asserts, for every input (details in `fuzz/src/session.rs`): no panic
//! anywhere in the process, server tasks included; the iteration ends
//! within 5 s; the server's output is valid WebSocket frames from a
//! server, with at most one close frame and nothing after it, a known
//! close code and a UTF-8 reason; every binary frame is a valid
//! `ServerMsg` in a valid order (`Welcome` first and once, a valid `Hello`
//! answered with `Welcome` or the one applicable refusal, each snapshot
//! holding the player's own entity, pongs echoing sent pings); and the
//! server's player and room gauges never go negative.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        fuzz::session::abort_on_panic();
        fuzz::session::harness();
    },
    |data: &[u8]| {
        fuzz::session::harness().run(data);
    }
);
