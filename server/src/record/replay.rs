//! `server replay FILE... [--verify]`: re-simulates recordings without any
//! network and, with `--verify`, checks every recorded hash and keyframe.
//!
//! The game is made from the recording alone (its room type's name and
//! configuration, options, seed and tick rate are in the header), so the
//! replaying process's flags do not matter; only its code does: a replay
//! by another build of the game may diverge, and says where.
//!
//! A recording that ends with its game's panic replays up to the call
//! that panicked, makes it, and reports whether the panic came again.

use super::format::{self, EndKind, Record, Recording};
use game_api::replay::{Input, Replayer};
use game_api::{PlayerId, RoomOptions, RoomType};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// What a replay went through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The first tick replayed, and the last reached.
    pub ticks: (u32, u32),
    /// Calls made on the game (steps included).
    pub inputs: u64,
    /// Game messages among them.
    pub messages: u64,
    /// Distinct players that joined.
    pub players: u64,
    /// Players in the game summed over the steps replayed (a dropped
    /// player is still in it): with the tick rate, the player-minutes the
    /// recording holds.
    pub player_ticks: u64,
    /// Hashes compared (with `--verify`).
    pub hashes: u64,
    /// Keyframes compared byte for byte (with `--verify`).
    pub keyframes: u64,
    /// Stretches of ticks the recording does not hold (chunks the server
    /// dropped rather than wait): from, to.
    pub gaps: Vec<(u32, u32)>,
    /// How the recording ended, if it did.
    pub end: Option<(EndKind, String)>,
    /// The recorded panic, come again in the replay: its message.
    pub panic: Option<String>,
}

/// Why a replay stopped short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayFailure {
    /// The recording's game is not one this build has.
    #[error("the recording's room type {0:?} is not registered here (registered: {1})")]
    UnknownRoomType(String, String),
    /// The game could not be made from the recording.
    #[error("{0}")]
    Game(String),
    /// The recording cannot be followed (a gap without a keyframe after it).
    #[error("{0}")]
    Unfollowable(String),
    /// The replay differs from the recording.
    #[error("diverged at tick {tick}: {what}")]
    Diverged {
        /// The first tick whose state differs.
        tick: u32,
        /// What differs.
        what: String,
    },
    /// The game panicked in the replay where the room did not.
    #[error("the game panicked at tick {tick}, where the recorded room did not: {message}")]
    Panicked {
        /// The tick of the call that panicked.
        tick: u32,
        /// The panic's message.
        message: String,
    },
    /// The room's game panicked, but its replay did not.
    #[error(
        "the recorded room panicked ({0}), but the replay did not: the panic is not reproduced"
    )]
    NotReproduced(String),
}

/// Replays `recording` with the room types of this build; with `verify`,
/// compares every recorded hash and keyframe with the replay's.
pub fn replay(
    room_types: &[RoomType],
    recording: &Recording,
    verify: bool,
) -> Result<Report, ReplayFailure> {
    let header = &recording.header;
    let (room_type, options) = game_of(room_types, header)?;
    let panicked = match recording.end() {
        Some((EndKind::Panicked, message)) => Some(message.to_owned()),
        _ => None,
    };
    let mut report = Report {
        ticks: (header.start_tick, header.start_tick),
        end: recording.end().map(|(k, t)| (k, t.to_owned())),
        ..Report::default()
    };
    let mut players = std::collections::BTreeSet::new();
    // In the game now: joined and not left (from a keyframe on, the
    // players the first resume or drop names).
    let mut present = std::collections::BTreeSet::new();
    let mut game: Option<Replayer> = None;
    // What entered the game since the last hash: named when a hash differs.
    // (The last RECENT of them: a file's records are not all kept.)
    let mut recent: std::collections::VecDeque<Input> = std::collections::VecDeque::new();
    let last_chunk = recording.chunks.len().saturating_sub(1);
    for (c, chunk) in recording.chunks.iter().enumerate() {
        let Some(mut records) = recording.records(c) else {
            unreachable!(
                "chunk {c} of {} is in the recording",
                recording.chunks.len()
            );
        };
        let continues = game.as_ref().is_some_and(|g| g.tick() == chunk.first_tick);
        if !continues {
            let first = records.next().filter(|_| chunk.starts_with_keyframe);
            let Some(Record::Keyframe(saved)) = first else {
                return Err(ReplayFailure::Unfollowable(match &game {
                    None => format!(
                        "the recording's first chunk (byte {}) does not start with a keyframe",
                        chunk.offset
                    ),
                    Some(g) => format!(
                        "ticks {} to {} are missing (the server dropped them) and the chunk after them (byte {}) has no keyframe to go on from",
                        g.tick(),
                        chunk.first_tick,
                        chunk.offset
                    ),
                }));
            };
            if let Some(g) = &game {
                report.gaps.push((g.tick(), chunk.first_tick));
            }
            let fresh = game.is_none();
            let started = start_game(
                &room_type,
                &options,
                header,
                chunk.first_tick,
                &saved,
                fresh,
            )
            .map_err(ReplayFailure::Game)?;
            if verify && fresh && !header.restored && chunk.first_tick == 0 {
                // A new room, made from its seed as the room was: its
                // first state must be the recorded one.
                compare_keyframe(&started.keyframe(), &saved, 0)?;
                report.keyframes += 1;
            }
            game = Some(started);
        }
        let Some(g) = game.as_mut() else {
            unreachable!("a chunk either continues the game or starts it from a keyframe");
        };
        while let Some(record) = records.next() {
            match &record {
                Record::Input(input) => {
                    let last_input =
                        panicked.is_some() && c == last_chunk && records.only_end_left();
                    report.inputs += 1;
                    match input {
                        Input::Message { .. } => report.messages += 1,
                        Input::Join(p) => {
                            players.insert(*p);
                            present.insert(*p);
                        }
                        Input::Drop(p) | Input::Resume(p) => {
                            present.insert(*p);
                        }
                        Input::Leave(p) => {
                            present.remove(p);
                        }
                        Input::Step => report.player_ticks += present.len() as u64,
                        Input::JoinAttempt(_) => {}
                    }
                    let tick = g.tick();
                    let applied = catch_unwind(AssertUnwindSafe(|| g.apply(input)));
                    match applied {
                        Ok(result) => result.map_err(|e| ReplayFailure::Game(e.to_string()))?,
                        Err(panic) => {
                            let message = panic_message(&*panic);
                            if last_input {
                                report.panic = Some(message);
                                report.ticks.1 = tick;
                                report.players = players.len() as u64;
                                return Ok(report);
                            }
                            return Err(ReplayFailure::Panicked { tick, message });
                        }
                    }
                    if verify {
                        if recent.len() == RECENT {
                            recent.pop_front();
                        }
                        recent.push_back(input.clone());
                    }
                }
                Record::Hash(hash) if verify => {
                    let replayed = format::short_hash(&g.keyframe());
                    if replayed != *hash {
                        return Err(ReplayFailure::Diverged {
                            tick: g.tick(),
                            what: format!(
                                "the state hashes to {replayed:08x}, the recording has {hash:08x}; what entered the game since the last hash (its last {RECENT} calls at most): {}",
                                describe(recent.make_contiguous())
                            ),
                        });
                    }
                    report.hashes += 1;
                    recent.clear();
                }
                Record::Keyframe(saved) if verify => {
                    compare_keyframe(&g.keyframe(), saved, g.tick())?;
                    report.keyframes += 1;
                }
                Record::Hash(_) | Record::Keyframe(_) | Record::End(..) => {}
            }
        }
        report.ticks.1 = g.tick();
    }
    report.players = players.len() as u64;
    if let Some(message) = panicked {
        // The room may have panicked in a view (`welcome`, `state`), which
        // comes after the last recorded call: the views of every player in
        // the game, as the room would have asked for them.
        if let Some(g) = game.as_mut()
            && let Some(panic) = view_panic(g, &present)
        {
            report.panic = Some(panic);
            return Ok(report);
        }
        return Err(ReplayFailure::NotReproduced(message));
    }
    Ok(report)
}

/// The message of a panic in `players`' welcomes or views of the game
/// now, if one panics.
fn view_panic(
    game: &mut Replayer,
    players: &std::collections::BTreeSet<PlayerId>,
) -> Option<String> {
    let mut out = Vec::new();
    for &player in players {
        let shown = catch_unwind(AssertUnwindSafe(|| {
            out.clear();
            game.welcome(player, &mut out);
            out.clear();
            game.view(player, &mut out);
        }));
        if let Err(panic) = shown {
            return Some(panic_message(&*panic));
        }
    }
    None
}

/// The recording's room type (as this build has it, with the recorded
/// game configuration) and room options.
pub fn game_of(
    room_types: &[RoomType],
    header: &format::Header,
) -> Result<(RoomType, RoomOptions), ReplayFailure> {
    let room_type = room_types
        .iter()
        .find(|t| t.name() == header.room_type)
        .ok_or_else(|| {
            let names: Vec<&str> = room_types.iter().map(RoomType::name).collect();
            ReplayFailure::UnknownRoomType(header.room_type.clone(), names.join(", "))
        })?
        .with_config_bytes(&header.config)
        .map_err(ReplayFailure::Game)?;
    Ok((room_type, RoomOptions::new(header.options.clone())))
}

/// The game at the start of a chunk whose first record is the keyframe
/// `saved` at `tick`: a new room's first chunk (`first`, at tick 0, not
/// restored) is made from its seed, as the room made it; any other from the
/// keyframe.
pub fn start_game(
    room_type: &RoomType,
    options: &RoomOptions,
    header: &format::Header,
    tick: u32,
    saved: &[u8],
    first: bool,
) -> Result<Replayer, String> {
    let made = if first && !header.restored && tick == 0 {
        Replayer::new(room_type, options, header.seed, header.tick_hz)
    } else {
        Replayer::from_keyframe(room_type, options, saved, tick, header.tick_hz)
    };
    made.map_err(|e| e.to_string())
}

/// Checks a keyframe byte for byte; the error names the first difference.
fn compare_keyframe(replayed: &[u8], recorded: &[u8], tick: u32) -> Result<(), ReplayFailure> {
    if replayed == recorded {
        return Ok(());
    }
    let at = replayed
        .iter()
        .zip(recorded)
        .position(|(a, b)| a != b)
        .unwrap_or(replayed.len().min(recorded.len()));
    let around = |b: &[u8]| {
        let end = (at + 8).min(b.len());
        format!("{:02x?}", &b[at.min(end)..end])
    };
    Err(ReplayFailure::Diverged {
        tick,
        what: format!(
            "the game's saved state ({} bytes) differs from the recorded keyframe ({} bytes) from byte {at} on: {} replayed, {} recorded",
            replayed.len(),
            recorded.len(),
            around(replayed),
            around(recorded)
        ),
    })
}

/// How many of the inputs before a divergence it names.
const RECENT: usize = 1024;

/// A short account of some inputs: counts, and the players they concern.
fn describe(inputs: &[Input]) -> String {
    if inputs.is_empty() {
        return "nothing".into();
    }
    let mut out = String::new();
    let mut messages: Vec<u32> = Vec::new();
    let mut steps = 0;
    for input in inputs {
        match input {
            Input::Message { player, .. } => messages.push(*player),
            Input::Step => steps += 1,
            other => {
                let _ = write!(out, "{other:?}, ");
            }
        }
    }
    messages.sort_unstable();
    messages.dedup();
    let _ = write!(
        out,
        "{steps} step(s), messages from {} player(s) {:?}",
        messages.len(),
        &messages[..messages.len().min(12)]
    );
    out
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What `server replay` takes.
#[derive(clap::Parser, Debug)]
#[command(
    name = "server replay",
    about = "Re-simulates room recordings (server --record DIR) without any network."
)]
pub struct ReplayArgs {
    /// Recordings to replay (`.replay` files; a directory means every
    /// recording in it).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Check every recorded state hash and keyframe against the replay;
    /// exits 1 at the first divergence, naming its tick and what differs.
    #[arg(long)]
    pub verify: bool,
}

/// For a server binary of one's own: when its command line is `PROGRAM
/// replay FILE... [--verify]`, replays as `server replay` does with
/// `room_types` and returns the exit code; `None` for any other command
/// line (the binary serves as usual).
pub fn from_command_line(room_types: &[RoomType]) -> Option<ExitCode> {
    if std::env::args().nth(1).as_deref() != Some("replay") {
        return None;
    }
    let args = <ReplayArgs as clap::Parser>::parse_from(std::env::args().skip(1));
    Some(main(room_types, &args))
}

/// `server replay`: replays each file and prints what happened. Exits 0
/// when every file replayed (and verified), 1 when one diverged or
/// panicked where its room did not, 2 when one could not be read or
/// followed, 3 when one reproduced its room's panic (and nothing worse
/// happened).
pub fn main(room_types: &[RoomType], args: &ReplayArgs) -> ExitCode {
    let mut files = Vec::new();
    for path in &args.files {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<_> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "replay"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut worst = 0u8;
    for path in &files {
        let code = replay_file(room_types, path, args.verify);
        // Divergence (1) outranks an unreadable file (2) and a reproduced
        // panic (3): it is what a determinism check is for.
        worst = match (worst, code) {
            (1, _) | (_, 1) => 1,
            (a, b) => a.max(b),
        };
    }
    println!(
        "replay: {} recording(s), {}",
        files.len(),
        match worst {
            0 if args.verify => "all verified",
            0 => "all replayed",
            1 => "a replay diverged or panicked (see above)",
            2 => "a recording could not be read or followed (see above)",
            _ => "a recorded panic was reproduced (see above)",
        }
    );
    ExitCode::from(worst)
}

/// Replays one file; its exit code as [`main`] says.
fn replay_file(room_types: &[RoomType], path: &Path, verify: bool) -> u8 {
    let name = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{name}: cannot read: {e}");
            return 2;
        }
    };
    let recording = match format::read(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: {e}");
            return 2;
        }
    };
    let h = &recording.header;
    if h.server_version != env!("CARGO_PKG_VERSION") {
        eprintln!(
            "{name}: recorded by server {}, replayed by {}: a changed game may diverge",
            h.server_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let started = Instant::now();
    let result = replay(room_types, &recording, verify);
    let took = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => {
            let seconds = f64::from(report.ticks.1.wrapping_sub(report.ticks.0))
                / f64::from(h.tick_hz.max(1));
            let player_minutes = report.player_ticks as f64 / f64::from(h.tick_hz.max(1)) / 60.0;
            let mut line = format!(
                "{name}: {} room {}, ticks {}..{} ({seconds:.1} s of play), {} players ({player_minutes:.2} player-minutes), {} messages, {} bytes",
                h.room_type,
                h.room,
                report.ticks.0,
                report.ticks.1,
                report.players,
                report.messages,
                bytes.len()
            );
            if verify {
                let _ = write!(
                    line,
                    "; {} hashes and {} keyframes match",
                    report.hashes, report.keyframes
                );
            }
            for (from, to) in &report.gaps {
                let _ = write!(
                    line,
                    "; ticks {from}..{to} not recorded (dropped by the server)"
                );
            }
            let _ = write!(
                line,
                "; {}; replayed in {took:.2} s",
                match &report.end {
                    Some((kind, text)) if text.is_empty() => kind.describe().to_owned(),
                    Some((kind, text)) => format!("{}: {text}", kind.describe()),
                    None =>
                        "no end recorded (the room was still running, or the server was killed)"
                            .to_owned(),
                }
            );
            println!("{line}");
            match report.panic {
                Some(message) => {
                    println!(
                        "{name}: the room's panic is reproduced at tick {}: {message}",
                        report.ticks.1
                    );
                    3
                }
                None => 0,
            }
        }
        Err(failure) => {
            eprintln!("{name}: {failure}");
            match failure {
                ReplayFailure::Diverged { .. }
                | ReplayFailure::Panicked { .. }
                | ReplayFailure::NotReproduced(_) => 1,
                _ => 2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{ChunkWriter, Header};
    use game_api::{Ctx, Game, PlayerId};

    /// Counts its steps and sums its messages; its save is both.
    struct Tally(u32, u64);

    impl Game for Tally {
        type Config = u8;
        type Message = u32;
        type Event = ();

        fn create(_: &u8, _: &RoomOptions, seed: u64) -> Result<Self, String> {
            Ok(Self(0, seed))
        }
        fn restore(_: &u8, _: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
            let b: [u8; 12] = saved.try_into().map_err(|_| "twelve bytes".to_owned())?;
            Ok(Self(
                u32::from_le_bytes(b[..4].try_into().unwrap()),
                u64::from_le_bytes(b[4..].try_into().unwrap()),
            ))
        }
        fn save(&self) -> Vec<u8> {
            let mut out = self.0.to_le_bytes().to_vec();
            out.extend(self.1.to_le_bytes());
            out
        }
        fn join(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn leave(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn step(&mut self, messages: &[(PlayerId, u32)], _: &mut Ctx<'_, ()>) {
            self.0 += 1;
            self.1 = self
                .1
                .wrapping_add(messages.iter().map(|m| u64::from(m.1)).sum());
        }
        fn state(&mut self, _: PlayerId, _: &mut Vec<u8>) {
            if self.1 == VIEW_PANICS_AT {
                // Past the hook, as in the server's own panic test.
                std::panic::resume_unwind(Box::new("a sum that cannot be shown".to_owned()));
            }
        }
    }

    /// The sum whose view panics.
    const VIEW_PANICS_AT: u64 = 8;

    fn tally() -> RoomType {
        RoomType::new::<Tally>("tally", 0)
    }

    fn saved(steps: u32, sum: u64) -> Vec<u8> {
        Tally(steps, sum).save()
    }

    /// A recording of a new room (seed 5) in two chunks: a player joins
    /// and sends 3, two steps; then a chunk starting at `second_at` with
    /// a keyframe when `keyframe`, one step.
    fn recording(second_at: u32, keyframe: bool) -> Recording {
        let mut first = Vec::new();
        ChunkWriter::begin(&mut first, 0);
        ChunkWriter::keyframe(&mut first, &saved(0, 5));
        ChunkWriter::join_attempt(&mut first, 1);
        ChunkWriter::join(&mut first, 1);
        ChunkWriter::message(&mut first, 1, 1, &game_api::codec::to_vec(&3u32));
        ChunkWriter::step(&mut first);
        ChunkWriter::hash(&mut first, format::short_hash(&saved(1, 8)));
        ChunkWriter::step(&mut first);
        ChunkWriter::hash(&mut first, format::short_hash(&saved(2, 8)));
        let mut second = Vec::new();
        ChunkWriter::begin(&mut second, second_at);
        if keyframe {
            ChunkWriter::keyframe(&mut second, &saved(second_at, 100));
        }
        ChunkWriter::step(&mut second);
        ChunkWriter::hash(
            &mut second,
            format::short_hash(&saved(second_at + 1, if keyframe { 100 } else { 8 })),
        );
        let mut bytes = format::MAGIC.to_vec();
        bytes.extend(format::frame(&format::header_payload(&header())));
        bytes.extend(format::frame(&first));
        bytes.extend(format::frame(&second));
        format::read(&bytes).unwrap()
    }

    fn header() -> Header {
        Header {
            server_version: "test".into(),
            room_type: "tally".into(),
            config: tally().config_bytes(),
            room: 1,
            options: Vec::new(),
            seed: 5,
            tick_hz: 10,
            start_tick: 0,
            restored: false,
            hash_every: 1,
            started_unix_ms: 0,
        }
    }

    #[test]
    fn a_recording_verifies_and_counts_what_it_holds() {
        let report = replay(&[tally()], &recording(2, false), true).unwrap();
        assert_eq!(report.ticks, (0, 3));
        assert_eq!((report.hashes, report.keyframes), (3, 1));
        assert_eq!((report.players, report.messages), (1, 1));
        assert_eq!(report.player_ticks, 3);
        assert!(report.gaps.is_empty() && report.end.is_none());
    }

    #[test]
    fn a_gap_goes_on_from_the_keyframe_after_it_and_without_one_is_an_error() {
        let report = replay(&[tally()], &recording(40, true), true).unwrap();
        assert_eq!(report.gaps, vec![(2, 40)]);
        assert_eq!(report.ticks.1, 41);
        match replay(&[tally()], &recording(40, false), true) {
            Err(ReplayFailure::Unfollowable(what)) => {
                assert!(what.contains("ticks 2 to 40 are missing"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_seed_or_an_unknown_game_is_named() {
        let mut rec = recording(2, false);
        rec.header.seed = 6;
        match replay(&[tally()], &rec, true) {
            Err(ReplayFailure::Diverged { tick: 0, what }) => {
                assert!(what.contains("from byte 4 on"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        rec.header.room_type = "chess".into();
        assert_eq!(
            replay(&[tally()], &rec, true),
            Err(ReplayFailure::UnknownRoomType(
                "chess".into(),
                "tally".into()
            ))
        );
        rec.header.room_type = "tally".into();
        rec.header.config = vec![0xff, 0xff];
        assert!(matches!(
            replay(&[tally()], &rec, true),
            Err(ReplayFailure::Game(_))
        ));
    }

    #[test]
    fn a_panic_in_a_view_after_the_last_call_is_reproduced() {
        // The room panicked showing the state after the second step (the
        // sum is 8): its recording ends there.
        let rec = recording(2, false);
        let mut chunks = rec.decode();
        chunks.truncate(1);
        chunks[0].1.push(Record::End(
            EndKind::Panicked,
            "a sum that cannot be shown".into(),
        ));
        let rec = format::read(&format::write(&rec.header, &chunks)).unwrap();
        let report = replay(&[tally()], &rec, true).unwrap();
        assert_eq!(report.panic.as_deref(), Some("a sum that cannot be shown"));
        assert_eq!(report.ticks.1, 2);
    }

    #[test]
    fn a_first_chunk_without_a_keyframe_cannot_be_followed() {
        let rec = recording(2, false);
        let mut chunks = rec.decode();
        chunks[0].1.remove(0);
        let rec = format::read(&format::write(&rec.header, &chunks)).unwrap();
        assert!(matches!(
            replay(&[tally()], &rec, true),
            Err(ReplayFailure::Unfollowable(_))
        ));
    }
}
