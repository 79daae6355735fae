//! Encoding and decoding of whole messages.
//!
//! Decoding always runs with a byte limit and rejects trailing bytes:
//! without a limit, a 9-byte message claiming a `Vec` of 2^56 elements makes
//! bincode try to allocate petabytes and abort the process, and without the
//! trailing-bytes check a frame could smuggle data past the decoder.

use crate::msg::{ClientMsg, ServerMsg};
use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest client message the server accepts, in bytes. The largest useful
/// one (`Hello` with a token) is 19 bytes; the slack is for future fields,
/// not for payloads.
pub const MAX_CLIENT_MSG_BYTES: usize = 256;

/// Largest server message a client accepts, in bytes; a bigger message
/// means a broken or hostile server. bincode applies the limit to what it
/// decodes into memory (16 bytes per snapshot entity), so a snapshot may
/// hold at most 65,534 entities, far beyond any view.
pub const MAX_SERVER_MSG_BYTES: usize = 1 << 20;

type Limited<const N: usize> = Configuration<LittleEndian, Varint, Limit<N>>;

const fn limited<const N: usize>() -> Limited<N> {
    config::standard().with_limit::<N>()
}

/// Why a message could not be decoded. Each maps to a close code: the
/// server answers [`DecodeError::TooLarge`] with 1009 and the rest with 1007.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message is longer than the limit for its direction.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The bytes do not form a message (unknown variant, truncated, bad
    /// UTF-8, a length past the limit).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message decoded but did not use every byte.
    #[error("{extra} trailing bytes after a {used}-byte message")]
    TrailingBytes {
        /// Bytes the message used.
        used: usize,
        /// Bytes left over.
        extra: usize,
    },
}

fn decode_limited<T: DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > N {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: N,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, limited::<N>())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            used,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> usize {
    // Writing into a Vec cannot fail and our types have no serde errors, so
    // an error here is a bug in this crate, not bad input.
    bincode::serde::encode_into_std_write(value, out, config::standard())
        .expect("encoding a protocol message into a Vec cannot fail")
}

/// Decodes one client message (untrusted input on the server).
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode_limited::<ClientMsg, MAX_CLIENT_MSG_BYTES>(bytes)
}

/// Decodes one server message (untrusted input on a client).
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_limited::<ServerMsg, MAX_SERVER_MSG_BYTES>(bytes)
}

/// Appends the encoding of `msg` to `out`; returns the bytes written.
pub fn encode_client(msg: &ClientMsg, out: &mut Vec<u8>) -> usize {
    encode_into(msg, out)
}

/// Appends the encoding of `msg` to `out`; returns the bytes written.
pub fn encode_server(msg: &ServerMsg, out: &mut Vec<u8>) -> usize {
    encode_into(msg, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    fn client_samples() -> Vec<ClientMsg> {
        vec![
            ClientMsg::Hello(Hello {
                version: crate::PROTOCOL_VERSION,
                resume: None,
            }),
            ClientMsg::Hello(Hello {
                version: 7,
                resume: Some(ResumeToken([0xAB; 16])),
            }),
            ClientMsg::Input(Input {
                seq: 0,
                dx: -127,
                dy: 127,
            }),
            ClientMsg::Input(Input {
                seq: u32::MAX,
                dx: 0,
                dy: -1,
            }),
            ClientMsg::Ping(Ping { t: u64::MAX }),
        ]
    }

    fn server_samples() -> Vec<ServerMsg> {
        vec![
            ServerMsg::Welcome(Welcome {
                version: 1,
                player_id: 70_000,
                room_id: 3,
                resume_token: ResumeToken(*b"0123456789abcdef"),
                resumed: true,
                tick_hz: 30,
                world_width: 2000,
                world_height: 1500,
                view_radius: 300,
            }),
            ServerMsg::Snapshot(Snapshot {
                tick: 123_456,
                ack: 250,
                players: 100,
                entities: vec![
                    Entity {
                        id: 1,
                        kind: EntityKind::Player,
                        x: 0,
                        y: u16::MAX,
                        score: 251,
                    },
                    Entity {
                        id: u32::MAX,
                        kind: EntityKind::DroppedPlayer,
                        x: 65_535,
                        y: 250,
                        score: u32::MAX,
                    },
                ],
            }),
            ServerMsg::Snapshot(Snapshot {
                tick: 0,
                ack: 0,
                players: 0,
                entities: vec![],
            }),
            ServerMsg::Pong(Pong {
                t: 17,
                server_time_ms: 1_700_000_000_000,
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in client_samples() {
            let mut buf = Vec::new();
            let n = encode_client(&msg, &mut buf);
            assert_eq!(n, buf.len());
            assert_eq!(decode_client(&buf), Ok(msg));
        }
        for msg in server_samples() {
            let mut buf = Vec::new();
            encode_server(&msg, &mut buf);
            assert_eq!(decode_server(&buf), Ok(msg));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for msg in client_samples() {
            let mut buf = Vec::new();
            encode_client(&msg, &mut buf);
            for cut in 0..buf.len() {
                assert!(
                    matches!(decode_client(&buf[..cut]), Err(DecodeError::Malformed(_))),
                    "{msg:?} cut at {cut}"
                );
            }
        }
        for msg in server_samples() {
            let mut buf = Vec::new();
            encode_server(&msg, &mut buf);
            for cut in 0..buf.len() {
                assert!(decode_server(&buf[..cut]).is_err(), "{msg:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = Vec::new();
        encode_client(&ClientMsg::Ping(Ping { t: 5 }), &mut buf);
        let used = buf.len();
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_client(&buf),
            Err(DecodeError::TrailingBytes { used, extra: 2 })
        );
    }

    #[test]
    fn oversized_messages_are_rejected_before_decoding() {
        let buf = vec![2u8; MAX_CLIENT_MSG_BYTES + 1];
        assert_eq!(
            decode_client(&buf),
            Err(DecodeError::TooLarge {
                len: MAX_CLIENT_MSG_BYTES + 1,
                limit: MAX_CLIENT_MSG_BYTES
            })
        );
    }

    #[test]
    fn huge_claimed_lengths_fail_without_allocating() {
        // Snapshot (variant 1), tick 0, ack 0, players 0, then an entity
        // count of 2^56 as a u64 varint: the 9-byte bomb from FIELD-NOTES.
        let mut bomb = vec![1, 0, 0, 0, 253];
        bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());
        assert!(matches!(
            decode_server(&bomb),
            Err(DecodeError::Malformed(_))
        ));
        // A truncated token: a Hello that announces a token and stops short.
        let mut short = vec![0, 1, 1];
        short.extend_from_slice(&[253]);
        short.extend_from_slice(&(1u64 << 56).to_le_bytes());
        assert!(decode_client(&short).is_err());
    }

    #[test]
    fn unknown_variants_and_bad_option_tags_are_malformed() {
        for bad in [&[3u8][..], &[250], &[0, 1, 2], &[0, 1, 7]] {
            assert!(
                matches!(decode_client(bad), Err(DecodeError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
