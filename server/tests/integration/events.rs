//! Reliable events next to latest-wins state, over real sockets, with the
//! turn-based game: a game played to a win, every move an event that
//! reaches both players once and in order; the events a dropped player
//! missed replayed when it resumes; a client that stops acknowledging
//! ended at the backlog bound.

use crate::common::*;
use client::{Connection, Event};
use four::msg::{FourEvent, FourMsg, FourState, Seat, Status};
use protocol::{RoomRequest, ServerMsg, Welcome};

/// One player of four-in-a-row: its connection, welcome, the events it
/// received (in order, with their numbers) and its latest state.
struct Player {
    conn: Connection,
    welcome: Welcome,
    events: Vec<(u32, FourEvent)>,
    state: Option<FourState>,
    /// The last game message number sent.
    seq: u32,
}

impl Player {
    fn new(conn: Connection, welcome: Welcome) -> Self {
        Self {
            conn,
            welcome,
            events: Vec::new(),
            state: None,
            seq: 0,
        }
    }

    /// The last event's number (0 before any).
    fn last_event(&self) -> u32 {
        self.events.last().map_or(0, |(seq, _)| *seq)
    }

    /// The `Moved` events, as (number, seat, column).
    fn moves(&self) -> Vec<(u8, Seat, u8)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                FourEvent::Moved {
                    number,
                    seat,
                    column,
                    ..
                } => Some((*number, *seat, *column)),
                _ => None,
            })
            .collect()
    }

    fn seat(&self) -> Seat {
        self.state.as_ref().and_then(|s| s.you).expect("seated")
    }

    /// Reads until `done` holds, acknowledging events as they come (as a
    /// client should) when `ack` is set. Every event must be the next one.
    async fn read_until(&mut self, ack: bool, what: &str, done: impl Fn(&Player) -> bool) {
        within(what, async {
            while !done(self) {
                match self.conn.recv().await.expect("connected") {
                    Event::Msg(ServerMsg::Event(e)) => {
                        assert_eq!(e.seq, self.last_event() + 1, "events arrive in order, once");
                        let event = game_api::codec::decode(&e.data).expect("a four event");
                        self.events.push((e.seq, event));
                        if ack {
                            self.conn.ack_events(e.seq).await.expect("ack");
                        }
                    }
                    Event::Msg(ServerMsg::State(s)) => {
                        let state = game_api::codec::decode(&s.data).expect("a four state");
                        self.state = Some(state);
                    }
                    Event::Msg(_) => {}
                    Event::Closed { code, reason } => panic!("closed with {code}: {reason}"),
                }
            }
        })
        .await;
    }

    /// Sends a move: a disc in `column`.
    async fn drop_disc(&mut self, column: u8) {
        self.seq += 1;
        let seq = self.seq;
        self.conn
            .send_game(seq, &FourMsg::Drop { column })
            .await
            .expect("send");
    }
}

fn moves_in_state(p: &Player) -> usize {
    p.state.as_ref().map_or(0, |s| usize::from(s.moves))
}

fn over(p: &Player) -> bool {
    p.state
        .as_ref()
        .is_some_and(|s| !matches!(s.status, Status::Playing | Status::Waiting))
}

/// Two players at a private table with a game started: (red, yellow).
async fn table_for_two(server: &TestServer) -> (Player, Player) {
    let (a, wa) = server
        .join_with(RoomRequest::Create {
            room_type: "four".into(),
            options: vec![],
            private: true,
        })
        .await;
    let code = wa.invite_code.clone().expect("a code");
    let (b, wb) = server.join_with(RoomRequest::JoinByCode { code }).await;
    let (mut a, mut b) = (Player::new(a, wa), Player::new(b, wb));
    let playing = |p: &Player| {
        p.state
            .as_ref()
            .is_some_and(|s| s.status == Status::Playing)
            && p.events
                .iter()
                .any(|(_, e)| matches!(e, FourEvent::NewGame { .. }))
    };
    a.read_until(true, "A sees the game start", playing).await;
    b.read_until(true, "B sees the game start", playing).await;
    if a.seat() == Seat::Red {
        (a, b)
    } else {
        (b, a)
    }
}

/// The seat that moved first in the current game, by `p`'s events.
fn first_mover(p: &Player) -> Seat {
    p.events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            FourEvent::NewGame { first, .. } => Some(*first),
            _ => None,
        })
        .expect("a game started")
}

/// The seat whose turn it is, by `p`'s latest state.
fn turn(p: &Player) -> Option<Seat> {
    p.state.as_ref().and_then(|s| s.turn)
}

/// Plays one move of the scripted game (the seat that started in column 3,
/// the other in column 4: the starter wins with its fourth disc) and waits
/// until both have seen it.
async fn play_one(red: &mut Player, yellow: &mut Player) {
    let made = moves_in_state(red);
    let mover = turn(red).expect("a game is running");
    let column = if first_mover(red) == mover { 3 } else { 4 };
    match mover {
        Seat::Red => red.drop_disc(column).await,
        Seat::Yellow => yellow.drop_disc(column).await,
    }
    let next = |p: &Player| p.moves().len() > made && (moves_in_state(p) > made || over(p));
    red.read_until(true, "red sees the move", next).await;
    yellow.read_until(true, "yellow sees the move", next).await;
}

#[tokio::test]
async fn a_game_is_played_to_a_win_and_both_players_see_every_move_in_order() {
    let server = start(&[]).await;
    let (mut red, mut yellow) = table_for_two(&server).await;
    let starter = first_mover(&red);
    while !over(&red) {
        play_one(&mut red, &mut yellow).await;
    }
    let won = |p: &Player| {
        p.events
            .iter()
            .any(|(_, e)| matches!(e, FourEvent::Won { seat, .. } if *seat == starter))
    };
    red.read_until(true, "the starter wins", won).await;
    yellow.read_until(true, "the other sees it", won).await;
    // Both saw the same moves, numbered 1, 2, 3, ... once each, and every
    // move was acknowledged in the movers' states.
    assert_eq!(red.moves(), yellow.moves());
    let numbers: Vec<u8> = red.moves().iter().map(|m| m.0).collect();
    assert_eq!(numbers, (1..=numbers.len() as u8).collect::<Vec<_>>());
    assert_eq!(
        numbers.len(),
        7,
        "the starter needs four discs: {numbers:?}"
    );
    assert!(matches!(
        red.state.as_ref().unwrap().status,
        Status::Won { seat, .. } if seat == starter
    ));
    let sent = server.metric("game_events_sent_total").await;
    assert!(
        sent >= (red.events.len() + yellow.events.len()) as f64,
        "{sent}"
    );
}

#[tokio::test]
async fn events_a_dropped_player_missed_are_replayed_once_when_it_resumes() {
    let server = start(&[]).await;
    let (mut red, mut yellow) = table_for_two(&server).await;
    // A couple of moves with both connected.
    play_one(&mut red, &mut yellow).await;
    play_one(&mut red, &mut yellow).await;
    // Yellow's network dies: no close frame. Its seat and turn are kept.
    let token = yellow.welcome.resume_token;
    let seen = yellow.last_event();
    let moves_seen = yellow.moves();
    drop(yellow.conn);
    let dropped = |p: &Player| {
        p.events
            .iter()
            .any(|(_, e)| matches!(e, FourEvent::Dropped { .. }))
    };
    red.read_until(true, "red is told yellow dropped", dropped)
        .await;
    // Red moves while yellow is away, if it is red's turn; events for
    // yellow queue meanwhile.
    if turn(&red) == Some(Seat::Red) {
        let made = moves_in_state(&red);
        red.drop_disc(3).await;
        red.read_until(true, "red's move lands", |p| moves_in_state(p) > made)
            .await;
    }

    // Yellow comes back claiming the last event it processed: it gets the
    // same seat, and exactly the events after that one.
    let mut conn = server.connect().await;
    let w = conn.resume(token, seen).await.expect("resumed");
    assert!(w.resumed);
    assert_eq!(w.player_id, yellow.welcome.player_id);
    let mut back = Player::new(conn, w);
    back.events = yellow.events;
    back.seq = yellow.seq;
    let caught_up = |p: &Player| {
        p.state.is_some()
            && p.moves().len() == red.moves().len()
            && p.events
                .iter()
                .any(|(_, e)| matches!(e, FourEvent::Resumed { .. }))
    };
    back.read_until(true, "yellow catches up", caught_up).await;
    assert_eq!(back.moves(), red.moves(), "no move lost, none twice");
    assert!(back.moves().len() >= moves_seen.len());
    assert!(server.metric("game_events_replayed_total").await >= 1.0);
    // The game goes on from where it was.
    let mut yellow = back;
    while !over(&red) {
        play_one(&mut red, &mut yellow).await;
    }
    assert_eq!(red.moves(), yellow.moves());
}

#[tokio::test]
async fn a_resume_that_saw_fewer_events_gets_every_unacknowledged_one_again() {
    let server = start(&[]).await;
    let (mut red, mut yellow) = table_for_two(&server).await;
    // Yellow reads but never acknowledges from here on.
    let from = yellow.last_event();
    let made = moves_in_state(&red);
    match turn(&red) {
        Some(Seat::Red) => red.drop_disc(3).await,
        _ => yellow.drop_disc(4).await,
    }
    red.read_until(true, "the move lands", |p| moves_in_state(p) > made)
        .await;
    yellow
        .read_until(false, "yellow reads it without acknowledging", |p| {
            p.moves().len() > made
        })
        .await;
    let token = yellow.welcome.resume_token;
    let unacked: Vec<u32> = yellow
        .events
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s > from)
        .collect();
    assert!(!unacked.is_empty());
    drop(yellow.conn);
    // The client lost what it had read (a reload): it resumes claiming the
    // last event it had acknowledged, and gets the rest again, in order.
    let mut conn = server.connect().await;
    let w = conn.resume(token, from).await.expect("resumed");
    let mut again = Player::new(conn, w);
    again.events = yellow
        .events
        .into_iter()
        .filter(|(s, _)| *s <= from)
        .collect();
    again
        .read_until(true, "the unacknowledged events again", |p| {
            p.last_event() >= *unacked.last().unwrap()
        })
        .await;
    let replayed: Vec<u32> = again
        .events
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s > from)
        .collect();
    assert_eq!(replayed[..unacked.len()], unacked[..]);
}

#[tokio::test]
async fn a_client_that_never_acknowledges_is_ended_at_the_backlog_bound() {
    // A high message rate so that the bound is reached in a second or two.
    let server = start(&["--max-inputs-per-sec", "2000"]).await;
    let (red, yellow) = table_for_two(&server).await;
    // The player whose turn it is not sends moves that the game refuses:
    // each refusal is an event to it alone, which it never acknowledges.
    let (mut idle, pest) = if turn(&red) == Some(Seat::Red) {
        (red, yellow)
    } else {
        (yellow, red)
    };
    let (reader, mut writer) = pest.conn.split();
    let flood = async {
        for seq in 1..=3000u32 {
            let mut data = Vec::new();
            game_api::codec::encode(&FourMsg::Drop { column: 0 }, &mut data);
            let msg = protocol::ClientMsg::Game(protocol::GameMsg { seq, data });
            if writer.send(&msg).await.is_err() {
                return;
            }
            if seq % 100 == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let mut conn_reader = reader;
    let closed = async {
        within("the backlog close", async {
            loop {
                match conn_reader.recv().await {
                    Ok(Event::Closed { code, .. }) => return code,
                    Ok(_) => {}
                    Err(client::ClientError::Closed { code, .. }) => return code,
                    Err(e) => panic!("no close frame: {e}"),
                }
            }
        })
        .await
    };
    let (_, code) = tokio::join!(flood, closed);
    assert_eq!(code, 4017, "event_backlog");
    // The other player is told its opponent left, and the table reopens.
    idle.read_until(true, "the forfeit", |p| {
        p.events
            .iter()
            .any(|(_, e)| matches!(e, FourEvent::Left { .. }))
    })
    .await;
    assert_eq!(
        server
            .metric(
                "game_closes_total{initiator=\"server\",code=\"4017\",reason=\"event_backlog\"}"
            )
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_planned_restart_keeps_a_private_table_its_code_its_turn_and_its_unacknowledged_events() {
    let dir = crate::restart::scratch("four");
    let state = dir.join("game.state");
    let first = crate::restart::node("127.0.0.1:0", &state, &[]).await;
    let (mut red, mut yellow) = table_for_two(&first).await;
    play_one(&mut red, &mut yellow).await;
    // The next move is read by both, but only red acknowledges it.
    let made = moves_in_state(&red);
    let acked_by_yellow = yellow.last_event();
    let mover = turn(&red).expect("playing");
    match mover {
        Seat::Red => red.drop_disc(3).await,
        Seat::Yellow => yellow.drop_disc(4).await,
    }
    red.read_until(true, "red sees it", |p| moves_in_state(p) > made)
        .await;
    yellow
        .read_until(false, "yellow sees it, unacknowledged", |p| {
            p.moves().len() > made
        })
        .await;
    let code = red.welcome.invite_code.clone().expect("a private table");
    let board = red.state.as_ref().unwrap().board.clone();
    let addr = first.addr.to_string();
    assert!(first.stop().await, "saved");
    let second = crate::restart::node(&addr, &state, &[]).await;

    // Both resume; yellow says it processed only what it acknowledged, and
    // gets the move again.
    let resume = |p: &Player, last| {
        let token = p.welcome.resume_token;
        let second = &second;
        async move {
            let mut conn = second.connect().await;
            let w = conn
                .resume(token, last)
                .await
                .expect("resumed after the restart");
            (conn, w)
        }
    };
    let (conn, w) = resume(&red, red.last_event()).await;
    assert_eq!(
        (w.room_id, w.invite_code.as_deref()),
        (red.welcome.room_id, Some(code.as_str()))
    );
    let mut red2 = Player::new(conn, w);
    red2.events = red.events.clone();
    red2.seq = red.seq;
    let (conn, w) = resume(&yellow, acked_by_yellow).await;
    let mut yellow2 = Player::new(conn, w);
    yellow2.events = yellow
        .events
        .iter()
        .filter(|(s, _)| *s <= acked_by_yellow)
        .cloned()
        .collect();
    yellow2.seq = yellow.seq;
    let same_game = |p: &Player| {
        p.state
            .as_ref()
            .is_some_and(|s| s.status == Status::Playing && s.moves as usize == made + 1)
    };
    red2.read_until(true, "red's table is back", same_game)
        .await;
    yellow2
        .read_until(true, "yellow's table and the move again", |p| {
            same_game(p) && p.moves().len() == made + 1
        })
        .await;
    assert_eq!(red2.state.as_ref().unwrap().board, board);
    assert_eq!(yellow2.moves(), red2.moves());
    // The table is still locked to the two of them, and the game goes on.
    let mut third = second.connect().await;
    match third.join(RoomRequest::JoinByCode { code }).await {
        Err(client::ClientError::Closed { code, .. }) => assert_eq!(code, 4011),
        other => panic!("the restored table took a third player: {other:?}"),
    }
    while !over(&red2) {
        play_one(&mut red2, &mut yellow2).await;
    }
    assert_eq!(red2.moves(), yellow2.moves());
    assert!(second.stop().await);
    std::fs::remove_dir_all(&dir).unwrap();
}
