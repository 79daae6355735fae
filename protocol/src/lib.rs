//! The wire format of the game server, and nothing else.
//!
//! Every WebSocket message is one binary frame holding exactly one value
//! encoded with bincode 2 (`config::standard()`: little-endian, varint
//! integers). Clients send [`ClientMsg`], the server sends [`ServerMsg`].
//! `PROTOCOL.md` next to this crate documents every byte.
//!
//! Layout:
//! - [`msg`]: the message types;
//! - [`codec`]: encode, and decode with a byte limit (untrusted input);
//! - [`close`]: the close codes and what a client should do on each;
//! - [`wire`]: a hand-written snapshot encoder for the server's hot path,
//!   byte-for-byte equal to what bincode produces (tested).
//!
//! This crate performs no I/O and knows nothing of sockets, tokio or game
//! rules: the server, the client library, `loadgen` and the benches all
//! build on it.

pub mod close;
pub mod codec;
pub mod msg;
pub mod wire;

pub use close::{CloseCode, Retry};
pub use codec::{
    DecodeError, MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, decode_client, decode_server,
    encode_client, encode_server,
};
pub use msg::{
    ClientMsg, Entity, EntityKind, Hello, Input, Ping, Pong, ResumeToken, ServerMsg, Snapshot,
    Welcome,
};

/// Version of this wire format. A client whose `Hello` carries another
/// version is closed with [`CloseCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u16 = 1;
