//! Tests of rooms and the lobby driven directly, without sockets or a
//! server: placement, joins, drops, resumes, grace expiry, leaves, the
//! listing, linger and the tick loop.
//!
//! A probe game records every call its rooms make on it; resume tokens come
//! from a counter ([`TokenSource::from_fn`]), so each player's token is
//! known; a connection is a [`ConnLink`] whose mailbox the test reads. Time
//! is tokio's paused clock: `sleep` lets it run (the runtime jumps straight
//! to each timer in turn, so every tick runs exactly on time) and `advance`
//! moves it in one jump (so a room wakes late). Nothing here waits for real.
//!
//! Not for the wire (the integration tests speak to a real server) nor for
//! the pieces with tests of their own (`clock`, `events`, `mailbox`,
//! `send_rate`, `fanout`).

use super::lobby::Listing;
use super::mailbox::Delivery;
use super::*;
use crate::shutdown::ShutdownController;
use game_api::{Ctx, Game, Metadata};
use protocol::{RoomRequest, SeatTicket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64};

/// Tick rate of every test room type: 100 ms ticks are easy to count.
const HZ: u16 = 10;
/// One tick at [`HZ`].
const TICK: Duration = Duration::from_millis(100);
/// How long a dropped player waits for a resume.
const GRACE: Duration = Duration::from_secs(2);
/// How long an empty room of the lingering type stays open.
const LINGER: Duration = Duration::from_secs(5);
/// Most rooms a test lobby opens: enough for every placement test.
const MAX_ROOMS: u32 = 4;
/// Probe messages that lock and unlock the room.
const LOCK: u8 = 200;
const UNLOCK: u8 = 201;

/// A call the room made on the probe game.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Attempt(PlayerId),
    Join(PlayerId),
    Drop(PlayerId),
    Resume(PlayerId),
    Leave(PlayerId),
    /// A step: its tick and the messages it was given.
    Step(u32, Vec<(PlayerId, u8)>),
}

/// Every call the rooms of a test world made on their games, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn push(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    /// The calls other than steps.
    fn sessions(&self) -> Vec<Call> {
        let mut calls = self.calls();
        calls.retain(|c| !matches!(c, Call::Step(..)));
        calls
    }

    /// The tick of every step.
    fn ticks(&self) -> Vec<u32> {
        let calls = self.calls();
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Step(tick, _) => Some(*tick),
                _ => None,
            })
            .collect()
    }

    /// The messages of the last step.
    fn last_messages(&self) -> Vec<(PlayerId, u8)> {
        let calls = self.calls();
        calls
            .iter()
            .rev()
            .find_map(|c| match c {
                Call::Step(_, messages) => Some(messages.clone()),
                _ => None,
            })
            .expect("a step ran")
    }
}

/// The probe's room type configuration.
#[derive(Clone, Default, Serialize, Deserialize)]
struct ProbeConfig {
    /// Join attempts are refused with this reason, when set.
    refuse: Option<String>,
    /// Where the rooms of the type log their calls (nothing a recording
    /// would keep).
    #[serde(skip)]
    log: Log,
}

/// A game that logs every call, greets each joining player with an event to
/// all, publishes its player count as metadata, and locks or unlocks its
/// room on the messages [`LOCK`] and [`UNLOCK`].
struct Probe {
    log: Log,
    refuse: Option<String>,
    players: Vec<PlayerId>,
}

impl Probe {
    fn publish(&self, ctx: &mut Ctx<'_, String>) {
        let metadata = Metadata::from([("players".to_owned(), self.players.len().to_string())]);
        ctx.set_metadata(metadata).expect("small metadata");
    }
}

impl Game for Probe {
    type Config = ProbeConfig;
    type Message = u8;
    type Event = String;

    fn create(config: &ProbeConfig, _: &RoomOptions, _: u64) -> Result<Self, String> {
        Ok(Self {
            log: config.log.clone(),
            refuse: config.refuse.clone(),
            players: Vec::new(),
        })
    }

    fn restore(config: &ProbeConfig, options: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
        let mut game = Self::create(config, options, 0)?;
        game.players = game_api::codec::decode(saved).map_err(|e| e.to_string())?;
        Ok(game)
    }

    fn save(&self) -> Vec<u8> {
        game_api::codec::to_vec(&self.players)
    }

    fn join_attempt(&mut self, player: PlayerId, _: &mut Ctx<'_, String>) -> Result<(), String> {
        self.log.push(Call::Attempt(player));
        self.refuse.clone().map_or(Ok(()), Err)
    }

    fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, String>) {
        self.log.push(Call::Join(player));
        self.players.push(player);
        ctx.broadcast(&format!("{player} joined"));
        self.publish(ctx);
    }

    fn drop_player(&mut self, player: PlayerId, _: &mut Ctx<'_, String>) {
        self.log.push(Call::Drop(player));
    }

    fn resume(&mut self, player: PlayerId, _: &mut Ctx<'_, String>) {
        self.log.push(Call::Resume(player));
    }

    fn leave(&mut self, player: PlayerId, ctx: &mut Ctx<'_, String>) {
        self.log.push(Call::Leave(player));
        self.players.retain(|&p| p != player);
        self.publish(ctx);
    }

    fn step(&mut self, messages: &[(PlayerId, u8)], ctx: &mut Ctx<'_, String>) {
        self.log.push(Call::Step(ctx.tick(), messages.to_vec()));
        for &(_, message) in messages {
            match message {
                LOCK => ctx.lock(),
                UNLOCK => ctx.unlock(),
                _ => {}
            }
        }
    }

    fn state(&mut self, _: PlayerId, out: &mut Vec<u8>) {
        out.push(self.players.len() as u8);
    }
}

/// The token the counter gives the `n`th player of a world (from 1).
fn token(n: u8) -> ResumeToken {
    ResumeToken([n; 16])
}

fn quick(room_type: &str) -> RoomRequest {
    RoomRequest::quick(room_type)
}

fn create(room_type: &str, private: bool) -> RoomRequest {
    RoomRequest::Create {
        room_type: room_type.to_owned(),
        options: Vec::new(),
        private,
    }
}

/// Lets every task that can run, run, without moving the paused clock
/// (the test task stays runnable, so the runtime never jumps ahead).
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Lets `d` pass on the paused clock, every timer firing on time.
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A lobby with three probe room types, its metrics and its games' log.
struct World {
    lobby: Arc<Lobby>,
    metrics: Arc<Metrics>,
    log: Log,
    /// Taken by a test that shuts the world down.
    controller: Option<ShutdownController>,
    /// The next connection's id.
    next_conn: AtomicU64,
}

/// A player in a room, on one connection.
struct Player {
    welcome: Welcome,
    room: RoomHandle,
    link: ConnLink,
}

impl World {
    fn new() -> Self {
        Self::with(false)
    }

    /// A world whose rooms save their state at shutdown, or not. Its room
    /// types: "probe" (2 seats, quick join matches on "mode", no linger),
    /// "lingering" (2 seats, [`LINGER`]) and "picky" (refuses every join).
    fn with(save_on_shutdown: bool) -> Self {
        Self::build(save_on_shutdown, false)
    }

    /// A world whose rooms follow load (`--send-rate-policy adaptive`).
    fn adaptive() -> Self {
        Self::build(false, true)
    }

    fn build(save_on_shutdown: bool, adaptive_send_rate: bool) -> Self {
        let log = Log::default();
        let config = |refuse: Option<&str>| ProbeConfig {
            refuse: refuse.map(str::to_owned),
            log: log.clone(),
        };
        let kind = |room_type: RoomType, linger| {
            Arc::new(Kind {
                room_type,
                tick_hz: HZ,
                linger,
            })
        };
        let kinds = vec![
            kind(
                RoomType::new::<Probe>("probe", config(None))
                    .capacity(2)
                    .filter_by(&["mode"]),
                Duration::ZERO,
            ),
            kind(
                RoomType::new::<Probe>("lingering", config(None)).capacity(2),
                LINGER,
            ),
            kind(
                RoomType::new::<Probe>("picky", config(Some("no seats for you"))),
                Duration::ZERO,
            ),
        ];
        let issued = AtomicU8::new(0);
        let defaults = Arc::new(RoomDefaults {
            tick_hz: HZ,
            resume_grace: GRACE,
            // Tests read their mailboxes rarely; they must not be closed
            // as too slow for it.
            slow_timeout: Duration::from_secs(3600),
            max_rooms: MAX_ROOMS,
            max_inputs_per_sec: 20,
            seed: 7,
            save_on_shutdown,
            snapshot_hz: None,
            adaptive_send_rate,
            recordings: None,
            tokens: TokenSource::from_fn(move || token(issued.fetch_add(1, Relaxed) + 1)),
        });
        let metrics = Arc::new(Metrics::default());
        let controller = ShutdownController::new();
        let lobby = Lobby::new(kinds, defaults, metrics.clone(), controller.handle());
        Self {
            lobby,
            metrics,
            log,
            controller: Some(controller),
            next_conn: AtomicU64::new(1),
        }
    }

    /// A new connection.
    fn conn(&self) -> ConnLink {
        ConnLink {
            conn: self.next_conn.fetch_add(1, Relaxed),
            mailbox: Arc::new(Mailbox::default()),
        }
    }

    /// Places and joins a player as `request` asks.
    async fn join(&self, request: RoomRequest) -> Result<Player, Refusal> {
        let reservation = self.lobby.place(&request)?;
        let link = self.conn();
        let (welcome, room) = join(reservation, link.clone()).await?;
        Ok(Player {
            welcome,
            room,
            link,
        })
    }

    /// Why `request` is refused.
    async fn refused(&self, request: RoomRequest) -> Refusal {
        match self.join(request.clone()).await {
            Ok(p) => panic!("{request:?} was placed in room {}", p.welcome.room_id),
            Err(refusal) => refusal,
        }
    }

    /// Resumes `player` of `room` on a new connection.
    async fn resume(
        &self,
        room: &RoomHandle,
        player: PlayerId,
        token: ResumeToken,
        last_event: u32,
    ) -> Result<Player, Refusal> {
        let link = self.conn();
        let welcome = room.resume(player, token, last_event, link.clone()).await?;
        Ok(Player {
            welcome,
            room: room.clone(),
            link,
        })
    }

    /// The listing's player count of each public, unlocked room, by id.
    fn occupancy(&self) -> Vec<(RoomId, u32)> {
        let listed = self.lobby.list(None);
        listed.iter().map(|l| (l.id, l.players)).collect()
    }

    fn gauge(&self, g: &std::sync::atomic::AtomicI64) -> i64 {
        g.load(Relaxed)
    }
}

impl Player {
    fn id(&self) -> PlayerId {
        self.welcome.player_id
    }

    /// The connection drops without a leave.
    async fn drop_conn(&self) {
        self.room
            .disconnected(self.id(), self.link.conn, false)
            .await;
        settle().await;
    }

    /// The player leaves cleanly.
    async fn leave(&self) {
        self.room
            .disconnected(self.id(), self.link.conn, true)
            .await;
        settle().await;
    }

    /// Sends the game `message` with sequence number `seq`.
    fn send(&self, seq: u32, message: u8) {
        let from = Sender {
            player: self.id(),
            conn: self.link.conn,
        };
        let bytes = game_api::codec::to_vec(&message);
        self.room.inbox.push(from, seq, &bytes).expect("queued");
    }

    /// The sequence numbers of the events waiting in the mailbox (taking
    /// them, and any state).
    fn events(&self) -> Vec<u32> {
        match self.link.mailbox.take() {
            Delivery::Write { events, .. } => events.iter().map(|(seq, _)| *seq).collect(),
            Delivery::Kick(code, reason) => panic!("kicked: {code:?} {reason}"),
            Delivery::Empty => Vec::new(),
        }
    }

    /// Whether a state waits in the mailbox (taking it, and any events).
    fn has_state(&self) -> bool {
        matches!(
            self.link.mailbox.take(),
            Delivery::Write { state: Some(_), .. }
        )
    }

    /// The close code the room posted, if any.
    fn kicked(&self) -> Option<CloseCode> {
        match self.link.mailbox.take() {
            Delivery::Kick(code, _) => Some(code),
            _ => None,
        }
    }
}

// The two checks that lived in `room/mod.rs` before this module.

#[test]
fn token_comparison_and_seeds() {
    let a = new_token();
    let b = new_token();
    assert_ne!(a, b, "128 random bits do not repeat");
    assert!(tokens_equal(&a, &a));
    assert!(!tokens_equal(&a, &b));
    assert_ne!(room_seed(1, 1), room_seed(1, 2));
    assert_ne!(room_seed(1, 1), room_seed(2, 1));
    assert_eq!(room_seed(7, 3), room_seed(7, 3));
}

#[test]
fn unchanged_states_hash_alike_and_a_new_ack_or_byte_does_not() {
    assert_eq!(state_hash(3, b"board"), state_hash(3, b"board"));
    assert_ne!(state_hash(3, b"board"), state_hash(4, b"board"));
    assert_ne!(state_hash(3, b"board"), state_hash(3, b"boare"));
}

#[test]
fn the_os_token_source_does_not_repeat_and_a_given_one_is_used() {
    let os = TokenSource::os();
    assert_ne!(os.token(), os.token());
    let fixed = TokenSource::from_fn(|| token(42));
    assert_eq!(fixed.token(), token(42));
}

// The tick loop.

#[tokio::test(start_paused = true)]
async fn steps_run_once_a_tick_and_each_sends_a_state() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    pass(TICK * 10 + TICK / 2).await;
    assert_eq!(world.log.ticks(), (1..=10).collect::<Vec<u32>>());
    assert_eq!(world.metrics.ticks_skipped.load(Relaxed), 0);
    assert_eq!(world.metrics.states_planned.load(Relaxed), 10);
    assert!(a.has_state());
    pass(TICK).await;
    assert_eq!(world.log.ticks().len(), 11);
}

/// Runs `ticks` ticks with `a` taking its state after each, as a
/// connection that keeps up does, the first `behind` of them starting
/// `late_by` late; returns how many of them had a state. Starts and ends
/// half a tick after a tick.
async fn read_along(a: &Player, ticks: u32, behind: u32, late_by: Duration) -> u32 {
    let mut states = 0;
    for i in 0..ticks {
        if i < behind {
            // The clock jumps past the tick's time: it starts that late.
            tokio::time::advance(TICK / 2 + late_by).await;
            settle().await;
            states += u32::from(a.has_state());
            tokio::time::advance(TICK / 2 - late_by).await;
        } else {
            pass(TICK).await;
            states += u32::from(a.has_state());
        }
    }
    states
}

#[tokio::test(start_paused = true)]
async fn a_machine_short_of_cpu_slows_every_room_down_until_it_has_some_again() {
    let world = World::adaptive();
    let a = world.join(quick("probe")).await.unwrap();
    let lowered = || world.metrics.send_rate_lowered.load(Relaxed);
    // Half a tick off the grid, so that each read follows a tick.
    pass(TICK / 2).await;
    // A quarter of a period is 25 ms: ticks 30 ms late are behind, not
    // late.
    let behind = Duration::from_millis(30);
    // A second of ticks on time, every state taken: nothing to change.
    assert_eq!(read_along(&a, 10, 0, behind).await, 10);
    // The server's threads wait for a CPU a third of the time, but the
    // ticks keep their schedule: nothing to change.
    world.metrics.cpu_wait.set_ratio(0.33);
    assert_eq!(read_along(&a, 10, 0, behind).await, 10);
    assert_eq!(lowered(), 0);
    // Three ticks in ten behind, with CPU to spare: nothing either.
    world.metrics.cpu_wait.set_ratio(0.05);
    assert_eq!(read_along(&a, 10, 3, behind).await, 10);
    assert_eq!(lowered(), 0);
    // Both: every 2nd tick from the next window on.
    world.metrics.cpu_wait.set_ratio(0.33);
    read_along(&a, 10, 3, behind).await;
    assert_eq!(lowered(), 1);
    assert_eq!(world.metrics.rooms_degraded.load(Relaxed), 1);
    assert_eq!(read_along(&a, 10, 0, behind).await, 5, "every 2nd tick");
    // CPU to spare again: three calm windows later, every tick.
    world.metrics.cpu_wait.set_ratio(0.02);
    read_along(&a, 20, 0, behind).await;
    assert_eq!(world.metrics.send_rate_raised.load(Relaxed), 1);
    assert_eq!(world.metrics.rooms_degraded.load(Relaxed), 0);
    assert_eq!(read_along(&a, 10, 0, behind).await, 10);
    assert_eq!(lowered(), 1);
}

/// A room whose first tick (due one tick in) wakes `late_by` late runs the
/// `steps` shown at once and counts `skipped` dropped steps; its next tick
/// is back on the grid.
async fn check_late_tick(late_by: Duration, steps: &[u32], skipped: u64) {
    let world = World::new();
    let _a = world.join(quick("probe")).await.unwrap();
    tokio::time::advance(TICK + late_by).await;
    settle().await;
    assert_eq!(world.log.ticks(), steps, "late by {late_by:?}");
    assert_eq!(
        world.metrics.ticks_skipped.load(Relaxed),
        skipped,
        "late by {late_by:?}"
    );
    // Whatever the lateness, the next tick is the next grid point, less
    // than a tick away.
    pass(TICK + TICK / 4).await;
    let last = *steps.last().unwrap();
    assert_eq!(
        world.log.ticks().last(),
        Some(&(last + 1)),
        "late by {late_by:?}"
    );
    assert_eq!(
        world.log.ticks().len(),
        steps.len() + 1,
        "late by {late_by:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_tick_catches_up_at_most_three_steps_and_counts_the_rest() {
    check_late_tick(Duration::ZERO, &[1], 0).await;
    check_late_tick(TICK / 2, &[1], 0).await;
    check_late_tick(TICK, &[1, 2], 0).await;
    check_late_tick(TICK * 2 + TICK / 2, &[1, 2, 3], 0).await;
    check_late_tick(TICK * 3, &[1, 2, 3], 1).await;
    check_late_tick(TICK * 9, &[1, 2, 3], 7).await;
}

#[tokio::test(start_paused = true)]
async fn messages_reach_the_next_step_once_in_arrival_order() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    let b = world.join(quick("probe")).await.unwrap();
    a.send(1, 5);
    b.send(1, 6);
    a.send(2, 7);
    assert_eq!(
        world.log.ticks(),
        Vec::<u32>::new(),
        "nothing before a tick"
    );
    pass(TICK + TICK / 2).await;
    assert_eq!(world.log.last_messages(), [(1, 5), (2, 6), (1, 7)]);
    pass(TICK).await;
    assert!(
        world.log.last_messages().is_empty(),
        "each message is given once"
    );
}

// Joins.

#[tokio::test(start_paused = true)]
async fn a_join_is_welcomed_with_its_seat_and_the_injected_token() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    let b = world.join(quick("probe")).await.unwrap();
    let w = &a.welcome;
    assert_eq!(
        (w.room_id, w.room_type.as_str(), w.tick_hz, w.resumed),
        (1, "probe", HZ, false)
    );
    assert_eq!(w.invite_code, None, "a public room has no code");
    assert_eq!(a.welcome.resume_token, token(1));
    assert_eq!(b.welcome.resume_token, token(2));
    assert_eq!((a.id(), b.id()), (1, 2));
    assert_eq!(b.welcome.room_id, 1);
    let (room, player) = world.lobby.find(&token(2)).expect("the session is known");
    assert_eq!((room.id, player), (1, 2));
    use Call::*;
    assert_eq!(
        world.log.sessions(),
        [Attempt(1), Join(1), Attempt(2), Join(2)]
    );
    assert_eq!(world.gauge(&world.metrics.players), 2);
    // Each join's event went to everyone in the room at the time.
    assert_eq!(a.events(), [1, 2]);
    assert_eq!(b.events(), [1]);
}

#[tokio::test(start_paused = true)]
async fn a_join_the_game_refuses_gets_its_reason_and_gives_the_place_back() {
    let world = World::new();
    let refusal = world.refused(quick("picky")).await;
    assert_eq!(
        refusal,
        Refusal::new(CloseCode::RefusedByGame, "no seats for you")
    );
    assert_eq!(world.log.sessions(), [Call::Attempt(1)], "no join follows");
    settle().await;
    // The room the refused join opened held only its place: it closed.
    assert_eq!(world.lobby.room_count(), 0);
    assert_eq!(world.gauge(&world.metrics.players), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_room_is_refused_by_id_and_quick_join_opens_another() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    let _b = world.join(quick("probe")).await.unwrap();
    assert_eq!(
        world.refused(RoomRequest::JoinById { room_id: 1 }).await,
        Refusal::new(CloseCode::RoomAtCapacity, "the room is full")
    );
    let c = world.join(quick("probe")).await.unwrap();
    assert_eq!(c.welcome.room_id, 2);
    // A seat given back is taken again by id.
    a.leave().await;
    let d = world.join(RoomRequest::JoinById { room_id: 1 }).await;
    assert_eq!(d.map(|p| p.welcome.room_id).ok(), Some(1));
}

// Drops, resumes, grace and leaves.

#[tokio::test(start_paused = true)]
async fn a_dropped_player_resumes_within_the_grace_with_its_seat_and_missed_events() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    assert_eq!(a.events(), [1]);
    a.drop_conn().await;
    assert_eq!(world.gauge(&world.metrics.players_dropped), 1);
    // While `a` is away, `b` joins: `a`'s session keeps the event (2).
    let b = world.join(quick("probe")).await.unwrap();
    assert!(a.events().is_empty(), "a dropped connection gets nothing");
    pass(GRACE - TICK).await;
    let back = world.resume(&a.room, a.id(), token(1), 1).await.unwrap();
    let w = &back.welcome;
    assert_eq!(
        (w.player_id, w.room_id, w.resumed, w.resume_token),
        (a.id(), 1, true, token(1))
    );
    assert_eq!(back.events(), [2], "only the missed event is replayed");
    use Call::*;
    assert_eq!(
        world.log.sessions(),
        [Attempt(1), Join(1), Drop(1), Attempt(2), Join(2), Resume(1)]
    );
    assert_eq!(world.gauge(&world.metrics.players_dropped), 0);
    // Back for good: the grace no longer runs.
    pass(GRACE * 2).await;
    assert!(!world.log.sessions().contains(&Leave(1)));
    assert!(back.has_state());
    assert_eq!(world.occupancy(), [(1, 2)]);
    drop(b);
}

#[tokio::test(start_paused = true)]
async fn a_resume_with_a_wrong_token_or_player_is_refused_and_changes_nothing() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    a.drop_conn().await;
    let wrong = [(a.id(), token(9)), (a.id() + 1, token(1))];
    for (player, token) in wrong {
        let refusal = world.resume(&a.room, player, token, 0).await.err();
        assert_eq!(
            refusal.map(|r| r.code),
            Some(CloseCode::InvalidResumeToken),
            "player {player}"
        );
    }
    assert_eq!(world.gauge(&world.metrics.players_dropped), 1);
    let back = world.resume(&a.room, a.id(), token(1), 0).await;
    assert_eq!(back.map(|p| p.welcome.player_id).ok(), Some(a.id()));
}

#[tokio::test(start_paused = true)]
async fn a_resume_while_attached_takes_over_and_the_old_connection_is_ignored() {
    let world = World::new();
    let old = world.join(quick("probe")).await.unwrap();
    let new = world
        .resume(&old.room, old.id(), token(1), 1)
        .await
        .unwrap();
    assert!(new.welcome.resumed);
    assert_eq!(old.kicked(), Some(CloseCode::SessionTakenOver));
    // For the game the player never left.
    assert_eq!(world.log.sessions(), [Call::Attempt(1), Call::Join(1)]);
    // The old connection's messages and its end come too late to count.
    old.send(1, 7);
    new.send(2, 8);
    old.drop_conn().await;
    pass(TICK + TICK / 2).await;
    assert_eq!(world.log.last_messages(), [(1, 8)]);
    assert_eq!(world.gauge(&world.metrics.players_dropped), 0);
    pass(GRACE + TICK).await;
    assert_eq!(world.log.sessions().len(), 2, "no drop, no leave");
    assert!(new.has_state());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_player_is_removed_when_its_grace_expires_and_not_before() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    a.drop_conn().await;
    pass(GRACE - TICK / 2).await;
    assert!(world.lobby.find(&token(1)).is_some(), "still resumable");
    assert!(!world.log.sessions().contains(&Call::Leave(1)));
    assert_eq!(world.lobby.room_count(), 1);
    pass(TICK).await;
    assert_eq!(world.log.sessions().last(), Some(&Call::Leave(1)));
    assert!(world.lobby.find(&token(1)).is_none());
    assert_eq!(world.gauge(&world.metrics.players), 0);
    assert_eq!(world.gauge(&world.metrics.players_dropped), 0);
    // The room, left empty and without linger, closed with the player.
    assert_eq!(world.lobby.room_count(), 0);
    let refusal = world.resume(&a.room, a.id(), token(1), 0).await.err();
    assert_eq!(refusal.map(|r| r.code), Some(CloseCode::InvalidResumeToken));
}

#[tokio::test(start_paused = true)]
async fn a_clean_leave_removes_the_player_at_once() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    let b = world.join(quick("probe")).await.unwrap();
    a.leave().await;
    use Call::*;
    assert_eq!(
        world.log.sessions(),
        [Attempt(1), Join(1), Attempt(2), Join(2), Leave(1)],
        "no drop, no grace"
    );
    assert!(world.lobby.find(&token(1)).is_none());
    assert!(world.lobby.find(&token(2)).is_some());
    assert_eq!(world.occupancy(), [(1, 1)]);
    assert_eq!(world.gauge(&world.metrics.players), 1);
    // The game's new metadata reached the listing.
    assert_eq!(
        world.lobby.list(None)[0].metadata,
        Metadata::from([("players".to_owned(), "1".to_owned())])
    );
    pass(TICK + TICK / 2).await;
    assert!(b.has_state());
    assert!(!a.has_state(), "nothing more for the leaver");
}

// Placement.

#[tokio::test(start_paused = true)]
async fn quick_join_fills_the_lowest_room_before_opening_another() {
    let world = World::new();
    let mut held = Vec::new();
    for want in [1, 1, 2, 2, 3] {
        let place = world.lobby.place(&quick("probe")).unwrap();
        assert_eq!(place.room().id, want, "place {}", held.len() + 1);
        held.push(place);
    }
    // A place given back in room 1 is the next quick join's.
    held.swap_remove(0);
    assert_eq!(world.lobby.place(&quick("probe")).unwrap().room().id, 1);
}

#[tokio::test(start_paused = true)]
async fn quick_join_matches_only_rooms_with_the_same_filter_options() {
    let world = World::new();
    let mut held = Vec::new();
    let cases: &[(&[(&str, &str)], RoomId)] = &[
        (&[("mode", "a")], 1),
        (&[("mode", "b")], 2),
        // Keys the type does not filter by do not matter.
        (&[("mode", "b"), ("map", "x")], 2),
        // A key missing matches only rooms without it.
        (&[], 3),
        (&[("mode", "a")], 1),
        // Room 1 is full now.
        (&[("mode", "a")], 4),
    ];
    for (options, want) in cases {
        let request = RoomRequest::quick_with("probe", options);
        let place = world.lobby.place(&request).unwrap();
        assert_eq!(place.room().id, *want, "{options:?}");
        held.push(place);
    }
    assert_eq!(world.lobby.room_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_private_room_is_reached_by_its_invite_code_only() {
    let world = World::new();
    let host = world.join(create("probe", true)).await.unwrap();
    let code = host
        .welcome
        .invite_code
        .clone()
        .expect("a private room has a code");
    let room_id = host.welcome.room_id;
    assert_eq!(
        world.refused(RoomRequest::JoinById { room_id }).await.code,
        CloseCode::RoomPrivate
    );
    assert_eq!(
        world.lobby.list(None),
        Vec::<Listing>::new(),
        "never listed"
    );
    let other = world.lobby.place(&quick("probe")).unwrap();
    assert_ne!(other.room().id, room_id, "never quick-joined");
    // Case and dashes do not matter in a code.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let guest = world
        .join(RoomRequest::JoinByCode { code: typed })
        .await
        .unwrap();
    assert_eq!(guest.welcome.room_id, room_id);
    assert_eq!(guest.welcome.invite_code.as_deref(), Some(code.as_str()));
    assert_eq!(
        world.lobby.resolve_code(&code).map(|(id, t, _)| (id, t)),
        Some((room_id, "probe".to_owned()))
    );
    // Two seats, both taken.
    assert_eq!(
        world.refused(RoomRequest::JoinByCode { code }).await.code,
        CloseCode::RoomAtCapacity
    );
}

/// What placing `request` in an empty world is refused with.
async fn check_refused(request: RoomRequest, code: CloseCode) {
    let world = World::new();
    assert_eq!(
        world.refused(request.clone()).await.code,
        code,
        "{request:?}"
    );
    assert_eq!(world.lobby.room_count(), 0, "{request:?} opened no room");
}

#[tokio::test(start_paused = true)]
async fn requests_for_what_does_not_exist_are_refused_with_the_reason() {
    use CloseCode::*;
    check_refused(RoomRequest::JoinById { room_id: 99 }, NoSuchRoom).await;
    check_refused(quick("chess"), UnknownRoomType).await;
    check_refused(create("chess", true), UnknownRoomType).await;
    check_refused(
        RoomRequest::JoinByCode {
            code: "nope".into(),
        },
        NoSuchRoom,
    )
    .await;
    check_refused(
        RoomRequest::JoinByCode {
            code: "ABCD2345".into(),
        },
        NoSuchRoom,
    )
    .await;
    check_refused(
        RoomRequest::Reserved {
            ticket: SeatTicket([1; 16]),
        },
        InvalidTicket,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_room_limit_refuses_new_rooms_but_not_free_seats() {
    let world = World::new();
    let mut held = Vec::new();
    for _ in 0..MAX_ROOMS {
        held.push(world.lobby.place(&create("probe", false)).unwrap());
    }
    assert_eq!(world.lobby.rooms_left(), 0);
    let refusal = world.lobby.place(&create("probe", false)).err();
    assert_eq!(
        refusal,
        Some(Refusal::new(
            CloseCode::RoomFull,
            "the server is at its room limit"
        ))
    );
    assert_eq!(world.lobby.place(&quick("probe")).unwrap().room().id, 1);
}

// Occupancy, the listing and the game's room properties.

#[tokio::test(start_paused = true)]
async fn occupancy_counts_players_and_places_on_their_way() {
    let world = World::new();
    let place = world.lobby.place(&quick("probe")).unwrap();
    assert_eq!(
        world.lobby.list(Some("probe")),
        [Listing {
            id: 1,
            room_type: "probe".into(),
            players: 1,
            capacity: 2,
            metadata: Metadata::new(),
            node: None,
        }]
    );
    assert!(world.lobby.list(Some("lingering")).is_empty());
    let a = world.join(quick("probe")).await.unwrap();
    assert_eq!(world.occupancy(), [(1, 2)]);
    drop(place);
    assert_eq!(world.occupancy(), [(1, 1)], "a place given back");
    let summary = world.lobby.summary();
    assert_eq!(
        (summary[0].players, summary[0].capacity, summary[0].private),
        (1, 2, false)
    );
    a.leave().await;
    assert!(world.occupancy().is_empty());
    assert_eq!(world.lobby.room_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_room_its_game_locks_is_unlisted_and_refuses_joins_until_unlocked() {
    let world = World::new();
    let a = world.join(quick("probe")).await.unwrap();
    a.send(1, LOCK);
    pass(TICK + TICK / 2).await;
    assert!(world.occupancy().is_empty());
    assert_eq!(
        world
            .refused(RoomRequest::JoinById { room_id: 1 })
            .await
            .code,
        CloseCode::RoomLocked
    );
    let elsewhere = world.lobby.place(&quick("probe")).unwrap();
    assert_eq!(elsewhere.room().id, 2, "quick join skips a locked room");
    drop(elsewhere);
    a.send(2, UNLOCK);
    pass(TICK).await;
    assert_eq!(world.occupancy(), [(1, 1)]);
    assert!(
        world
            .join(RoomRequest::JoinById { room_id: 1 })
            .await
            .is_ok()
    );
}

// Linger.

#[tokio::test(start_paused = true)]
async fn an_empty_room_lingers_then_closes() {
    let world = World::new();
    let a = world.join(quick("lingering")).await.unwrap();
    a.leave().await;
    assert_eq!(world.occupancy(), [(1, 0)], "open, empty, listed");
    pass(LINGER - TICK).await;
    assert_eq!(world.lobby.room_count(), 1);
    pass(TICK * 2).await;
    assert_eq!(world.lobby.room_count(), 0);
    assert!(a.room.ctrl.is_closed(), "the room's task ended");
    assert_eq!(
        world
            .refused(RoomRequest::JoinById { room_id: 1 })
            .await
            .code,
        CloseCode::NoSuchRoom
    );
}

#[tokio::test(start_paused = true)]
async fn a_join_during_the_linger_keeps_the_room_open() {
    let world = World::new();
    let a = world.join(quick("lingering")).await.unwrap();
    a.leave().await;
    pass(LINGER / 2).await;
    let b = world.join(quick("lingering")).await.unwrap();
    assert_eq!(b.welcome.room_id, 1, "the lingering room is reused");
    pass(LINGER * 2).await;
    assert_eq!(world.lobby.room_count(), 1);
    // Its linger starts again from the next time it empties.
    b.leave().await;
    pass(LINGER - TICK).await;
    assert_eq!(world.lobby.room_count(), 1);
    pass(TICK * 2).await;
    assert_eq!(world.lobby.room_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_place_given_back_before_anyone_joined_starts_the_linger() {
    let world = World::new();
    let place = world.lobby.place(&create("lingering", false)).unwrap();
    let room = place.room().clone();
    drop(place);
    settle().await;
    assert_eq!(world.occupancy(), [(1, 0)]);
    pass(LINGER + TICK).await;
    assert_eq!(world.lobby.room_count(), 0);
    assert!(room.ctrl.is_closed());
    // Without linger, the same room closes at once.
    let place = world.lobby.place(&create("probe", false)).unwrap();
    let room = place.room().clone();
    drop(place);
    settle().await;
    assert_eq!(world.lobby.room_count(), 0);
    assert!(room.ctrl.is_closed());
}

// A planned restart.

#[tokio::test(start_paused = true)]
async fn a_room_saved_at_shutdown_reopens_with_its_session_waiting_to_resume() {
    let mut world = World::with(true);
    let a = world.join(quick("probe")).await.unwrap();
    pass(TICK * 3 + TICK / 2).await;
    let controller = world.controller.take().unwrap();
    assert!(controller.shutdown(Duration::from_secs(5)).await);
    let saved = world.lobby.saved_state(1234);
    assert_eq!(saved.rooms.len(), 1);
    let room = &saved.rooms[0];
    assert_eq!(
        (room.id, room.tick, room.room_type.as_str()),
        (1, 3, "probe")
    );
    let session = &room.sessions[0];
    assert_eq!(
        (
            session.player,
            session.token,
            session.connected,
            session.events.last_seq
        ),
        (a.id(), token(1), true, 1)
    );
    // The file's bytes carry it whole.
    let bytes = crate::state::encode(&saved);
    assert_eq!(crate::state::decode(&bytes).unwrap(), saved);

    let next = World::with(true);
    assert_eq!(next.lobby.restore(saved), 1);
    let (handle, player) = next.lobby.find(&token(1)).expect("restored");
    assert_eq!((handle.id, player), (1, a.id()));
    let back = next.resume(&handle, player, token(1), 0).await.unwrap();
    assert!(back.welcome.resumed);
    assert_eq!(back.events(), [1], "the unacknowledged event is replayed");
    assert_eq!(
        next.log.sessions(),
        [Call::Drop(a.id()), Call::Resume(a.id())]
    );
    // Ids go on above the restored ones.
    let b = next.join(quick("probe")).await.unwrap();
    assert_eq!((b.welcome.room_id, b.id()), (1, a.id() + 1));
}

#[tokio::test(start_paused = true)]
async fn a_restored_player_nobody_resumes_expires_a_grace_after_the_restart() {
    let mut world = World::with(true);
    let _a = world.join(quick("probe")).await.unwrap();
    let controller = world.controller.take().unwrap();
    assert!(controller.shutdown(Duration::from_secs(5)).await);
    let saved = world.lobby.saved_state(0);
    pass(GRACE * 10).await;
    let next = World::with(true);
    assert_eq!(next.lobby.restore(saved), 1);
    pass(GRACE - TICK).await;
    assert!(next.lobby.find(&token(1)).is_some());
    pass(TICK * 2).await;
    assert!(next.lobby.find(&token(1)).is_none());
    assert_eq!(next.lobby.room_count(), 0);
}
