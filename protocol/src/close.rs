//! WebSocket close codes used by the server, and what a client should do on
//! each. The codes are part of the protocol: browsers show only the code and
//! the reason string of a close, so every way a session can end has its own.

/// Every close code the server sends, with its number on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// The session ended on purpose. A client that closes with 1000 leaves
    /// the game: its player is removed at once instead of waiting to resume.
    Normal = 1000,
    /// Sent by the server when it shuts down; sent by browsers when a page
    /// is left. Either way the session is kept for the grace period.
    GoingAway = 1001,
    /// A WebSocket protocol violation, or a message out of order (anything
    /// before `Hello`, a second `Hello`).
    ProtocolError = 1002,
    /// A text frame: this protocol is binary only.
    UnsupportedData = 1003,
    /// A binary frame that is not exactly one valid message.
    InvalidPayload = 1007,
    /// The request broke a server policy that has no code of its own.
    PolicyViolation = 1008,
    /// A message larger than the server's limit.
    MessageTooBig = 1009,
    /// The server failed in a way that is not the client's fault.
    InternalError = 1011,
    /// The server is restarting and keeps sessions across the restart.
    ServiceRestart = 1012,
    /// `Hello.version` differs from the server's protocol version.
    VersionMismatch = 4000,
    /// No room of the requested type has a free seat and no new room may
    /// open (quick join, create): the server is at its room limit.
    RoomFull = 4001,
    /// The resume token is unknown, or its grace period has ended.
    InvalidResumeToken = 4002,
    /// The client kept sending inputs faster than the rate limit.
    InputFlood = 4003,
    /// The client read its snapshots too slowly for too long.
    TooSlow = 4004,
    /// Nothing arrived from the client for longer than the idle timeout.
    IdleTimeout = 4005,
    /// The server is at its connection limit.
    ServerFull = 4006,
    /// A newer connection resumed this player; this one is obsolete.
    SessionTakenOver = 4007,
    /// No `Hello` arrived within the handshake timeout.
    HandshakeTimeout = 4008,
    /// The server has no room type of the requested name.
    UnknownRoomType = 4009,
    /// No open room has the requested id or invite code.
    NoSuchRoom = 4010,
    /// The room is locked: it takes no new players (its own players may
    /// still resume).
    RoomLocked = 4011,
    /// The room asked for by id or invite code has no free seat.
    RoomAtCapacity = 4012,
    /// The room is private: it is reached by its invite code only.
    RoomPrivate = 4013,
    /// The game refused the join (or the options of a new room); the close
    /// reason is the game's.
    RefusedByGame = 4014,
    /// The game removed the player; the close reason is the game's.
    Kicked = 4015,
    /// The game ended the room; the close reason is the game's.
    RoomEnded = 4016,
    /// The player's unacknowledged events passed the server's bound: the
    /// client stopped acknowledging (or reading) events, and its session
    /// ended.
    EventBacklog = 4017,
    /// Too many invite-code attempts from this address; wait before
    /// trying again.
    TooManyAttempts = 4018,
    /// Sent right after a `Redirect`: the place is on another node of the
    /// cluster; follow the redirect.
    Redirected = 4019,
    /// The join needs the cluster's room directory (Redis) and it cannot be
    /// reached; rooms already running go on. Try again with back-off.
    DirectoryUnavailable = 4020,
    /// The seat ticket is unknown, already used, expired, or for another
    /// node: join again as a new player.
    InvalidTicket = 4021,
}

/// What a client should do after a close, by code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reconnect with back-off and resume with the stored token.
    Resume,
    /// Reconnect with back-off as a new player (forget the token).
    Rejoin,
    /// Do not reconnect; show the reason to the user.
    Stop,
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [CloseCode; 31] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::UnsupportedData,
        Self::InvalidPayload,
        Self::PolicyViolation,
        Self::MessageTooBig,
        Self::InternalError,
        Self::ServiceRestart,
        Self::VersionMismatch,
        Self::RoomFull,
        Self::InvalidResumeToken,
        Self::InputFlood,
        Self::TooSlow,
        Self::IdleTimeout,
        Self::ServerFull,
        Self::SessionTakenOver,
        Self::HandshakeTimeout,
        Self::UnknownRoomType,
        Self::NoSuchRoom,
        Self::RoomLocked,
        Self::RoomAtCapacity,
        Self::RoomPrivate,
        Self::RefusedByGame,
        Self::Kicked,
        Self::RoomEnded,
        Self::EventBacklog,
        Self::TooManyAttempts,
        Self::Redirected,
        Self::DirectoryUnavailable,
        Self::InvalidTicket,
    ];

    /// The number on the wire.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The code with this number, if the server uses it.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A short stable name, used as the `reason` label in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::GoingAway => "going_away",
            Self::ProtocolError => "protocol_error",
            Self::UnsupportedData => "unsupported_data",
            Self::InvalidPayload => "invalid_payload",
            Self::PolicyViolation => "policy_violation",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::ServiceRestart => "service_restart",
            Self::VersionMismatch => "version_mismatch",
            Self::RoomFull => "room_full",
            Self::InvalidResumeToken => "invalid_resume_token",
            Self::InputFlood => "input_flood",
            Self::TooSlow => "too_slow",
            Self::IdleTimeout => "idle_timeout",
            Self::ServerFull => "server_full",
            Self::SessionTakenOver => "session_taken_over",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::UnknownRoomType => "unknown_room_type",
            Self::NoSuchRoom => "no_such_room",
            Self::RoomLocked => "room_locked",
            Self::RoomAtCapacity => "room_at_capacity",
            Self::RoomPrivate => "room_private",
            Self::RefusedByGame => "refused_by_game",
            Self::Kicked => "kicked",
            Self::RoomEnded => "room_ended",
            Self::EventBacklog => "event_backlog",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Redirected => "redirected",
            Self::DirectoryUnavailable => "directory_unavailable",
            Self::InvalidTicket => "invalid_ticket",
        }
    }

    /// What a client should do when closed with this code.
    pub const fn retry(self) -> Retry {
        match self {
            Self::GoingAway
            | Self::InternalError
            | Self::ServiceRestart
            | Self::TooSlow
            | Self::IdleTimeout
            | Self::ServerFull
            | Self::HandshakeTimeout => Retry::Resume,
            Self::RoomFull
            | Self::InvalidResumeToken
            | Self::EventBacklog
            | Self::DirectoryUnavailable
            | Self::InvalidTicket => Retry::Rejoin,
            Self::Normal
            | Self::ProtocolError
            | Self::UnsupportedData
            | Self::InvalidPayload
            | Self::PolicyViolation
            | Self::MessageTooBig
            | Self::VersionMismatch
            | Self::InputFlood
            | Self::SessionTakenOver
            | Self::UnknownRoomType
            | Self::NoSuchRoom
            | Self::RoomLocked
            | Self::RoomAtCapacity
            | Self::RoomPrivate
            | Self::RefusedByGame
            | Self::Kicked
            | Self::RoomEnded
            | Self::TooManyAttempts
            | Self::Redirected => Retry::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_in_order() {
        let mut last = 0;
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
            assert!(c.code() > last, "{c:?} out of order");
            last = c.code();
            // A close frame's reason must fit in 123 bytes; names are reused
            // as reasons in places.
            assert!(c.name().len() < 123);
        }
        assert_eq!(CloseCode::from_code(1006), None);
        assert_eq!(CloseCode::from_code(4999), None);
    }

    #[test]
    fn do_not_retry_codes_are_the_ones_a_retry_cannot_fix() {
        assert_eq!(CloseCode::VersionMismatch.retry(), Retry::Stop);
        assert_eq!(CloseCode::InputFlood.retry(), Retry::Stop);
        assert_eq!(CloseCode::SessionTakenOver.retry(), Retry::Stop);
        assert_eq!(CloseCode::InvalidResumeToken.retry(), Retry::Rejoin);
        assert_eq!(CloseCode::GoingAway.retry(), Retry::Resume);
        assert_eq!(CloseCode::Kicked.retry(), Retry::Stop);
        assert_eq!(CloseCode::NoSuchRoom.retry(), Retry::Stop);
        assert_eq!(CloseCode::EventBacklog.retry(), Retry::Rejoin);
    }
}
