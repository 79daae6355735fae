//! The session envelope of the game platform, and nothing else.
//!
//! Every WebSocket message is one binary frame holding exactly one value
//! encoded with bincode 2 (`config::standard()`: little-endian, varint
//! integers). Clients send [`ClientMsg`], the server sends [`ServerMsg`].
//! `PROTOCOL.md` next to this crate documents every byte.
//!
//! The envelope is game-agnostic: hello (with a room request or a resume),
//! welcome, state (latest wins), event (reliable, ordered), the client's
//! game message, ping/pong, event acknowledgement, leave. What a game puts
//! in them is opaque bytes here.
//!
//! Layout:
//! - [`msg`]: the message types;
//! - [`codec`]: encode, and decode with a byte limit (untrusted input),
//!   for the envelope and for any serde value;
//! - [`close`]: the close codes and what a client should do on each;
//! - [`limits`]: bounds on room requests, and the invite-code format;
//! - [`wire`]: hand-written varints and the state/event headers for the
//!   server's hot path, byte-for-byte equal to bincode (tested);
//! - `golden` (feature `golden`, tests only): the golden-vector files'
//!   layout and up-to-date check.
//!
//! This crate performs no I/O and knows nothing of sockets, tokio or game
//! rules: the game API, the server, the client library, `loadgen` and the
//! benches all build on it.

pub mod close;
pub mod codec;
#[cfg(feature = "golden")]
pub mod golden;
pub mod limits;
pub mod msg;
pub mod wire;

pub use close::{CloseCode, Retry};
pub use codec::{
    DecodeError, MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, decode_client, decode_server,
    decode_value, encode_client, encode_server, encode_value,
};
pub use msg::{
    ClientMsg, Event, EventAck, GameMsg, Hello, Ping, Pong, Redirect, Resume, ResumeToken,
    RoomRequest, SeatTicket, ServerMsg, State, Welcome,
};

/// Version of this wire format. A client whose `Hello` carries another
/// version is closed with [`CloseCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u16 = 2;
