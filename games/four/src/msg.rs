//! What four-in-a-row clients send and receive, inside the platform's
//! envelope: [`FourMsg`] (the game message), [`FourEvent`] (the reliable,
//! ordered events), [`FourState`] (each player's state, sent only when it
//! changes) and [`FourWelcome`] (the game's part of `Welcome`).
//!
//! All are bincode in the standard configuration through
//! `game_api::codec`; `games/four/web/codec.js` is the same in JavaScript,
//! so the field order and the variant order of every type here are part of
//! the wire format: append, never reorder. Not here: the rules (in the
//! crate root) and any hand-written encoding (states are small and rare,
//! so bincode's derive is fast enough).

use game_api::PlayerId;
use serde::{Deserialize, Serialize};

/// Columns of the board.
pub const COLUMNS: usize = 7;

/// Rows of the board.
pub const ROWS: usize = 6;

/// Cells of the board; also the most moves a game can have.
pub const CELLS: usize = COLUMNS * ROWS;

/// A cell holding no disc.
pub const EMPTY: u8 = 0;

/// One of the two places at the table, and the colour of its discs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Seat {
    /// The first player to join; cell value 1.
    Red,
    /// The second player to join; cell value 2.
    Yellow,
}

impl Seat {
    /// Both seats, in index order.
    pub const ALL: [Seat; 2] = [Seat::Red, Seat::Yellow];

    /// The opponent's seat.
    pub fn other(self) -> Seat {
        match self {
            Seat::Red => Seat::Yellow,
            Seat::Yellow => Seat::Red,
        }
    }

    /// 0 for red, 1 for yellow: the seat's place in per-seat arrays.
    pub fn index(self) -> usize {
        match self {
            Seat::Red => 0,
            Seat::Yellow => 1,
        }
    }

    /// The value of this seat's discs on the board: 1 for red, 2 for yellow.
    pub fn cell(self) -> u8 {
        match self {
            Seat::Red => 1,
            Seat::Yellow => 2,
        }
    }
}

/// What a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FourMsg {
    /// Drop a disc into `column` (0 is the leftmost). Refused with
    /// [`FourEvent::Rejected`] out of turn, into a full or nonexistent
    /// column, or when no game is running.
    Drop {
        /// The column, `0..COLUMNS`.
        column: u8,
    },
    /// Ask for another game once this one is over; the next game starts
    /// when both players have asked.
    Rematch,
}

/// How the game on the board stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// No game has started in this room yet: a seat is still empty.
    Waiting,
    /// A game is running; the state's `turn` says whose move it is.
    Playing,
    /// `seat` made four in a row.
    Won {
        /// The winner.
        seat: Seat,
        /// Every cell of the winning line or lines through the last disc
        /// (four or more), as board indices (`row * COLUMNS + column`),
        /// ascending.
        cells: Vec<u8>,
    },
    /// The board filled up without four in a row.
    Draw,
    /// The loser left (or its grace period after a drop ended) while the
    /// game was running. The board stays as it was until a new opponent
    /// sits down and a fresh game starts.
    Forfeit {
        /// The seat that stayed.
        winner: Seat,
    },
}

/// What the game sends its clients, reliably and in order. Every event goes
/// to both seats except [`FourEvent::Rejected`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FourEvent {
    /// `player` took `seat`.
    Seated {
        /// The seat taken.
        seat: Seat,
        /// The player who took it.
        player: PlayerId,
    },
    /// A disc landed. Every move makes exactly one of these, so a client's
    /// event log replays the board.
    Moved {
        /// Whose disc.
        seat: Seat,
        /// The column it was dropped into.
        column: u8,
        /// The row it landed on, 0 being the bottom.
        row: u8,
        /// The move's number in this game, from 1; consecutive within a
        /// game.
        number: u8,
    },
    /// The last move made four in a row; the game is over.
    Won {
        /// The winner.
        seat: Seat,
        /// The winning cells, as in [`Status::Won`].
        cells: Vec<u8>,
    },
    /// The last move filled the board without four in a row.
    Draw,
    /// The opponent of `winner` left while the game was running.
    Forfeit {
        /// The seat that stayed.
        winner: Seat,
    },
    /// The player at `seat` lost its connection; it keeps its seat (and its
    /// turn) while the room waits for it to resume.
    Dropped {
        /// The seat whose player dropped.
        seat: Seat,
    },
    /// The player at `seat` is back.
    Resumed {
        /// The seat whose player resumed.
        seat: Seat,
    },
    /// The player at `seat` is gone for good; the seat is free.
    Left {
        /// The seat freed.
        seat: Seat,
    },
    /// The player at `seat` asked for a rematch.
    RematchAsked {
        /// The seat that asked.
        seat: Seat,
    },
    /// A game started on an empty board: the first with two players, a
    /// rematch, or a fresh game with a new opponent.
    NewGame {
        /// The game's number in this room, from 1.
        game: u32,
        /// The seat that moves first.
        first: Seat,
    },
    /// The recipient's last message was refused and changed nothing. Sent
    /// to that player only.
    Rejected {
        /// Why, for a human.
        reason: String,
    },
}

/// One seat as a player's state shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatState {
    /// Who sits there, if anyone.
    pub player: Option<PlayerId>,
    /// False while the seat's player is dropped (or the seat is empty).
    pub connected: bool,
    /// Games this seat's player has won in the room, forfeits included; 0
    /// again when the seat changes hands.
    pub wins: u32,
    /// The seat's player asked for a rematch of the finished game.
    pub rematch: bool,
}

/// What one player sees. The room sends it only when its bytes change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourState {
    /// The viewer's seat.
    pub you: Option<Seat>,
    /// [`CELLS`] cells, row-major from the bottom row (index
    /// `row * COLUMNS + column`): 0 empty, 1 red, 2 yellow.
    pub board: Vec<u8>,
    /// Whose move it is; `None` unless a game is running.
    pub turn: Option<Seat>,
    /// How the game on the board stands.
    pub status: Status,
    /// Red's seat, then yellow's.
    pub seats: [SeatState; 2],
    /// The number of the game on the board, from 1; 0 before the first.
    pub game: u32,
    /// Moves made in this game: the `number` of the last
    /// [`FourEvent::Moved`].
    pub moves: u8,
}

/// The game's part of `Welcome`: the board's size, so that a client can
/// check it draws the board the server plays on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourWelcome {
    /// Columns of the board ([`COLUMNS`]).
    pub columns: u8,
    /// Rows of the board ([`ROWS`]).
    pub rows: u8,
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_api::codec::{decode, decode_message, to_vec};

    /// The bytes the JavaScript codec is written against: enum variants are
    /// a varint index in declaration order, `u8` one raw byte, other
    /// integers varints, options a 0/1 byte, vectors and strings a varint
    /// length first, fixed arrays and structs their items in order.
    #[test]
    fn wire_shapes_are_the_documented_bytes() {
        let check = |bytes: Vec<u8>, want: &[u8]| assert_eq!(bytes, want);
        check(to_vec(&FourMsg::Drop { column: 6 }), &[0, 6]);
        check(to_vec(&FourMsg::Rematch), &[1]);
        check(
            to_vec(&FourEvent::Seated {
                seat: Seat::Yellow,
                player: 300,
            }),
            &[0, 1, 251, 0x2c, 0x01],
        );
        check(
            to_vec(&FourEvent::Moved {
                seat: Seat::Red,
                column: 3,
                row: 2,
                number: 9,
            }),
            &[1, 0, 3, 2, 9],
        );
        check(
            to_vec(&FourEvent::Won {
                seat: Seat::Red,
                cells: vec![0, 8, 16, 24],
            }),
            &[2, 0, 4, 0, 8, 16, 24],
        );
        check(to_vec(&FourEvent::Draw), &[3]);
        check(
            to_vec(&FourEvent::Forfeit {
                winner: Seat::Yellow,
            }),
            &[4, 1],
        );
        check(to_vec(&FourEvent::Dropped { seat: Seat::Red }), &[5, 0]);
        check(to_vec(&FourEvent::Resumed { seat: Seat::Red }), &[6, 0]);
        check(to_vec(&FourEvent::Left { seat: Seat::Yellow }), &[7, 1]);
        check(
            to_vec(&FourEvent::RematchAsked { seat: Seat::Yellow }),
            &[8, 1],
        );
        check(
            to_vec(&FourEvent::NewGame {
                game: 2,
                first: Seat::Yellow,
            }),
            &[9, 2, 1],
        );
        check(
            to_vec(&FourEvent::Rejected {
                reason: "no".into(),
            }),
            &[10, 2, b'n', b'o'],
        );
        check(
            to_vec(&FourWelcome {
                columns: 7,
                rows: 6,
            }),
            &[7, 6],
        );

        let seat = |player, connected, wins, rematch| SeatState {
            player,
            connected,
            wins,
            rematch,
        };
        let state = FourState {
            you: Some(Seat::Yellow),
            board: (0..CELLS as u8).map(|i| i % 3).collect(),
            turn: None,
            status: Status::Won {
                seat: Seat::Yellow,
                cells: vec![1, 2, 3, 4],
            },
            seats: [seat(Some(5), false, 0, true), seat(None, false, 3, false)],
            game: 4,
            moves: 17,
        };
        let mut want = vec![1, 1, 42];
        want.extend((0..42).map(|i| i % 3));
        want.extend([0, 2, 1, 4, 1, 2, 3, 4]);
        want.extend([1, 5, 0, 0, 1, 0, 0, 3, 0, 4, 17]);
        check(to_vec(&state), &want);
        assert_eq!(decode::<FourState>(&want), Ok(state));
        for (status, byte) in [
            (Status::Waiting, 0),
            (Status::Playing, 1),
            (Status::Draw, 3),
        ] {
            check(to_vec(&status), &[byte]);
        }
        check(to_vec(&Status::Forfeit { winner: Seat::Red }), &[4, 0]);
    }

    #[test]
    fn messages_outside_the_protocol_do_not_decode() {
        for bad in [&[][..], &[2], &[0], &[0, 1, 2], &[1, 0]] {
            assert!(decode_message::<FourMsg>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seats_index_their_arrays_and_cells() {
        assert_eq!(Seat::ALL.map(Seat::index), [0, 1]);
        assert_eq!(Seat::ALL.map(Seat::cell), [1, 2]);
        assert_eq!(Seat::ALL.map(Seat::other), [Seat::Yellow, Seat::Red]);
    }
}
