//! Room placement and the session directory.
//!
//! The lobby decides which room a new player goes to, opens rooms when all
//! are full and closes them when empty, and maps resume tokens to the
//! player they resume. It never touches a world: rooms own those. Its one
//! lock guards two small maps and is held for a few map operations, never
//! across an `.await`.
//!
//! Occupancy counts players *and* reservations (a join on its way to the
//! room), and only the lobby changes it, under its lock; a room is closed
//! exactly when its occupancy reaches zero, so a join can never be sent to
//! a room that is closing.
//!
//! Across a planned restart the lobby is where state gathers and where it
//! comes back: rooms stopping at shutdown hand it their state
//! (`Lobby::keep`), the server takes it all with the lobby's counters
//! ([`Lobby::saved_state`]), and at the next start [`Lobby::restore`]
//! reopens the rooms. Ids are never reused: the counters continue above
//! every restored id.

use super::{Room, RoomCmd, RoomHandle, RoomId, RoomSettings, room_seed};
use crate::game::PlayerId;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::state::{RoomState, SavedState};
use protocol::{CloseCode, ResumeToken};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Places players in rooms and finds sessions by token.
pub struct Lobby {
    /// Rooms and sessions.
    inner: Mutex<Inner>,
    /// Settings every room is opened with.
    settings: Arc<RoomSettings>,
    /// Shared metrics (the `rooms` gauge lives here).
    metrics: Arc<Metrics>,
    /// Rooms are opened with this, and none open once it has fired.
    shutdown: Shutdown,
    /// Player ids are unique across rooms for the life of the process (and
    /// across planned restarts, which carry the counter over).
    next_player: AtomicU32,
    /// States of rooms that stopped at shutdown, waiting to be written to
    /// the state file. Filled only when rooms save on shutdown.
    saved: Mutex<Vec<RoomState>>,
}

#[derive(Default)]
struct Inner {
    /// Open rooms by id; lowest id first, which is also placement order.
    rooms: BTreeMap<RoomId, Entry>,
    /// Live sessions: token → where the player is.
    sessions: HashMap<ResumeToken, (RoomId, PlayerId)>,
    /// Id of the next room to open.
    next_room: RoomId,
}

struct Entry {
    /// How to reach the room.
    handle: RoomHandle,
    /// Players in the room plus joins reserved for it.
    occupancy: u32,
}

/// A place held in a room for a join that is on its way there. Dropping it
/// without [`Reservation::consume`] gives the place back.
pub struct Reservation {
    /// The lobby to give the place back to.
    lobby: Arc<Lobby>,
    /// The room the place is in.
    room: RoomHandle,
    /// False once the room has turned the place into a player.
    live: bool,
}

impl Reservation {
    /// The room the place is in.
    pub fn room(&self) -> &RoomHandle {
        &self.room
    }

    /// Marks the place as taken by a player; the room now owns it.
    pub(crate) fn consume(mut self) {
        self.live = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.live {
            self.lobby.release(self.room.id, None);
        }
    }
}

impl Lobby {
    /// An empty lobby.
    pub fn new(
        settings: Arc<RoomSettings>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                next_room: 1,
                ..Inner::default()
            }),
            settings,
            metrics,
            shutdown,
            next_player: AtomicU32::new(1),
            saved: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bug in a few map
        // operations; the maps themselves stay consistent, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a place for a new player in the first room with space, opening
    /// a room if none has any.
    pub fn reserve(self: &Arc<Self>) -> Result<Reservation, CloseCode> {
        let mut inner = self.lock();
        let capacity = u32::from(self.settings.capacity);
        if let Some(entry) = inner.rooms.values_mut().find(|e| e.occupancy < capacity) {
            entry.occupancy += 1;
            return Ok(Reservation {
                lobby: self.clone(),
                room: entry.handle.clone(),
                live: true,
            });
        }
        if inner.rooms.len() >= self.settings.max_rooms as usize {
            return Err(CloseCode::RoomFull);
        }
        let Some(done) = self.shutdown.guard() else {
            return Err(CloseCode::GoingAway);
        };
        let id = inner.next_room;
        inner.next_room += 1;
        let seed = room_seed(self.settings.seed, id);
        let (room, handle) = Room::new(
            id,
            seed,
            self.settings.game.create(seed),
            self.clone(),
            self.settings.clone(),
            self.metrics.clone(),
        );
        tokio::spawn(room.run(self.shutdown.clone(), done));
        inner.rooms.insert(
            id,
            Entry {
                handle: handle.clone(),
                occupancy: 1,
            },
        );
        self.metrics.rooms.fetch_add(1, Relaxed);
        tracing::info!(room = id, "room opened");
        Ok(Reservation {
            lobby: self.clone(),
            room: handle,
            live: true,
        })
    }

    /// Where the session with this token is, if it is live.
    pub fn find(&self, token: &ResumeToken) -> Option<(RoomHandle, PlayerId)> {
        let inner = self.lock();
        let &(room, player) = inner.sessions.get(token)?;
        Some((inner.rooms.get(&room)?.handle.clone(), player))
    }

    /// A fresh player id.
    pub(crate) fn next_player_id(&self) -> PlayerId {
        self.next_player.fetch_add(1, Relaxed)
    }

    /// Records a new session (called by the room that holds the player).
    pub(crate) fn register(&self, token: ResumeToken, room: RoomId, player: PlayerId) {
        self.lock().sessions.insert(token, (room, player));
    }

    /// Gives back one place in `room`, forgetting `token`'s session if
    /// given. Returns true if that emptied the room, which is then closed:
    /// the caller (the room itself, or a dropped reservation) must not send
    /// it anything more.
    pub(crate) fn release(&self, room: RoomId, token: Option<&ResumeToken>) -> bool {
        let mut inner = self.lock();
        if let Some(token) = token {
            inner.sessions.remove(token);
        }
        let Some(entry) = inner.rooms.get_mut(&room) else {
            return true;
        };
        entry.occupancy -= 1;
        if entry.occupancy > 0 {
            return false;
        }
        let entry = inner.rooms.remove(&room).expect("entry looked up above");
        drop(inner);
        self.metrics.rooms.fetch_sub(1, Relaxed);
        tracing::info!(room, "room closed");
        // A room emptied by a dropped reservation never had a player: tell
        // it to stop. A room that emptied itself has stopped already and
        // ignores this.
        let _ = entry.handle.ctrl.try_send(RoomCmd::Close);
        true
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Takes the state of a room that is stopping at shutdown, to be
    /// written to the state file.
    pub(crate) fn keep(&self, room: RoomState) {
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(room);
    }

    /// Everything to write to the state file: the counters and the rooms
    /// handed in by `Lobby::keep` (taken, in id order). Called once every
    /// room has stopped.
    pub fn saved_state(&self, saved_at_unix_ms: u64) -> SavedState {
        let mut rooms = std::mem::take(&mut *self.saved.lock().unwrap_or_else(|e| e.into_inner()));
        rooms.sort_unstable_by_key(|r| r.id);
        SavedState {
            saved_at_unix_ms,
            next_player: self.next_player.load(Relaxed),
            next_room: self.lock().next_room,
            rooms,
        }
    }

    /// Reopens the rooms of a state file in a fresh lobby, before the
    /// server accepts any connection: each room gets its restored game and
    /// its tick, each session its token, and every player waits, dropped, a
    /// whole grace period from now for its client to resume. A room whose
    /// game cannot be restored is skipped, and so is anything that would
    /// clash with what is already restored (a repeated room id, player id
    /// or token), each with an error in the log. Returns the number of
    /// sessions restored.
    pub fn restore(self: &Arc<Self>, saved: SavedState) -> usize {
        let mut room_ids = HashSet::new();
        let mut players = HashSet::new();
        let mut tokens = HashSet::new();
        let mut next_room = saved.next_room;
        let mut next_player = saved.next_player;
        // Games are rebuilt outside the lock, which is meant for a few map
        // operations at a time; the rooms are registered under it at once.
        let mut ready = Vec::new();
        for state in saved.rooms {
            if !room_ids.insert(state.id) {
                tracing::error!(room = state.id, "state file repeats a room: skipped");
                continue;
            }
            let Some(done) = self.shutdown.guard() else {
                break;
            };
            let game = match self.settings.game.restore(state.seed, &state.game) {
                Ok(game) => game,
                Err(cause) => {
                    tracing::error!(room = state.id, %cause, sessions = state.sessions.len(),
                        "room could not be restored: its sessions are lost");
                    continue;
                }
            };
            let (mut room, handle) = Room::new(
                state.id,
                state.seed,
                game,
                self.clone(),
                self.settings.clone(),
                self.metrics.clone(),
            );
            room.set_tick(state.tick);
            let mut room_tokens = Vec::with_capacity(state.sessions.len());
            for session in &state.sessions {
                let fresh = players.insert(session.player) && tokens.insert(session.token);
                if !fresh || !room.restore_session(session) {
                    tracing::error!(
                        room = state.id,
                        player = session.player,
                        "state file has a session its room cannot take: skipped"
                    );
                    continue;
                }
                room_tokens.push((session.token, session.player));
                next_player = next_player.max(session.player.saturating_add(1));
            }
            if room_tokens.is_empty() {
                // Nothing would ever resume the room or close it.
                continue;
            }
            next_room = next_room.max(state.id.saturating_add(1));
            tracing::info!(
                room = state.id,
                players = room_tokens.len(),
                tick = state.tick,
                "room restored"
            );
            ready.push((room, handle, done, room_tokens));
        }

        let mut restored = 0;
        let mut inner = self.lock();
        inner.next_room = inner.next_room.max(next_room);
        self.next_player.fetch_max(next_player, Relaxed);
        let mut rooms = Vec::with_capacity(ready.len());
        for (room, handle, done, room_tokens) in ready {
            let id = handle.id;
            for (token, player) in &room_tokens {
                inner.sessions.insert(*token, (id, *player));
            }
            let occupancy = room_tokens.len() as u32;
            inner.rooms.insert(id, Entry { handle, occupancy });
            restored += room_tokens.len();
            rooms.push((room, done));
        }
        drop(inner);
        self.metrics.rooms.fetch_add(rooms.len() as i64, Relaxed);
        // Started only once registered: a room that expires its last
        // session releases its place, which needs its entry.
        for (room, done) in rooms {
            tokio::spawn(room.run(self.shutdown.clone(), done));
        }
        restored
    }
}
