//! Four in a row (Connect Four): two players drop discs into a board of 7
//! columns and 6 rows, taking turns, until one has four in a line. The
//! platform's turn-based game: two seats, a state only when something
//! changes, and events that must never lose a move.
//!
//! The rules, in short:
//! - the first player to join sits at red, the second at yellow; a third is
//!   refused, and the room is locked while both seats are taken;
//! - a game starts as soon as both seats are taken. Who moves first in the
//!   room's first game comes from the room's seed (even: red, odd: yellow);
//!   every later game (a rematch, or a fresh game with a new opponent) is
//!   started by the other seat than the one before;
//! - a move out of turn, into a full or nonexistent column, or with no game
//!   running changes nothing and earns the sender a
//!   [`FourEvent::Rejected`]; it is never a kick;
//! - four of one colour in a row, column or diagonal wins; a full board
//!   without one is a draw. After either, the game starts again when both
//!   players have asked for a rematch;
//! - a dropped player keeps its seat and its turn (nothing times out inside
//!   the game). When it is gone for good (the room calls `leave` at the end
//!   of its grace period) a running game is lost by forfeit, the seat is
//!   freed (wins and all), the room unlocks, and the player who stayed waits
//!   for a new opponent, who starts a fresh game by sitting down.
//!
//! Deterministic: the seed decides only who starts the first game, and the
//! whole game state is plain data, saved by [`Four::save`] and rebuilt,
//! checked, by [`Four::restore`].
//!
//! Layout: the rules are here ([`Four`]); what clients send and receive is
//! in [`msg`]; [`bot`] is the simulated player `loadgen` drives; `web/`
//! holds the page and its codec, served at `/four/`. Not here: clocks or
//! timeouts of any kind (the room's grace period is the only one).

pub mod bot;
pub mod msg;

use std::time::Duration;

use game_api::{Ctx, Game, Metadata, PlayerId, RoomOptions, RoomType, WebAsset};
use msg::{
    CELLS, COLUMNS, EMPTY, FourEvent, FourMsg, FourState, FourWelcome, ROWS, Seat, SeatState,
    Status,
};
use serde::{Deserialize, Serialize};

/// The board: `ROWS` rows from the bottom, each `COLUMNS` cells from the
/// left, holding [`EMPTY`] or a seat's [`Seat::cell`].
pub(crate) type Board = [[u8; COLUMNS]; ROWS];

/// A board with no disc on it.
const EMPTY_BOARD: Board = [[EMPTY; COLUMNS]; ROWS];

/// A line's steps as (column, row): across, up, up-right, down-right.
/// Each line is walked both ways from the new disc, so these four cover
/// every line through it.
const DIRECTIONS: [(isize, isize); 4] = [(1, 0), (0, 1), (1, 1), (1, -1)];

/// Discs in a line that win.
const LINE: usize = 4;

/// The board index of a cell, as in [`FourState::board`]. Both coordinates
/// are on the board, so the index is below [`CELLS`] and fits a `u8`.
fn cell_index(column: usize, row: usize) -> u8 {
    (row * COLUMNS + column) as u8
}

/// The row a disc dropped into `column` lands on, or `None` when the column
/// is full. `column` must be below [`COLUMNS`].
pub(crate) fn landing_row(board: &Board, column: usize) -> Option<usize> {
    (0..ROWS).find(|&row| board[row][column] == EMPTY)
}

/// The cells of every line of four or more through the disc at (`column`,
/// `row`) that are all its colour, as ascending board indices; empty when
/// the disc makes no such line. A single move can complete two lines at
/// once, and a line can be longer than four; all of it is reported.
pub(crate) fn winning_cells(board: &Board, column: usize, row: usize) -> Vec<u8> {
    let colour = board[row][column];
    let mut cells = Vec::new();
    if colour == EMPTY {
        return cells;
    }
    let mut line = Vec::with_capacity(COLUMNS);
    for (dc, dr) in DIRECTIONS {
        line.clear();
        line.push(cell_index(column, row));
        for sign in [1, -1] {
            let (mut c, mut r) = (column, row);
            loop {
                let next = c
                    .checked_add_signed(dc * sign)
                    .zip(r.checked_add_signed(dr * sign))
                    .filter(|&(c, r)| c < COLUMNS && r < ROWS && board[r][c] == colour);
                let Some((nc, nr)) = next else { break };
                line.push(cell_index(nc, nr));
                (c, r) = (nc, nr);
            }
        }
        if line.len() >= LINE {
            cells.extend_from_slice(&line);
        }
    }
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// The board as [`FourState::board`] carries it: row-major from the bottom.
pub(crate) fn flatten(board: &Board) -> Vec<u8> {
    board.iter().flatten().copied().collect()
}

/// The board from [`FourState::board`]'s form, or `None` if `cells` is not
/// exactly [`CELLS`] values of 0 to 2.
pub(crate) fn unflatten(cells: &[u8]) -> Option<Board> {
    if cells.len() != CELLS || cells.iter().any(|&v| v > 2) {
        return None;
    }
    let mut board = EMPTY_BOARD;
    for (row, chunk) in board.iter_mut().zip(cells.chunks_exact(COLUMNS)) {
        row.copy_from_slice(chunk);
    }
    Some(board)
}

/// Who sits in a seat. Its serde form is part of the saved game
/// ([`SAVE_VERSION`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Sitter {
    /// The player.
    player: PlayerId,
    /// True between `drop_player` and `resume`.
    dropped: bool,
    /// The player asked for a rematch of the finished game on the board.
    rematch: bool,
}

/// A room's table: the board, the two seats and the games played at it.
/// See the module documentation for the rules. Its serde form, field by
/// field in this order, is the saved game (after a version byte).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Four {
    /// The discs of the current (or last) game. Cleared only when a game
    /// starts, so a finished or forfeited board stays on show.
    board: Board,
    /// Red's seat, then yellow's.
    seats: [Option<Sitter>; 2],
    /// Games won by each seat's current player, forfeits included.
    wins: [u32; 2],
    /// How the game on the board stands.
    status: Status,
    /// Whose move it is; `Some` exactly while `status` is `Playing`.
    turn: Option<Seat>,
    /// The seat that starts (or started) the game on the board; before the
    /// first game, the seat that will start it.
    first: Seat,
    /// Games started in the room; the current one's number.
    game: u32,
    /// Discs on the board: the number of the last move of this game.
    moves: u8,
}

/// Version of the saved form: this number as one byte, then [`Four`] (and
/// [`Sitter`], [`Status`], [`Seat`] within it) in bincode's standard
/// configuration. Changing any of them means raising it, so that an old
/// save is refused with a clear error instead of being misread.
const SAVE_VERSION: u8 = 1;

/// Most bytes a saved game may decode into. A save is under 200 bytes
/// (42 cells, two seats, a winning line of at most 19 cells); the limit
/// only stops a corrupt length prefix from making the decoder allocate.
const SAVE_LIMIT: usize = 4096;

impl Four {
    /// An empty table in a room with `seed`, whose parity picks the seat
    /// that starts the first game (even: red).
    pub fn new(seed: u64) -> Four {
        Four {
            board: EMPTY_BOARD,
            seats: [None, None],
            wins: [0, 0],
            status: Status::Waiting,
            turn: None,
            first: if seed.is_multiple_of(2) {
                Seat::Red
            } else {
                Seat::Yellow
            },
            game: 0,
            moves: 0,
        }
    }

    /// Rebuilds a table from the bytes of [`Four::save`], checking
    /// everything the rules rely on: bytes that are not a table this build
    /// can continue give an error, never a panic.
    pub fn restore(saved: &[u8]) -> Result<Four, String> {
        let Some((&version, rest)) = saved.split_first() else {
            return Err("saved four-in-a-row game has no version".into());
        };
        if version != SAVE_VERSION {
            return Err(format!(
                "saved four-in-a-row game has format version {version}, this build reads {SAVE_VERSION}"
            ));
        }
        let four = game_api::codec::decode_limited::<Four, SAVE_LIMIT>(rest)
            .map_err(|e| format!("saved four-in-a-row game is {e}"))?;
        four.check()?;
        Ok(four)
    }

    /// The whole game state as bytes: a format version, then the table in
    /// bincode.
    pub fn save(&self) -> Vec<u8> {
        let mut out = vec![SAVE_VERSION];
        game_api::codec::encode(self, &mut out);
        out
    }

    /// The seat `player` sits in, if any.
    pub fn seat_of(&self, player: PlayerId) -> Option<Seat> {
        Seat::ALL.into_iter().find(|s| {
            self.seats[s.index()]
                .as_ref()
                .is_some_and(|t| t.player == player)
        })
    }

    /// Who sits at `seat`, if anyone.
    pub fn player_at(&self, seat: Seat) -> Option<PlayerId> {
        self.seats[seat.index()].as_ref().map(|t| t.player)
    }

    /// How the game on the board stands.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Whose move it is, while a game is running.
    pub fn turn(&self) -> Option<Seat> {
        self.turn
    }

    /// The number of the game on the board (from 1; 0 before the first).
    pub fn game(&self) -> u32 {
        self.game
    }

    /// Moves made in the game on the board.
    pub fn moves(&self) -> u8 {
        self.moves
    }

    /// Games won by `seat`'s current player.
    pub fn wins(&self, seat: Seat) -> u32 {
        self.wins[seat.index()]
    }

    /// What `player` sees: the state [`Game::state`] encodes.
    pub fn view(&self, player: PlayerId) -> FourState {
        let seat = |s: Seat| {
            let sitter = self.seats[s.index()].as_ref();
            SeatState {
                player: sitter.map(|t| t.player),
                connected: sitter.is_some_and(|t| !t.dropped),
                wins: self.wins[s.index()],
                rematch: sitter.is_some_and(|t| t.rematch),
            }
        };
        FourState {
            you: self.seat_of(player),
            board: flatten(&self.board),
            turn: self.turn,
            status: self.status.clone(),
            seats: Seat::ALL.map(seat),
            game: self.game,
            moves: self.moves,
        }
    }

    /// Seats taken.
    fn seated(&self) -> usize {
        self.seats.iter().flatten().count()
    }

    /// The room's listing as (status, seats taken): `waiting` while a seat
    /// is free, then `playing` or `over`.
    fn listing(&self) -> (&'static str, usize) {
        let seated = self.seated();
        let status = match (seated, &self.status) {
            (0 | 1, _) => "waiting",
            (_, Status::Playing) => "playing",
            _ => "over",
        };
        (status, seated)
    }

    /// Sets the room's metadata if the listing changed since `before`,
    /// which the caller took at the start of its call.
    fn publish(&self, before: (&'static str, usize), ctx: &mut Ctx<'_, FourEvent>) {
        let (status, seated) = self.listing();
        if (status, seated) == before {
            return;
        }
        let metadata = Metadata::from([
            ("status".to_owned(), status.to_owned()),
            ("seats".to_owned(), seated.to_string()),
        ]);
        // Two short entries are far within the metadata limits, so this
        // cannot be refused.
        let _ = ctx.set_metadata(metadata);
    }

    /// Starts a game on an empty board: the seat that did not start the
    /// previous game begins.
    fn start_game(&mut self, ctx: &mut Ctx<'_, FourEvent>) {
        if self.game > 0 {
            self.first = self.first.other();
        }
        self.game = self.game.saturating_add(1);
        self.board = EMPTY_BOARD;
        self.moves = 0;
        self.status = Status::Playing;
        self.turn = Some(self.first);
        for sitter in self.seats.iter_mut().flatten() {
            sitter.rematch = false;
        }
        ctx.broadcast(&FourEvent::NewGame {
            game: self.game,
            first: self.first,
        });
    }

    /// `seat` drops a disc into `column`, or the reason it may not.
    fn play(&mut self, seat: Seat, column: u8, ctx: &mut Ctx<'_, FourEvent>) -> Result<(), String> {
        if self.status != Status::Playing {
            return Err("no game is running".into());
        }
        if self.turn != Some(seat) {
            return Err("it is not your turn".into());
        }
        let c = usize::from(column);
        if c >= COLUMNS {
            return Err(format!(
                "there is no column {column}: columns are 0 to {}",
                COLUMNS - 1
            ));
        }
        let Some(row) = landing_row(&self.board, c) else {
            return Err(format!("column {column} is full"));
        };
        self.board[row][c] = seat.cell();
        // At most CELLS moves fit on the board, so this stays small.
        self.moves += 1;
        ctx.broadcast(&FourEvent::Moved {
            seat,
            column,
            row: row as u8,
            number: self.moves,
        });
        let cells = winning_cells(&self.board, c, row);
        if !cells.is_empty() {
            self.turn = None;
            self.wins[seat.index()] = self.wins[seat.index()].saturating_add(1);
            ctx.broadcast(&FourEvent::Won {
                seat,
                cells: cells.clone(),
            });
            self.status = Status::Won { seat, cells };
        } else if usize::from(self.moves) == CELLS {
            self.turn = None;
            self.status = Status::Draw;
            ctx.broadcast(&FourEvent::Draw);
        } else {
            self.turn = Some(seat.other());
        }
        Ok(())
    }

    /// `seat` asks for another game, or the reason it may not. Asking twice
    /// is no error and says nothing more.
    fn ask_rematch(&mut self, seat: Seat, ctx: &mut Ctx<'_, FourEvent>) -> Result<(), String> {
        match self.status {
            Status::Won { .. } | Status::Draw => {}
            Status::Playing => return Err("the game is still running".into()),
            Status::Waiting | Status::Forfeit { .. } => {
                return Err("there is no opponent yet: a game starts when one sits down".into());
            }
        }
        let [Some(red), Some(yellow)] = &mut self.seats else {
            return Err("your opponent left: a game starts when a new one sits down".into());
        };
        let (mine, theirs) = match seat {
            Seat::Red => (red, yellow),
            Seat::Yellow => (yellow, red),
        };
        if mine.rematch {
            return Ok(());
        }
        mine.rematch = true;
        let both = theirs.rematch;
        ctx.broadcast(&FourEvent::RematchAsked { seat });
        if both {
            self.start_game(ctx);
        }
        Ok(())
    }

    /// Checks everything the rules rely on without checking it again on
    /// every call, so that a restored table can neither panic nor break a
    /// rule whatever the bytes said.
    fn check(&self) -> Result<(), String> {
        for (row, cells) in self.board.iter().enumerate() {
            for (column, &v) in cells.iter().enumerate() {
                if v > 2 {
                    return Err(format!(
                        "saved cell at column {column}, row {row} holds {v}"
                    ));
                }
                if v != EMPTY && row > 0 && self.board[row - 1][column] == EMPTY {
                    return Err(format!(
                        "a saved disc floats above an empty cell in column {column}"
                    ));
                }
            }
        }
        if let [Some(red), Some(yellow)] = &self.seats
            && red.player == yellow.player
        {
            return Err(format!("saved player {} sits in both seats", red.player));
        }
        let count = |seat: Seat| {
            self.board
                .iter()
                .flatten()
                .filter(|&&v| v == seat.cell())
                .count()
        };
        let (firsts, seconds) = (count(self.first), count(self.first.other()));
        if usize::from(self.moves) != firsts + seconds {
            return Err(format!(
                "saved game counts {} moves with {} discs on the board",
                self.moves,
                firsts + seconds
            ));
        }
        if firsts != seconds && firsts != seconds + 1 {
            return Err("saved discs do not alternate from the seat that started".into());
        }
        if (self.game == 0) != (self.status == Status::Waiting) {
            return Err(format!(
                "saved game number {} does not fit {:?}",
                self.game, self.status
            ));
        }
        if self.turn.is_some() != (self.status == Status::Playing) {
            return Err(format!(
                "saved turn {:?} does not fit {:?}",
                self.turn, self.status
            ));
        }
        let seated = self.seated();
        // The seat whose move is next: the one that started after an even
        // number of moves.
        let next = if self.moves.is_multiple_of(2) {
            self.first
        } else {
            self.first.other()
        };
        match &self.status {
            Status::Waiting if seated == 2 || self.moves > 0 => {
                return Err("saved game waits with both seats taken, or discs on the board".into());
            }
            Status::Playing if seated < 2 => {
                return Err("saved game runs with a seat empty".into());
            }
            Status::Playing if self.turn != Some(next) || usize::from(self.moves) == CELLS => {
                return Err(format!(
                    "saved turn {:?} is not the next after {} moves",
                    self.turn, self.moves
                ));
            }
            Status::Won { seat, cells } => {
                if self.moves == 0 || *seat != next.other() {
                    return Err(format!("saved winner {seat:?} did not make the last move"));
                }
                let theirs = |&i: &u8| {
                    let i = usize::from(i);
                    i < CELLS && self.board[i / COLUMNS][i % COLUMNS] == seat.cell()
                };
                if cells.len() < LINE || !cells.iter().all(theirs) {
                    return Err(format!(
                        "saved winning cells {cells:?} are not a line of {seat:?}"
                    ));
                }
            }
            Status::Draw if usize::from(self.moves) != CELLS => {
                return Err("saved draw with room left on the board".into());
            }
            Status::Forfeit { .. } if seated == 2 => {
                return Err("saved forfeit with both seats taken".into());
            }
            _ => {}
        }
        let finished = matches!(self.status, Status::Won { .. } | Status::Draw);
        let asking = self.seats.iter().flatten().filter(|t| t.rematch).count();
        if asking > 0 && (!finished || seated < 2 || asking == 2) {
            return Err("saved rematch request does not fit the game".into());
        }
        Ok(())
    }
}

impl Game for Four {
    /// Nothing to configure: the board and the rules are fixed.
    type Config = ();
    type Message = FourMsg;
    type Event = FourEvent;

    fn create(_: &(), options: &RoomOptions, seed: u64) -> Result<Self, String> {
        options.only(&[])?;
        Ok(Four::new(seed))
    }

    fn restore(_: &(), options: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
        options.only(&[])?;
        Four::restore(saved)
    }

    fn save(&self) -> Vec<u8> {
        Four::save(self)
    }

    fn join_attempt(&mut self, player: PlayerId, _: &mut Ctx<'_, FourEvent>) -> Result<(), String> {
        if self.seated() == 2 && self.seat_of(player).is_none() {
            return Err("the table is full".into());
        }
        Ok(())
    }

    fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, FourEvent>) {
        if self.seat_of(player).is_some() {
            return;
        }
        // Red first, so that the first player of an empty room is red.
        let Some(seat) = Seat::ALL
            .into_iter()
            .find(|s| self.seats[s.index()].is_none())
        else {
            return;
        };
        let before = self.listing();
        self.seats[seat.index()] = Some(Sitter {
            player,
            dropped: false,
            rematch: false,
        });
        ctx.broadcast(&FourEvent::Seated { seat, player });
        if self.seated() == 2 {
            ctx.lock();
            // No game runs with a seat empty (a leave ends it), so the
            // second seat taken always starts a fresh one.
            self.start_game(ctx);
        }
        self.publish(before, ctx);
    }

    fn drop_player(&mut self, player: PlayerId, ctx: &mut Ctx<'_, FourEvent>) {
        let Some(seat) = self.seat_of(player) else {
            return;
        };
        let Some(sitter) = self.seats[seat.index()].as_mut() else {
            return;
        };
        if !sitter.dropped {
            sitter.dropped = true;
            ctx.broadcast(&FourEvent::Dropped { seat });
        }
    }

    fn resume(&mut self, player: PlayerId, ctx: &mut Ctx<'_, FourEvent>) {
        let Some(seat) = self.seat_of(player) else {
            return;
        };
        let Some(sitter) = self.seats[seat.index()].as_mut() else {
            return;
        };
        if sitter.dropped {
            sitter.dropped = false;
            ctx.broadcast(&FourEvent::Resumed { seat });
        }
    }

    fn leave(&mut self, player: PlayerId, ctx: &mut Ctx<'_, FourEvent>) {
        let Some(seat) = self.seat_of(player) else {
            return;
        };
        let before = self.listing();
        let was_full = self.seated() == 2;
        self.seats[seat.index()] = None;
        // The wins were the leaver's; whoever sits here next starts at 0.
        self.wins[seat.index()] = 0;
        // A rematch needs the opponent who just left.
        for sitter in self.seats.iter_mut().flatten() {
            sitter.rematch = false;
        }
        ctx.broadcast(&FourEvent::Left { seat });
        if self.status == Status::Playing {
            let winner = seat.other();
            self.status = Status::Forfeit { winner };
            self.turn = None;
            self.wins[winner.index()] = self.wins[winner.index()].saturating_add(1);
            ctx.broadcast(&FourEvent::Forfeit { winner });
        }
        if was_full {
            ctx.unlock();
        }
        self.publish(before, ctx);
    }

    fn step(&mut self, messages: &[(PlayerId, FourMsg)], ctx: &mut Ctx<'_, FourEvent>) {
        let before = self.listing();
        for &(player, msg) in messages {
            let Some(seat) = self.seat_of(player) else {
                continue;
            };
            let done = match msg {
                FourMsg::Drop { column } => self.play(seat, column, ctx),
                FourMsg::Rematch => self.ask_rematch(seat, ctx),
            };
            if let Err(reason) = done {
                ctx.send(player, &FourEvent::Rejected { reason });
            }
        }
        self.publish(before, ctx);
    }

    /// A [`FourWelcome`] with the board's size.
    fn welcome(&self, _: PlayerId, out: &mut Vec<u8>) {
        let welcome = FourWelcome {
            columns: COLUMNS as u8,
            rows: ROWS as u8,
        };
        game_api::codec::encode(&welcome, out);
    }

    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        game_api::codec::encode(&self.view(player), out);
    }
}

/// The page, served at `/four/`: the board, its input and the game's codec;
/// the generic session module comes from the server.
pub const WEB: &[WebAsset] = &[
    WebAsset::html("/four/index.html", include_bytes!("../web/index.html")),
    WebAsset::js("/four/game.js", include_bytes!("../web/game.js")),
    WebAsset::js("/four/codec.js", include_bytes!("../web/codec.js")),
];

/// How long an empty room stays open: two minutes for a host who shared
/// the invite code and reloads the page, or whose opponent is slow to
/// arrive.
const LINGER: Duration = Duration::from_secs(120);

/// Ticks per second. Nothing in the game moves on its own, so the tick
/// only bounds how long a move waits to be applied: at most 50 ms.
const TICK_HZ: u16 = 20;

/// Four in a row as a room type named `four`: two seats, 20 ticks a
/// second, states sent only when they change, empty rooms kept two
/// minutes, spectators allowed, its page at `/four/`.
pub fn room_type() -> RoomType {
    RoomType::new::<Four>("four", ())
        .capacity(2)
        .tick_hz(TICK_HZ)
        .linger(LINGER)
        .skip_unchanged_states()
        .spectators()
        .page("/four/", WEB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_api::{Effects, Target};

    /// Every event of `fx`, decoded, with its target.
    fn events(fx: &Effects) -> Vec<(Target, FourEvent)> {
        fx.events
            .iter()
            .map(|(target, bytes)| {
                (
                    *target,
                    game_api::codec::decode(bytes).expect("an event decodes"),
                )
            })
            .collect()
    }

    /// The events of `fx` that go to everyone.
    fn broadcasts(fx: &Effects) -> Vec<FourEvent> {
        events(fx)
            .into_iter()
            .map(|(target, e)| {
                assert_eq!(target, Target::All, "{e:?} should be broadcast");
                e
            })
            .collect()
    }

    /// The metadata `fx` set, as (status, seats).
    fn listing(fx: &Effects) -> Option<(String, String)> {
        fx.metadata
            .as_ref()
            .map(|m| (m["status"].clone(), m["seats"].clone()))
    }

    /// A table with no room around it: each call gets fresh effects,
    /// which it returns.
    struct Table {
        four: Four,
    }

    impl Table {
        /// An empty table in a room with `seed`, made as the room makes it.
        fn new(seed: u64) -> Table {
            let four =
                <Four as Game>::create(&(), &RoomOptions::default(), seed).expect("no options");
            Table { four }
        }

        /// Red is player 1, yellow player 2, and the first game has begun;
        /// with an even seed red starts.
        fn seated(seed: u64) -> Table {
            let mut t = Table::new(seed);
            t.join(1).expect("red sits");
            t.join(2).expect("yellow sits");
            t
        }

        fn call(&mut self, f: impl FnOnce(&mut Four, &mut Ctx<'_, FourEvent>)) -> Effects {
            let mut fx = Effects::new(0, TICK_HZ);
            f(&mut self.four, &mut Ctx::new(&mut fx));
            fx
        }

        /// A join as the room makes it: the attempt, then the join.
        fn join(&mut self, player: PlayerId) -> Result<Effects, String> {
            let mut fx = Effects::new(0, TICK_HZ);
            self.four.join_attempt(player, &mut Ctx::new(&mut fx))?;
            assert!(fx.is_empty(), "an attempt asks for nothing");
            Ok(self.call(|g, ctx| g.join(player, ctx)))
        }

        fn leave(&mut self, player: PlayerId) -> Effects {
            self.call(|g, ctx| g.leave(player, ctx))
        }

        fn step(&mut self, messages: &[(PlayerId, FourMsg)]) -> Effects {
            self.call(|g, ctx| g.step(messages, ctx))
        }

        fn drop_disc(&mut self, player: PlayerId, column: u8) -> Effects {
            self.step(&[(player, FourMsg::Drop { column })])
        }

        /// Plays `columns` (one digit a move) by whoever's turn it is,
        /// each accepted; returns every event broadcast.
        fn play(&mut self, columns: &str) -> Vec<FourEvent> {
            let mut all = Vec::new();
            for ch in columns.chars() {
                let column = ch.to_digit(10).expect("a digit") as u8;
                let seat = self.four.turn().expect("a game is running");
                let player = self.four.player_at(seat).expect("the seat is taken");
                let number = self.four.moves() + 1;
                let got = broadcasts(&self.drop_disc(player, column));
                assert!(
                    matches!(got[0], FourEvent::Moved { seat: s, column: c, number: n, .. } if s == seat && c == column && n == number),
                    "move {number} in column {column}: {got:?}"
                );
                all.extend(got);
            }
            all
        }

        /// Both players' state bytes.
        fn states(&mut self) -> [Vec<u8>; 2] {
            [1, 2].map(|p| {
                let mut out = Vec::new();
                self.four.state(p, &mut out);
                out
            })
        }
    }

    #[test]
    fn the_winning_line_is_found_in_all_four_directions() {
        fn check(columns: &str, winner: Seat, cells: &[u8]) {
            let mut t = Table::seated(0);
            let events = t.play(columns);
            let won = FourEvent::Won {
                seat: winner,
                cells: cells.to_vec(),
            };
            assert_eq!(events.last(), Some(&won), "{columns}");
            // Exactly one event besides the moves: the win.
            assert_eq!(events.len(), columns.len() + 1, "{columns}: {events:?}");
            assert_eq!(
                t.four.status(),
                &Status::Won {
                    seat: winner,
                    cells: cells.to_vec()
                }
            );
            assert_eq!(t.four.turn(), None);
            assert_eq!((t.four.wins(winner), t.four.wins(winner.other())), (1, 0));
            assert!(t.drop_disc(1, 6).events.len() == 1, "no move after the win");
        }
        // Across the bottom row.
        check("0011223", Seat::Red, &[0, 1, 2, 3]);
        // Up column 0.
        check("0101010", Seat::Red, &[0, 7, 14, 21]);
        // Up and to the right from the bottom-left corner.
        check("01122323363", Seat::Red, &[0, 8, 16, 24]);
        // Up and to the left: the mirror image.
        check("65544343303", Seat::Red, &[6, 12, 18, 24]);
        // Yellow wins too.
        check("61626354", Seat::Yellow, &[1, 2, 3, 4]);
        // The last disc fills the gap of a line of five.
        check("001133442", Seat::Red, &[0, 1, 2, 3, 4]);
        // One disc completes a column and a diagonal at once.
        check("5454402653325", Seat::Red, &[2, 5, 10, 12, 18, 19, 26]);
        // Along the top row.
        check(
            "0010002163303223123123145261",
            Seat::Yellow,
            &[35, 36, 37, 38],
        );
    }

    /// A whole game without four in a row, whichever seat begins.
    const DRAW: &str = "030613054111124352331005302662266462445545";

    #[test]
    fn a_full_board_without_four_is_a_draw() {
        let mut t = Table::seated(0);
        let events = t.play(DRAW);
        assert_eq!(events.last(), Some(&FourEvent::Draw));
        assert_eq!(events.len(), CELLS + 1);
        assert_eq!(t.four.status(), &Status::Draw);
        assert_eq!((t.four.turn(), t.four.moves()), (None, CELLS as u8));
        assert_eq!((t.four.wins(Seat::Red), t.four.wins(Seat::Yellow)), (0, 0));
    }

    #[test]
    fn turns_alternate_and_bad_moves_are_rejected_without_changing_anything() {
        let mut t = Table::seated(0);
        assert_eq!(t.four.turn(), Some(Seat::Red));
        // (player, column, the reason's telling words), each refused.
        let refused = |t: &mut Table, player: PlayerId, column: u8, why: &str| {
            let before = (t.four.clone(), t.states());
            let fx = t.drop_disc(player, column);
            match &events(&fx)[..] {
                [(Target::Player(p), FourEvent::Rejected { reason })] => {
                    assert_eq!(*p, player);
                    assert!(reason.contains(why), "{reason:?} should say {why:?}");
                }
                other => panic!("column {column} by {player}: {other:?}"),
            }
            assert!(fx.metadata.is_none() && fx.kicks.is_empty() && fx.locked.is_none());
            assert_eq!(
                (t.four.clone(), t.states()),
                before,
                "a refusal changes nothing"
            );
        };
        refused(&mut t, 2, 3, "not your turn");
        t.play("3");
        assert_eq!(t.four.turn(), Some(Seat::Yellow));
        refused(&mut t, 1, 3, "not your turn");
        refused(&mut t, 2, 7, "no column 7");
        refused(&mut t, 2, 255, "no column 255");
        t.play("000000");
        assert_eq!(t.four.turn(), Some(Seat::Yellow));
        refused(&mut t, 2, 0, "column 0 is full");
        // Moves of several players in one step apply in order.
        let fx = t.step(&[
            (1, FourMsg::Drop { column: 1 }),
            (2, FourMsg::Drop { column: 1 }),
            (1, FourMsg::Drop { column: 2 }),
            (9, FourMsg::Drop { column: 2 }),
        ]);
        let got = events(&fx);
        assert!(matches!(
            got[0],
            (Target::Player(1), FourEvent::Rejected { .. })
        ));
        assert!(matches!(
            got[1].1,
            FourEvent::Moved {
                seat: Seat::Yellow,
                column: 1,
                row: 0,
                number: 8
            }
        ));
        assert!(matches!(
            got[2].1,
            FourEvent::Moved {
                seat: Seat::Red,
                column: 2,
                row: 0,
                number: 9
            }
        ));
        assert_eq!(got.len(), 3, "a stranger's move is ignored: {got:?}");

        // No game yet with one player, and none after the game ended.
        let mut alone = Table::new(0);
        alone.join(1).unwrap();
        refused(&mut alone, 1, 0, "no game is running");
        let mut over = Table::seated(0);
        over.play("0101010");
        refused(&mut over, 2, 1, "no game is running");
    }

    #[test]
    fn the_seed_picks_who_starts_and_each_new_game_the_other_seat_starts() {
        for (seed, first) in [
            (0, Seat::Red),
            (1, Seat::Yellow),
            (u64::MAX, Seat::Yellow),
            (42, Seat::Red),
        ] {
            let mut t = Table::new(seed);
            t.join(1).unwrap();
            let fx = t.join(2).unwrap();
            assert_eq!(
                broadcasts(&fx),
                vec![
                    FourEvent::Seated {
                        seat: Seat::Yellow,
                        player: 2
                    },
                    FourEvent::NewGame { game: 1, first },
                ]
            );
            assert_eq!(t.four.turn(), Some(first), "seed {seed}");
        }
    }

    #[test]
    fn the_third_player_is_refused_and_seats_lock_and_unlock_the_room() {
        let mut t = Table::new(0);
        let fx = t.join(1).unwrap();
        assert_eq!(
            broadcasts(&fx),
            vec![FourEvent::Seated {
                seat: Seat::Red,
                player: 1
            }]
        );
        assert_eq!(fx.locked, None);
        assert_eq!(listing(&fx), Some(("waiting".into(), "1".into())));
        let fx = t.join(2).unwrap();
        assert_eq!(fx.locked, Some(true));
        assert_eq!(listing(&fx), Some(("playing".into(), "2".into())));
        let before = t.four.clone();
        assert_eq!(t.join(3).err(), Some("the table is full".to_owned()));
        assert_eq!(t.four, before);
        // A join of a seated player changes nothing.
        assert!(t.call(|g, ctx| g.join(1, ctx)).is_empty());
        // A leave frees the seat and unlocks; the next player takes it.
        let fx = t.leave(1);
        assert_eq!(fx.locked, Some(false));
        assert_eq!(listing(&fx), Some(("waiting".into(), "1".into())));
        let fx = t.join(3).unwrap();
        assert_eq!(
            broadcasts(&fx)[0],
            FourEvent::Seated {
                seat: Seat::Red,
                player: 3
            }
        );
        assert_eq!(fx.locked, Some(true));
        assert_eq!(t.four.seat_of(3), Some(Seat::Red));
        // Both gone: the next player of the empty room sits at red.
        t.leave(2);
        let fx = t.leave(3);
        assert_eq!(fx.locked, None, "the room unlocked at the first leave");
        assert_eq!(listing(&fx), Some(("waiting".into(), "0".into())));
        t.join(4).unwrap();
        assert_eq!(t.four.seat_of(4), Some(Seat::Red));
        // Calls about players the table does not hold do nothing.
        assert!(t.leave(99).is_empty());
        assert!(t.call(|g, ctx| g.drop_player(99, ctx)).is_empty());
        assert!(t.call(|g, ctx| g.resume(99, ctx)).is_empty());
    }

    #[test]
    fn leaving_mid_game_forfeits_and_the_winner_waits_for_a_new_opponent() {
        let mut t = Table::seated(0);
        t.play("3344");
        let fx = t.leave(1);
        assert_eq!(
            broadcasts(&fx),
            vec![
                FourEvent::Left { seat: Seat::Red },
                FourEvent::Forfeit {
                    winner: Seat::Yellow
                }
            ]
        );
        assert_eq!(fx.locked, Some(false));
        assert_eq!(listing(&fx), Some(("waiting".into(), "1".into())));
        let view = t.four.view(2);
        assert_eq!(
            view.status,
            Status::Forfeit {
                winner: Seat::Yellow
            }
        );
        assert_eq!(
            (view.turn, view.you, view.moves),
            (None, Some(Seat::Yellow), 4)
        );
        assert_eq!(view.seats[0].player, None);
        assert_eq!((view.seats[0].wins, view.seats[1].wins), (0, 1));
        // Alone, yellow can neither move nor ask for a rematch.
        for msg in [FourMsg::Drop { column: 0 }, FourMsg::Rematch] {
            let got = events(&t.step(&[(2, msg)]));
            assert!(
                matches!(got[..], [(Target::Player(2), FourEvent::Rejected { .. })]),
                "{got:?}"
            );
        }
        // A new opponent sits at the free seat and a fresh game starts,
        // begun by the seat that did not begin the last one.
        let fx = t.join(5).unwrap();
        assert_eq!(
            broadcasts(&fx),
            vec![
                FourEvent::Seated {
                    seat: Seat::Red,
                    player: 5
                },
                FourEvent::NewGame {
                    game: 2,
                    first: Seat::Yellow
                },
            ]
        );
        assert_eq!(fx.locked, Some(true));
        let view = t.four.view(5);
        assert_eq!(
            (view.status, view.turn, view.moves),
            (Status::Playing, Some(Seat::Yellow), 0)
        );
        assert!(view.board.iter().all(|&c| c == EMPTY));
        assert_eq!(
            (view.seats[0].wins, view.seats[1].wins),
            (0, 1),
            "the newcomer starts at 0"
        );
        // Leaving after a game ended forfeits nothing.
        t.play("0101010");
        let fx = t.leave(5);
        assert_eq!(broadcasts(&fx), vec![FourEvent::Left { seat: Seat::Red }]);
        assert_eq!(t.four.wins(Seat::Yellow), 2);
    }

    #[test]
    fn a_dropped_player_keeps_its_seat_and_its_turn() {
        let mut t = Table::seated(0);
        t.play("3");
        let fx = t.call(|g, ctx| g.drop_player(2, ctx));
        assert_eq!(
            broadcasts(&fx),
            vec![FourEvent::Dropped { seat: Seat::Yellow }]
        );
        assert!(fx.locked.is_none() && fx.metadata.is_none());
        let view = t.four.view(1);
        assert_eq!(
            (view.turn, view.seats[1].connected, view.seats[0].connected),
            (Some(Seat::Yellow), false, true)
        );
        // Dropping again says nothing more.
        assert!(t.call(|g, ctx| g.drop_player(2, ctx)).is_empty());
        let fx = t.call(|g, ctx| g.resume(2, ctx));
        assert_eq!(
            broadcasts(&fx),
            vec![FourEvent::Resumed { seat: Seat::Yellow }]
        );
        assert!(t.call(|g, ctx| g.resume(2, ctx)).is_empty());
        assert!(t.four.view(1).seats[1].connected);
        t.play("3");
        // The grace period ends for a dropped player: a forfeit.
        t.call(|g, ctx| g.drop_player(1, ctx));
        let fx = t.leave(1);
        assert_eq!(
            broadcasts(&fx)[1],
            FourEvent::Forfeit {
                winner: Seat::Yellow
            }
        );
    }

    #[test]
    fn a_rematch_starts_when_both_ask_and_the_other_seat_begins() {
        let mut t = Table::seated(0);
        let got = events(&t.step(&[(1, FourMsg::Rematch)]));
        assert!(
            matches!(&got[..], [(Target::Player(1), FourEvent::Rejected { reason })] if reason.contains("still running"))
        );
        t.play("0101010");
        let fx = t.step(&[(1, FourMsg::Rematch)]);
        assert_eq!(
            broadcasts(&fx),
            vec![FourEvent::RematchAsked { seat: Seat::Red }]
        );
        assert_eq!(listing(&fx), None, "still over");
        assert!(t.four.view(2).seats[0].rematch);
        // Asking twice is no error, and no news.
        assert!(t.step(&[(1, FourMsg::Rematch)]).is_empty());
        assert_eq!(
            t.four.status(),
            &Status::Won {
                seat: Seat::Red,
                cells: vec![0, 7, 14, 21]
            }
        );
        let fx = t.step(&[(2, FourMsg::Rematch)]);
        assert_eq!(
            broadcasts(&fx),
            vec![
                FourEvent::RematchAsked { seat: Seat::Yellow },
                FourEvent::NewGame {
                    game: 2,
                    first: Seat::Yellow
                },
            ]
        );
        assert_eq!(listing(&fx), Some(("playing".into(), "2".into())));
        let view = t.four.view(1);
        assert_eq!(
            (view.game, view.moves, view.turn),
            (2, 0, Some(Seat::Yellow))
        );
        assert!(view.board.iter().all(|&c| c == EMPTY));
        assert!(!view.seats[0].rematch && !view.seats[1].rematch);
        assert_eq!(
            (view.seats[0].wins, view.seats[1].wins),
            (1, 0),
            "wins carry over"
        );
        // Game 2 ends in a draw; in game 3 red begins again.
        t.play(DRAW);
        assert_eq!(t.four.status(), &Status::Draw);
        let fx = t.step(&[(2, FourMsg::Rematch), (1, FourMsg::Rematch)]);
        assert_eq!(
            broadcasts(&fx)[2],
            FourEvent::NewGame {
                game: 3,
                first: Seat::Red
            }
        );
        // A request dies with the opponent who leaves.
        t.play("0101010");
        t.step(&[(2, FourMsg::Rematch)]);
        t.leave(1);
        assert!(!t.four.view(2).seats[1].rematch);
    }

    #[test]
    fn state_and_welcome_decode_to_the_view() {
        let mut t = Table::seated(1);
        t.play("33");
        let [red, yellow] = t.states();
        let red: FourState = game_api::codec::decode(&red).unwrap();
        let yellow: FourState = game_api::codec::decode(&yellow).unwrap();
        assert_eq!(red, t.four.view(1));
        assert_eq!((red.you, yellow.you), (Some(Seat::Red), Some(Seat::Yellow)));
        // Yellow began (odd seed) in column 3, red followed on top of it.
        assert_eq!((red.board[3], red.board[3 + COLUMNS]), (2, 1));
        assert_eq!((red.turn, red.moves, red.game), (Some(Seat::Yellow), 2, 1));
        assert_eq!(red.seats[1].player, Some(2));
        let mut out = Vec::new();
        t.four.welcome(1, &mut out);
        assert_eq!(
            game_api::codec::decode(&out),
            Ok(FourWelcome {
                columns: 7,
                rows: 6
            })
        );
    }

    /// One call the room makes, for scripts run on two tables at once.
    #[derive(Clone, Debug)]
    enum Call {
        Join(PlayerId),
        Leave(PlayerId),
        Drop(PlayerId),
        Resume(PlayerId),
        Step(Vec<(PlayerId, FourMsg)>),
    }

    /// What the room sees of one call: the events (encoded), the new
    /// metadata and the lock.
    type Seen = (Vec<(Target, Vec<u8>)>, Option<Metadata>, Option<bool>);

    /// Makes `call` on `four`; returns what the room would see of it.
    fn apply(four: &mut Four, call: &Call) -> Seen {
        let mut fx = Effects::new(0, TICK_HZ);
        let ctx = &mut Ctx::new(&mut fx);
        match call {
            Call::Join(p) => {
                if four.join_attempt(*p, ctx).is_ok() {
                    four.join(*p, ctx);
                }
            }
            Call::Leave(p) => four.leave(*p, ctx),
            Call::Drop(p) => four.drop_player(*p, ctx),
            Call::Resume(p) => four.resume(*p, ctx),
            Call::Step(messages) => four.step(messages, ctx),
        }
        let events = fx.events.iter().map(|(t, b)| (*t, b.to_vec())).collect();
        (events, fx.metadata, fx.locked)
    }

    /// A script through moves, a drop, a rejected move, a win, a rematch,
    /// a forfeit and a new opponent.
    fn script() -> Vec<Call> {
        let d = |p, column| Call::Step(vec![(p, FourMsg::Drop { column })]);
        vec![
            Call::Join(1),
            Call::Join(2),
            d(1, 3),
            d(2, 3),
            Call::Drop(1),
            Call::Resume(1),
            d(1, 4),
            d(1, 4),
            d(2, 9),
            d(2, 4),
            d(1, 5),
            d(2, 5),
            d(1, 6),
            Call::Step(vec![(1, FourMsg::Rematch), (2, FourMsg::Rematch)]),
            d(2, 0),
            d(1, 0),
            Call::Drop(2),
            Call::Leave(2),
            Call::Join(3),
            d(3, 1),
            Call::Join(4),
        ]
    }

    #[test]
    fn a_restored_table_continues_exactly_as_the_saved_one() {
        let script = script();
        for split in 0..=script.len() {
            let mut original = Table::new(6).four;
            for call in &script[..split] {
                apply(&mut original, call);
            }
            let saved = original.save();
            let mut restored =
                Four::restore(&saved).unwrap_or_else(|e| panic!("after {split} calls: {e}"));
            assert_eq!(restored, original);
            assert_eq!(restored.save(), saved);
            for call in &script[split..] {
                assert_eq!(
                    apply(&mut restored, call),
                    apply(&mut original, call),
                    "{call:?} after a restore at {split}"
                );
                for p in 1..=4 {
                    assert_eq!(restored.view(p), original.view(p));
                }
            }
            // The script went where it was meant to: a win, a rematch, a
            // forfeit, a new opponent and a refused fifth player.
            assert_eq!((original.game(), original.wins(Seat::Red)), (3, 2));
            assert_eq!(original.player_at(Seat::Yellow), Some(3));
        }
    }

    #[test]
    fn restore_refuses_every_truncation_and_survives_bit_flips() {
        let mut four = Table::new(0).four;
        for call in &script()[..13] {
            apply(&mut four, call);
        }
        assert!(matches!(four.status(), Status::Won { .. }));
        four.seats[0].as_mut().unwrap().rematch = true;
        four.seats[1].as_mut().unwrap().dropped = true;
        let saved = four.save();
        assert_eq!(Four::restore(&saved).as_ref(), Ok(&four));
        for len in 0..saved.len() {
            assert!(
                Four::restore(&saved[..len]).is_err(),
                "{len} of {} bytes",
                saved.len()
            );
        }
        let mut longer = saved.clone();
        longer.push(0);
        assert!(Four::restore(&longer).is_err(), "a trailing byte");
        let mut accepted = 0;
        for i in 0..saved.len() {
            for bit in 0..8 {
                let mut flipped = saved.clone();
                flipped[i] ^= 1 << bit;
                let Ok(mut restored) = Four::restore(&flipped) else {
                    continue;
                };
                accepted += 1;
                // Whatever a flip let through must still play by the rules.
                assert_eq!(restored.save(), flipped);
                for call in script() {
                    apply(&mut restored, &call);
                    restored
                        .check()
                        .unwrap_or_else(|e| panic!("byte {i} bit {bit}: {e}"));
                }
            }
        }
        // Some flips make another valid table (a player id, a win count),
        // so the loop above did test play after a restore.
        assert!(accepted > 0);
    }

    #[test]
    fn restore_refuses_tables_that_break_the_rules() {
        fn check(break_it: fn(&mut Four), why: &str) {
            let mut t = Table::seated(0);
            t.play("0101");
            assert_eq!(t.four.check(), Ok(()));
            break_it(&mut t.four);
            let err = Four::restore(&t.four.save()).expect_err(why);
            assert!(err.contains(why), "{err:?} should say {why:?}");
        }
        check(|f| f.board[0][6] = 3, "holds 3");
        check(
            |f| f.board[3][0] = std::mem::take(&mut f.board[1][0]),
            "floats",
        );
        check(|f| f.moves += 1, "counts 5 moves with 4 discs");
        check(|f| f.board[1][1] = 1, "alternate");
        check(|f| f.turn = f.turn.map(Seat::other), "not the next");
        check(|f| f.turn = None, "does not fit Playing");
        check(|f| f.seats[1].as_mut().unwrap().player = 1, "both seats");
        check(|f| f.seats[1] = None, "a seat empty");
        check(|f| f.game = 0, "game number 0");
        check(|f| f.seats[0].as_mut().unwrap().rematch = true, "rematch");
        check(
            |f| {
                f.status = Status::Waiting;
                f.game = 0;
                f.turn = None;
            },
            "waits",
        );
        check(
            |f| {
                f.status = Status::Won {
                    seat: Seat::Yellow,
                    cells: vec![1, 8, 15, 22],
                };
                f.turn = None;
            },
            "winning cells",
        );
        check(
            |f| {
                f.status = Status::Won {
                    seat: Seat::Red,
                    cells: vec![0, 7],
                };
                f.turn = None;
            },
            "last move",
        );
        check(
            |f| {
                f.status = Status::Draw;
                f.turn = None;
            },
            "room left",
        );
        check(
            |f| {
                f.status = Status::Forfeit { winner: Seat::Red };
                f.turn = None;
            },
            "both seats taken",
        );
        assert!(Four::restore(&[]).unwrap_err().contains("no version"));
        let mut other = Table::seated(0).four.save();
        other[0] = 2;
        assert!(Four::restore(&other).unwrap_err().contains("version 2"));
    }

    #[test]
    fn the_room_type_is_registered_as_documented() {
        let kind = room_type();
        assert_eq!(kind.name(), "four");
        let s = kind.settings();
        assert_eq!(
            (s.capacity, s.tick_hz, s.linger),
            (2, Some(20), Duration::from_secs(120))
        );
        assert!(s.skip_unchanged_states && s.filter_by.is_empty());
        assert_eq!(kind.page_path(), Some("/four/"));
        let paths: Vec<&str> = kind.assets().iter().map(|a| a.path).collect();
        assert_eq!(
            paths,
            ["/four/index.html", "/four/game.js", "/four/codec.js"]
        );
        let options = RoomOptions::new(vec![("speed".into(), "1".into())]);
        assert!(
            kind.create(&options, 1, 8)
                .err()
                .unwrap()
                .contains("takes none")
        );
        assert!(kind.create(&RoomOptions::default(), 1, 8).is_ok());
        let saved = Table::seated(3).four.save();
        assert!(kind.restore(&RoomOptions::default(), &saved, 8).is_ok());
        assert!(kind.restore(&options, &saved, 8).is_err());
    }
}
