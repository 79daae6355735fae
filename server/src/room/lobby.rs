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

use super::{Room, RoomCmd, RoomHandle, RoomId, RoomSettings};
use crate::game::PlayerId;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use protocol::{CloseCode, ResumeToken};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Commands waiting for a room beyond this are refused; a room answers a
/// command in microseconds, so a full queue means the room is stuck.
const ROOM_COMMAND_QUEUE: usize = 256;

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
    /// Player ids are unique across rooms for the life of the process.
    next_player: AtomicU32,
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
        let (ctrl_tx, ctrl_rx) = mpsc::channel(ROOM_COMMAND_QUEUE);
        let (input_tx, input_rx) = mpsc::channel(self.settings.input_queue);
        let handle = RoomHandle {
            id,
            ctrl: ctrl_tx,
            inputs: input_tx,
        };
        let room = Room::new(
            id,
            self.clone(),
            self.settings.clone(),
            self.metrics.clone(),
            ctrl_rx,
            input_rx,
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
}
