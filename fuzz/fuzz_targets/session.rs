//! Fuzzes the server's handling of one client's byte stream against a live
//! server with both games registered: the connection layer
//! (`server/src/net/conn.rs`: handshake, fragments, control frames, close
//! handling, rate limits) and what lies behind it (the lobby's
//! matchmaking, room requests and invite codes, rooms, the games' message
//! decoding, reliable events, resume and takeover).
//!
//! One server is built per process (`fuzz::session::harness`); each input
//! is parsed by `fuzz::script` into an opening (nothing, a `Hello` with a
//! room request, a resume) followed by raw bytes or a script of frames,
//! messages, pauses, takeovers, an opponent and moves at four, played over
//! in-memory streams handed to `Sessions::serve`.
//!
//! Asserts, for every input (details in `fuzz/src/session.rs`): no panic
//! anywhere in the process, server tasks included; the iteration ends
//! within 5 s; the server's output is valid WebSocket frames from a
//! server, with at most one close frame and nothing after it, a known
//! close code and a UTF-8 reason; every binary frame is a valid
//! `ServerMsg` in a valid order (a valid `Hello` answered first with a
//! `Welcome` that fits the request, or a refusal that applies to it; states
//! and events that decode as their game's; events numbered consecutively,
//! from the right number after a resume; pongs echoing sent pings); and the
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
