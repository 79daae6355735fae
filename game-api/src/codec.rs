//! Encoding a game's own bytes: its messages, states, events and welcome
//! data. Games use bincode 2's standard configuration, like the envelope,
//! through these functions, so that every decode of untrusted bytes has a
//! limit and refuses trailing bytes (see `protocol::codec`).
//!
//! Hand-written encoders (a hot path, such as the arena's per-player state)
//! use [`put_varint`], which writes exactly what bincode writes for an
//! integer; their tests compare the two.

pub use protocol::DecodeError;
pub use protocol::wire::{put_varint, varint_len};

/// Largest game message a client may send: the protocol's limit for a
/// whole client message, which bounds what decoding one may allocate.
pub const MAX_MESSAGE_BYTES: usize = protocol::MAX_CLIENT_MSG_BYTES;

/// Largest state, event or welcome a client decodes: the protocol's limit
/// for a whole server message.
pub const MAX_SERVER_BYTES: usize = protocol::MAX_SERVER_MSG_BYTES;

/// Appends the encoding of `value` to `out`; returns the bytes written.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> usize {
    protocol::encode_value(value, out)
}

/// The encoding of `value` as a new vector.
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Decodes a game message (a client's bytes, on the server).
pub fn decode_message<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    protocol::decode_value::<T, MAX_MESSAGE_BYTES>(bytes)
}

/// Decodes a state, event or welcome (the server's bytes, on a client).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    protocol::decode_value::<T, MAX_SERVER_BYTES>(bytes)
}

/// Decodes with a limit of the caller's choosing: for a game's saved bytes,
/// say, which are larger than any message but come from a file and are
/// input like any other.
pub fn decode_limited<T: serde::de::DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> Result<T, DecodeError> {
    protocol::decode_value::<T, N>(bytes)
}
