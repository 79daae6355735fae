//! What a room and its sessions are at a planned stop, as plain data: the
//! room hands its [`RoomState`] to the lobby as it stops, the lobby adds its
//! counters to make a [`SavedState`], and at the next start reopens rooms
//! from it.
//!
//! These types belong to the rooms, and name only room types; putting them
//! in a file (the format, the atomic write, the limited read) is
//! `crate::state`'s job, which depends on this module and never the other
//! way round. Field order is the file's layout (documented in
//! `crate::state`): reordering a field changes the format.

use super::events::SavedEvents;
use super::{RoomId, RoomProps};
use game_api::PlayerId;
use protocol::ResumeToken;
use serde::{Deserialize, Serialize};

/// Everything a restart carries over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    /// When the file was written, in milliseconds since the Unix epoch
    /// (logged at restore, to tell how long the server was down).
    pub saved_at_unix_ms: u64,
    /// The next player id the lobby would have handed out.
    pub next_player: PlayerId,
    /// The next room id the lobby would have used.
    pub next_room: RoomId,
    /// Every room that had players, in id order.
    pub rooms: Vec<RoomState>,
}

/// One room, as it stood when it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// The room's id, kept across the restart.
    pub id: RoomId,
    /// The room's type.
    pub room_type: String,
    /// The options it was created with.
    pub options: Vec<(String, String)>,
    /// The seed the room's game was created with.
    pub seed: u64,
    /// The room's tick, so that state numbers go on rising.
    pub tick: u32,
    /// What the room's game controls: capacity, lock, privacy, metadata,
    /// invite code.
    pub props: RoomProps,
    /// The game's saved form, opaque to everything but the game.
    pub game: Vec<u8>,
    /// The room's sessions, in player id order.
    pub sessions: Vec<SessionState>,
}

/// One player's session, as it stood when its room stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The player's id, kept across the restart.
    pub player: PlayerId,
    /// The token that resumes the session.
    pub token: ResumeToken,
    /// Highest game message sequence applied, so a resumed client's first
    /// state acknowledges what it did before the restart.
    pub ack: u32,
    /// Whether a connection was attached when the room stopped (for logs;
    /// after a restart every player waits to be resumed).
    pub connected: bool,
    /// Events not yet acknowledged, replayed when the client resumes.
    pub events: SavedEvents,
}

impl SavedState {
    /// Sessions in all rooms.
    pub fn session_count(&self) -> usize {
        self.rooms.iter().map(|r| r.sessions.len()).sum()
    }
}
