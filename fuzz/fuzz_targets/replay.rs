//! Fuzzes the reader of room recordings and the re-simulation of what it
//! reads: `server::record::format::read` (a replay file's bytes, as
//! `server replay` reads them from disk: the magic, the zlib frames, the
//! header, the chunks' records) and, for a file that reads,
//! `server::record::replay::replay` with `--verify` and both games
//! registered (the header's room type, game configuration and options;
//! the keyframes into the games' `restore`; the recorded messages into the
//! games' decoders; every recorded call made on the game, and the hashes
//! and keyframes compared).
//!
//! An input is read as a replay file. An input that is not one (it does
//! not start with `format::MAGIC`) is also taken as a file unpacked: each
//! frame's payload uncompressed, after its length (u32, little-endian; a
//! last payload shorter than its length is taken as it is). The target
//! compresses each payload into a frame (`format::frame`) after the magic
//! and reads that file. Every frame of a file is a zlib stream with a
//! checksum, so a mutation of a file almost never reads back; the unpacked
//! form lets the fuzzer change the header's and the records' bytes
//! themselves. The seed corpus has every recording in both forms
//! (`fuzz/src/seeds.rs`).
//!
//! Asserts, for every input:
//! - nothing panics, in the reader or in the games: a panic of a game
//!   inside the replay is a crash too, whether the replay reports it
//!   (`ReplayFailure::Panicked`) or the recording claimed it (a last
//!   record `End` of kind `Panicked` makes the replay report the panic as
//!   reproduced): a recording's keyframes go to `Game::restore` and its
//!   messages to the game's decoder, which must refuse bad bytes with an
//!   error. (libfuzzer-sys's panic hook aborts at the panic itself, before
//!   the replay's `catch_unwind`; the checks below hold the same line
//!   where panics unwind);
//! - neither the reader nor the replay makes a single allocation larger
//!   than [`bound`] for the input's size (watched by the global allocator
//!   in `fuzz::alloc`): the file, and one chunk unpacked at a time, never
//!   more (records are decoded as they are read, not kept);
//! - a recording that reads writes back, through the format's writer
//!   (`format::header_payload`, `format::chunk_payload`, `format::frame`),
//!   to a file that reads to the same recording (the chunks' offsets
//!   aside: they depend on the compressed sizes).

#![no_main]

use game_api::RoomType;
use libfuzzer_sys::fuzz_target;
use server::record::format::{self, Recording};
use server::record::replay::{ReplayFailure, replay};
use std::sync::OnceLock;

#[global_allocator]
static ALLOCATOR: fuzz::alloc::Watched = fuzz::alloc::Watched;

/// Allowance for one allocation whatever the input's size: 1 MiB, for the
/// header's decoder (bincode, limited to 1 MiB) and the games' keyframe
/// decoders, which may preallocate up to serde's cap of 1 MiB for a
/// sequence whatever its claimed length; that also covers the largest
/// piece of the built-in games' own state for their default
/// configurations (the arena's pickup grid, 101² cells of 4 bytes). Plus
/// 64 KiB for error messages and bookkeeping.
const SLACK: usize = (1 << 20) + (64 << 10);

/// Allowance for one allocation per byte of input. The largest thing the
/// reader and the replay hold is one chunk unpacked (its records are
/// decoded one at a time): deflate expands a byte of its stream at most
/// 1,032 times, and a vector being filled has room for at most twice its
/// length. Keyframes and messages are parts of a chunk, no larger.
const PER_INPUT_BYTE: usize = 2 * 1032;

/// The largest single allocation allowed while reading or replaying an
/// input of `len` bytes: proportional to the input (and below
/// `format::MAX_PAYLOAD`, 16 MiB, twice over, whatever the input).
fn bound(len: usize) -> usize {
    SLACK + (PER_INPUT_BYTE * len).min(2 * format::MAX_PAYLOAD + 64)
}

/// Both games, registered as by default: the replay takes the game
/// configuration from the recording's header.
fn room_types() -> &'static [RoomType] {
    static TYPES: OnceLock<Vec<RoomType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        vec![
            arena::room_type(arena::ArenaConfig::default()),
            four::room_type(),
        ]
    })
}

fuzz_target!(
    init: {
        room_types();
    },
    |data: &[u8]| {
        file(data, data.len(), "file");
        if !data.starts_with(format::MAGIC) {
            file(&packed(data), data.len(), "unpacked input");
        }
    }
);

/// Reads `bytes` (an input of `len` bytes, in the form `form`) as a replay
/// file and, if it reads, writes it back and replays it, with the checks
/// of the module's comment.
fn file(bytes: &[u8], len: usize, form: &str) {
    fuzz::alloc::reset();
    let read = format::read(bytes);
    let largest = fuzz::alloc::largest();
    assert!(
        largest <= bound(len),
        "format::read allocated {largest} bytes at once for a {len}-byte input ({form}; {} bytes of file), past the bound of {}: {}",
        bytes.len(),
        bound(len),
        match &read {
            Ok(recording) => summary(recording),
            Err(e) => e.to_string(),
        }
    );
    let Ok(recording) = read else {
        return;
    };
    written_back(&recording);

    fuzz::alloc::reset();
    let replayed = replay(room_types(), &recording, true);
    let largest = fuzz::alloc::largest();
    match &replayed {
        Err(ReplayFailure::Panicked { tick, message }) => panic!(
            "a game panicked at tick {tick} on a recorded input ({form}; {}): {message}",
            summary(&recording)
        ),
        Ok(report) => {
            if let Some(message) = &report.panic {
                panic!(
                    "a game panicked at tick {} on a recorded input, which the recording claimed ({form}; {}): {message}",
                    report.ticks.1,
                    summary(&recording)
                );
            }
        }
        Err(_) => {}
    }
    assert!(
        largest <= bound(len),
        "replay allocated {largest} bytes at once for a {len}-byte input ({form}), past the bound of {}: {}; replayed: {replayed:?}",
        bound(len),
        summary(&recording)
    );
}

/// The file an unpacked input stands for: the magic, then each payload
/// compressed into a frame.
fn packed(data: &[u8]) -> Vec<u8> {
    let mut file = format::MAGIC.to_vec();
    let mut rest = data;
    while !rest.is_empty() {
        let (len, body) = match rest.split_first_chunk::<4>() {
            Some((len, body)) => (u32::from_le_bytes(*len) as usize, body),
            None => (rest.len(), rest),
        };
        let (payload, after) = body.split_at(len.min(body.len()));
        file.extend(format::frame(payload));
        rest = after;
    }
    file
}

/// Writes `recording` with the format's writer and reads it again: the
/// same header and records, chunk for chunk.
fn written_back(recording: &Recording) {
    let mut file = format::MAGIC.to_vec();
    file.extend(format::frame(&format::header_payload(&recording.header)));
    for (i, chunk) in recording.chunks.iter().enumerate() {
        let payload = format::chunk_payload(chunk.first_tick, records(recording, i));
        file.extend(format::frame(&payload));
    }
    let again = format::read(&file)
        .unwrap_or_else(|e| panic!("a recording written back does not read: {e}"));
    assert_eq!(again.header, recording.header, "the header written back");
    assert_eq!(
        again.chunks.len(),
        recording.chunks.len(),
        "the chunks written back"
    );
    for (i, (a, b)) in again.chunks.iter().zip(&recording.chunks).enumerate() {
        assert_eq!(
            (a.first_tick, a.starts_with_keyframe),
            (b.first_tick, b.starts_with_keyframe),
            "chunk {i} written back"
        );
        assert!(
            records(&again, i).into_iter().eq(records(recording, i)),
            "chunk {i}'s records written back"
        );
    }
    assert_eq!(again.end(), recording.end(), "the end written back");
}

/// The records of chunk `i` (which a recording that read has).
fn records(recording: &Recording, i: usize) -> format::Records {
    recording
        .records(i)
        .unwrap_or_else(|| panic!("chunk {i} of a recording that read"))
}

/// A recording in a line: its room and its size.
fn summary(recording: &Recording) -> String {
    let h = &recording.header;
    let records: usize = (0..recording.chunks.len())
        .map(|i| records(recording, i).count())
        .sum();
    format!(
        "a recording of room type {:?} ({} configuration bytes, options {:?}, seed {}, {} Hz, from tick {}{}), {} chunks, {records} records",
        h.room_type,
        h.config.len(),
        h.options,
        h.seed,
        h.tick_hz,
        h.start_tick,
        if h.restored { ", restored" } else { "" },
        recording.chunks.len()
    )
}
