//! Message types exchanged between a client and the server.
//!
//! Field order is wire order: bincode writes struct fields in declaration
//! order and enum variants as their index from 0. Reordering anything here
//! is a protocol change (bump [`crate::PROTOCOL_VERSION`] and regenerate the
//! golden vectors).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A random 128-bit secret that lets a dropped player take their own entity
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

/// Everything a client may send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First message on every connection; nothing else is accepted before it.
    Hello(Hello),
    /// A movement command; the server applies it at its next tick.
    Input(Input),
    /// Application-level heartbeat, answered at once with [`ServerMsg::Pong`].
    Ping(Ping),
}

/// Opens a session, new or resumed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// The token from an earlier `Welcome` to take that player back, or
    /// `None` to join as a new player.
    pub resume: Option<ResumeToken>,
}

/// A movement command. Inputs are numbered by the client so that it can tell
/// from [`Snapshot::ack`] which of them the server has applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Client-chosen sequence number, increasing by one per input.
    pub seq: u32,
    /// Desired horizontal direction, -127 (left) to 127 (right).
    pub dx: i8,
    /// Desired vertical direction, -127 (up) to 127 (down).
    pub dy: i8,
}

/// Heartbeat request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Opaque client timestamp, echoed back in the `Pong`.
    pub t: u64,
}

/// Everything the server may send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Answer to a successful `Hello`.
    Welcome(Welcome),
    /// The player's surroundings, once per tick.
    Snapshot(Snapshot),
    /// Answer to a `Ping`, sent by the connection at once (not at a tick).
    Pong(Pong),
}

/// The session a `Hello` opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// This player's id; the player's own entity in snapshots has this id
    /// and kind [`EntityKind::Player`]. Kept across resumes.
    pub player_id: u32,
    /// The room the player is in.
    pub room_id: u32,
    /// Secret to present in a later `Hello` to resume this player.
    pub resume_token: ResumeToken,
    /// True when this `Hello` resumed an existing player.
    pub resumed: bool,
    /// Snapshots per second.
    pub tick_hz: u16,
    /// Width of the field in world units (x runs 0..=width).
    pub world_width: u16,
    /// Height of the field in world units (y runs 0..=height).
    pub world_height: u16,
    /// Entities farther than this from the player are not in its snapshots.
    pub view_radius: u16,
}

/// What one player sees at one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The room's tick number.
    pub tick: u32,
    /// Highest input `seq` the server has applied for this player (0 before
    /// the first input).
    pub ack: u32,
    /// Players in the room, including ones dropped and waiting to resume.
    pub players: u16,
    /// Every entity within the view radius, the player's own included.
    pub entities: Vec<Entity>,
}

/// One thing on the field, as a client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Unique among entities of the same kind in the room; for a player it
    /// is the player id.
    pub id: u32,
    /// What the entity is.
    pub kind: EntityKind,
    /// Horizontal position in world units.
    pub x: u16,
    /// Vertical position in world units.
    pub y: u16,
    /// A player's score; 0 for other kinds.
    pub score: u32,
}

/// Kinds of entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    /// A connected player.
    Player,
    /// Something a player collects for a point.
    Pickup,
    /// A player whose connection dropped; frozen until it resumes or its
    /// grace period ends.
    DroppedPlayer,
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
