//! The session envelope exchanged between a client and the server.
//!
//! Field order is wire order: bincode writes struct fields in declaration
//! order and enum variants as their index from 0. Reordering anything here
//! is a protocol change (bump [`crate::PROTOCOL_VERSION`] and regenerate the
//! golden vectors).
//!
//! The envelope knows no game: a game's messages, states, events and
//! welcome data travel as opaque bytes, encoded and decoded by the game's
//! own codec on both ends.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Serde adapter for the envelope's byte fields (a game's data): encoded
/// as bytes rather than as a sequence of `u8`s. The wire format is the
/// same (a length, then the bytes), but bincode copies bytes in one go
/// where it would decode a sequence element by element, which was half the
/// cost of decoding a state on a client.
mod bytes {
    use serde::{Deserializer, Serializer, de};
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// A random 128-bit secret that lets a dropped player take their own seat
/// back. On the wire it is 16 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResumeToken(pub [u8; 16]);

impl ResumeToken {
    /// Lower-case hex of all 16 bytes, for storage by clients and tools.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the form written by [`ResumeToken::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for ResumeToken {
    /// Shows only a prefix: a token in a log line must not be enough to
    /// steal the session.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResumeToken({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// Serde adapter for a room request's options: a count past
/// [`crate::limits::MAX_OPTIONS`] is refused as soon as it is read, before
/// anything is allocated. serde's own `Vec` would pre-allocate for the
/// claimed count (up to 1 MiB), so a 15-byte `Hello` claiming 2^31 options
/// made the server allocate a megabyte (found by the `decode` fuzz target).
/// The wire format is a plain bincode `Vec` of pairs.
mod options {
    use crate::limits::MAX_OPTIONS;
    use serde::{Deserializer, Serialize, Serializer, de};
    use std::fmt;

    pub fn serialize<S: Serializer>(options: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        options.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX_OPTIONS} options")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let too_many = || de::Error::custom(format!("more than {MAX_OPTIONS} options"));
                let claimed = seq.size_hint().unwrap_or(0);
                if claimed > MAX_OPTIONS {
                    return Err(too_many());
                }
                let mut out = Vec::with_capacity(claimed);
                while let Some(pair) = seq.next_element()? {
                    if out.len() == MAX_OPTIONS {
                        return Err(too_many());
                    }
                    out.push(pair);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Everything a client may send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First message on every connection; nothing else is accepted before it.
    Hello(Hello),
    /// A message for the game; the room hands it to the game at its next tick.
    Game(GameMsg),
    /// Application-level heartbeat, answered at once with [`ServerMsg::Pong`].
    Ping(Ping),
    /// Every event up to and including `upto` has arrived; the server may
    /// forget them (it keeps unacknowledged events to replay on a resume).
    EventAck(EventAck),
    /// The player leaves the room for good; the server closes with 1000.
    Leave,
}

/// Opens a session: a resume of an earlier one, or a new player placed by a
/// room request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// Takes an earlier session back; `room` is then ignored.
    pub resume: Option<Resume>,
    /// Where a new player goes.
    pub room: RoomRequest,
}

/// What a resuming client presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The token from the session's `Welcome`.
    pub token: ResumeToken,
    /// The sequence number of the last event the client processed (0 for
    /// none). The server replays every later event it still holds.
    pub last_event: u32,
}

/// Where a new player asks to go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomRequest {
    /// Join the first public, unlocked room of this type with a free seat
    /// whose creation options match on the type's filter keys; create one
    /// with these options if there is none.
    QuickJoin {
        /// The registered room type's name.
        room_type: String,
        /// Options as key/value pairs (see [`crate::limits`]).
        #[serde(with = "options")]
        options: Vec<(String, String)>,
    },
    /// Create a new room of this type and join it.
    Create {
        /// The registered room type's name.
        room_type: String,
        /// Options as key/value pairs (see [`crate::limits`]).
        #[serde(with = "options")]
        options: Vec<(String, String)>,
        /// A private room is never listed or quick-joined, and is reached
        /// only by its invite code.
        private: bool,
    },
    /// Join a public room by its id.
    JoinById {
        /// The room's id, as in `Welcome.room_id` or `GET /rooms`.
        room_id: u32,
    },
    /// Join a room by its invite code.
    JoinByCode {
        /// The code as `Welcome.invite_code` gave it; case, spaces and
        /// dashes do not matter.
        code: String,
    },
    /// Take the place another node of a cluster reserved (the ticket of a
    /// [`ServerMsg::Redirect`]). Valid once, on the node that the redirect
    /// named, for a few seconds.
    Reserved {
        /// The redirect's ticket, as it came.
        ticket: SeatTicket,
    },
}

/// A single-use, short-lived ticket for a place on one node of a cluster,
/// handed out in a [`ServerMsg::Redirect`]. On the wire it is 16 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeatTicket(pub [u8; 16]);

impl SeatTicket {
    /// Lower-case hex of all 16 bytes.
    pub fn to_hex(&self) -> String {
        ResumeToken(self.0).to_hex()
    }

    /// Parses the form written by [`SeatTicket::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        ResumeToken::from_hex(s).map(|t| Self(t.0))
    }
}

impl fmt::Debug for SeatTicket {
    /// Shows only a prefix, like [`ResumeToken`]'s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeatTicket({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A message for the game.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameMsg {
    /// Client-chosen sequence number, increasing by one per message;
    /// `State.ack` reports the highest one applied.
    pub seq: u32,
    /// The game's message, in the game's own encoding.
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// Heartbeat request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Opaque client timestamp, echoed back in the `Pong`.
    pub t: u64,
}

/// Acknowledges events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    /// The highest event sequence number processed.
    pub upto: u32,
}

/// Everything the server may send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Answer to a successful `Hello`.
    Welcome(Welcome),
    /// The game's view for this player, latest wins: a slow client skips
    /// states rather than queueing them.
    State(State),
    /// A reliable, ordered message from the game.
    Event(Event),
    /// Answer to a `Ping`, sent by the connection at once (not at a tick).
    Pong(Pong),
    /// Answer to a `Hello` on a node of a cluster when the place is on
    /// another node: connect to `url` and send a `Hello` whose room is
    /// [`RoomRequest::Reserved`] with `ticket`. The server closes with
    /// [`crate::CloseCode::Redirected`] right after it.
    Redirect(Redirect),
}

/// Where a player's place is, when another node holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The WebSocket URL of the node that holds the place (its
    /// `--public-url` with `ws` appended).
    pub url: String,
    /// Present it as `RoomRequest::Reserved` there: single use, valid for
    /// a few seconds.
    pub ticket: SeatTicket,
}

/// The session a `Hello` opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// This player's id, kept across resumes.
    pub player_id: u32,
    /// The room the player is in.
    pub room_id: u32,
    /// The room's type, as registered on the server.
    pub room_type: String,
    /// The room's invite code, for private rooms.
    pub invite_code: Option<String>,
    /// Secret to present in a later `Hello` to resume this player.
    pub resume_token: ResumeToken,
    /// True when this `Hello` resumed an existing player.
    pub resumed: bool,
    /// The room's simulation steps per second.
    pub tick_hz: u16,
    /// The game's own welcome data, in the game's encoding.
    #[serde(with = "bytes")]
    pub game: Vec<u8>,
}

/// What one player sees at one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The room's tick number.
    pub tick: u32,
    /// Highest `GameMsg.seq` the server has applied for this player (0
    /// before the first).
    pub ack: u32,
    /// The game's state for this player, in the game's encoding.
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// A reliable event from the game.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1 for a session's first event, then one more for each.
    pub seq: u32,
    /// The event, in the game's encoding.
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// Answer to a `Ping`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The `t` of the `Ping` being answered.
    pub t: u64,
    /// Server wall clock, milliseconds since the Unix epoch, for clients
    /// that estimate their clock offset.
    pub server_time_ms: u64,
}

impl RoomRequest {
    /// A quick join of `room_type` with no options.
    pub fn quick(room_type: &str) -> Self {
        Self::quick_with(room_type, &[])
    }

    /// A quick join of `room_type` with `options`.
    pub fn quick_with(room_type: &str, options: &[(&str, &str)]) -> Self {
        Self::QuickJoin {
            room_type: room_type.to_owned(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}
