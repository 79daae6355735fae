//! Re-simulating a room from what entered its game.
//!
//! A game here is deterministic for its seed and the calls made on it
//! (see the crate's rules: no clock, no I/O, randomness from the seed).
//! So the calls a room made — joins, drops, resumes, leaves, the game
//! messages it let through (as their bytes arrived), and the steps — are
//! enough to make the same game again, tick for tick. [`Input`] is one
//! such call; a [`Replayer`] makes them on a fresh game (or on one
//! restored from a keyframe, the bytes of its `save`) and tells the
//! game's [`state_hash`] at any point, to compare with the hashes the
//! room recorded.
//!
//! What a game computes for its players' views (`prepare_states`,
//! `state`) is not replayed: views are read from the game, they do not
//! feed it. A game whose views changed what it simulates would show it
//! here as diverging hashes.

use crate::ctx::Effects;
use crate::room_type::{DynGame, RoomType, Sender};
use crate::{PlayerId, RoomOptions};
use serde::{Deserialize, Serialize};

/// One call a room made on its game, in the order it made them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// `join_attempt` for a new player (the game may refuse it).
    JoinAttempt(PlayerId),
    /// `join`, for a player whose attempt the game accepted.
    Join(PlayerId),
    /// `drop_player`: the player's connection was lost.
    Drop(PlayerId),
    /// `resume`: a dropped player is back.
    Resume(PlayerId),
    /// `leave`: the player is gone for good.
    Leave(PlayerId),
    /// A game message the room let through to the next step, as its bytes
    /// arrived, with its sender and sequence number.
    Message {
        /// The sender.
        player: PlayerId,
        /// Its sequence number.
        seq: u32,
        /// The message, in the game's encoding.
        data: Vec<u8>,
    },
    /// The tick advances by one and the game steps, with the messages
    /// given since the last step.
    Step,
}

/// A game being re-simulated.
pub struct Replayer {
    game: Box<dyn DynGame>,
    fx: Effects,
    tick: u32,
    tick_hz: u16,
    /// With [`Replayer::keep_events`]: the events the game sent since the
    /// last [`Replayer::take_events`].
    events: Option<Vec<(crate::Target, bytes::Bytes)>>,
}

/// Why a replay could not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The game could not be made or restored.
    Game(String),
    /// A recorded message does not decode as the game's message (the
    /// recording does not belong to this game, or is damaged).
    Message {
        /// The tick it was given at.
        tick: u32,
        /// The decoder's words.
        error: String,
    },
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Game(e) => write!(f, "the game could not be made: {e}"),
            Self::Message { tick, error } => {
                write!(f, "a message at tick {tick} is not the game's: {error}")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

impl Replayer {
    /// A fresh game of `room_type`, made as a room makes it: with its
    /// options and seed, at tick 0.
    pub fn new(
        room_type: &RoomType,
        options: &RoomOptions,
        seed: u64,
        tick_hz: u16,
    ) -> Result<Self, ReplayError> {
        let game = room_type
            .create(options, seed, usize::MAX)
            .map_err(ReplayError::Game)?;
        Ok(Self::with(game, 0, tick_hz))
    }

    /// A game restored from a keyframe (the bytes of its `save` at `tick`),
    /// to go on from there.
    pub fn from_keyframe(
        room_type: &RoomType,
        options: &RoomOptions,
        saved: &[u8],
        tick: u32,
        tick_hz: u16,
    ) -> Result<Self, ReplayError> {
        let game = room_type
            .restore(options, saved, usize::MAX)
            .map_err(ReplayError::Game)?;
        Ok(Self::with(game, tick, tick_hz))
    }

    fn with(game: Box<dyn DynGame>, tick: u32, tick_hz: u16) -> Self {
        Self {
            game,
            fx: Effects::new(tick, tick_hz),
            tick,
            tick_hz,
            events: None,
        }
    }

    /// Keeps the events the game sends from now on, for
    /// [`Replayer::take_events`] (a viewer shows them; a verification does
    /// not need them).
    pub fn keep_events(&mut self) {
        self.events.get_or_insert_with(Vec::new);
    }

    /// The events the game sent since the last call, with their targets.
    pub fn take_events(&mut self) -> Vec<(crate::Target, bytes::Bytes)> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The tick of the last step (0 before the first).
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// Makes one recorded call. A refused `JoinAttempt` is not an error:
    /// the game decides again, as it did in the room (and a recording
    /// then has no `Join` for the player).
    pub fn apply(&mut self, input: &Input) -> Result<(), ReplayError> {
        let fx = self.fx.at(self.tick);
        match input {
            Input::JoinAttempt(player) => {
                let _ = self.game.join_attempt(*player, fx);
            }
            Input::Join(player) => self.game.join(*player, fx),
            Input::Drop(player) => self.game.drop_player(*player, fx),
            Input::Resume(player) => self.game.resume(*player, fx),
            Input::Leave(player) => self.game.leave(*player, fx),
            Input::Message { player, seq, data } => {
                let from = Sender {
                    player: *player,
                    conn: 0,
                };
                self.game
                    .inbox()
                    .push(from, *seq, data)
                    .map_err(|e| ReplayError::Message {
                        tick: self.tick,
                        error: format!("{e:?}"),
                    })?;
            }
            Input::Step => {
                self.game.take_messages(&mut |_, _, _| true);
                self.tick = self.tick.wrapping_add(1);
                self.game.step(self.fx.at(self.tick));
            }
        }
        // What else the game asked the room to do is the room's business;
        // the game's own state is all a replay compares.
        let fx = std::mem::replace(&mut self.fx, Effects::new(self.tick, self.tick_hz));
        if let Some(events) = &mut self.events {
            events.extend(fx.events);
        }
        Ok(())
    }

    /// The game's welcome for `player` (what a client of the room got on
    /// joining), into `out`: for a viewer showing the replay through the
    /// game's own page.
    pub fn welcome(&self, player: PlayerId, out: &mut Vec<u8>) {
        self.game.welcome(player, out);
    }

    /// `player`'s view of the game now (its state, as the room would have
    /// sent it), into `out`. Views are read from the game and do not feed
    /// it, so watching a replay does not change it.
    pub fn view(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        self.game.prepare_states();
        self.game.state(player, out);
    }

    /// The game's `save`: a keyframe to restore from.
    pub fn keyframe(&self) -> Vec<u8> {
        self.game.save()
    }

    /// [`state_hash`] of the game now.
    pub fn hash(&self) -> u64 {
        state_hash(&self.game.save())
    }
}

/// A game state's hash: 64-bit FNV-1a of the bytes of its `save`. Stable
/// across runs, machines and versions of Rust (no randomly seeded hasher),
/// so that a recording's hashes can be checked anywhere.
pub fn state_hash(saved: &[u8]) -> u64 {
    saved.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What [`play_bots`] recorded: every call, and the game's hash after
/// every step.
#[derive(Clone, Debug)]
pub struct BotRun {
    /// The calls, in order.
    pub inputs: Vec<Input>,
    /// `(tick, hash)` after each step.
    pub hashes: Vec<(u32, u64)>,
}

/// Plays `players` bots of a game (made by `make_bot`) for `ticks` ticks
/// the way a room would, without a network, recording every call: the
/// bots join one a tick; each tick every bot may send a message, the game
/// steps, and every bot reads its view and the events meant for it. Half
/// way, the first bot drops for ten ticks and resumes, and the last one
/// leaves. For checking a game's determinism with [`check_sync`].
pub fn play_bots(
    room_type: &RoomType,
    options: &RoomOptions,
    make_bot: fn(u64) -> Box<dyn crate::Bot>,
    players: u32,
    ticks: u32,
    seed: u64,
    tick_hz: u16,
) -> Result<BotRun, String> {
    let mut game = room_type.create(options, seed, usize::MAX)?;
    let mut run = BotRun {
        inputs: Vec::new(),
        hashes: Vec::new(),
    };
    let mut random = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: the bots' choices, from the seed.
        random ^= random >> 12;
        random ^= random << 25;
        random ^= random >> 27;
        random.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut bots: Vec<(PlayerId, Box<dyn crate::Bot>, bool)> = Vec::new();
    let mut fx = Effects::new(0, tick_hz);
    let mut tick = 0u32;
    let mut seq = 0u32;
    let mut buf = Vec::new();
    let (dropper, leaver) = (1, players);
    let mut joining: PlayerId = 1;
    for _ in 0..ticks {
        // A new bot a tick, until every one has asked.
        if joining <= players {
            run.inputs.push(Input::JoinAttempt(joining));
            if game.join_attempt(joining, fx.at(tick)).is_ok() {
                run.inputs.push(Input::Join(joining));
                game.join(joining, fx.at(tick));
                let mut bot = make_bot(next());
                buf.clear();
                game.welcome(joining, &mut buf);
                bot.welcome(joining, false, &buf)?;
                bots.push((joining, bot, true));
            }
            joining += 1;
        }
        // Half way, one bot drops for ten ticks, and one leaves.
        let half = ticks / 2;
        for (player, _, connected) in &mut bots {
            if *player == dropper && tick == half {
                run.inputs.push(Input::Drop(*player));
                game.drop_player(*player, fx.at(tick));
                *connected = false;
            } else if *player == dropper && tick == half + 10 {
                run.inputs.push(Input::Resume(*player));
                game.resume(*player, fx.at(tick));
                *connected = true;
            }
        }
        if tick == half && leaver != dropper && bots.iter().any(|(p, _, _)| *p == leaver) {
            run.inputs.push(Input::Leave(leaver));
            game.leave(leaver, fx.at(tick));
            bots.retain(|(p, _, _)| *p != leaver);
        }
        deliver(&mut fx, &mut bots)?;
        // The bots' messages, then the step.
        for (player, bot, connected) in &mut bots {
            if !*connected {
                continue;
            }
            if let Some(data) = bot.act(next()) {
                seq = seq.wrapping_add(1);
                let from = Sender {
                    player: *player,
                    conn: 0,
                };
                if game.inbox().push(from, seq, &data).is_ok() {
                    run.inputs.push(Input::Message {
                        player: *player,
                        seq,
                        data,
                    });
                }
            }
        }
        game.take_messages(&mut |_, _, _| true);
        tick += 1;
        run.inputs.push(Input::Step);
        game.step(fx.at(tick));
        run.hashes.push((tick, state_hash(&game.save())));
        deliver(&mut fx, &mut bots)?;
        game.prepare_states();
        for (player, bot, connected) in &mut bots {
            if *connected {
                buf.clear();
                game.state(*player, &mut buf);
                bot.state(tick, &buf)?;
            }
        }
    }
    Ok(run)
}

/// Hands the events of `fx` to the bots they are for, and clears it.
fn deliver(
    fx: &mut Effects,
    bots: &mut [(PlayerId, Box<dyn crate::Bot>, bool)],
) -> Result<(), String> {
    for (target, data) in std::mem::take(&mut fx.events) {
        for (player, bot, _) in bots.iter_mut() {
            let meant = match target {
                crate::ctx::Target::Player(p) => p == *player,
                crate::ctx::Target::All => true,
                crate::ctx::Target::AllExcept(p) => p != *player,
            };
            if meant {
                bot.event(&data)?;
            }
        }
    }
    let (tick, tick_hz) = (fx.tick, fx.tick_hz);
    *fx = Effects::new(tick, tick_hz);
    Ok(())
}

/// Checks that a game is deterministic for `run`: replayed from the start
/// twice, and once from a keyframe taken half way, it reaches the run's
/// hash after every step. Returns the first tick where a replay differs,
/// and how.
pub fn check_sync(
    room_type: &RoomType,
    options: &RoomOptions,
    run: &BotRun,
    seed: u64,
    tick_hz: u16,
) -> Result<(), String> {
    let half = run.hashes.len() / 2;
    let mut keyframe = None;
    for pass in ["first replay", "second replay"] {
        let mut replay =
            Replayer::new(room_type, options, seed, tick_hz).map_err(|e| e.to_string())?;
        let mut hashes = run.hashes.iter();
        for (i, input) in run.inputs.iter().enumerate() {
            replay.apply(input).map_err(|e| format!("{pass}: {e}"))?;
            if *input == Input::Step {
                compare(pass, hashes.next(), replay.tick(), replay.hash())?;
                if replay.tick() as usize == half && keyframe.is_none() {
                    keyframe = Some((replay.keyframe(), replay.tick(), i + 1));
                }
            }
        }
    }
    let (saved, tick, from) = keyframe.ok_or("the run has no step")?;
    let mut replay = Replayer::from_keyframe(room_type, options, &saved, tick, tick_hz)
        .map_err(|e| e.to_string())?;
    let mut hashes = run.hashes.iter().skip(half);
    for input in &run.inputs[from..] {
        replay
            .apply(input)
            .map_err(|e| format!("from the keyframe: {e}"))?;
        if *input == Input::Step {
            compare(
                "from the keyframe",
                hashes.next(),
                replay.tick(),
                replay.hash(),
            )?;
        }
    }
    Ok(())
}

/// A game's sync test: [`play_bots`] with three seeds (`players` bots of
/// `make_bot`, `ticks` ticks, no options), each run changing the game's
/// state along the way and passing [`check_sync`].
///
/// # Panics
///
/// On the first run that does not: this runs inside a test.
pub fn assert_deterministic(
    room_type: &RoomType,
    make_bot: fn(u64) -> Box<dyn crate::Bot>,
    players: u32,
    ticks: u32,
) {
    let tick_hz = room_type.settings().tick_hz.unwrap_or(30);
    let options = RoomOptions::new(Vec::new());
    for seed in [1, 7, 0xdead_beef] {
        let run = play_bots(room_type, &options, make_bot, players, ticks, seed, tick_hz)
            .unwrap_or_else(|e| panic!("seed {seed}: the bots could not play: {e}"));
        assert_eq!(run.hashes.len(), ticks as usize);
        // A run that changes nothing proves nothing.
        let mut distinct: Vec<u64> = run.hashes.iter().map(|(_, h)| *h).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 10,
            "seed {seed}: only {} distinct states in {ticks} ticks",
            distinct.len()
        );
        check_sync(room_type, &options, &run, seed, tick_hz)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

fn compare(pass: &str, want: Option<&(u32, u64)>, tick: u32, hash: u64) -> Result<(), String> {
    match want {
        Some(&(t, h)) if t == tick && h == hash => Ok(()),
        Some(&(t, h)) => Err(format!(
            "{pass}: tick {tick} hashes to {hash:016x}; the run had {h:016x} at tick {t}"
        )),
        None => Err(format!("{pass}: tick {tick} is past the run's end")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ctx, Game};

    /// Sums what its players send; its save is the sum.
    struct Sum(u64);

    impl Game for Sum {
        type Config = ();
        type Message = u32;
        type Event = ();

        fn create(_: &(), _: &RoomOptions, seed: u64) -> Result<Self, String> {
            Ok(Self(seed))
        }
        fn restore(_: &(), _: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
            let bytes: [u8; 8] = saved.try_into().map_err(|_| "eight bytes".to_owned())?;
            Ok(Self(u64::from_le_bytes(bytes)))
        }
        fn save(&self) -> Vec<u8> {
            self.0.to_le_bytes().to_vec()
        }
        fn join_attempt(&mut self, player: PlayerId, _: &mut Ctx<'_, ()>) -> Result<(), String> {
            if player > 2 {
                Err("full".into())
            } else {
                Ok(())
            }
        }
        fn join(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn leave(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn step(&mut self, messages: &[(PlayerId, u32)], _: &mut Ctx<'_, ()>) {
            self.0 = self.0.wrapping_mul(31).wrapping_add(
                messages
                    .iter()
                    .map(|(p, n)| u64::from(*p) * u64::from(*n))
                    .sum(),
            );
        }
        fn state(&mut self, _: PlayerId, _: &mut Vec<u8>) {}
    }

    fn message(player: PlayerId, n: u32) -> Input {
        let mut data = Vec::new();
        crate::codec::encode(&n, &mut data);
        Input::Message {
            player,
            seq: n,
            data,
        }
    }

    #[test]
    fn the_hash_is_64_bit_fnv_1a() {
        assert_eq!(state_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(state_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(state_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn calls_replay_in_order_and_a_keyframe_goes_on_from_where_it_was_taken() {
        let kind = RoomType::new::<Sum>("sum", ());
        let options = RoomOptions::default();
        let inputs = [
            Input::JoinAttempt(1),
            Input::Join(1),
            Input::JoinAttempt(3), // refused by the game: not an error
            message(1, 5),
            Input::Step,
            message(1, 7),
            Input::Step,
            Input::Step,
        ];
        let mut r = Replayer::new(&kind, &options, 2, 30).unwrap();
        for input in &inputs[..5] {
            r.apply(input).unwrap();
        }
        assert_eq!(
            (r.tick(), r.keyframe()),
            (1, (2 * 31 + 5u64).to_le_bytes().to_vec())
        );
        let mut from =
            Replayer::from_keyframe(&kind, &options, &r.keyframe(), r.tick(), 30).unwrap();
        for input in &inputs[5..] {
            r.apply(input).unwrap();
            from.apply(input).unwrap();
        }
        assert_eq!(r.tick(), 3);
        assert_eq!((from.tick(), from.hash()), (r.tick(), r.hash()));
        assert_eq!(
            r.keyframe(),
            (((2 * 31 + 5u64) * 31 + 7) * 31).to_le_bytes().to_vec()
        );
    }

    #[test]
    fn a_message_that_is_not_the_games_and_a_bad_keyframe_are_errors() {
        let kind = RoomType::new::<Sum>("sum", ());
        let options = RoomOptions::default();
        let mut r = Replayer::new(&kind, &options, 0, 30).unwrap();
        r.apply(&Input::Step).unwrap();
        let bad = Input::Message {
            player: 1,
            seq: 1,
            data: vec![0xff; 9],
        };
        assert!(matches!(
            r.apply(&bad),
            Err(ReplayError::Message { tick: 1, .. })
        ));
        let err = Replayer::from_keyframe(&kind, &options, b"short", 4, 30)
            .err()
            .unwrap();
        assert_eq!(err, ReplayError::Game("eight bytes".into()));
    }
}
