//! The room context end to end: a probe game whose messages ask the room
//! for each effect a game can have (events, kick, metadata, lock, privacy,
//! capacity, the end) and for a refusal at join, checked over real sockets
//! through what clients and the room list see.

use crate::common::*;
use client::{ClientError, Connection, Event};
use game_api::{Ctx, Game, Metadata, PlayerId, RoomOptions, RoomType};
use protocol::{RoomRequest, ServerMsg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a probe player may ask of its room.
#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    /// An event to every player.
    Shout(String),
    /// Remove a player, with a reason.
    Kick(PlayerId, String),
    /// Replace the room's metadata.
    Label(Vec<(String, String)>),
    /// Lock or unlock.
    Lock(bool),
    /// Go private or public.
    Private(bool),
    /// Change the number of seats.
    Seats(u16),
    /// End the room.
    End(String),
}

/// A game that does what its players ask, and refuses a player named in its
/// `refuse` option.
struct Probe {
    refuse: Option<PlayerId>,
    players: Vec<PlayerId>,
}

impl Game for Probe {
    type Config = ();
    type Message = Ask;
    type Event = String;

    fn create(_: &(), options: &RoomOptions, _: u64) -> Result<Self, String> {
        options.only(&["refuse"])?;
        Ok(Self {
            refuse: options.get("refuse").and_then(|v| v.parse().ok()),
            players: Vec::new(),
        })
    }
    fn restore(_: &(), _: &RoomOptions, _: &[u8]) -> Result<Self, String> {
        Err("the probe keeps nothing".into())
    }
    fn save(&self) -> Vec<u8> {
        Vec::new()
    }
    fn join_attempt(&mut self, player: PlayerId, _: &mut Ctx<'_, String>) -> Result<(), String> {
        match self.refuse {
            Some(p) if p == player => Err(format!("player {player} is not welcome here")),
            _ => Ok(()),
        }
    }
    fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, String>) {
        self.players.push(player);
        ctx.broadcast(&format!("{player} joined"));
    }
    fn leave(&mut self, player: PlayerId, ctx: &mut Ctx<'_, String>) {
        self.players.retain(|p| *p != player);
        ctx.broadcast(&format!("{player} left"));
    }
    fn step(&mut self, messages: &[(PlayerId, Ask)], ctx: &mut Ctx<'_, String>) {
        for (_, ask) in messages {
            match ask {
                Ask::Shout(text) => ctx.broadcast(text),
                Ask::Kick(p, why) => ctx.kick(*p, why.clone()),
                Ask::Label(pairs) => {
                    let meta: Metadata = pairs.iter().cloned().collect();
                    ctx.set_metadata(meta).expect("small metadata");
                }
                Ask::Lock(true) => ctx.lock(),
                Ask::Lock(false) => ctx.unlock(),
                Ask::Private(p) => ctx.set_private(*p),
                Ask::Seats(n) => ctx.set_capacity(*n),
                Ask::End(why) => ctx.end(why.clone()),
            }
        }
    }
    fn state(&mut self, _: PlayerId, out: &mut Vec<u8>) {
        game_api::codec::encode(&self.players, out);
    }
}

async fn probe_server() -> TestServer {
    let (mut types, rest) = games(&[]);
    types.push(RoomType::new::<Probe>("probe", ()).capacity(3));
    TestServer::start(types, &rest).await
}

fn quick() -> RoomRequest {
    RoomRequest::quick("probe")
}

/// Reads until an event whose text contains `what`.
async fn event_with(conn: &mut Connection, what: &str) -> String {
    within(what, async {
        loop {
            match conn.recv().await.expect("connected") {
                Event::Msg(ServerMsg::Event(e)) => {
                    let text: String = game_api::codec::decode(&e.data).expect("a probe event");
                    if text.contains(what) {
                        return text;
                    }
                }
                Event::Msg(_) => {}
                Event::Closed { code, reason } => panic!("closed with {code}: {reason}"),
            }
        }
    })
    .await
}

/// Reads until the server closes; returns the code and reason.
async fn closed(conn: &mut Connection) -> (u16, String) {
    within("a close", async {
        loop {
            match conn.recv().await {
                Ok(Event::Closed { code, reason }) | Err(ClientError::Closed { code, reason }) => {
                    return (code, reason);
                }
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    })
    .await
}

async fn ask(conn: &mut Connection, seq: u32, what: Ask) {
    conn.send_game(seq, &what).await.expect("send");
}

async fn listed(server: &TestServer) -> Value {
    let (_, body) = server.get("/rooms?type=probe").await;
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test]
async fn a_game_kicks_with_its_reason_and_the_others_are_told() {
    let server = probe_server().await;
    let (mut a, _) = server.join_with(quick()).await;
    let (mut b, wb) = server.join_with(quick()).await;
    ask(
        &mut a,
        1,
        Ask::Kick(wb.player_id, "spoiling the fun".into()),
    )
    .await;
    assert_eq!(closed(&mut b).await, (4015, "spoiling the fun".to_owned()));
    event_with(&mut a, &format!("{} left", wb.player_id)).await;
    server.wait_metric("game_players", |v| v == 1.0).await;
    // The kicked player's token is gone with it.
    let mut again = server.connect().await;
    match again.resume(wb.resume_token, 0).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4002),
        other => panic!("a kicked session resumed: {other:?}"),
    }
}

#[tokio::test]
async fn metadata_lock_privacy_and_capacity_follow_the_game() {
    let server = probe_server().await;
    let (mut a, wa) = server.join_with(quick()).await;
    event_with(&mut a, "joined").await;
    ask(&mut a, 1, Ask::Label(vec![("map".into(), "forest".into())])).await;
    let labelled = within("metadata listed", async {
        loop {
            let rooms = listed(&server).await;
            if rooms[0]["metadata"]["map"] == "forest" {
                return rooms;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(labelled[0]["capacity"], 3);

    // Two seats: the room is full with two players, and says so.
    ask(&mut a, 2, Ask::Seats(2)).await;
    ask(&mut a, 3, Ask::Shout("two seats".into())).await;
    event_with(&mut a, "two seats").await;
    let (mut b, wb) = server.join_with(quick()).await;
    assert_eq!(wb.room_id, wa.room_id);
    event_with(&mut b, "joined").await;
    let mut c = server.connect().await;
    match c
        .join(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await
    {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4012),
        other => panic!("a third seat in a room of two: {other:?}"),
    }

    // Locked: not listed, refused by id; unlocked again: back.
    ask(&mut a, 4, Ask::Seats(3)).await;
    ask(&mut a, 5, Ask::Lock(true)).await;
    ask(&mut a, 6, Ask::Shout("locked".into())).await;
    event_with(&mut a, "locked").await;
    assert_eq!(listed(&server).await, Value::Array(vec![]));
    let mut d = server.connect().await;
    match d
        .join(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await
    {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4011),
        other => panic!("joined a locked room: {other:?}"),
    }
    ask(&mut a, 7, Ask::Lock(false)).await;

    // Private: the room gets an invite code, is not listed, and is reached
    // only by the code, which later Welcomes carry.
    ask(&mut a, 8, Ask::Private(true)).await;
    ask(&mut a, 9, Ask::Shout("private".into())).await;
    event_with(&mut a, "private").await;
    assert_eq!(listed(&server).await, Value::Array(vec![]));
    let mut e = server.connect().await;
    match e
        .join(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await
    {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4013),
        other => panic!("joined a private room by id: {other:?}"),
    }
    drop(b);
    let mut back = server.connect().await;
    let w = back.resume(wb.resume_token, 0).await.expect("resumed");
    let code = w
        .invite_code
        .expect("a private room's Welcome carries its code");
    let (_, wf) = server.join_with(RoomRequest::JoinByCode { code }).await;
    assert_eq!(wf.room_id, wa.room_id);
}

#[tokio::test]
async fn a_game_ends_its_room_and_refuses_a_player_with_its_reason() {
    let server = probe_server().await;
    // The second player (id 2) of this server is refused by the game.
    let options = vec![("refuse".to_owned(), "2".to_owned())];
    let (mut a, wa) = server
        .join_with(RoomRequest::QuickJoin {
            room_type: "probe".into(),
            options: options.clone(),
        })
        .await;
    let mut refused = server.connect().await;
    match refused
        .join(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await
    {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(
                (code, reason.as_str()),
                (4014, "player 2 is not welcome here")
            );
        }
        other => panic!("the game's refusal was ignored: {other:?}"),
    }
    let (mut b, _) = server
        .join_with(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await;
    event_with(&mut b, "joined").await;
    ask(&mut a, 1, Ask::End("the match is over".into())).await;
    assert_eq!(closed(&mut a).await, (4016, "the match is over".to_owned()));
    assert_eq!(closed(&mut b).await, (4016, "the match is over".to_owned()));
    server.wait_metric("game_rooms", |v| v == 0.0).await;
    server.wait_metric("game_players", |v| v == 0.0).await;
    let mut late = server.connect().await;
    match late
        .join(RoomRequest::JoinById {
            room_id: wa.room_id,
        })
        .await
    {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4010),
        other => panic!("joined an ended room: {other:?}"),
    }
}
