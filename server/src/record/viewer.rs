//! Watching recordings in the browser: `/replay/ID`.
//!
//! A recording is played to a WebSocket that speaks the game protocol's
//! server side (`/replay/ID/ws`), so that the game's own page shows it:
//! the page connects as it would to a room, gets a `Welcome` for the
//! player it follows and then that player's states (and events) at the
//! pace the viewer chose. What the page sends is ignored but for pings.
//!
//! Each viewer is a *stream* (its id is the viewer's choice, in the
//! socket's query): where it is in the recording, how fast it plays, and
//! whether it is paused. The viewer page changes these with
//! `POST /replay/stream/ID?pause=..&speed=..&seek=..` and reads them with
//! `GET /replay/stream/ID`; a stream outlives its socket (the page
//! reconnects to follow another player, and goes on where it was).
//! Seeking restores the game from the last keyframe at or before the tick
//! and re-simulates up to it, without sending anything.

use super::format::{self, Record, Recording, Records};
use super::replay::{game_of, start_game};
use crate::room::mailbox::Mailbox;
use game_api::replay::{Input, Replayer};
use game_api::{PlayerId, RoomOptions, RoomType, Target};
use protocol::{ResumeToken, ServerMsg, State, Welcome};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Speeds a viewer may choose between.
pub const MIN_SPEED: f64 = 0.25;
/// See [`MIN_SPEED`].
pub const MAX_SPEED: f64 = 4.0;

/// Streams kept at once; the oldest idle one goes first beyond this.
const MAX_STREAMS: usize = 256;

/// A stream nobody has connected to or controlled for this long is
/// forgotten.
const STREAM_IDLE: Duration = Duration::from_secs(600);

/// Largest recording a viewer loads (a day of a busy room is far less).
const MAX_RECORDING_BYTES: u64 = 512 << 20;

/// What `/replay/ID/info` tells a viewer page.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// The recording's id (its file name without `.replay`).
    pub id: String,
    /// Its room type, and the page that shows it.
    pub room_type: String,
    /// Where the room type's page is served.
    pub page: Option<&'static str>,
    /// The room's id.
    pub room: u32,
    /// Ticks a second.
    pub tick_hz: u16,
    /// The first tick and the last.
    pub start_tick: u32,
    /// See `start_tick`.
    pub end_tick: u32,
    /// Every player that was in the game, when it came and when it left
    /// (`null` for one there at the end).
    pub players: Vec<PlayerSpan>,
    /// How the recording ended, in words (`null` when it did not).
    pub end: Option<String>,
}

/// A player's time in a recorded game.
#[derive(Clone, Debug, Serialize)]
pub struct PlayerSpan {
    /// The player.
    pub id: PlayerId,
    /// The tick it joined (or the recording's first, for one already in).
    pub from: u32,
    /// The tick it left.
    pub to: Option<u32>,
}

/// A recording read for viewing.
struct Loaded {
    recording: Recording,
    room_type: RoomType,
    options: RoomOptions,
    info: Info,
}

/// Where a stream is and how it plays.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Control {
    /// The tick shown last.
    pub tick: u32,
    /// The recording's last tick.
    pub end_tick: u32,
    /// Whether it is paused.
    pub paused: bool,
    /// Ticks played per tick of the room's own pace (0.25 to 4).
    pub speed: f64,
    /// Bumped by every seek: a feed that sees a new one starts over at
    /// `tick`.
    #[serde(skip)]
    seeks: u64,
}

/// One viewer's stream.
struct Stream {
    loaded: Arc<Loaded>,
    control: Mutex<Control>,
    changed: Notify,
    used: Mutex<Instant>,
}

/// The recordings in `--record`'s directory, and their viewers' streams.
pub struct Viewer {
    dir: PathBuf,
    room_types: Vec<RoomType>,
    pages: BTreeMap<String, &'static str>,
    streams: Mutex<HashMap<String, Arc<Stream>>>,
}

/// Why a recording cannot be watched: the HTTP status and the words.
pub type Refused = (u16, String);

fn not_found(what: impl Into<String>) -> Refused {
    (404, what.into())
}

impl Viewer {
    /// Viewing of the recordings in `dir`, made with `room_types`.
    pub fn new(dir: PathBuf, room_types: Vec<RoomType>) -> Self {
        let pages = room_types
            .iter()
            .filter_map(|t| Some((t.name().to_owned(), t.page_path()?)))
            .collect();
        Self {
            dir,
            room_types,
            pages,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The recordings, newest first: `(id, bytes)`.
    pub fn list(&self) -> Vec<(String, u64)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, u64, std::time::SystemTime)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".replay")?.to_owned();
                let meta = e.metadata().ok()?;
                Some((id, meta.len(), meta.modified().ok()?))
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.2));
        found.into_iter().map(|(id, len, _)| (id, len)).collect()
    }

    /// The path of recording `id`, if `id` can name one (letters, digits,
    /// `-` and `_`: never a path of its own).
    fn path(&self, id: &str) -> Result<PathBuf, Refused> {
        let valid = !id.is_empty()
            && id.len() <= 200
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(not_found("no such recording"));
        }
        Ok(self.dir.join(format!("{id}.replay")))
    }

    /// Reads recording `id` and works out what a viewer needs to know.
    fn load(&self, id: &str) -> Result<Loaded, Refused> {
        let path = self.path(id)?;
        let bytes = read_limited(&path).map_err(|e| not_found(format!("{id}: {e}")))?;
        let recording =
            format::read(&bytes).map_err(|e| (422, format!("{id} cannot be read: {e}")))?;
        let (room_type, options) =
            game_of(&self.room_types, &recording.header).map_err(|e| (422, e.to_string()))?;
        let info = survey(
            id,
            &recording,
            self.pages.get(&recording.header.room_type).copied(),
        );
        Ok(Loaded {
            recording,
            room_type,
            options,
            info,
        })
    }

    /// `/replay/ID/info`.
    pub fn info(&self, id: &str) -> Result<Info, Refused> {
        Ok(self.load(id)?.info)
    }

    /// Stream `id`, marked as used now.
    fn used(&self, id: &str) -> Option<Arc<Stream>> {
        let stream = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)?
            .clone();
        *stream.used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Some(stream)
    }

    /// A stream's state now, for `GET /replay/stream/ID`.
    pub fn control(&self, stream: &str) -> Option<Control> {
        let stream = self.used(stream)?;
        let control = *stream.control.lock().unwrap_or_else(|e| e.into_inner());
        Some(control)
    }

    /// Changes a stream (`POST /replay/stream/ID`): pause or play, its
    /// speed (clamped to 0.25-4), a tick to seek to (clamped to the
    /// recording).
    pub fn steer(
        &self,
        stream: &str,
        pause: Option<bool>,
        speed: Option<f64>,
        seek: Option<u32>,
    ) -> Option<Control> {
        let stream = self.used(stream)?;
        let control = {
            let mut c = stream.control.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pause) = pause {
                c.paused = pause;
            }
            if let Some(speed) = speed.filter(|s| s.is_finite()) {
                c.speed = speed.clamp(MIN_SPEED, MAX_SPEED);
            }
            if let Some(tick) = seek {
                c.tick = tick.clamp(stream.loaded.info.start_tick, c.end_tick);
                c.seeks += 1;
            }
            *c
        };
        stream.changed.notify_waiters();
        Some(control)
    }

    /// Opens (or goes on with) stream `stream_id` of recording `id` for a
    /// socket whose mailbox is `mailbox`, following `follow` (by default
    /// the first player the recording has): the `Welcome` to send, and
    /// the feed to run while the socket lasts.
    pub fn open(
        &self,
        id: &str,
        stream_id: &str,
        follow: Option<PlayerId>,
        start: StartAt,
    ) -> Result<(Welcome, Feed), Refused> {
        let stream = self.stream(id, stream_id, start)?;
        let info = &stream.loaded.info;
        let follow = match follow {
            Some(p) if info.players.iter().any(|s| s.id == p) => p,
            Some(p) => return Err(not_found(format!("player {p} is not in this recording"))),
            None => info
                .players
                .first()
                .map(|s| s.id)
                .ok_or_else(|| not_found("nobody played in this recording"))?,
        };
        let tick = stream
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick;
        let playback = Playback::at(&stream.loaded, tick).map_err(|e| (422, e))?;
        let mut game = Vec::new();
        playback.game.welcome(follow, &mut game);
        let welcome = Welcome {
            version: protocol::PROTOCOL_VERSION,
            player_id: follow,
            room_id: info.room,
            room_type: info.room_type.clone(),
            invite_code: None,
            resume_token: ResumeToken([0; 16]),
            resumed: false,
            tick_hz: stream.loaded.recording.header.tick_hz,
            game,
        };
        Ok((
            welcome,
            Feed {
                stream,
                follow,
                playback,
            },
        ))
    }

    /// The stream `stream_id`, made for recording `id` if new (or if it was
    /// another recording's).
    fn stream(&self, id: &str, stream_id: &str, start: StartAt) -> Result<Arc<Stream>, Refused> {
        let valid = !stream_id.is_empty()
            && stream_id.len() <= 64
            && stream_id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err((400, "a stream id is 1 to 64 letters and digits".into()));
        }
        {
            let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = streams.get(stream_id)
                && s.loaded.info.id == id
            {
                *s.used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                return Ok(s.clone());
            }
        }
        let loaded = Arc::new(self.load(id)?);
        let (first, last) = (loaded.info.start_tick, loaded.info.end_tick);
        let stream = Arc::new(Stream {
            control: Mutex::new(Control {
                tick: start.tick.unwrap_or(first).clamp(first, last),
                end_tick: last,
                paused: start.paused,
                speed: start.speed.clamp(MIN_SPEED, MAX_SPEED),
                seeks: 0,
            }),
            loaded,
            changed: Notify::new(),
            used: Mutex::new(Instant::now()),
        });
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        streams.retain(|_, s| {
            now.duration_since(*s.used.lock().unwrap_or_else(|e| e.into_inner())) < STREAM_IDLE
        });
        if streams.len() >= MAX_STREAMS
            && let Some(oldest) = streams
                .iter()
                .min_by_key(|(_, s)| *s.used.lock().unwrap_or_else(|e| e.into_inner()))
                .map(|(k, _)| k.clone())
        {
            streams.remove(&oldest);
        }
        streams.insert(stream_id.to_owned(), stream.clone());
        Ok(stream)
    }
}

/// Where a new stream starts.
#[derive(Clone, Copy, Debug)]
pub struct StartAt {
    /// The tick (the recording's first by default).
    pub tick: Option<u32>,
    /// Its speed.
    pub speed: f64,
    /// Whether it starts paused.
    pub paused: bool,
}

/// Reads a file of at most [`MAX_RECORDING_BYTES`].
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORDING_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORDING_BYTES {
        return Err(std::io::Error::other("too large to view"));
    }
    Ok(bytes)
}

/// What a viewer needs to know of a recording: its ticks and players.
fn survey(id: &str, recording: &Recording, page: Option<&'static str>) -> Info {
    let header = &recording.header;
    let mut tick = header.start_tick;
    let mut spans: BTreeMap<PlayerId, PlayerSpan> = BTreeMap::new();
    for (c, chunk) in recording.chunks.iter().enumerate() {
        tick = chunk.first_tick;
        for record in recording.records(c).into_iter().flatten() {
            match record {
                Record::Input(Input::Step) => tick = tick.wrapping_add(1),
                Record::Input(
                    Input::Join(p)
                    | Input::Drop(p)
                    | Input::Resume(p)
                    | Input::Message { player: p, .. },
                ) => {
                    spans.entry(p).or_insert(PlayerSpan {
                        id: p,
                        from: tick,
                        to: None,
                    });
                }
                Record::Input(Input::Leave(p)) => {
                    if let Some(span) = spans.get_mut(&p) {
                        span.to = Some(tick);
                    }
                }
                _ => {}
            }
        }
    }
    Info {
        id: id.to_owned(),
        room_type: header.room_type.clone(),
        page,
        room: header.room,
        tick_hz: header.tick_hz,
        start_tick: header.start_tick,
        end_tick: tick,
        players: spans.into_values().collect(),
        end: recording.end().map(|(kind, text)| {
            if text.is_empty() {
                kind.describe().to_owned()
            } else {
                format!("{}: {text}", kind.describe())
            }
        }),
    }
}

/// A game being played back: the replayer and where it is in the
/// recording.
struct Playback {
    loaded: Arc<Loaded>,
    game: Replayer,
    /// The chunk being played, and its records still to apply.
    chunk: usize,
    records: Records,
}

impl Playback {
    /// The game at `tick`: made from the last keyframe at or before it,
    /// then stepped to it.
    fn at(loaded: &Arc<Loaded>, tick: u32) -> Result<Self, String> {
        let start = loaded
            .recording
            .chunks
            .iter()
            .rposition(|c| c.first_tick <= tick && c.starts_with_keyframe)
            .ok_or("the recording has no keyframe to start from")?;
        let mut playback = Self::from_chunk(loaded, start, start == 0)?;
        while playback.game.tick() < tick && playback.advance()? {}
        Ok(playback)
    }

    /// The game at the start of chunk `c`, which begins with a keyframe.
    fn from_chunk(loaded: &Arc<Loaded>, c: usize, first: bool) -> Result<Self, String> {
        let chunk = &loaded.recording.chunks[c];
        let mut records = loaded
            .recording
            .records(c)
            .ok_or_else(|| format!("chunk {c} is not in the recording"))?;
        let first_record = records.next().filter(|_| chunk.starts_with_keyframe);
        let Some(Record::Keyframe(saved)) = first_record else {
            return Err(format!(
                "ticks are missing before tick {}",
                chunk.first_tick
            ));
        };
        let mut game = start_game(
            &loaded.room_type,
            &loaded.options,
            &loaded.recording.header,
            chunk.first_tick,
            &saved,
            first,
        )?;
        game.keep_events();
        Ok(Self {
            loaded: loaded.clone(),
            game,
            chunk: c,
            records,
        })
    }

    /// Plays up to and including the next step; false at the recording's
    /// end.
    fn advance(&mut self) -> Result<bool, String> {
        loop {
            let Some(record) = self.records.next() else {
                let next = self.chunk + 1;
                let chunks = &self.loaded.recording.chunks;
                let Some(chunk) = chunks.get(next) else {
                    return Ok(false);
                };
                if chunk.first_tick == self.game.tick() {
                    self.chunk = next;
                    self.records = self
                        .loaded
                        .recording
                        .records(next)
                        .ok_or_else(|| format!("chunk {next} is not in the recording"))?;
                } else {
                    // A gap: go on from the keyframe after it.
                    *self = Self::from_chunk(&self.loaded.clone(), next, false)?;
                }
                continue;
            };
            if let Record::Input(input) = record {
                // A recorded panic is the end of what can be shown.
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.game.apply(&input)
                }));
                match applied {
                    Ok(result) => result.map_err(|e| e.to_string())?,
                    Err(_) => return Ok(false),
                }
                if input == Input::Step {
                    return Ok(true);
                }
            }
        }
    }
}

/// Plays a stream to one socket's mailbox while the socket lasts.
pub struct Feed {
    stream: Arc<Stream>,
    follow: PlayerId,
    playback: Playback,
}

impl Feed {
    /// Sends the followed player's state and events tick by tick at the
    /// stream's pace, until the recording ends (the socket is then closed
    /// with 1000) or the future is dropped (the socket ended).
    pub async fn run(mut self, mailbox: Arc<Mailbox>) {
        let hz = f64::from(self.stream.loaded.recording.header.tick_hz.max(1));
        let mut events_sent = 0u32;
        let mut seeks = self
            .stream
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seeks;
        self.show(&mailbox, &mut events_sent);
        loop {
            let control = *self
                .stream
                .control
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if control.seeks != seeks {
                seeks = control.seeks;
                match Playback::at(&self.stream.loaded, control.tick) {
                    Ok(p) => self.playback = p,
                    Err(e) => {
                        mailbox.kick(protocol::CloseCode::InternalError, e);
                        return;
                    }
                }
                // Events before the seek are not sent again.
                let _ = self.playback.game.take_events();
                self.show(&mailbox, &mut events_sent);
                continue;
            }
            if control.paused {
                // A change made between the read above and this wait would
                // be missed by `notified`; the timeout reads it anyway.
                let _ = tokio::time::timeout(
                    Duration::from_millis(250),
                    self.stream.changed.notified(),
                )
                .await;
                continue;
            }
            let period = Duration::from_secs_f64(1.0 / (hz * control.speed));
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = self.stream.changed.notified() => continue,
            }
            match self.playback.advance() {
                Ok(true) => {
                    let tick = self.playback.game.tick();
                    let mut c = self
                        .stream
                        .control
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if c.seeks == seeks {
                        c.tick = tick;
                    }
                    drop(c);
                    self.show(&mailbox, &mut events_sent);
                }
                Ok(false) => {
                    self.stream
                        .control
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .paused = true;
                    mailbox.kick(protocol::CloseCode::Normal, "the recording ended");
                    return;
                }
                Err(e) => {
                    mailbox.kick(protocol::CloseCode::InternalError, e);
                    return;
                }
            }
        }
    }

    /// Puts the followed player's view now, and its new events, in the
    /// mailbox.
    fn show(&mut self, mailbox: &Mailbox, events_sent: &mut u32) {
        let follow = self.follow;
        for (target, data) in self.playback.game.take_events() {
            let meant = match target {
                Target::Player(p) => p == follow,
                Target::All => true,
                Target::AllExcept(p) => p != follow,
            };
            if meant {
                *events_sent += 1;
                mailbox.push_events([(*events_sent, data)]);
            }
        }
        let mut data = Vec::new();
        self.playback.game.view(follow, &mut data);
        let mut frame = Vec::with_capacity(data.len() + 16);
        protocol::encode_server(
            &ServerMsg::State(State {
                tick: self.playback.game.tick(),
                ack: 0,
                data,
            }),
            &mut frame,
        );
        mailbox.put(bytes::Bytes::from(frame));
    }
}
