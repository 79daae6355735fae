//! Encoding and decoding of whole messages: the envelope, and (through
//! [`decode_value`] and [`encode_value`]) any serde value, which is how
//! games encode their own bytes with the same rules.
//!
//! Decoding always runs with a byte limit and rejects trailing bytes:
//! without a limit, a 9-byte message claiming a `Vec` of 2^56 elements makes
//! bincode try to allocate petabytes and abort the process, and without the
//! trailing-bytes check a frame could smuggle data past the decoder.

use crate::msg::{ClientMsg, ServerMsg};
use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest client message the server accepts, in bytes. The largest `Hello`
/// the request bounds allow (eight options of the longest keys and values)
/// is under 800 bytes; a game's message has the rest of the room.
pub const MAX_CLIENT_MSG_BYTES: usize = 1024;

/// Largest server message a client accepts, in bytes; a bigger message
/// means a broken or hostile server.
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

/// Decodes one value of type `T` from exactly `bytes`, which may be at most
/// `N` bytes long; bincode also stops at `N` bytes of decoded size.
pub fn decode_value<T: DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
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

/// Appends the encoding of `value` to `out`; returns the bytes written.
pub fn encode_value<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> usize {
    // Writing into a Vec cannot fail, and a serde error would be a type
    // that cannot be encoded at all (a map with non-string keys, say): a
    // bug in the caller's types, not bad input.
    bincode::serde::encode_into_std_write(value, out, config::standard())
        .expect("encoding a value into a Vec cannot fail")
}

/// Decodes one client message (untrusted input on the server).
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode_value::<ClientMsg, MAX_CLIENT_MSG_BYTES>(bytes)
}

/// Decodes one server message (untrusted input on a client).
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_value::<ServerMsg, MAX_SERVER_MSG_BYTES>(bytes)
}

/// Appends the encoding of `msg` to `out`; returns the bytes written.
pub fn encode_client(msg: &ClientMsg, out: &mut Vec<u8>) -> usize {
    encode_value(msg, out)
}

/// Appends the encoding of `msg` to `out`; returns the bytes written.
pub fn encode_server(msg: &ServerMsg, out: &mut Vec<u8>) -> usize {
    encode_value(msg, out)
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
                room: RoomRequest::quick("arena"),
            }),
            ClientMsg::Hello(Hello {
                version: 7,
                resume: Some(Resume {
                    token: ResumeToken([0xAB; 16]),
                    last_event: 300,
                }),
                room: RoomRequest::Create {
                    room_type: "four".into(),
                    options: vec![("speed".into(), "fast".into())],
                    private: true,
                },
            }),
            ClientMsg::Hello(Hello {
                version: 2,
                resume: None,
                room: RoomRequest::JoinById { room_id: 70_000 },
            }),
            ClientMsg::Hello(Hello {
                version: 2,
                resume: None,
                room: RoomRequest::JoinByCode {
                    code: "ABCD2345".into(),
                },
            }),
            ClientMsg::Game(GameMsg {
                seq: 0,
                data: vec![],
            }),
            ClientMsg::Game(GameMsg {
                seq: u32::MAX,
                data: vec![1, 0x81, 0x7f],
            }),
            ClientMsg::Ping(Ping { t: u64::MAX }),
            ClientMsg::EventAck(EventAck { upto: 251 }),
            ClientMsg::Leave,
        ]
    }

    fn server_samples() -> Vec<ServerMsg> {
        vec![
            ServerMsg::Welcome(Welcome {
                version: 2,
                player_id: 70_000,
                room_id: 3,
                room_type: "arena".into(),
                invite_code: None,
                resume_token: ResumeToken(*b"0123456789abcdef"),
                resumed: true,
                tick_hz: 30,
                game: vec![1, 2, 3],
            }),
            ServerMsg::Welcome(Welcome {
                version: 2,
                player_id: 1,
                room_id: 1,
                room_type: "four".into(),
                invite_code: Some("ABCD2345".into()),
                resume_token: ResumeToken([0; 16]),
                resumed: false,
                tick_hz: 10,
                game: vec![],
            }),
            ServerMsg::State(State {
                tick: 123_456,
                ack: 250,
                data: vec![0xfb; 300],
            }),
            ServerMsg::State(State {
                tick: 0,
                ack: 0,
                data: vec![],
            }),
            ServerMsg::Event(Event {
                seq: 1,
                data: vec![9, 9],
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
        // State (variant 1), tick 0, ack 0, then a data length of 2^56 as
        // a u64 varint: 12 bytes that would make a decoder that trusts the
        // length allocate 64 PiB.
        let mut bomb = vec![1, 0, 0, 253];
        bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());
        assert!(matches!(
            decode_server(&bomb),
            Err(DecodeError::Malformed(_))
        ));
        // A game message claiming 2^56 bytes of data.
        let mut game = vec![1, 0, 253];
        game.extend_from_slice(&(1u64 << 56).to_le_bytes());
        assert!(decode_client(&game).is_err());
        // Options claiming 2^56 pairs, or just past the bound: refused as
        // the count is read, before serde pre-allocates for it.
        let mut options = vec![0, 2, 0, 0, 5, b'a', b'r', b'e', b'n', b'a', 253];
        options.extend_from_slice(&(1u64 << 56).to_le_bytes());
        assert!(decode_client(&options).is_err());
        let nine = [0, 2, 0, 0, 5, b'a', b'r', b'e', b'n', b'a', 9];
        match decode_client(&nine) {
            Err(DecodeError::Malformed(e)) => assert!(e.contains("more than 8 options"), "{e}"),
            other => panic!("nine options decoded: {other:?}"),
        }
    }

    #[test]
    fn unknown_variants_and_bad_option_tags_are_malformed() {
        for bad in [&[5u8][..], &[250], &[0, 2, 2], &[0, 2, 0, 4], &[4, 0]] {
            assert!(
                decode_client(bad).is_err(),
                "{bad:?} must not decode: {:?}",
                decode_client(bad)
            );
        }
        assert!(decode_server(&[4]).is_err());
    }

    #[test]
    fn any_value_decodes_with_its_own_limit() {
        let mut buf = Vec::new();
        encode_value(&(7u32, String::from("hi")), &mut buf);
        assert_eq!(
            decode_value::<(u32, String), 16>(&buf),
            Ok((7, "hi".to_owned()))
        );
        assert!(matches!(
            decode_value::<(u32, String), 3>(&buf),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
