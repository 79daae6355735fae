//! The replay file: what a recording room writes and `server replay` reads.
//!
//! ```text
//! file    = MAGIC frame*                 MAGIC = b"GAMEREPLAY\0\x01" (format 1)
//! frame   = len:u32le zlib(payload)      len = bytes of the zlib stream
//! payload = the header (first frame), or a chunk (every other frame)
//! header  = bincode of `Header`
//! chunk   = first_tick:u32le record*
//! record  = tag:u8 fields                varints are LEB128
//!   1 JoinAttempt player      2 Join player      3 Drop player
//!   4 Resume player           5 Leave player
//!   6 Message player seq len:varint bytes      (as the message arrived)
//!   7 Step                    (before the game steps: the tick advances)
//!   8 Hash u32le              (the state's hash after the last step)
//!   9 Keyframe len:varint bytes (the game's `save` at the current tick)
//!  10 End kind:u8 len:varint utf8               (the recording's last record)
//! ```
//!
//! A chunk is a second or so of the room; a chunk that starts with a
//! keyframe can be replayed on its own (seeking does), and a chunk whose
//! first tick is not where the one before stopped follows a gap (chunks
//! the server dropped rather than block its tick). Every record is written
//! before the call it stands for is made, so a recording of a room whose
//! game panicked ends with the call that panicked, then `End`.
//!
//! Reading never trusts the file: every length is checked against what is
//! left and against the format's bounds before anything is allocated, and
//! damage is reported with its byte offset ([`ReadError`]), never a panic.

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use game_api::PlayerId;
use game_api::replay::Input;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The first bytes of every replay file: a name, then the format version.
pub const MAGIC: &[u8; 12] = b"GAMEREPLAY\0\x01";

/// Largest compressed frame a reader accepts: its payload's bound, plus
/// what zlib adds to bytes it cannot compress.
pub const MAX_FRAME: usize = MAX_PAYLOAD + MAX_PAYLOAD / 64 + 64;

/// Largest payload a frame may decompress to: a chunk is about a second
/// of one room (a busy arena room writes tens of kilobytes), and a recorder
/// never writes a bigger one (it ends the recording instead).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// What a recording says about its room, first in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The server's version (`CARGO_PKG_VERSION`) that recorded it.
    pub server_version: String,
    /// The room type's name: the game.
    pub room_type: String,
    /// The room type's game configuration (`RoomType::config_bytes`).
    pub config: Vec<u8>,
    /// The room's id on the recording server.
    pub room: u32,
    /// The options the room was created with.
    pub options: Vec<(String, String)>,
    /// The game's seed.
    pub seed: u64,
    /// Ticks a second.
    pub tick_hz: u16,
    /// The tick the recording starts at: 0 for a new room, later for a room
    /// restored after a restart (its first record is then a keyframe).
    pub start_tick: u32,
    /// Whether the room was restored from a saved state rather than made
    /// new (a replay then starts from the first keyframe, not the seed).
    pub restored: bool,
    /// A hash follows every this many steps.
    pub hash_every: u32,
    /// When recording started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// The room closed: its last player left and its linger ran out.
    Closed = 1,
    /// The game ended the room (the text is its reason).
    Ended = 2,
    /// The server stopped (the room may go on from a saved state in a new
    /// recording).
    Stopped = 3,
    /// The game panicked in the call recorded just before (the text is the
    /// panic's message).
    Panicked = 4,
    /// The recording reached its size limit; the room went on unrecorded.
    Full = 5,
}

impl EndKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Closed,
            2 => Self::Ended,
            3 => Self::Stopped,
            4 => Self::Panicked,
            5 => Self::Full,
            _ => return None,
        })
    }

    /// How a person would say it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Closed => "the room closed",
            Self::Ended => "the game ended the room",
            Self::Stopped => "the server stopped",
            Self::Panicked => "the game panicked",
            Self::Full => "the recording reached its size limit",
        }
    }
}

/// One record of a chunk, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A call on the game, or a step.
    Input(Input),
    /// The state's hash after the last step.
    Hash(u32),
    /// The game's saved state at the current tick.
    Keyframe(Vec<u8>),
    /// The recording's end, and why.
    End(EndKind, String),
}

const JOIN_ATTEMPT: u8 = 1;
const JOIN: u8 = 2;
const DROP: u8 = 3;
const RESUME: u8 = 4;
const LEAVE: u8 = 5;
const MESSAGE: u8 = 6;
const STEP: u8 = 7;
const HASH: u8 = 8;
const KEYFRAME: u8 = 9;
const END: u8 = 10;

/// A recorded state hash: the low 32 bits of `game_api::replay::state_hash`
/// (4 bytes a tick; a divergence persists, so a 32-bit miss is caught on
/// the next tick anyway).
pub fn short_hash(saved: &[u8]) -> u32 {
    game_api::replay::state_hash(saved) as u32
}

/// Appends records to a chunk being built. Writing never fails.
pub struct ChunkWriter;

impl ChunkWriter {
    /// Starts a chunk at `first_tick` in `out`.
    pub fn begin(out: &mut Vec<u8>, first_tick: u32) {
        out.extend_from_slice(&first_tick.to_le_bytes());
    }

    /// A call on a player: `tag` is one of the player records.
    fn player(out: &mut Vec<u8>, tag: u8, player: PlayerId) {
        out.push(tag);
        varint(out, u64::from(player));
    }

    /// `join_attempt`.
    pub fn join_attempt(out: &mut Vec<u8>, player: PlayerId) {
        Self::player(out, JOIN_ATTEMPT, player);
    }

    /// `join`.
    pub fn join(out: &mut Vec<u8>, player: PlayerId) {
        Self::player(out, JOIN, player);
    }

    /// `drop_player`.
    pub fn drop_player(out: &mut Vec<u8>, player: PlayerId) {
        Self::player(out, DROP, player);
    }

    /// `resume`.
    pub fn resume(out: &mut Vec<u8>, player: PlayerId) {
        Self::player(out, RESUME, player);
    }

    /// `leave`.
    pub fn leave(out: &mut Vec<u8>, player: PlayerId) {
        Self::player(out, LEAVE, player);
    }

    /// A game message let through to the next step.
    pub fn message(out: &mut Vec<u8>, player: PlayerId, seq: u32, data: &[u8]) {
        out.push(MESSAGE);
        varint(out, u64::from(player));
        varint(out, u64::from(seq));
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    /// A step, before it is made.
    pub fn step(out: &mut Vec<u8>) {
        out.push(STEP);
    }

    /// Any call on the game.
    pub fn input(out: &mut Vec<u8>, input: &Input) {
        match input {
            Input::JoinAttempt(p) => Self::join_attempt(out, *p),
            Input::Join(p) => Self::join(out, *p),
            Input::Drop(p) => Self::drop_player(out, *p),
            Input::Resume(p) => Self::resume(out, *p),
            Input::Leave(p) => Self::leave(out, *p),
            Input::Message { player, seq, data } => Self::message(out, *player, *seq, data),
            Input::Step => Self::step(out),
        }
    }

    /// The state's hash after the last step.
    pub fn hash(out: &mut Vec<u8>, hash: u32) {
        out.push(HASH);
        out.extend_from_slice(&hash.to_le_bytes());
    }

    /// A keyframe: the game's `save` now.
    pub fn keyframe(out: &mut Vec<u8>, saved: &[u8]) {
        out.push(KEYFRAME);
        varint(out, saved.len() as u64);
        out.extend_from_slice(saved);
    }

    /// The end of the recording.
    pub fn end(out: &mut Vec<u8>, kind: EndKind, text: &str) {
        out.push(END);
        out.push(kind as u8);
        varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A frame of the file: `payload` compressed, after its length. Level 1:
/// recordings are mostly small repeated records, which the fastest level
/// already packs well, and the writer's thread shares the machine with
/// the rooms.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 4];
    let mut z = ZlibEncoder::new(out, Compression::new(1));
    // Writing into a vector cannot fail.
    z.write_all(payload).expect("writing to memory");
    out = z.finish().expect("writing to memory");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// The header's frame payload.
pub fn header_payload(header: &Header) -> Vec<u8> {
    bincode::serde::encode_to_vec(header, bincode::config::standard())
        .expect("a header always encodes")
}

/// What is wrong with a replay file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not a replay file, or one of another format version.
    #[error("not a replay file of format 1 (it starts {0:02x?})")]
    NotReplay(Vec<u8>),
    /// The file ends inside a frame.
    #[error(
        "truncated: the frame at byte {offset} needs {needed} bytes, {left} are left (the server may have stopped while writing it)"
    )]
    Truncated {
        /// Where the frame starts.
        offset: u64,
        /// Bytes it needs (its length field included).
        needed: u64,
        /// Bytes left in the file from `offset`.
        left: u64,
    },
    /// A frame or record is damaged.
    #[error("corrupt at byte {offset} (chunk {chunk}): {what}")]
    Corrupt {
        /// Where the frame holding the damage starts.
        offset: u64,
        /// The chunk's number (0 is the header).
        chunk: usize,
        /// What is wrong.
        what: String,
    },
    /// The file has no header frame.
    #[error("the file has no header")]
    NoHeader,
}

/// A chunk as read: where it is and what it starts with. Its records are
/// decoded when asked for ([`Recording::records`]), one chunk at a time,
/// so a recording's memory is its file and one chunk (a file that
/// compresses well cannot make the reader hold all of it unpacked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The tick at its start.
    pub first_tick: u32,
    /// Whether its first record is a keyframe (a replay can start there).
    pub starts_with_keyframe: bool,
    /// Where its frame starts in the file.
    pub offset: u64,
    /// Its zlib stream in the file.
    frame: std::ops::Range<usize>,
}

/// A whole recording, read and checked for damage (not yet replayed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// What it says about its room.
    pub header: Header,
    /// Its chunks, in order.
    pub chunks: Vec<Chunk>,
    /// Its last record, if that is an end: how and why it ended.
    end: Option<(EndKind, String)>,
    /// The file.
    bytes: Vec<u8>,
}

impl Recording {
    /// How the recording ended, if it did (a file without an end belongs
    /// to a room still running, or to a server that was killed).
    pub fn end(&self) -> Option<(EndKind, &str)> {
        self.end.as_ref().map(|(kind, text)| (*kind, text.as_str()))
    }

    /// The records of chunk `index`, decoded as they are read. The chunk
    /// was checked when the file was read, so this cannot fail but for an
    /// index past the end.
    pub fn records(&self, index: usize) -> Option<Records> {
        let chunk = self.chunks.get(index)?;
        let payload = inflate(&self.bytes[chunk.frame.clone()]).ok()?;
        Some(Records { payload, at: 4 })
    }

    /// Every chunk's first tick and records, decoded (for tools and tests
    /// that change a recording; see [`write()`]).
    pub fn decode(&self) -> Vec<(u32, Vec<Record>)> {
        (0..self.chunks.len())
            .filter_map(|i| Some((self.chunks[i].first_tick, self.records(i)?.collect())))
            .collect()
    }
}

/// A file of `header` and `chunks` (each its first tick and records), as
/// a recording room would write it.
pub fn write(header: &Header, chunks: &[(u32, Vec<Record>)]) -> Vec<u8> {
    let mut file = MAGIC.to_vec();
    file.extend(frame(&header_payload(header)));
    for (first_tick, records) in chunks {
        file.extend(frame(&chunk_payload(*first_tick, records)));
    }
    file
}

/// A chunk's payload (before compression): `records` from `first_tick`.
pub fn chunk_payload<R: std::borrow::Borrow<Record>>(
    first_tick: u32,
    records: impl IntoIterator<Item = R>,
) -> Vec<u8> {
    let mut out = Vec::new();
    ChunkWriter::begin(&mut out, first_tick);
    for record in records {
        match record.borrow() {
            Record::Input(input) => ChunkWriter::input(&mut out, input),
            Record::Hash(h) => ChunkWriter::hash(&mut out, *h),
            Record::Keyframe(saved) => ChunkWriter::keyframe(&mut out, saved),
            Record::End(kind, text) => ChunkWriter::end(&mut out, *kind, text),
        }
    }
    out
}

/// A chunk's records, decoded one at a time.
#[derive(Clone, Debug)]
pub struct Records {
    payload: Vec<u8>,
    at: usize,
}

impl Records {
    /// Whether nothing but the recording's end is left.
    pub fn only_end_left(&self) -> bool {
        let mut rest = self.clone();
        rest.all(|r| matches!(r, Record::End(..)))
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut r = Cursor {
            bytes: &self.payload,
            at: self.at,
        };
        if r.done() {
            return None;
        }
        // Checked when the file was read: an error here cannot happen, and
        // would end the chunk rather than panic.
        let record = next_record(&mut r).ok()?;
        self.at = r.at;
        Some(record)
    }
}

/// Reads a whole replay file from its bytes, checking every frame and
/// record.
pub fn read(bytes: &[u8]) -> Result<Recording, ReadError> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(ReadError::NotReplay(
            bytes[..bytes.len().min(MAGIC.len())].to_vec(),
        ));
    };
    let mut offset = MAGIC.len();
    let mut rest = rest;
    let mut header = None;
    let mut chunks = Vec::new();
    let mut end = None;
    let mut index = 0usize;
    while !rest.is_empty() {
        let at = offset as u64;
        let corrupt = |what: String| ReadError::Corrupt {
            offset: at,
            chunk: index,
            what,
        };
        if rest.len() < 4 {
            return Err(ReadError::Truncated {
                offset: at,
                needed: 4,
                left: rest.len() as u64,
            });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME {
            return Err(corrupt(format!(
                "a frame of {len} bytes, more than the {MAX_FRAME} a recording writes"
            )));
        }
        if rest.len() - 4 < len {
            return Err(ReadError::Truncated {
                offset: at,
                needed: 4 + len as u64,
                left: rest.len() as u64,
            });
        }
        let frame = offset + 4..offset + 4 + len;
        let payload = inflate(&bytes[frame.clone()]).map_err(corrupt)?;
        if end.is_some() {
            return Err(corrupt("data after the recording's end".into()));
        }
        match &header {
            None => {
                let (h, used): (Header, usize) = bincode::serde::decode_from_slice(
                    &payload,
                    bincode::config::standard().with_limit::<{ 1 << 20 }>(),
                )
                .map_err(|e| corrupt(format!("the header does not decode: {e}")))?;
                if used != payload.len() {
                    return Err(corrupt("the header has bytes after it".into()));
                }
                header = Some(h);
            }
            Some(_) => {
                let (chunk, last) = check_chunk(&payload, at, frame).map_err(corrupt)?;
                end = last;
                chunks.push(chunk);
            }
        }
        offset += 4 + len;
        rest = &rest[4 + len..];
        index += 1;
    }
    Ok(Recording {
        header: header.ok_or(ReadError::NoHeader)?,
        chunks,
        end,
        bytes: bytes.to_vec(),
    })
}

fn inflate(z: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut d = ZlibDecoder::new(z).take(MAX_PAYLOAD as u64 + 1);
    d.read_to_end(&mut out)
        .map_err(|e| format!("the frame does not decompress: {e}"))?;
    if out.len() > MAX_PAYLOAD {
        return Err(format!(
            "the frame decompresses to more than {MAX_PAYLOAD} bytes"
        ));
    }
    Ok(out)
}

/// Checks every record of a chunk's payload without keeping them: the
/// chunk, and its end record if it has one.
fn check_chunk(
    payload: &[u8],
    offset: u64,
    frame: std::ops::Range<usize>,
) -> Result<(Chunk, Option<(EndKind, String)>), String> {
    let mut r = Cursor {
        bytes: payload,
        at: 0,
    };
    let first_tick = r.u32()?;
    let starts_with_keyframe = payload.get(4) == Some(&KEYFRAME);
    let mut end = None;
    while !r.done() {
        if end.is_some() {
            return Err("records after the recording's end".into());
        }
        if let Record::End(kind, text) = next_record(&mut r)? {
            end = Some((kind, text));
        }
    }
    let chunk = Chunk {
        first_tick,
        starts_with_keyframe,
        offset,
        frame,
    };
    Ok((chunk, end))
}

/// The record at the cursor.
fn next_record(r: &mut Cursor<'_>) -> Result<Record, String> {
    let at = r.at;
    let tag = r.u8()?;
    Ok(match tag {
        JOIN_ATTEMPT => Record::Input(Input::JoinAttempt(r.player()?)),
        JOIN => Record::Input(Input::Join(r.player()?)),
        DROP => Record::Input(Input::Drop(r.player()?)),
        RESUME => Record::Input(Input::Resume(r.player()?)),
        LEAVE => Record::Input(Input::Leave(r.player()?)),
        MESSAGE => {
            let player = r.player()?;
            let seq = r.u32_varint()?;
            let data = r.bytes()?.to_vec();
            Record::Input(Input::Message { player, seq, data })
        }
        STEP => Record::Input(Input::Step),
        HASH => Record::Hash(r.u32()?),
        KEYFRAME => Record::Keyframe(r.bytes()?.to_vec()),
        END => {
            let kind = r.u8()?;
            let kind =
                EndKind::from_u8(kind).ok_or_else(|| format!("an end of unknown kind {kind}"))?;
            let text = std::str::from_utf8(r.bytes()?)
                .map_err(|_| "an end whose text is not UTF-8".to_owned())?;
            Record::End(kind, text.to_owned())
        }
        other => {
            return Err(format!(
                "unknown record tag {other} at byte {at} of the chunk"
            ));
        }
    })
}

/// Reads a chunk's fields, every one checked against what is left.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() - self.at < n {
            return Err(format!(
                "a record at byte {} runs past the chunk's end",
                self.at
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("a number at byte {} is too long", self.at))
    }

    fn u32_varint(&mut self) -> Result<u32, String> {
        let at = self.at;
        u32::try_from(self.varint()?).map_err(|_| format!("a number at byte {at} is too large"))
    }

    fn player(&mut self) -> Result<PlayerId, String> {
        self.u32_varint()
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| "a length too large".to_owned())?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            server_version: "0.1.0".into(),
            room_type: "arena".into(),
            config: vec![1, 2, 3],
            room: 7,
            options: vec![("pace".into(), "fast".into())],
            seed: 42,
            tick_hz: 30,
            start_tick: 0,
            restored: false,
            hash_every: 1,
            started_unix_ms: 1,
        }
    }

    /// A small file: the header, a chunk of every record but the end, and
    /// a last chunk with the end.
    fn sample() -> Vec<u8> {
        let mut file = MAGIC.to_vec();
        file.extend(frame(&header_payload(&header())));
        let mut c = Vec::new();
        ChunkWriter::begin(&mut c, 0);
        ChunkWriter::keyframe(&mut c, b"saved");
        ChunkWriter::join_attempt(&mut c, 1);
        ChunkWriter::join(&mut c, 1);
        ChunkWriter::message(&mut c, 1, 300, &[9, 8, 7]);
        ChunkWriter::step(&mut c);
        ChunkWriter::hash(&mut c, 0xdead_beef);
        ChunkWriter::drop_player(&mut c, 1);
        ChunkWriter::resume(&mut c, 1);
        ChunkWriter::leave(&mut c, u32::MAX);
        file.extend(frame(&c));
        let mut c = Vec::new();
        ChunkWriter::begin(&mut c, 1);
        ChunkWriter::step(&mut c);
        ChunkWriter::end(&mut c, EndKind::Panicked, "boom ✓");
        file.extend(frame(&c));
        file
    }

    #[test]
    fn a_file_reads_back_as_written() {
        let rec = read(&sample()).unwrap();
        assert_eq!(rec.header, header());
        assert_eq!(rec.chunks.len(), 2);
        assert!(rec.chunks[0].starts_with_keyframe);
        assert!(!rec.chunks[1].starts_with_keyframe);
        let decoded = rec.decode();
        assert_eq!(
            decoded[0].1,
            vec![
                Record::Keyframe(b"saved".to_vec()),
                Record::Input(Input::JoinAttempt(1)),
                Record::Input(Input::Join(1)),
                Record::Input(Input::Message {
                    player: 1,
                    seq: 300,
                    data: vec![9, 8, 7]
                }),
                Record::Input(Input::Step),
                Record::Hash(0xdead_beef),
                Record::Input(Input::Drop(1)),
                Record::Input(Input::Resume(1)),
                Record::Input(Input::Leave(u32::MAX)),
            ]
        );
        assert_eq!(rec.chunks[1].first_tick, 1);
        assert_eq!(rec.end(), Some((EndKind::Panicked, "boom ✓")));
        // Written back from its records, the file is the same file.
        assert_eq!(write(&rec.header, &decoded), sample());
        assert!(!rec.records(0).unwrap().only_end_left());
        let mut last = rec.records(1).unwrap();
        assert_eq!(last.next(), Some(Record::Input(Input::Step)));
        assert!(last.only_end_left());
        assert!(rec.records(2).is_none());
    }

    #[test]
    fn damage_is_an_error_with_its_place_never_a_panic() {
        let good = sample();
        assert!(matches!(read(b"hello"), Err(ReadError::NotReplay(_))));
        assert_eq!(read(MAGIC), Err(ReadError::NoHeader));
        // Every truncation is an error, except at a frame boundary (a file
        // still being written, or cut by a kill, reads up to there).
        let mut boundaries = vec![MAGIC.len()];
        let mut at = MAGIC.len();
        while at < good.len() {
            let len = u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len;
            boundaries.push(at);
        }
        for cut in MAGIC.len() + 1..good.len() {
            let result = read(&good[..cut]);
            if boundaries.contains(&cut) {
                assert!(result.is_ok(), "cut at a frame boundary {cut}");
            } else {
                assert!(
                    matches!(result, Err(ReadError::Truncated { .. })),
                    "cut at {cut}: {result:?}"
                );
            }
        }
        // Every single flipped bit past the magic is caught (zlib's
        // checksum, or the lengths) or, where it lands in a length that
        // still fits, reads as something else: never a panic.
        for i in MAGIC.len()..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                let _ = read(&bad);
            }
        }
        // A frame claiming more than the format allows is refused before
        // anything is allocated.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read(&huge), Err(ReadError::Corrupt { .. })));
        // A small frame that unpacks past the bound is refused as it
        // unpacks.
        let mut bomb = MAGIC.to_vec();
        bomb.extend(frame(&header_payload(&header())));
        let mut payload = vec![0; 4];
        payload.resize(MAX_PAYLOAD + 1, STEP);
        let packed = frame(&payload);
        assert!(packed.len() < MAX_PAYLOAD / 16, "{} bytes", packed.len());
        bomb.extend(packed);
        match read(&bomb) {
            Err(ReadError::Corrupt { what, .. }) => assert!(what.contains("more than"), "{what}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_chunks_name_what_is_wrong() {
        let chunk_file = |payload: &[u8]| {
            let mut file = MAGIC.to_vec();
            file.extend(frame(&header_payload(&header())));
            file.extend(frame(payload));
            read(&file)
        };
        let err = |payload: &[u8]| match chunk_file(payload) {
            Err(ReadError::Corrupt { what, chunk, .. }) => {
                assert_eq!(chunk, 1);
                what
            }
            other => panic!("{other:?}"),
        };
        assert!(err(&[0, 0]).contains("runs past"));
        assert!(err(&[0, 0, 0, 0, 99]).contains("unknown record tag 99"));
        assert!(err(&[0, 0, 0, 0, MESSAGE, 1, 1, 50, 1]).contains("runs past"));
        assert!(err(&[0, 0, 0, 0, JOIN, 0xff, 0xff, 0xff, 0xff, 0x7f]).contains("too large"));
        assert!(err(&[0, 0, 0, 0, END, 9, 0]).contains("unknown kind"));
        assert!(err(&[0, 0, 0, 0, END, 1, 0, STEP]).contains("after the recording's end"));
        let mut long = vec![0, 0, 0, 0, JOIN];
        long.extend([0x80; 11]);
        assert!(err(&long).contains("too long"));
    }
}
