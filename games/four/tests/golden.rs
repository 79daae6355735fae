//! Golden vectors of four-in-a-row's own bytes: every variant of
//! [`FourMsg`], [`FourEvent`] and [`Status`], states and the welcome, at
//! the edges where a field changes its encoded length, written to
//! `games/four/golden/vectors.json` for the browser codec
//! (`games/four/web/codec.js`, tested by
//! `server/web/test/four-codec.test.mjs`) to decode and re-encode.
//!
//! The test builds the vectors with the game's own codec and compares them
//! with the committed file, so a change of the game's types fails here
//! until the file is regenerated with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p four --test golden
//! ```
//!
//! and then fails the JavaScript tests until `codec.js` follows. Not for
//! the envelope around these bytes (`protocol/tests/golden.rs`) or the
//! rules (the crate's unit tests).

use four::msg::{
    CELLS, COLUMNS, FourEvent, FourMsg, FourState, FourWelcome, ROWS, Seat, SeatState, Status,
};
use game_api::codec::{decode, decode_message, to_vec};
use protocol::golden::{check_file, hex, layout};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the vectors live, relative to this crate.
fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json")
}

/// The values at which a varint changes length, for `u32` fields.
const U32_EDGES: [u32; 6] = [0, 250, 251, 65_535, 65_536, u32::MAX];

/// One value of any of the game's wire types.
#[derive(Debug, Clone, PartialEq)]
enum Wire {
    Msg(FourMsg),
    Event(FourEvent),
    State(Box<FourState>),
    Welcome(FourWelcome),
}

impl Wire {
    /// The type's name, as the JSON file and the JavaScript codec call it.
    fn kind(&self) -> &'static str {
        match self {
            Wire::Msg(_) => "FourMsg",
            Wire::Event(_) => "FourEvent",
            Wire::State(_) => "FourState",
            Wire::Welcome(_) => "FourWelcome",
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Wire::Msg(m) => to_vec(m),
            Wire::Event(e) => to_vec(e),
            Wire::State(s) => to_vec(s.as_ref()),
            Wire::Welcome(w) => to_vec(w),
        }
    }
}

/// Decodes `bytes` as a value of type `kind`, with the limits the server
/// (for a message) or a client (for the rest) decodes with.
fn decode_as(kind: &str, bytes: &[u8]) -> Result<Wire, String> {
    match kind {
        "FourMsg" => decode_message::<FourMsg>(bytes).map(Wire::Msg),
        "FourEvent" => decode::<FourEvent>(bytes).map(Wire::Event),
        "FourState" => decode::<FourState>(bytes).map(|s| Wire::State(Box::new(s))),
        "FourWelcome" => decode::<FourWelcome>(bytes).map(Wire::Welcome),
        other => panic!("unknown kind {other}"),
    }
    .map_err(|e| e.to_string())
}

fn seat_name(seat: Seat) -> &'static str {
    match seat {
        Seat::Red => "Red",
        Seat::Yellow => "Yellow",
    }
}

/// The JavaScript codec's shape of a [`Status`]: always an object whose
/// `type` names the variant.
fn describe_status(status: &Status) -> Value {
    match status {
        Status::Waiting => json!({"type": "Waiting"}),
        Status::Playing => json!({"type": "Playing"}),
        Status::Won { seat, cells } => {
            json!({"type": "Won", "seat": seat_name(*seat), "cells": cells})
        }
        Status::Draw => json!({"type": "Draw"}),
        Status::Forfeit { winner } => json!({"type": "Forfeit", "winner": seat_name(*winner)}),
    }
}

/// The JavaScript codec's shape of a value: camelCase fields, enums with
/// fields as objects whose `type` names the variant, a seat as "Red" or
/// "Yellow", the board and winning cells as arrays of numbers, `None` as
/// null. The patterns name every field, so adding one fails to compile
/// here.
fn describe(value: &Wire) -> Value {
    match value {
        Wire::Msg(FourMsg::Drop { column }) => json!({"type": "Drop", "column": column}),
        Wire::Msg(FourMsg::Rematch) => json!({"type": "Rematch"}),
        Wire::Event(event) => match event {
            FourEvent::Seated { seat, player } => {
                json!({"type": "Seated", "seat": seat_name(*seat), "player": player})
            }
            FourEvent::Moved {
                seat,
                column,
                row,
                number,
            } => json!({
                "type": "Moved", "seat": seat_name(*seat), "column": column, "row": row,
                "number": number,
            }),
            FourEvent::Won { seat, cells } => {
                json!({"type": "Won", "seat": seat_name(*seat), "cells": cells})
            }
            FourEvent::Draw => json!({"type": "Draw"}),
            FourEvent::Forfeit { winner } => {
                json!({"type": "Forfeit", "winner": seat_name(*winner)})
            }
            FourEvent::Dropped { seat } => json!({"type": "Dropped", "seat": seat_name(*seat)}),
            FourEvent::Resumed { seat } => json!({"type": "Resumed", "seat": seat_name(*seat)}),
            FourEvent::Left { seat } => json!({"type": "Left", "seat": seat_name(*seat)}),
            FourEvent::RematchAsked { seat } => {
                json!({"type": "RematchAsked", "seat": seat_name(*seat)})
            }
            FourEvent::NewGame { game, first } => {
                json!({"type": "NewGame", "game": game, "first": seat_name(*first)})
            }
            FourEvent::Rejected { reason } => json!({"type": "Rejected", "reason": reason}),
        },
        Wire::State(state) => {
            let FourState {
                you,
                board,
                turn,
                status,
                seats,
                game,
                moves,
            } = state.as_ref();
            let seat_state = |SeatState {
                                  player,
                                  connected,
                                  wins,
                                  rematch,
                              }: &SeatState| {
                json!({"player": player, "connected": connected, "wins": wins, "rematch": rematch})
            };
            json!({
                "you": you.map(seat_name),
                "board": board,
                "turn": turn.map(seat_name),
                "status": describe_status(status),
                "seats": seats.iter().map(seat_state).collect::<Vec<_>>(),
                "game": game,
                "moves": moves,
            })
        }
        Wire::Welcome(FourWelcome { columns, rows }) => json!({"columns": columns, "rows": rows}),
    }
}

fn seat(player: Option<u32>, connected: bool, wins: u32, rematch: bool) -> SeatState {
    SeatState {
        player,
        connected,
        wins,
        rematch,
    }
}

/// A board with the discs of `moves` (columns, red first) dropped in turn.
fn board_after(columns: &[usize]) -> Vec<u8> {
    let mut board = vec![0u8; CELLS];
    for (i, &c) in columns.iter().enumerate() {
        let row = (0..ROWS)
            .find(|&r| board[r * COLUMNS + c] == 0)
            .expect("the column has room");
        board[row * COLUMNS + c] = if i % 2 == 0 { 1 } else { 2 };
    }
    board
}

/// A full board without four in a row (columns of pairs, staggered).
fn drawn_board() -> Vec<u8> {
    (0..CELLS)
        .map(|i| {
            let (row, column) = (i / COLUMNS, i % COLUMNS);
            if ((row / 2) + column) % 2 == 0 { 1 } else { 2 }
        })
        .collect()
}

/// Every named vector. Names are unique and stable; they show up in the
/// JavaScript test's failure messages.
fn vectors() -> Vec<(String, Wire)> {
    let mut v: Vec<(String, Wire)> = Vec::new();
    for column in [0u8, 6, 7, 255] {
        v.push((
            format!("msg_drop_{column}"),
            Wire::Msg(FourMsg::Drop { column }),
        ));
    }
    v.push(("msg_rematch".into(), Wire::Msg(FourMsg::Rematch)));

    let event = |name: &str, e: FourEvent| (name.to_owned(), Wire::Event(e));
    for player in U32_EDGES {
        v.push(event(
            &format!("event_seated_{player}"),
            FourEvent::Seated {
                seat: if player % 2 == 0 {
                    Seat::Red
                } else {
                    Seat::Yellow
                },
                player,
            },
        ));
    }
    v.push(event(
        "event_moved_first",
        FourEvent::Moved {
            seat: Seat::Red,
            column: 3,
            row: 0,
            number: 1,
        },
    ));
    v.push(event(
        "event_moved_last",
        FourEvent::Moved {
            seat: Seat::Yellow,
            column: 6,
            row: 5,
            number: 42,
        },
    ));
    v.push(event(
        "event_moved_u8_max",
        FourEvent::Moved {
            seat: Seat::Red,
            column: 255,
            row: 255,
            number: 255,
        },
    ));
    v.push(event(
        "event_won_four",
        FourEvent::Won {
            seat: Seat::Red,
            cells: vec![0, 1, 2, 3],
        },
    ));
    v.push(event(
        "event_won_two_lines",
        FourEvent::Won {
            seat: Seat::Yellow,
            cells: vec![3, 9, 10, 11, 12, 15, 17, 21, 24],
        },
    ));
    v.push(event("event_draw", FourEvent::Draw));
    for s in Seat::ALL {
        let n = seat_name(s).to_lowercase();
        v.push(event(
            &format!("event_forfeit_{n}"),
            FourEvent::Forfeit { winner: s },
        ));
        v.push(event(
            &format!("event_dropped_{n}"),
            FourEvent::Dropped { seat: s },
        ));
        v.push(event(
            &format!("event_resumed_{n}"),
            FourEvent::Resumed { seat: s },
        ));
        v.push(event(
            &format!("event_left_{n}"),
            FourEvent::Left { seat: s },
        ));
        v.push(event(
            &format!("event_rematch_asked_{n}"),
            FourEvent::RematchAsked { seat: s },
        ));
    }
    for game in U32_EDGES {
        v.push(event(
            &format!("event_new_game_{game}"),
            FourEvent::NewGame {
                game,
                first: if game % 2 == 0 {
                    Seat::Yellow
                } else {
                    Seat::Red
                },
            },
        ));
    }
    for (name, reason) in [
        ("event_rejected_empty", String::new()),
        ("event_rejected_turn", "it is not your turn".to_owned()),
        ("event_rejected_unicode", "colonne pleine – ☹ 列".to_owned()),
        ("event_rejected_251_bytes", "x".repeat(251)),
    ] {
        v.push(event(name, FourEvent::Rejected { reason }));
    }

    let state = |name: &str, s: FourState| (name.to_owned(), Wire::State(Box::new(s)));
    v.push(state(
        "state_waiting",
        FourState {
            you: Some(Seat::Red),
            board: vec![0; CELLS],
            turn: None,
            status: Status::Waiting,
            seats: [seat(Some(1), true, 0, false), seat(None, false, 0, false)],
            game: 0,
            moves: 0,
        },
    ));
    v.push(state(
        "state_playing",
        FourState {
            you: Some(Seat::Yellow),
            board: board_after(&[3, 3, 4]),
            turn: Some(Seat::Yellow),
            status: Status::Playing,
            seats: [
                seat(Some(250), false, 1, false),
                seat(Some(251), true, 0, false),
            ],
            game: 2,
            moves: 3,
        },
    ));
    v.push(state(
        "state_won",
        FourState {
            you: Some(Seat::Red),
            board: board_after(&[0, 0, 1, 1, 2, 2, 3]),
            turn: None,
            status: Status::Won {
                seat: Seat::Red,
                cells: vec![0, 1, 2, 3],
            },
            seats: [
                seat(Some(65_535), true, 65_536, true),
                seat(Some(65_536), true, u32::MAX, false),
            ],
            game: 65_536,
            moves: 7,
        },
    ));
    v.push(state(
        "state_draw",
        FourState {
            you: None,
            board: drawn_board(),
            turn: None,
            status: Status::Draw,
            seats: [
                seat(Some(u32::MAX), true, 250, false),
                seat(Some(0), true, 251, true),
            ],
            game: u32::MAX,
            moves: 42,
        },
    ));
    v.push(state(
        "state_forfeit",
        FourState {
            you: Some(Seat::Yellow),
            board: board_after(&[6, 5]),
            turn: None,
            status: Status::Forfeit {
                winner: Seat::Yellow,
            },
            seats: [seat(None, false, 0, false), seat(Some(9), true, 3, false)],
            game: 251,
            moves: 2,
        },
    ));
    v.push((
        "welcome".into(),
        Wire::Welcome(FourWelcome {
            columns: COLUMNS as u8,
            rows: ROWS as u8,
        }),
    ));
    v.push((
        "welcome_u8_edges".into(),
        Wire::Welcome(FourWelcome {
            columns: 0,
            rows: 255,
        }),
    ));
    v
}

/// Bytes every decoder must reject: (name, kind, bytes, why).
fn invalid() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let good_state = to_vec(&FourState {
        you: Some(Seat::Red),
        board: vec![0; CELLS],
        turn: None,
        status: Status::Waiting,
        seats: [seat(Some(1), true, 0, false), seat(None, false, 0, false)],
        game: 0,
        moves: 0,
    });
    // you (2 bytes), the board's length (1) and cells (42), turn (1),
    // status (1): red's seat starts here.
    let red_at = 2 + 1 + CELLS + 1 + 1;
    assert_eq!(good_state[red_at], 1, "red's player tag");
    let mut bad_option = good_state.clone();
    bad_option[0] = 2;
    let mut bad_bool = good_state.clone();
    bad_bool[red_at + 2] = 2;
    let mut bad_seat = good_state.clone();
    bad_seat[1] = 2;
    let mut bad_status = good_state.clone();
    bad_status[red_at - 1] = 5;
    let truncated_state = good_state[..good_state.len() - 1].to_vec();
    let mut trailing_state = good_state;
    trailing_state.push(0);
    let mut board_bomb = vec![0, 0xfd];
    board_bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());
    vec![
        ("msg_empty", "FourMsg", vec![], "no bytes at all"),
        (
            "msg_unknown_variant",
            "FourMsg",
            vec![2],
            "FourMsg variant 2",
        ),
        (
            "msg_drop_no_column",
            "FourMsg",
            vec![0],
            "a Drop without its column",
        ),
        (
            "msg_rematch_trailing_byte",
            "FourMsg",
            vec![1, 0],
            "a Rematch followed by one more byte",
        ),
        (
            "event_unknown_variant",
            "FourEvent",
            vec![11],
            "FourEvent variant 11",
        ),
        (
            "event_seat_2",
            "FourEvent",
            vec![5, 2],
            "a Dropped event for seat 2",
        ),
        (
            "event_moved_truncated",
            "FourEvent",
            vec![1, 0, 3, 2],
            "a Moved event without its number",
        ),
        (
            "event_rejected_not_utf8",
            "FourEvent",
            vec![10, 2, b'n', 0xff],
            "a Rejected reason with the byte FF",
        ),
        (
            "event_won_cells_past_the_end",
            "FourEvent",
            vec![2, 0, 4, 0, 1, 2],
            "a Won event claiming 4 cells that holds 3",
        ),
        (
            "event_new_game_u32_with_u64_marker",
            "FourEvent",
            vec![9, 0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "NewGame.game (u32) with the FD marker",
        ),
        (
            "state_option_tag_2",
            "FourState",
            bad_option,
            "FourState.you with tag 02",
        ),
        (
            "state_seat_2",
            "FourState",
            bad_seat,
            "FourState.you holding seat 2",
        ),
        (
            "state_status_5",
            "FourState",
            bad_status,
            "a Status of variant 5",
        ),
        (
            "state_bool_2",
            "FourState",
            bad_bool,
            "SeatState.connected encoded as 02",
        ),
        (
            "state_truncated",
            "FourState",
            truncated_state,
            "a state one byte short",
        ),
        (
            "state_trailing_byte",
            "FourState",
            trailing_state,
            "a state followed by one more byte",
        ),
        (
            "state_board_bomb",
            "FourState",
            board_bomb,
            "a board claiming 2^56 cells",
        ),
        (
            "welcome_truncated",
            "FourWelcome",
            vec![7],
            "a welcome without rows",
        ),
    ]
}

/// The whole file, as it must be committed.
fn render() -> String {
    let mut names = BTreeSet::new();
    let mut out_vectors = Vec::new();
    for (name, value) in vectors() {
        assert!(names.insert(name.clone()), "duplicate vector name {name}");
        let bytes = value.encode();
        assert_eq!(
            decode_as(value.kind(), &bytes).as_ref(),
            Ok(&value),
            "{name} does not round-trip"
        );
        out_vectors.push(json!({
            "name": name, "kind": value.kind(), "hex": hex(&bytes), "value": describe(&value),
        }));
    }
    let mut out_invalid = Vec::new();
    for (name, kind, bytes, why) in invalid() {
        assert!(
            decode_as(kind, &bytes).is_err(),
            "{name} ({why}) was accepted by the Rust decoder"
        );
        assert!(
            names.insert(name.to_owned()),
            "duplicate vector name {name}"
        );
        out_invalid.push(json!({"name": name, "kind": kind, "hex": hex(&bytes), "why": why}));
    }
    let file = json!({
        "about": concat!(
            "Golden vectors of four-in-a-row's game bytes (inside the envelope's Game.data, ",
            "Event.data, State.data and Welcome.game), written by games/four/tests/golden.rs; do not ",
            "edit by hand. Regenerate with: UPDATE_GOLDEN=1 cargo test -p four --test golden. ",
            "'vectors' are valid values: 'kind' names the type (FourMsg, FourEvent, FourState, ",
            "FourWelcome), 'hex' is the exact encoding, 'value' the value in the JavaScript codec's ",
            "shape (camelCase fields; enums with fields, and Status always, as objects whose 'type' ",
            "names the variant; a seat as \"Red\" or \"Yellow\"; the board and cells as arrays of ",
            "numbers; None as null). 'invalid' are bytes every decoder of that kind must reject."
        ),
        "vectors": out_vectors,
        "invalid": out_invalid,
    });
    layout(&file)
}

#[test]
fn every_variant_is_covered() {
    let mut seen = BTreeSet::new();
    for (_, value) in vectors() {
        let d = describe(&value);
        let variant = match &value {
            Wire::State(_) => format!("Status:{}", d["status"]["type"].as_str().expect("type")),
            Wire::Welcome(_) => "FourWelcome".to_owned(),
            _ => format!("{}:{}", value.kind(), d["type"].as_str().expect("type")),
        };
        seen.insert(variant);
    }
    let want: BTreeSet<String> = [
        "FourMsg:Drop",
        "FourMsg:Rematch",
        "FourEvent:Seated",
        "FourEvent:Moved",
        "FourEvent:Won",
        "FourEvent:Draw",
        "FourEvent:Forfeit",
        "FourEvent:Dropped",
        "FourEvent:Resumed",
        "FourEvent:Left",
        "FourEvent:RematchAsked",
        "FourEvent:NewGame",
        "FourEvent:Rejected",
        "Status:Waiting",
        "Status:Playing",
        "Status:Won",
        "Status:Draw",
        "Status:Forfeit",
        "FourWelcome",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(seen, want);
}

#[test]
fn golden_file_is_up_to_date() {
    check_file(
        &golden_path(),
        &render(),
        "UPDATE_GOLDEN=1 cargo test -p four --test golden",
        "games/four/web/codec.js",
    );
}
