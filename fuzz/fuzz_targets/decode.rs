//! Fuzzes the protocol decoder: arbitrary bytes into
//! `protocol::decode_client` and `protocol::decode_server`.
//!
//! Asserts, for every input:
//! - neither decoder panics (libFuzzer reports the panic as a crash);
//! - neither allocates more than its message limit plus a little slack in
//!   one request, however large a length the input claims (watched by the
//!   global allocator in `fuzz::alloc`, which works without a sanitizer);
//! - a message that decodes re-encodes to bytes that decode to the same
//!   message, no longer than the input (the encoder writes shortest forms;
//!   the decoder may accept longer ones, see PROTOCOL.md §3.1);
//! - for a decoded `Snapshot`, the hand-written encoder `protocol::wire`
//!   produces exactly bincode's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, ServerMsg, Snapshot};

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Watched = fuzz::alloc::Watched;

/// Allowance above a direction's message limit for one allocation: the
/// decoder's error message and bookkeeping, never a payload.
const SLACK: usize = 4096;

fuzz_target!(|data: &[u8]| {
    fuzz::alloc::reset();
    let client = protocol::decode_client(data);
    let largest = fuzz::alloc::largest();
    assert!(
        largest <= MAX_CLIENT_MSG_BYTES + SLACK,
        "decode_client allocated {largest} bytes at once for a {}-byte input",
        data.len()
    );
    if let Ok(msg) = client {
        let mut again = Vec::new();
        protocol::encode_client(&msg, &mut again);
        assert!(again.len() <= data.len(), "{msg:?}: re-encoding grew");
        assert_eq!(protocol::decode_client(&again), Ok(msg));
    }

    fuzz::alloc::reset();
    let server = protocol::decode_server(data);
    let largest = fuzz::alloc::largest();
    assert!(
        largest <= MAX_SERVER_MSG_BYTES + SLACK,
        "decode_server allocated {largest} bytes at once for a {}-byte input",
        data.len()
    );
    if let Ok(msg) = server {
        let mut again = Vec::new();
        protocol::encode_server(&msg, &mut again);
        assert!(again.len() <= data.len(), "{msg:?}: re-encoding grew");
        if let ServerMsg::Snapshot(s) = &msg {
            assert_eq!(by_hand(s), again, "protocol::wire disagrees with bincode");
        }
        assert_eq!(protocol::decode_server(&again), Ok(msg));
    }
});

/// A snapshot encoded the way the server's fan-out does it.
fn by_hand(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::wire::encode_snapshot_header(s.tick, s.ack, s.players, s.entities.len(), &mut out);
    for e in &s.entities {
        protocol::wire::encode_entity(e, &mut out);
    }
    out
}
