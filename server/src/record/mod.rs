//! Recording rooms (`--record DIR`), and replaying their files.
//!
//! Every room of a recording server keeps a [`Recorder`]: each call the
//! room makes on its game (joins, drops, resumes, leaves, the messages it
//! lets through with their bytes as they arrived, and the steps) is
//! appended to a buffer before the call is made, a hash of the game's
//! state after every step, and a keyframe (the game's `save`) every few
//! seconds. About once a second the buffer goes, whole, to one writer
//! thread over a bounded queue; the writer compresses it and appends it to
//! the room's file ([`format`](mod@format)). The room never waits: when the queue is
//! full the chunk is dropped and counted, and the room's next chunk starts
//! with a keyframe, so that the recording goes on after a gap. A write that
//! fails (a full disk) stops that room's recording, never the room.
//!
//! [`replay`] reads a file and re-simulates it without any network
//! (`server replay FILE --verify`).

pub mod format;
pub mod replay;
pub mod viewer;

use crate::metrics::Metrics;
use format::{ChunkWriter, EndKind, Header};
use game_api::replay::Input;
use game_api::{DynGame, PlayerId};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Chunks waiting for the writer beyond this are dropped: at a chunk a
/// second per room, over ten seconds of a thousand rooms, and a bound on
/// the memory a stuck disk can cost.
const QUEUE: usize = 10_000;

/// How rooms are recorded.
#[derive(Clone, Debug)]
pub struct RecordSettings {
    /// Where the files go.
    pub dir: PathBuf,
    /// A state hash after every this many steps.
    pub hash_every: u32,
    /// A keyframe this often (rounded to whole ticks of each room type).
    pub keyframe_every: Duration,
    /// Most bytes one room's recording holds before compression; past
    /// them the recording ends (`EndKind::Full`) and the room goes on.
    pub max_bytes: u64,
}

/// The recordings of one server: where they go, and the writer thread.
pub struct Recordings {
    settings: RecordSettings,
    /// Chunks for the writer.
    tx: SyncSender<Job>,
    /// The writer, until [`Recordings::finish`] joins it.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// Numbers the files of this process.
    next_file: AtomicU64,
}

/// A chunk for the writer.
enum Job {
    Chunk {
        /// The recording's number in this process.
        file: u64,
        /// Its path; with its header on the recording's first chunk.
        open: Option<(Arc<Path>, Vec<u8>)>,
        /// The chunk, uncompressed.
        payload: Vec<u8>,
        /// Whether the recording ends with it.
        last: bool,
    },
    /// Everything before has been written: reply, then stop.
    Finish(std::sync::mpsc::Sender<()>),
}

impl Recordings {
    /// Creates `settings.dir` if needed and starts the writer thread.
    pub fn start(settings: RecordSettings, metrics: Arc<Metrics>) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(&settings.dir)?;
        let (recordings, rx) = Self::open(settings, metrics, QUEUE);
        let writer_metrics = recordings.metrics.clone();
        let writer = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_loop(rx, &writer_metrics))?;
        *recordings.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
        Ok(recordings)
    }

    /// Recordings whose chunks wait in a queue of `queue`, for a writer
    /// to take from the receiver.
    fn open(
        settings: RecordSettings,
        metrics: Arc<Metrics>,
        queue: usize,
    ) -> (Arc<Self>, Receiver<Job>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(queue);
        let recordings = Arc::new(Self {
            settings,
            tx,
            writer: Mutex::new(None),
            metrics,
            next_file: AtomicU64::new(0),
        });
        (recordings, rx)
    }

    /// Where the recordings go.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// A recorder for a new room: `header` says what it is (its
    /// `hash_every` is set here); `game` is the room's game, whose state is
    /// the recording's first keyframe.
    pub fn recorder(self: &Arc<Self>, mut header: Header, game: &dyn DynGame) -> Recorder {
        header.hash_every = self.settings.hash_every.max(1);
        let file = self.next_file.fetch_add(1, Relaxed);
        let name = format!(
            "{}-{}-{}.replay",
            header.room_type, header.room, header.started_unix_ms
        );
        let path: Arc<Path> = self.settings.dir.join(name).into();
        let tick_hz = f64::from(header.tick_hz.max(1));
        let keyframe_every = (self.settings.keyframe_every.as_secs_f64() * tick_hz).round() as u32;
        game.keep_message_bytes();
        let mut recorder = Recorder {
            recordings: self.clone(),
            file,
            path,
            header: Some(header.clone()),
            buf: Vec::with_capacity(4096),
            tick: header.start_tick,
            hash_every: header.hash_every.max(1),
            keyframe_every: keyframe_every.max(1),
            chunk_ticks: u32::from(header.tick_hz.max(1)),
            chunk_start: header.start_tick,
            keyframe_due: false,
            recorded: 0,
            done: false,
        };
        recorder.begin_chunk(Some(game));
        self.metrics.recordings_open.fetch_add(1, Relaxed);
        recorder
    }

    /// Waits (up to `timeout`) for every chunk sent so far to be written,
    /// then stops the writer. Called once the rooms have stopped.
    pub fn finish(&self, timeout: Duration) -> bool {
        let (reply, done) = std::sync::mpsc::channel();
        // Blocking send: at shutdown the rooms are gone, and the writer
        // drains the queue.
        if self.tx.send(Job::Finish(reply)).is_err() {
            return false;
        }
        let written = done.recv_timeout(timeout).is_ok();
        if written
            && let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            let _ = writer.join();
        }
        written
    }
}

/// One room's recording, kept by the room and written on its tick.
pub struct Recorder {
    recordings: Arc<Recordings>,
    file: u64,
    path: Arc<Path>,
    /// The header, until a chunk carrying it reaches the writer.
    header: Option<Header>,
    /// The chunk being built.
    buf: Vec<u8>,
    /// The room's tick.
    tick: u32,
    hash_every: u32,
    keyframe_every: u32,
    /// Ticks per chunk.
    chunk_ticks: u32,
    /// The tick the chunk being built started at.
    chunk_start: u32,
    /// A chunk was dropped: the next starts with a keyframe.
    keyframe_due: bool,
    /// Bytes handed to the writer so far (uncompressed).
    recorded: u64,
    /// Ended (or failed): nothing more is recorded.
    done: bool,
}

impl Recorder {
    /// The file this recording goes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn begin_chunk(&mut self, keyframe: Option<&dyn DynGame>) {
        self.buf.clear();
        self.chunk_start = self.tick;
        ChunkWriter::begin(&mut self.buf, self.tick);
        if let Some(game) = keyframe {
            ChunkWriter::keyframe(&mut self.buf, &game.save());
        }
    }

    /// A restored room's tick (before anything else is recorded): the
    /// recording starts over there, from the game's state.
    pub fn restart_at(&mut self, tick: u32, game: &dyn DynGame) {
        self.tick = tick;
        if let Some(header) = &mut self.header {
            header.start_tick = tick;
            header.restored = true;
        }
        self.begin_chunk(Some(game));
    }

    /// A call on a player (`join_attempt`, `join`, `drop_player`,
    /// `resume` or `leave`) is about to be made.
    pub fn call(&mut self, call: &Input) {
        if !self.done {
            ChunkWriter::input(&mut self.buf, call);
        }
    }

    /// A message goes to the next step.
    pub fn message(&mut self, player: PlayerId, seq: u32, data: &[u8]) {
        if !self.done {
            ChunkWriter::message(&mut self.buf, player, seq, data);
        }
    }

    /// The game is about to step.
    pub fn step(&mut self) {
        if !self.done {
            ChunkWriter::step(&mut self.buf);
        }
        self.tick = self.tick.wrapping_add(1);
    }

    /// The game has stepped: its hash (every `hash_every` ticks); at a
    /// chunk's end (a second of ticks, or a keyframe's tick) the chunk goes
    /// to the writer and the next begins, with a keyframe on the keyframe
    /// ticks and after a dropped chunk.
    pub fn stepped(&mut self, game: &dyn DynGame) {
        if self.done {
            return;
        }
        let keyframe_tick = self.tick.is_multiple_of(self.keyframe_every);
        let hash_now = self.tick.is_multiple_of(self.hash_every);
        let boundary =
            keyframe_tick || self.tick.wrapping_sub(self.chunk_start) >= self.chunk_ticks;
        let mut saved = hash_now.then(|| game.save());
        if let Some(saved) = &saved {
            ChunkWriter::hash(&mut self.buf, format::short_hash(saved));
        }
        if !boundary {
            return;
        }
        // A failed send sets `keyframe_due`: the chunk after a gap starts
        // with a keyframe, so a replay goes on from there.
        self.send(false);
        if self.done {
            return;
        }
        self.chunk_start = self.tick;
        ChunkWriter::begin(&mut self.buf, self.tick);
        if keyframe_tick || self.keyframe_due {
            let saved = saved.get_or_insert_with(|| game.save());
            ChunkWriter::keyframe(&mut self.buf, saved);
            self.keyframe_due = false;
        }
    }

    /// The recording ends: `kind` and its text are its last record, and
    /// everything goes to the writer.
    pub fn end(&mut self, kind: EndKind, text: &str) {
        if self.done {
            return;
        }
        ChunkWriter::end(&mut self.buf, kind, text);
        self.send(true);
        self.finish();
    }

    /// Stops recording (counted once).
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.recordings
                .metrics
                .recordings_open
                .fetch_sub(1, Relaxed);
        }
    }

    /// Hands the chunk being built to the writer, without waiting.
    fn send(&mut self, last: bool) {
        let limit = self.recordings.settings.max_bytes;
        let over_limit = !last && self.recorded + self.buf.len() as u64 > limit;
        // A chunk past what a reader accepts (a game whose state alone is
        // that large) ends the recording too.
        let too_big = self.buf.len() > format::MAX_PAYLOAD;
        if over_limit || too_big {
            tracing::warn!(path = %self.path.display(), limit, chunk = self.buf.len(),
                "room recording reached its size limit: the room goes on unrecorded");
            // The chunk's ticks are not recorded: the recording ends where
            // they begin, so that a replay reaches its end without a gap.
            self.buf.clear();
            ChunkWriter::begin(&mut self.buf, self.chunk_start);
            ChunkWriter::end(&mut self.buf, EndKind::Full, "");
            self.send(true);
            self.finish();
            return;
        }
        self.recorded += self.buf.len() as u64;
        let capacity = self.buf.capacity();
        let payload = std::mem::replace(&mut self.buf, Vec::with_capacity(capacity));
        let job = Job::Chunk {
            file: self.file,
            open: self
                .header
                .as_ref()
                .map(|h| (self.path.clone(), format::header_payload(h))),
            payload,
            last,
        };
        match self.recordings.tx.try_send(job) {
            Ok(()) => self.header = None,
            Err(TrySendError::Full(_)) => {
                self.recordings
                    .metrics
                    .record_chunks_dropped
                    .fetch_add(1, Relaxed);
                self.keyframe_due = true;
            }
            Err(TrySendError::Disconnected(_)) => self.finish(),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A room always ends its recording; this covers a room dropped
        // without running (a server dropped before it ran).
        self.end(EndKind::Stopped, "the room was dropped");
    }
}

/// The writer thread: compresses chunks and appends them to their files.
fn write_loop(rx: Receiver<Job>, metrics: &Metrics) {
    let mut files: HashMap<u64, (File, Arc<Path>)> = HashMap::new();
    let mut failed = std::collections::HashSet::new();
    while let Ok(job) = rx.recv() {
        let (file, open, payload, last) = match job {
            Job::Chunk {
                file,
                open,
                payload,
                last,
            } => (file, open, payload, last),
            Job::Finish(reply) => {
                let _ = reply.send(());
                return;
            }
        };
        if failed.contains(&file) {
            continue;
        }
        let mut bytes = Vec::new();
        if let Some((path, header)) = open {
            match File::create(&path) {
                Ok(f) => {
                    files.insert(file, (f, path));
                    bytes.extend_from_slice(format::MAGIC);
                    bytes.extend(format::frame(&header));
                }
                Err(e) => {
                    metrics.record_write_errors.fetch_add(1, Relaxed);
                    tracing::error!(path = %path.display(), cause = %e,
                        "cannot create a room recording: that room goes unrecorded");
                    failed.insert(file);
                    continue;
                }
            }
        }
        let Some((f, path)) = files.get_mut(&file) else {
            // Its first chunk, with the header, was dropped: nothing to
            // append to. (The recorder sends the header again.)
            continue;
        };
        bytes.extend(format::frame(&payload));
        match f.write_all(&bytes) {
            Ok(()) => {
                metrics.record_chunks_written.fetch_add(1, Relaxed);
                metrics
                    .record_bytes_written
                    .fetch_add(bytes.len() as u64, Relaxed);
            }
            Err(e) => {
                metrics.record_write_errors.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), cause = %e,
                    "room recording write failed: the rest of that room goes unrecorded");
                files.remove(&file);
                failed.insert(file);
                continue;
            }
        }
        if last {
            files.remove(&file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use format::Record;
    use game_api::{Ctx, Game, RoomOptions, RoomType};

    /// Counts its steps.
    struct Steps(u32);

    impl Game for Steps {
        type Config = ();
        type Message = u8;
        type Event = ();

        fn create(_: &(), _: &RoomOptions, _: u64) -> Result<Self, String> {
            Ok(Self(0))
        }
        fn restore(_: &(), _: &RoomOptions, _: &[u8]) -> Result<Self, String> {
            Err("not needed".into())
        }
        fn save(&self) -> Vec<u8> {
            self.0.to_le_bytes().to_vec()
        }
        fn join(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn leave(&mut self, _: PlayerId, _: &mut Ctx<'_, ()>) {}
        fn step(&mut self, _: &[(PlayerId, u8)], _: &mut Ctx<'_, ()>) {
            self.0 += 1;
        }
        fn state(&mut self, _: PlayerId, _: &mut Vec<u8>) {}
    }

    fn header() -> Header {
        Header {
            server_version: "test".into(),
            room_type: "steps".into(),
            config: Vec::new(),
            room: 3,
            options: Vec::new(),
            seed: 0,
            tick_hz: 2,
            start_tick: 0,
            restored: false,
            hash_every: 1,
            started_unix_ms: 9,
        }
    }

    /// The chunks in the queue: (first tick, records, carries the header).
    fn drain(rx: &Receiver<Job>) -> Vec<(u32, Vec<Record>, bool)> {
        rx.try_iter()
            .map(|job| match job {
                Job::Chunk { open, payload, .. } => {
                    let mut file = format::MAGIC.to_vec();
                    file.extend(format::frame(&format::header_payload(&header())));
                    file.extend(format::frame(&payload));
                    let (first_tick, records) = format::read(&file).unwrap().decode().remove(0);
                    (first_tick, records, open.is_some())
                }
                Job::Finish(_) => panic!("no finish was asked"),
            })
            .collect()
    }

    #[test]
    fn a_chunk_the_writer_cannot_take_is_counted_and_the_next_starts_with_a_keyframe() {
        let settings = RecordSettings {
            dir: std::env::temp_dir(),
            hash_every: 1,
            keyframe_every: Duration::from_secs(60),
            max_bytes: 1 << 20,
        };
        let metrics = Arc::new(Metrics::default());
        // Room for one chunk, and no writer taking it.
        let (recordings, rx) = Recordings::open(settings, metrics.clone(), 1);
        let mut game = RoomType::new::<Steps>("steps", ())
            .create(&RoomOptions::default(), 0, 8)
            .unwrap();
        let mut fx = game_api::Effects::new(0, 2);
        let mut recorder = recordings.recorder(header(), &*game);
        assert_eq!(metrics.recordings_open.load(Relaxed), 1);
        recorder.call(&Input::Join(1));
        // Three chunks of two ticks each (2 Hz): the first is queued, the
        // second dropped, the third queued after the first is taken.
        for tick in 1..=6 {
            recorder.step();
            game.step(fx.at(tick));
            recorder.stepped(&*game);
            if tick == 4 {
                assert_eq!(metrics.record_chunks_dropped.load(Relaxed), 1);
                let first = drain(&rx);
                assert_eq!(first.len(), 1);
                let (tick0, records, with_header) = &first[0];
                assert_eq!((*tick0, *with_header), (0, true));
                assert_eq!(records[1], Record::Input(Input::Join(1)));
            }
        }
        let after_gap = drain(&rx);
        assert_eq!(after_gap.len(), 1, "the chunk of ticks 4-6");
        let (tick4, records, with_header) = &after_gap[0];
        assert_eq!((*tick4, *with_header), (4, false));
        assert_eq!(
            records[0],
            Record::Keyframe(4u32.to_le_bytes().to_vec()),
            "the chunk after a gap starts with a keyframe"
        );
        recorder.end(EndKind::Closed, "");
        assert_eq!(metrics.recordings_open.load(Relaxed), 0);
        let last = drain(&rx);
        assert!(matches!(
            last[0].1.last(),
            Some(Record::End(EndKind::Closed, _))
        ));
    }
}
