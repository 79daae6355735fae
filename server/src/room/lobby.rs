//! Room types, matchmaking, invite codes, the public room list, and the
//! session directory.
//!
//! The lobby knows the registered room types and every open room: its
//! type, the options it was created with, how many places are taken, and
//! the properties its game controls (capacity, lock, privacy, metadata,
//! invite code). It places new players (quick join with the type's filter
//! keys, create, join by id, join by invite code), lists public rooms, and
//! maps resume tokens to the player they resume. It never touches a game:
//! rooms own those. Its one lock guards a few small maps and is held for a
//! few map operations, never across an `.await` and never while a game is
//! made.
//!
//! Occupancy counts players *and* reservations (a join on its way to the
//! room), and only the lobby changes it, under its lock. A room whose
//! occupancy reaches zero either closes at once or, when its type lingers,
//! waits; it closes only through `Lobby::close_if_empty`, under the lock,
//! so a join can never be sent to a room that is closing.
//!
//! Across a planned restart the lobby is where state gathers and where it
//! comes back: rooms stopping at shutdown hand it their state
//! (`Lobby::keep`), the server takes it all with the lobby's counters
//! ([`Lobby::saved_state`]), and at the next start [`Lobby::restore`]
//! reopens the rooms. Ids are never reused: the counters continue above
//! every restored id.

use super::clock::{PhaseClaim, TickPhases};
use super::saved::{RoomState, SavedState};
use super::{Kind, Refusal, Room, RoomCmd, RoomDefaults, RoomHandle, RoomId, RoomProps, room_seed};
use crate::metrics::{JoinKind, Metrics};
use crate::shutdown::Shutdown;
use game_api::{PlayerId, RoomOptions, RoomType};
use protocol::limits::{CODE_ALPHABET, CODE_LEN, normalize_code};
use protocol::{CloseCode, ResumeToken, RoomRequest};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Places players in rooms and finds sessions by token.
pub struct Lobby {
    /// Rooms, codes and sessions.
    inner: Mutex<Inner>,
    /// The registered room types, by name.
    kinds: BTreeMap<String, Arc<Kind>>,
    /// What every room shares.
    defaults: Arc<RoomDefaults>,
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
    /// Where in its period each open room ticks.
    phases: Arc<TickPhases>,
    /// Fired when rooms open or close or their occupancy or properties
    /// change: a cluster node publishes its rooms soon after.
    changes: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    /// Open rooms by id; lowest id first, which is also quick join's order.
    rooms: BTreeMap<RoomId, Entry>,
    /// Invite codes of private rooms.
    codes: HashMap<String, RoomId>,
    /// Live sessions: token → where the player is.
    sessions: HashMap<ResumeToken, (RoomId, PlayerId)>,
    /// Id of the next room to open.
    next_room: RoomId,
    /// The first id past the ones this lobby may use: the end of its block
    /// in a cluster (the directory hands out blocks), unbounded otherwise.
    room_ids_end: RoomId,
    /// The next block, taken when this one runs out.
    spare_ids: Option<(RoomId, RoomId)>,
}

struct Entry {
    /// How to reach the room.
    handle: RoomHandle,
    /// The room's type.
    kind: Arc<Kind>,
    /// The options it was created with (quick join matches on them).
    options: RoomOptions,
    /// Players in the room plus joins reserved for it.
    occupancy: u32,
    /// What the room's game controls.
    props: RoomProps,
}

impl Entry {
    /// Whether a new player may take a place here by id or code.
    fn admits(&self) -> Result<(), Refusal> {
        if self.props.locked {
            return Err(Refusal::new(CloseCode::RoomLocked, "the room is locked"));
        }
        if self.occupancy >= u32::from(self.props.capacity) {
            return Err(Refusal::new(CloseCode::RoomAtCapacity, "the room is full"));
        }
        Ok(())
    }

    /// Whether quick join may put a player asking for `kind` with
    /// `options` here.
    fn matches(&self, kind: &Kind, options: &RoomOptions) -> bool {
        self.kind.name() == kind.name()
            && !self.props.private
            && self.admits().is_ok()
            && kind
                .room_type
                .settings()
                .filter_by
                .iter()
                .all(|key| self.options.get(key) == options.get(key))
    }
}

/// A place held in a room for a join that is on its way there. Dropping it
/// without `Reservation::consume` gives the place back.
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
            match self.lobby.release(self.room.id, None) {
                // A room emptied by a dropped reservation may never have
                // had a player, so it cannot know it is empty: tell it.
                Released::Empty => {
                    let _ = self.room.ctrl.try_send(RoomCmd::Emptied);
                }
                Released::Closed => {
                    let _ = self.room.ctrl.try_send(RoomCmd::Close);
                }
                Released::Remaining => {}
            }
        }
    }
}

/// What giving back a place did to its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// Others remain.
    Remaining,
    /// The room is empty and lingers: it closes at the end of its linger
    /// unless someone joins (see [`Lobby::close_if_empty`]).
    Empty,
    /// The room was empty and has been closed (or was gone already): the
    /// caller must send it nothing more.
    Closed,
}

/// A public room as `GET /rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// The room's id (join it with `JoinById`).
    pub id: RoomId,
    /// Its room type.
    #[serde(rename = "type")]
    pub room_type: String,
    /// Players in it (and joins on their way).
    pub players: u32,
    /// Seats.
    pub capacity: u16,
    /// What its game says about it.
    pub metadata: BTreeMap<String, String>,
    /// The cluster node that holds it (cluster nodes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// An open room as a cluster node publishes it in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomSummary {
    /// The room's id, unique across the cluster.
    pub id: RoomId,
    /// Its room type.
    #[serde(rename = "type")]
    pub room_type: String,
    /// Reached by invite code only.
    pub private: bool,
    /// Takes no new players.
    pub locked: bool,
    /// Players in it (and joins on their way).
    pub players: u32,
    /// Seats.
    pub capacity: u16,
    /// Its invite code, if it has one.
    pub invite_code: Option<String>,
    /// The options it was created with (quick join matches on them).
    pub options: Vec<(String, String)>,
    /// What its game says about it.
    pub metadata: BTreeMap<String, String>,
}

/// A registered room type as `GET /rooms/types` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeListing {
    /// The type's name.
    pub name: String,
    /// Where its page is served, if it has one.
    pub page: Option<&'static str>,
    /// Seats in a new room.
    pub capacity: u16,
    /// Option keys quick join matches on.
    pub filter_by: Vec<String>,
    /// Whether its live public rooms may be watched (`/watch/ROOM/ws`).
    pub spectators: bool,
}

impl Lobby {
    /// The room a spectator asks to watch: open, public, and of a type
    /// that allows spectators.
    pub(crate) fn watchable(&self, room: RoomId) -> Result<RoomHandle, Refusal> {
        let inner = self.lock();
        let entry = inner
            .rooms
            .get(&room)
            .ok_or_else(|| Refusal::new(CloseCode::NoSuchRoom, format!("no open room {room}")))?;
        if entry.props.private {
            return Err(Refusal::new(
                CloseCode::RoomPrivate,
                "a private room cannot be watched",
            ));
        }
        if !entry.kind.room_type.settings().spectators {
            return Err(Refusal::new(
                CloseCode::RefusedByGame,
                format!("{} rooms cannot be watched", entry.kind.name()),
            ));
        }
        Ok(entry.handle.clone())
    }

    /// The registered room types (for replaying their recordings).
    pub fn room_types(&self) -> Vec<RoomType> {
        self.kinds.values().map(|k| k.room_type.clone()).collect()
    }

    /// Where rooms are recorded, if they are.
    pub fn recordings(&self) -> Option<Arc<crate::record::Recordings>> {
        self.defaults.recordings.clone()
    }

    /// An empty lobby over the given room types.
    pub fn new(
        kinds: Vec<Arc<Kind>>,
        defaults: Arc<RoomDefaults>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                next_room: 1,
                room_ids_end: RoomId::MAX,
                ..Inner::default()
            }),
            kinds: kinds
                .into_iter()
                .map(|k| (k.name().to_owned(), k))
                .collect(),
            defaults,
            metrics,
            shutdown,
            next_player: AtomicU32::new(1),
            saved: Mutex::new(Vec::new()),
            phases: TickPhases::new(Instant::now()),
            changes: tokio::sync::Notify::new(),
        })
    }

    /// A tick phase for a room that ticks every `period`, spread from the
    /// other rooms' (see `TickPhases`).
    pub(crate) fn claim_phase(&self, period: Duration) -> PhaseClaim {
        self.phases.claim(period)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bug in a few map
        // operations; the maps themselves stay consistent, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kind(&self, name: &str) -> Result<&Arc<Kind>, Refusal> {
        self.kinds.get(name).ok_or_else(|| {
            Refusal::new(
                CloseCode::UnknownRoomType,
                format!("no room type named {name:?}"),
            )
        })
    }

    /// The registered room types, by name.
    pub fn types(&self) -> Vec<TypeListing> {
        self.kinds
            .values()
            .map(|k| TypeListing {
                name: k.name().to_owned(),
                page: k.room_type.page_path(),
                capacity: k.room_type.settings().capacity,
                filter_by: k.room_type.settings().filter_by.clone(),
                spectators: k.room_type.settings().spectators,
            })
            .collect()
    }

    /// Holds a place for a new player as `request` asks (an invite code
    /// must have passed the caller's rate limit already).
    pub fn place(self: &Arc<Self>, request: &RoomRequest) -> Result<Reservation, Refusal> {
        match request {
            RoomRequest::QuickJoin { room_type, options } => {
                self.metrics.joins[JoinKind::Quick as usize].fetch_add(1, Relaxed);
                let kind = self.kind(room_type)?.clone();
                let options = RoomOptions::new(options.clone());
                if let Some(place) = self.reserve_matching(&kind, &options) {
                    return Ok(place);
                }
                self.open(&kind, options, false, true)
            }
            RoomRequest::Create {
                room_type,
                options,
                private,
            } => {
                self.metrics.joins[JoinKind::Create as usize].fetch_add(1, Relaxed);
                let kind = self.kind(room_type)?.clone();
                self.open(&kind, RoomOptions::new(options.clone()), *private, false)
            }
            RoomRequest::JoinById { room_id } => {
                self.metrics.joins[JoinKind::ById as usize].fetch_add(1, Relaxed);
                let mut inner = self.lock();
                let entry = inner.rooms.get_mut(room_id).ok_or_else(|| {
                    Refusal::new(CloseCode::NoSuchRoom, format!("no open room {room_id}"))
                })?;
                if entry.props.private {
                    return Err(Refusal::new(
                        CloseCode::RoomPrivate,
                        "the room is private: join it with its invite code",
                    ));
                }
                entry.admits()?;
                entry.occupancy += 1;
                Ok(self.reservation(entry.handle.clone()))
            }
            RoomRequest::JoinByCode { code } => {
                self.metrics.joins[JoinKind::ByCode as usize].fetch_add(1, Relaxed);
                let no_room =
                    || Refusal::new(CloseCode::NoSuchRoom, "no open room has that invite code");
                let code = normalize_code(code).ok_or_else(no_room)?;
                let mut inner = self.lock();
                let id = *inner.codes.get(&code).ok_or_else(no_room)?;
                let entry = inner.rooms.get_mut(&id).ok_or_else(no_room)?;
                entry.admits()?;
                entry.occupancy += 1;
                Ok(self.reservation(entry.handle.clone()))
            }
            // A cluster node resolves tickets before it asks the lobby
            // (`crate::directory`); one that reaches here is for a node
            // without a directory.
            RoomRequest::Reserved { .. } => Err(Refusal::new(
                CloseCode::InvalidTicket,
                "seat tickets are valid only on the cluster node that issued them",
            )),
        }
    }

    fn reservation(self: &Arc<Self>, room: RoomHandle) -> Reservation {
        self.changes.notify_one();
        Reservation {
            lobby: self.clone(),
            room,
            live: true,
        }
    }

    /// A place in the first room quick join may use, if there is one.
    fn reserve_matching(
        self: &Arc<Self>,
        kind: &Kind,
        options: &RoomOptions,
    ) -> Option<Reservation> {
        let mut inner = self.lock();
        let entry = inner
            .rooms
            .values_mut()
            .find(|e| e.matches(kind, options))?;
        entry.occupancy += 1;
        Some(self.reservation(entry.handle.clone()))
    }

    /// Opens a room of `kind` with one place reserved. For a quick join
    /// (`quick`), a matching room that opened while the game was being made
    /// is used instead, so that two quick joins racing do not open two
    /// half-empty rooms.
    fn open(
        self: &Arc<Self>,
        kind: &Arc<Kind>,
        options: RoomOptions,
        private: bool,
        quick: bool,
    ) -> Result<Reservation, Refusal> {
        let id = {
            let mut inner = self.lock();
            if inner.rooms.len() >= self.defaults.max_rooms as usize {
                return Err(Refusal::new(
                    CloseCode::RoomFull,
                    "the server is at its room limit",
                ));
            }
            if inner.next_room >= inner.room_ids_end {
                let Some((start, end)) = inner.spare_ids.take() else {
                    return Err(Refusal::new(
                        CloseCode::DirectoryUnavailable,
                        "no room id is free: the room directory is unreachable",
                    ));
                };
                (inner.next_room, inner.room_ids_end) = (start, end);
            }
            let id = inner.next_room;
            inner.next_room += 1;
            id
        };
        let seed = room_seed(self.defaults.seed, id);
        // Made outside the lock: a game's constructor is the game's code.
        let game = kind
            .room_type
            .create(&options, seed, kind.inbox_capacity(&self.defaults))
            .map_err(|reason| Refusal::new(CloseCode::RefusedByGame, reason))?;
        let Some(done) = self.shutdown.guard() else {
            return Err(Refusal::new(
                CloseCode::GoingAway,
                "the server is shutting down",
            ));
        };
        let mut inner = self.lock();
        if quick && let Some(entry) = inner.rooms.values_mut().find(|e| e.matches(kind, &options)) {
            entry.occupancy += 1;
            return Ok(self.reservation(entry.handle.clone()));
        }
        // Checked again: other rooms may have opened while the game was made.
        if inner.rooms.len() >= self.defaults.max_rooms as usize {
            return Err(Refusal::new(
                CloseCode::RoomFull,
                "the server is at its room limit",
            ));
        }
        let props = RoomProps {
            capacity: kind.room_type.settings().capacity,
            locked: false,
            private,
            metadata: BTreeMap::new(),
            invite_code: private.then(|| fresh_code(&inner.codes)),
        };
        if let Some(code) = &props.invite_code {
            inner.codes.insert(code.clone(), id);
        }
        let (room, handle) = Room::new(
            id,
            kind.clone(),
            seed,
            options.clone(),
            props.clone(),
            game,
            self.clone(),
            self.defaults.clone(),
            self.metrics.clone(),
        );
        tokio::spawn(room.run(self.shutdown.clone(), done));
        inner.rooms.insert(
            id,
            Entry {
                handle: handle.clone(),
                kind: kind.clone(),
                options,
                occupancy: 1,
                props,
            },
        );
        drop(inner);
        self.metrics.rooms.fetch_add(1, Relaxed);
        self.metrics.rooms_opened.fetch_add(1, Relaxed);
        tracing::info!(room = id, room_type = kind.name(), private, "room opened");
        Ok(self.reservation(handle))
    }

    /// Where the session with this token is, if it is live.
    pub fn find(&self, token: &ResumeToken) -> Option<(RoomHandle, PlayerId)> {
        let inner = self.lock();
        let &(room, player) = inner.sessions.get(token)?;
        Some((inner.rooms.get(&room)?.handle.clone(), player))
    }

    /// The room an invite code opens, as its id, type and page: how the
    /// lobby page turns a code someone typed into the game page to open.
    /// The caller rate-limits this like a join by code.
    pub fn resolve_code(&self, code: &str) -> Option<(RoomId, String, Option<&'static str>)> {
        let code = normalize_code(code)?;
        let inner = self.lock();
        let id = *inner.codes.get(&code)?;
        let entry = inner.rooms.get(&id)?;
        Some((
            id,
            entry.kind.name().to_owned(),
            entry.kind.room_type.page_path(),
        ))
    }

    /// Public, unlocked rooms, of one type or all, lowest id first.
    pub fn list(&self, room_type: Option<&str>) -> Vec<Listing> {
        let inner = self.lock();
        inner
            .rooms
            .iter()
            .filter(|(_, e)| !e.props.private && !e.props.locked)
            .filter(|(_, e)| room_type.is_none_or(|t| e.kind.name() == t))
            .map(|(&id, e)| Listing {
                id,
                room_type: e.kind.name().to_owned(),
                players: e.occupancy,
                capacity: e.props.capacity,
                metadata: e.props.metadata.clone(),
                node: None,
            })
            .collect()
    }

    /// A fresh player id.
    pub(crate) fn next_player_id(&self) -> PlayerId {
        self.next_player.fetch_add(1, Relaxed)
    }

    /// Records a new session (called by the room that holds the player).
    pub(crate) fn register(&self, token: ResumeToken, room: RoomId, player: PlayerId) {
        self.lock().sessions.insert(token, (room, player));
    }

    /// Publishes what a room's game changed (capacity, lock, privacy,
    /// metadata). A room made private gets an invite code if it had none;
    /// a room made public keeps its code (a link already shared goes on
    /// working). Returns the room's invite code.
    pub(crate) fn update(&self, room: RoomId, mut props: RoomProps) -> Option<String> {
        let mut inner = self.lock();
        let Inner { rooms, codes, .. } = &mut *inner;
        let entry = rooms.get_mut(&room)?;
        if props.private && props.invite_code.is_none() {
            let code = fresh_code(codes);
            codes.insert(code.clone(), room);
            props.invite_code = Some(code);
        }
        entry.props = props;
        self.changes.notify_one();
        entry.props.invite_code.clone()
    }

    /// Gives back one place in `room`, forgetting `token`'s session if
    /// given.
    pub(crate) fn release(&self, room: RoomId, token: Option<&ResumeToken>) -> Released {
        let mut inner = self.lock();
        if let Some(token) = token {
            inner.sessions.remove(token);
        }
        let Some(entry) = inner.rooms.get_mut(&room) else {
            return Released::Closed;
        };
        entry.occupancy -= 1;
        self.changes.notify_one();
        if entry.occupancy > 0 {
            return Released::Remaining;
        }
        if !entry.kind.linger.is_zero() {
            return Released::Empty;
        }
        Self::remove(&mut inner, room);
        drop(inner);
        self.closed(room);
        Released::Closed
    }

    /// Closes `room` if nobody has taken a place in it since it emptied
    /// (the end of its linger). True when it closed: the room then stops.
    pub(crate) fn close_if_empty(&self, room: RoomId) -> bool {
        let mut inner = self.lock();
        match inner.rooms.get(&room) {
            Some(entry) if entry.occupancy > 0 => false,
            Some(_) => {
                Self::remove(&mut inner, room);
                drop(inner);
                self.closed(room);
                true
            }
            None => true,
        }
    }

    /// Closes `room` whatever its occupancy (its game ended it), forgetting
    /// the sessions given. Reservations still on their way find it gone.
    pub(crate) fn end_room(&self, room: RoomId, tokens: &[ResumeToken]) {
        let mut inner = self.lock();
        for token in tokens {
            inner.sessions.remove(token);
        }
        let existed = inner.rooms.contains_key(&room);
        Self::remove(&mut inner, room);
        drop(inner);
        if existed {
            self.closed(room);
        }
    }

    fn remove(inner: &mut Inner, room: RoomId) {
        if let Some(entry) = inner.rooms.remove(&room)
            && let Some(code) = entry.props.invite_code
        {
            inner.codes.remove(&code);
        }
    }

    fn closed(&self, room: RoomId) {
        self.changes.notify_one();
        self.metrics.rooms.fetch_sub(1, Relaxed);
        tracing::info!(room, "room closed");
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Waits until rooms open or close, or their occupancy or properties
    /// change (at once if that happened since the last wait).
    pub(crate) async fn changed(&self) {
        self.changes.notified().await;
    }

    /// Every open room, private ones included, lowest id first: what a
    /// cluster node publishes in the directory.
    pub(crate) fn summary(&self) -> Vec<RoomSummary> {
        let inner = self.lock();
        inner
            .rooms
            .iter()
            .map(|(&id, e)| RoomSummary {
                id,
                room_type: e.kind.name().to_owned(),
                private: e.props.private,
                locked: e.props.locked,
                players: e.occupancy,
                capacity: e.props.capacity,
                invite_code: e.props.invite_code.clone(),
                options: e.options.pairs().to_vec(),
                metadata: e.props.metadata.clone(),
            })
            .collect()
    }

    /// Rooms this lobby may still open before `--max-rooms`.
    pub(crate) fn rooms_left(&self) -> u32 {
        let open = u32::try_from(self.lock().rooms.len()).unwrap_or(u32::MAX);
        self.defaults.max_rooms.saturating_sub(open)
    }

    /// The page of a registered room type, if it has one.
    pub(crate) fn page_of(&self, room_type: &str) -> Option<&'static str> {
        self.kinds.get(room_type)?.room_type.page_path()
    }

    /// Whether a room of this id is open here.
    pub(crate) fn has_room(&self, id: RoomId) -> bool {
        self.lock().rooms.contains_key(&id)
    }

    /// Whether an open room here has this (normalised) invite code.
    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.lock().codes.contains_key(code)
    }

    /// Whether quick join would find a room here for `room_type` and
    /// `options` (without taking a place).
    pub(crate) fn has_quick_match(&self, room_type: &str, options: &[(String, String)]) -> bool {
        let Some(kind) = self.kinds.get(room_type) else {
            return false;
        };
        let options = RoomOptions::new(options.to_vec());
        self.lock()
            .rooms
            .values()
            .any(|e| e.matches(kind, &options))
    }

    /// The option keys quick join matches on for `room_type`, if it is
    /// registered.
    pub(crate) fn filter_keys(&self, room_type: &str) -> Option<&[String]> {
        Some(&self.kinds.get(room_type)?.room_type.settings().filter_by)
    }

    /// Room ids from now on come from blocks given with
    /// [`Lobby::add_room_ids`] (a cluster node's): none is left until then.
    pub(crate) fn use_room_id_blocks(&self) {
        let mut inner = self.lock();
        inner.room_ids_end = inner.next_room;
    }

    /// Ids this lobby may still give rooms, the spare block included.
    pub(crate) fn room_ids_left(&self) -> u64 {
        let inner = self.lock();
        let spare = inner.spare_ids.map_or(0, |(s, e)| u64::from(e - s));
        u64::from(inner.room_ids_end.saturating_sub(inner.next_room)) + spare
    }

    /// The end (exclusive) of the room ids this lobby holds, its spare
    /// block included: no other node may be given ids below it.
    pub(crate) fn room_ids_end(&self) -> RoomId {
        let inner = self.lock();
        let spare = inner.spare_ids.map_or(0, |(_, e)| e);
        inner.room_ids_end.max(spare).max(inner.next_room)
    }

    /// Adds the block `start..end` of room ids, used when the current
    /// one runs out (at once if it has).
    pub(crate) fn add_room_ids(&self, start: RoomId, end: RoomId) {
        let mut inner = self.lock();
        if inner.next_room >= inner.room_ids_end {
            (inner.next_room, inner.room_ids_end) = (start, end);
        } else {
            inner.spare_ids = Some((start, end));
        }
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
    /// server accepts any connection: each room gets its restored game, its
    /// tick and properties, each session its token and events, and every
    /// player waits, dropped, a whole grace period from now for its client
    /// to resume. A room whose type is not registered or whose game cannot
    /// be restored is skipped, and so is anything that would clash with
    /// what is already restored (a repeated room id, player id, token or
    /// invite code), each with an error in the log. Returns the number of
    /// sessions restored.
    pub fn restore(self: &Arc<Self>, saved: SavedState) -> usize {
        let mut room_ids = HashSet::new();
        let mut players = HashSet::new();
        let mut tokens = HashSet::new();
        let mut codes = HashSet::new();
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
            let Some(kind) = self.kinds.get(&state.room_type).cloned() else {
                tracing::error!(room = state.id, room_type = %state.room_type, sessions = state.sessions.len(),
                    "state file has a room of a type this server does not register: its sessions are lost");
                continue;
            };
            let Some(done) = self.shutdown.guard() else {
                break;
            };
            let options = RoomOptions::new(state.options.clone());
            let game = match kind.room_type.restore(
                &options,
                &state.game,
                kind.inbox_capacity(&self.defaults),
            ) {
                Ok(game) => game,
                Err(cause) => {
                    tracing::error!(room = state.id, %cause, sessions = state.sessions.len(),
                        "room could not be restored: its sessions are lost");
                    continue;
                }
            };
            let mut props = state.props.clone();
            if let Some(code) = &props.invite_code
                && (normalize_code(code).as_deref() != Some(code.as_str())
                    || !codes.insert(code.clone()))
            {
                tracing::error!(
                    room = state.id,
                    "state file has a bad or repeated invite code: the room gets a new one"
                );
                props.invite_code = None;
            }
            let (mut room, handle) = Room::new(
                state.id,
                kind.clone(),
                state.seed,
                options.clone(),
                props.clone(),
                game,
                self.clone(),
                self.defaults.clone(),
                self.metrics.clone(),
            );
            room.set_tick(state.tick);
            let mut room_tokens = Vec::with_capacity(state.sessions.len());
            for session in state.sessions {
                let (player, token) = (session.player, session.token);
                let fresh = players.insert(player) && tokens.insert(token);
                if !fresh || !room.restore_session(session) {
                    tracing::error!(
                        room = state.id,
                        player,
                        "state file has a session its room cannot take: skipped"
                    );
                    continue;
                }
                room_tokens.push((token, player));
                next_player = next_player.max(player.saturating_add(1));
            }
            if room_tokens.is_empty() {
                // Nothing would ever resume the room or close it.
                continue;
            }
            next_room = next_room.max(state.id.saturating_add(1));
            tracing::info!(
                room = state.id,
                room_type = kind.name(),
                players = room_tokens.len(),
                tick = state.tick,
                "room restored"
            );
            ready.push((room, handle, kind, options, props, done, room_tokens));
        }

        let mut restored = 0;
        let mut inner = self.lock();
        inner.next_room = inner.next_room.max(next_room);
        self.next_player.fetch_max(next_player, Relaxed);
        let mut rooms = Vec::with_capacity(ready.len());
        for (mut room, handle, kind, options, mut props, done, room_tokens) in ready {
            let id = handle.id;
            for (token, player) in &room_tokens {
                inner.sessions.insert(*token, (id, *player));
            }
            if props.private && props.invite_code.is_none() {
                props.invite_code = Some(fresh_code(&inner.codes));
                room.set_invite_code(props.invite_code.clone());
            }
            if let Some(code) = &props.invite_code {
                inner.codes.insert(code.clone(), id);
            }
            let occupancy = room_tokens.len() as u32;
            inner.rooms.insert(
                id,
                Entry {
                    handle,
                    kind,
                    options,
                    occupancy,
                    props,
                },
            );
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

/// A random invite code that `taken` does not hold, from the operating
/// system's random source (codes must not be predictable from earlier ones).
fn fresh_code(taken: &HashMap<String, RoomId>) -> String {
    loop {
        let mut bytes = [0u8; CODE_LEN];
        // The OS RNG failing is not something a game server can work
        // around: without unpredictable codes, private rooms are not.
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        // 256 is not a multiple of 30, so reduce with rejection to keep
        // every character equally likely.
        let mut code = String::with_capacity(CODE_LEN);
        let mut usable = true;
        for b in bytes {
            let limit = 256 - 256 % CODE_ALPHABET.len();
            if usize::from(b) >= limit {
                usable = false;
                break;
            }
            code.push(char::from(
                CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()],
            ));
        }
        if usable && !taken.contains_key(&code) {
            return code;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_codes_are_valid_unique_and_spread_over_the_alphabet() {
        let mut taken = HashMap::new();
        let mut seen = [0u32; 128];
        for i in 0..3000 {
            let code = fresh_code(&taken);
            assert_eq!(normalize_code(&code).as_deref(), Some(code.as_str()));
            for b in code.bytes() {
                seen[usize::from(b)] += 1;
            }
            assert!(taken.insert(code, i).is_none(), "codes repeat");
        }
        // 24,000 characters over 30 symbols: about 800 each.
        for &c in CODE_ALPHABET {
            assert!(
                (600..1000).contains(&seen[usize::from(c)]),
                "{} seen {} times",
                c as char,
                seen[usize::from(c)]
            );
        }
    }
}
