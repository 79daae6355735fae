//! Fuzzes every decoder of untrusted bytes: the envelope's
//! (`protocol::decode_client`, `protocol::decode_server`) and each game's
//! (`game_api::codec::decode_message` for the arena's `Move` and four's
//! `FourMsg`, which the server runs on clients' bytes;
//! `game_api::codec::decode` for `ArenaState`, `FourState` and `FourEvent`,
//! which clients run on the server's). The input goes to all of them, and
//! the game bytes inside a decoded envelope message (a `Game`'s data, a
//! `State`'s, an `Event`'s) go to the decoders of what they may hold.
//!
//! Asserts, for every input:
//! - no decoder panics (libFuzzer reports the panic as a crash);
//! - none allocates more than its limit plus a little slack in one
//!   request, however large a length the input claims
//!   (watched by the global allocator in `fuzz::alloc`, which works without
//!   a sanitizer);
//! - a value that decodes re-encodes to bytes that decode to the same
//!   value, no longer than the input (the encoder writes shortest forms;
//!   the decoder may accept longer ones, see PROTOCOL.md §3.1);
//! - the server's hand-written writers produce exactly bincode's bytes:
//!   `protocol::wire::begin_state`/`finish_state` (each tick's states,
//!   written in place into a shared buffer) for every decoded `State`,
//!   `protocol::wire::encode_event` for every decoded `Event`, and the
//!   arena's `encode_entity` through `EncodedEntities::write_view` (each
//!   player's view) for every decoded `ArenaState`, in order and reversed.

#![no_main]

use arena::msg::{ArenaState, MAX_ENTITY_BYTES, Move, encode_entity};
use four::msg::{FourEvent, FourMsg, FourState};
use game_api::codec::{self, DecodeError};
use game_api::replication::EncodedEntities;
use libfuzzer_sys::fuzz_target;
use protocol::{ClientMsg, MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, ServerMsg};
use serde::Serialize;
use std::fmt::Debug;

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Watched = fuzz::alloc::Watched;

/// Allowance above a decoder's byte limit for one allocation: the
/// decoder's error message and bookkeeping, never a payload.
const SLACK: usize = 4096;

/// Bytes the server's tick buffer holds before a state written in place:
/// the states of other players of the same tick.
const BEFORE: &[u8] = &[0xEE, 0xEE, 0xEE];

fuzz_target!(|data: &[u8]| {
    if let Some(ClientMsg::Game(m)) = decoded(
        "decode_client",
        data,
        MAX_CLIENT_MSG_BYTES,
        protocol::decode_client,
        protocol::encode_client,
    ) {
        game_messages(&m.data);
    }
    match decoded(
        "decode_server",
        data,
        MAX_SERVER_MSG_BYTES,
        protocol::decode_server,
        protocol::encode_server,
    ) {
        Some(ServerMsg::State(s)) => {
            let mut out = BEFORE.to_vec();
            let mark = protocol::wire::begin_state(s.tick, s.ack, &mut out);
            out.extend_from_slice(&s.data);
            protocol::wire::finish_state(mark, &mut out);
            assert_eq!(
                out[..BEFORE.len()],
                *BEFORE,
                "finish_state wrote before its state"
            );
            assert_eq!(
                out[BEFORE.len()..],
                bincode(&ServerMsg::State(s.clone()))[..],
                "begin_state/finish_state disagree with bincode"
            );
            game_states(&s.data);
        }
        Some(ServerMsg::Event(e)) => {
            let mut out = Vec::new();
            protocol::wire::encode_event(e.seq, &e.data, &mut out);
            assert_eq!(
                out,
                bincode(&ServerMsg::Event(e.clone())),
                "encode_event disagrees with bincode"
            );
            game_states(&e.data);
        }
        _ => {}
    }
    game_messages(data);
    game_states(data);
});

/// The games' message decoders, run by the server on a client's bytes.
fn game_messages(data: &[u8]) {
    decoded(
        "decode_message::<Move>",
        data,
        MAX_CLIENT_MSG_BYTES,
        codec::decode_message::<Move>,
        codec::encode,
    );
    decoded(
        "decode_message::<FourMsg>",
        data,
        MAX_CLIENT_MSG_BYTES,
        codec::decode_message::<FourMsg>,
        codec::encode,
    );
}

/// The games' state and event decoders, run by clients on the server's
/// bytes.
fn game_states(data: &[u8]) {
    if let Some(s) = decoded(
        "decode::<ArenaState>",
        data,
        MAX_SERVER_MSG_BYTES,
        codec::decode::<ArenaState>,
        codec::encode,
    ) {
        arena_views(&s);
    }
    decoded(
        "decode::<FourState>",
        data,
        MAX_SERVER_MSG_BYTES,
        codec::decode::<FourState>,
        codec::encode,
    );
    decoded(
        "decode::<FourEvent>",
        data,
        MAX_SERVER_MSG_BYTES,
        codec::decode::<FourEvent>,
        codec::encode,
    );
}

/// Decodes `data` with `decode` under the allocation bound of `limit`; a
/// value that decodes must re-encode (with `encode`) no longer than the
/// input, to bytes that decode to the same value.
fn decoded<T: PartialEq + Debug>(
    name: &str,
    data: &[u8],
    limit: usize,
    decode: fn(&[u8]) -> Result<T, DecodeError>,
    encode: fn(&T, &mut Vec<u8>) -> usize,
) -> Option<T> {
    // serde pre-allocates for a sequence's claimed length (up to 1 MiB);
    // bincode refuses a claimed byte string past the limit first, and the
    // protocol refuses a room request's options past their bound first
    // (this target once found a 15-byte Hello that allocated 1 MiB), so
    // every decoder stays within its own limit.
    let bound = limit;
    fuzz::alloc::reset();
    let value = decode(data);
    let largest = fuzz::alloc::largest();
    assert!(
        largest <= bound + SLACK,
        "{name} allocated {largest} bytes at once for a {}-byte input",
        data.len()
    );
    let value = value.ok()?;
    let mut again = Vec::new();
    encode(&value, &mut again);
    assert!(
        again.len() <= data.len(),
        "{name}: {value:?}: re-encoding grew"
    );
    assert_eq!(
        decode(&again).ok().as_ref(),
        Some(&value),
        "{name}: round trip"
    );
    Some(value)
}

/// What bincode writes for `value`.
fn bincode<T: Serialize>(value: &T) -> Vec<u8> {
    codec::to_vec(value)
}

/// An arena state written the way the arena writes each player's view (the
/// head count by hand, the entities encoded once and copied into the view)
/// must be bincode's bytes, whatever order the view lists the entities in.
fn arena_views(s: &ArenaState) {
    let mut encoded = EncodedEntities::<MAX_ENTITY_BYTES>::default();
    encoded.encode_all(&s.entities, encode_entity);
    let in_order: Vec<u32> = (0..s.entities.len() as u32).collect();
    let reversed: Vec<u32> = in_order.iter().rev().copied().collect();
    for view in [in_order, reversed] {
        let mut out = Vec::new();
        codec::put_varint(&mut out, u64::from(s.players));
        encoded.write_view(&view, &mut out);
        let want = ArenaState {
            players: s.players,
            entities: view.iter().map(|&i| s.entities[i as usize]).collect(),
        };
        assert_eq!(
            out,
            bincode(&want),
            "encode_entity and write_view disagree with bincode for {want:?}"
        );
    }
}
