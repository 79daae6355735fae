//! The four-in-a-row simulated player for `loadgen`: it drops discs into
//! random legal columns (taking a win when one is on offer, so that games
//! end), asks for a rematch after every finished game, and checks that the
//! moves of each game reach it numbered 1, 2, 3… with no gap or repeat,
//! which is how a run notices a move lost (or replayed) across a resume.
//!
//! Not a strong player: it neither blocks nor plans. Everything it needs
//! is in the last state; the events serve only the check.

use crate::msg::{COLUMNS, FourEvent, FourMsg, FourState, FourWelcome, ROWS, Status};
use crate::{landing_row, unflatten, winning_cells};
use game_api::codec::{decode, to_vec};
use game_api::{Bot, BotSpec, PlayerId};

/// A simulated four-in-a-row player.
#[derive(Debug, Default)]
pub struct FourBot {
    /// Our player id, once welcomed.
    player: Option<PlayerId>,
    /// The last state received (on this connection or an earlier one of the
    /// session: states are sent only when they change, so a resume may
    /// bring none).
    state: Option<FourState>,
    /// True once a state arrived on this connection, so that
    /// [`Bot::progress`] reports only what this connection has seen.
    fresh: bool,
    /// The `number` the next [`FourEvent::Moved`] must carry; `None` until
    /// this session has seen a game begin (or a first move).
    next_move: Option<u8>,
    /// The position (game, moves) at which we last sent a drop: until the
    /// state moves on, asking again would only earn a rejection.
    dropped_at: Option<(u32, u8)>,
    /// The game whose rematch we last asked for.
    rematch_for: Option<u32>,
}

impl FourBot {
    /// A bot that has not been welcomed yet. Its choices come from the
    /// random numbers [`Bot::act`] is given, so it needs no seed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The column to drop into from `state`, where it is our (`cell`'s)
    /// move: a winning column if there is one, else a random legal one.
    fn choose(state: &FourState, cell: u8, random: u64) -> Option<u8> {
        let board = unflatten(&state.board)?;
        let legal: Vec<(usize, usize)> = (0..COLUMNS)
            .filter_map(|c| landing_row(&board, c).map(|r| (c, r)))
            .collect();
        let wins = |&&(c, r): &&(usize, usize)| {
            let mut next = board;
            next[r][c] = cell;
            !winning_cells(&next, c, r).is_empty()
        };
        let (column, _) = match legal.iter().find(wins) {
            Some(&win) => win,
            None => *legal.get((random % legal.len().max(1) as u64) as usize)?,
        };
        // Below COLUMNS, so it fits.
        Some(column as u8)
    }
}

impl Bot for FourBot {
    fn welcome(&mut self, player: PlayerId, resumed: bool, data: &[u8]) -> Result<(), String> {
        let welcome: FourWelcome = decode(data).map_err(|e| format!("welcome: {e}"))?;
        if (usize::from(welcome.columns), usize::from(welcome.rows)) != (COLUMNS, ROWS) {
            return Err(format!(
                "welcome for a {} × {} board; this bot plays {COLUMNS} × {ROWS}",
                welcome.columns, welcome.rows
            ));
        }
        self.player = Some(player);
        self.fresh = false;
        // A message sent just before the drop may not have arrived: allow
        // sending again (a duplicate is merely rejected).
        self.dropped_at = None;
        self.rematch_for = None;
        if !resumed {
            // A new session: its events start afresh.
            self.state = None;
            self.next_move = None;
        }
        Ok(())
    }

    fn state(&mut self, _tick: u32, data: &[u8]) -> Result<(), String> {
        let state: FourState = decode(data).map_err(|e| format!("state: {e}"))?;
        if self.player.is_none() {
            return Err("a state before the welcome".into());
        }
        if unflatten(&state.board).is_none() {
            return Err(format!("a state with a malformed board: {:?}", state.board));
        }
        self.state = Some(state);
        self.fresh = true;
        Ok(())
    }

    fn event(&mut self, data: &[u8]) -> Result<(), String> {
        let event: FourEvent = decode(data).map_err(|e| format!("event: {e}"))?;
        match event {
            FourEvent::NewGame { .. } => self.next_move = Some(1),
            FourEvent::Moved { number, .. } => {
                if let Some(due) = self.next_move
                    && number != due
                {
                    return Err(format!(
                        "move {number} arrived where move {due} was due: a move was lost or repeated"
                    ));
                }
                self.next_move = number.checked_add(1);
            }
            _ => {}
        }
        Ok(())
    }

    fn act(&mut self, random: u64) -> Option<Vec<u8>> {
        let state = self.state.as_ref()?;
        let me = state.you?;
        let position = (state.game, state.moves);
        match state.status {
            Status::Playing if state.turn == Some(me) && self.dropped_at != Some(position) => {
                let column = Self::choose(state, me.cell(), random)?;
                self.dropped_at = Some(position);
                Some(to_vec(&FourMsg::Drop { column }))
            }
            Status::Won { .. } | Status::Draw
                if state.seats.iter().all(|s| s.player.is_some())
                    && !state.seats[me.index()].rematch
                    && self.rematch_for != Some(state.game) =>
            {
                self.rematch_for = Some(state.game);
                Some(to_vec(&FourMsg::Rematch))
            }
            _ => None,
        }
    }

    /// Our seat's wins: a resume must never lose one.
    fn progress(&self) -> Option<u64> {
        let state = self.state.as_ref().filter(|_| self.fresh)?;
        let me = state.you?;
        Some(u64::from(state.seats[me.index()].wins))
    }
}

/// How `loadgen --game four` plays: quick join, no options.
pub const SPEC: BotSpec = BotSpec {
    room_type: "four",
    options: &[],
    make: |_seed| Box::new(FourBot::new()),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Four;
    use crate::msg::{CELLS, Seat};
    use game_api::{Ctx, Effects, Game, RoomOptions, Target};

    fn event(bot: &mut FourBot, e: FourEvent) -> Result<(), String> {
        bot.event(&to_vec(&e))
    }

    fn moved(number: u8) -> FourEvent {
        FourEvent::Moved {
            seat: Seat::Red,
            column: 0,
            row: 0,
            number,
        }
    }

    fn new_game(game: u32) -> FourEvent {
        FourEvent::NewGame {
            game,
            first: Seat::Red,
        }
    }

    #[test]
    fn a_skipped_or_repeated_move_number_is_an_error() {
        let welcome = to_vec(&FourWelcome {
            columns: 7,
            rows: 6,
        });
        let mut bot = FourBot::new();
        bot.welcome(1, false, &welcome).unwrap();
        // Before any game began, the first move seen sets the count.
        event(&mut bot, moved(5)).unwrap();
        event(&mut bot, moved(6)).unwrap();
        event(&mut bot, new_game(1)).unwrap();
        event(&mut bot, moved(1)).unwrap();
        event(&mut bot, moved(2)).unwrap();
        let err = event(&mut bot, moved(4)).unwrap_err();
        assert!(err.contains("move 4") && err.contains("move 3"), "{err}");
        // A resume keeps the count; a repeat after it is caught too.
        bot.welcome(1, true, &welcome).unwrap();
        event(&mut bot, moved(3)).unwrap();
        assert!(event(&mut bot, moved(3)).is_err());
        // A new game starts the count again.
        event(&mut bot, new_game(2)).unwrap();
        assert!(event(&mut bot, moved(2)).is_err());
        event(&mut bot, new_game(3)).unwrap();
        event(&mut bot, moved(1)).unwrap();
        // A new session forgets it.
        bot.welcome(2, false, &welcome).unwrap();
        event(&mut bot, moved(9)).unwrap();
    }

    #[test]
    fn undecodable_bytes_are_errors() {
        let mut bot = FourBot::new();
        assert!(bot.welcome(1, false, &[7]).is_err());
        assert!(
            bot.welcome(
                1,
                false,
                &to_vec(&FourWelcome {
                    columns: 8,
                    rows: 6
                })
            )
            .is_err()
        );
        let four = Four::new(0);
        let state = to_vec(&four.view(1));
        assert!(bot.state(1, &state).is_err(), "no welcome yet");
        bot.welcome(
            1,
            false,
            &to_vec(&FourWelcome {
                columns: 7,
                rows: 6,
            }),
        )
        .unwrap();
        bot.state(1, &state).unwrap();
        assert!(bot.state(1, &[0xff]).is_err());
        assert!(bot.event(&[]).is_err());
        assert!(bot.event(&[11]).is_err());
        let mut bad = four.view(1);
        bad.board[0] = 3;
        assert!(bot.state(2, &to_vec(&bad)).is_err());
        bad.board.pop();
        assert!(bot.state(2, &to_vec(&bad)).is_err());
        assert_eq!(bot.act(0), None, "not seated in that state: nothing to do");
    }

    #[test]
    fn the_bot_takes_a_winning_column() {
        let mut four = Four::new(0);
        let mut fx = Effects::new(0, 20);
        let ctx = &mut Ctx::new(&mut fx);
        four.join(1, ctx);
        four.join(2, ctx);
        for (p, column) in [(1, 4), (2, 0), (1, 4), (2, 0), (1, 4), (2, 1)] {
            four.step(&[(p, FourMsg::Drop { column })], ctx);
        }
        let mut bot = FourBot::new();
        bot.welcome(
            1,
            false,
            &to_vec(&FourWelcome {
                columns: 7,
                rows: 6,
            }),
        )
        .unwrap();
        bot.state(1, &to_vec(&four.view(1))).unwrap();
        for random in 0..20 {
            bot.dropped_at = None;
            assert_eq!(bot.act(random), Some(to_vec(&FourMsg::Drop { column: 4 })));
        }
        assert_eq!(bot.act(0), None, "one drop per position");
    }

    /// A plain generator for the random numbers loadgen would pass.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Replays a client's event log onto boards, one per game, checking
    /// each move lands where the log says; returns the last game's board.
    fn replay(log: &[FourEvent]) -> Vec<u8> {
        let mut board = vec![0u8; CELLS];
        for e in log {
            match e {
                FourEvent::NewGame { .. } => board.fill(0),
                FourEvent::Moved {
                    seat, column, row, ..
                } => {
                    let c = usize::from(*column);
                    let r = usize::from(*row);
                    let lands = (0..ROWS).find(|&r| board[r * COLUMNS + c] == 0);
                    assert_eq!(lands, Some(r), "{e:?} does not land there");
                    board[r * COLUMNS + c] = seat.cell();
                }
                _ => {}
            }
        }
        board
    }

    #[test]
    fn two_bots_play_whole_games_through_the_game_trait() {
        const PLAYERS: [PlayerId; 2] = [1, 2];
        const GAMES: u32 = 4;
        for seed in 0..8u64 {
            let mut four = <Four as Game>::create(&(), &RoomOptions::default(), seed).unwrap();
            let mut bots = [FourBot::new(), FourBot::new()];
            let mut logs: [Vec<FourEvent>; 2] = Default::default();
            // Events held for a dropped player, delivered at its resume.
            let mut held: [Vec<Vec<u8>>; 2] = Default::default();
            let mut sent_state: [Vec<u8>; 2] = Default::default();
            let mut dropped = [false; 2];
            let mut random = seed;
            let deliver = |fx: Effects,
                           bots: &mut [FourBot; 2],
                           logs: &mut [Vec<FourEvent>; 2],
                           held: &mut [Vec<Vec<u8>>; 2],
                           dropped: [bool; 2]| {
                for (target, bytes) in &fx.events {
                    for (i, &p) in PLAYERS.iter().enumerate() {
                        let to_p = match *target {
                            Target::All => true,
                            Target::Player(q) => q == p,
                            Target::AllExcept(q) => q != p,
                        };
                        if !to_p {
                            continue;
                        }
                        if dropped[i] {
                            held[i].push(bytes.to_vec());
                        } else {
                            bots[i]
                                .event(bytes)
                                .unwrap_or_else(|e| panic!("seed {seed}, player {p}: {e}"));
                            logs[i].push(decode(bytes).unwrap());
                        }
                    }
                }
            };
            for (i, &p) in PLAYERS.iter().enumerate() {
                let mut fx = Effects::new(0, 20);
                four.join_attempt(p, &mut Ctx::new(&mut fx)).unwrap();
                four.join(p, &mut Ctx::new(&mut fx));
                let mut welcome = Vec::new();
                four.welcome(p, &mut welcome);
                bots[i].welcome(p, false, &welcome).unwrap();
                deliver(fx, &mut bots, &mut logs, &mut held, dropped);
            }
            let mut tick = 0;
            while !(four.game() == GAMES
                && matches!(four.status(), Status::Won { .. } | Status::Draw))
            {
                tick += 1;
                assert!(
                    tick < 2000,
                    "seed {seed}: stuck in game {} at {:?}",
                    four.game(),
                    four.status()
                );
                let mut fx = Effects::new(tick, 20);
                // Yellow drops for a while in every game, its turn waiting.
                match tick % 50 {
                    5 => {
                        four.drop_player(2, &mut Ctx::new(&mut fx));
                        dropped[1] = true;
                    }
                    25 => {
                        four.resume(2, &mut Ctx::new(&mut fx));
                        dropped[1] = false;
                        let mut welcome = Vec::new();
                        four.welcome(2, &mut welcome);
                        bots[1].welcome(2, true, &welcome).unwrap();
                        for bytes in std::mem::take(&mut held[1]) {
                            bots[1].event(&bytes).unwrap();
                            logs[1].push(decode(&bytes).unwrap());
                        }
                    }
                    _ => {}
                }
                deliver(fx, &mut bots, &mut logs, &mut held, dropped);
                for (i, &p) in PLAYERS.iter().enumerate() {
                    let mut out = Vec::new();
                    four.state(p, &mut out);
                    if !dropped[i] && out != sent_state[i] {
                        bots[i].state(tick, &out).unwrap();
                        sent_state[i] = out;
                    }
                }
                // Messages of dropped players never reach the game.
                let messages: Vec<(PlayerId, FourMsg)> = PLAYERS
                    .iter()
                    .zip(&mut bots)
                    .zip(dropped)
                    .filter(|(_, dropped)| !dropped)
                    .filter_map(|((&p, bot), _)| bot.act(splitmix(&mut random)).map(|m| (p, m)))
                    .map(|(p, m)| (p, game_api::codec::decode_message(&m).unwrap()))
                    .collect();
                let mut fx = Effects::new(tick, 20);
                four.step(&messages, &mut Ctx::new(&mut fx));
                deliver(fx, &mut bots, &mut logs, &mut held, dropped);
            }
            let wins = four.wins(Seat::Red) + four.wins(Seat::Yellow);
            let draws = logs[0].iter().filter(|e| **e == FourEvent::Draw).count() as u32;
            assert_eq!(wins + draws, GAMES, "seed {seed}");
            for (i, log) in logs.iter().enumerate() {
                assert_eq!(
                    replay(log),
                    four.view(PLAYERS[i]).board,
                    "seed {seed}, player {}",
                    PLAYERS[i]
                );
                let rejected = log
                    .iter()
                    .filter(|e| matches!(e, FourEvent::Rejected { .. }))
                    .count();
                assert_eq!(rejected, 0, "seed {seed}: the bots made only legal moves");
            }
            assert_eq!(
                logs[0], logs[1],
                "seed {seed}: both seats saw the same events"
            );
            let mut last = Vec::new();
            four.state(1, &mut last);
            bots[0].state(tick, &last).unwrap();
            assert_eq!(bots[0].progress(), Some(u64::from(four.wins(Seat::Red))));
        }
    }

    #[test]
    fn the_spec_names_the_room_type() {
        assert_eq!((SPEC.room_type, SPEC.options.len()), ("four", 0));
        let mut bot = (SPEC.make)(1);
        assert_eq!(bot.act(1), None, "nothing to do before a state");
    }
}
