//! The cluster's room directory: several server processes ("nodes") share
//! one Redis, so that a player may enter through any node and play in a
//! room that another holds.
//!
//! What lives in Redis (every key under `game:`):
//! - `game:node:<id>`: the node's record (its public URL, whether it is
//!   draining, its players, every open room with its occupancy, options
//!   and invite code), JSON, rewritten at every heartbeat (each second, and
//!   within [`PUBLISH_DELAY`] of a change) with a time to live of
//!   [`NODE_TTL`]. A node that stops heartbeating (SIGKILL, a lost
//!   network) disappears with its rooms when the key expires.
//! - `game:nodes`: the set of node ids, for finding the records; an id
//!   whose record has expired is dropped from it by whoever notices.
//! - `game:room_ids`: the counter room ids are taken from, in blocks of
//!   [`ID_BLOCK`], so that ids are unique across the cluster. Every
//!   heartbeat raises it to at least the end of the ids the node holds,
//!   so a Redis that lost it (restarted without persistence) has it back
//!   within a heartbeat of every node; a node takes a new block only once
//!   Redis has answered for two heartbeats (unless it has no id left), and
//!   above every id it knows of.
//! - `game:ticket:<hex>`: a seat ticket (the node it is for and the room
//!   request to place there), valid [`TICKET_TTL`], taken with `GETDEL`:
//!   it can be used once.
//!
//! Routing a new player ([`Directory::route`]): what this node can serve
//! itself it serves without asking Redis (a quick join with a matching
//! room here, a room id or invite code of a room here). Otherwise the
//! node reads every live record: a quick join goes to the fullest open
//! matching room of another node (rooms fill before new ones open), and
//! a new room (quick join with no open room, create) goes to the
//! least-loaded node, "load" being its players (joins on their way
//! included) plus the tickets this node sent it since its record was
//! written (which the record cannot show yet); a tie goes to this node (no
//! redirect), then to fewer rooms, then to the lower id. Tickets sent into
//! an open room count towards its players the same way, so a burst of
//! quick joins does not overfill a room that a record shows half empty. Draining nodes and nodes at their room limit are
//! not candidates. When the place is on another node this node writes a
//! ticket and answers with a `Redirect`; the client takes the seat there.
//!
//! A ticket is a ticket, not a held seat: the seat is taken when the
//! player arrives. If the room filled meanwhile, a quick join lands in
//! another room of that node (or a new one), a join by id or code gets
//! what a join on that node would get (4012).
//!
//! When Redis cannot be reached, rooms and resumes go on (they never ask
//! it), joins that need it are refused at once with 4020, `GET /rooms`
//! lists this node's rooms only, and the heartbeat keeps trying: when
//! Redis is back (even empty, after a restart) the next heartbeat writes
//! the record again.

use crate::config::Config;
use crate::room::lobby::{Listing, Lobby, RoomSummary};
use crate::room::{Refusal, RoomId};
use crate::wall::unix_millis;
use protocol::limits::normalize_code;
use protocol::{CloseCode, Redirect, RoomRequest, SeatTicket};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a node rewrites its record when nothing changes.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a record outlives its last heartbeat: a node killed without a
/// word leaves the directory, with its rooms, this long after its last
/// heartbeat at most.
pub const NODE_TTL: Duration = Duration::from_secs(3);
/// How soon after a change (a room opened, a player joined) the record is
/// rewritten; changes in between are written together.
pub const PUBLISH_DELAY: Duration = Duration::from_millis(100);
/// How long a read of the other nodes' records serves joins.
pub const NODES_CACHE: Duration = Duration::from_millis(100);
/// How long a seat ticket may wait for its player.
pub const TICKET_TTL: Duration = Duration::from_secs(10);
/// Room ids taken from the shared counter at a time.
pub const ID_BLOCK: u32 = 1024;
/// Tickets sent to a node count towards its load (and its room's players)
/// until a record it wrote after them shows the players, and at most this
/// long.
pub const RECENT_TICKETS: Duration = Duration::from_secs(2);
/// How long one Redis command may take before the join that needs it is
/// refused (4020).
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(800);

const NODES_KEY: &str = "game:nodes";
const ROOM_IDS_KEY: &str = "game:room_ids";

fn node_key(id: &str) -> String {
    format!("game:node:{id}")
}

fn ticket_key(ticket: &SeatTicket) -> String {
    format!("game:ticket:{}", ticket.to_hex())
}

/// Raises the room-id counter to at least ARGV[1].
const RAISE_IDS: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
";

/// Takes a block of ARGV[2] room ids above ARGV[1] (ids in use that the
/// counter may not know of, after Redis lost it): returns its last id.
const TAKE_IDS: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[2])
";

/// A node as the directory holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's id.
    pub id: String,
    /// Where players are redirected to reach it (its `ws` route).
    pub url: String,
    /// Takes no new rooms (stopping).
    pub draining: bool,
    /// Rooms it may still open.
    pub rooms_left: u32,
    /// The end (exclusive) of the room ids it holds: no block may be given
    /// out below it.
    #[serde(default)]
    pub room_ids_to: RoomId,
    /// Its open rooms.
    pub rooms: Vec<RoomSummary>,
    /// When it wrote this, in milliseconds since the Unix epoch.
    pub written_unix_ms: u64,
}

impl NodeRecord {
    /// Players in its rooms, joins on their way included.
    pub fn players(&self) -> u64 {
        self.rooms.iter().map(|r| u64::from(r.players)).sum()
    }
}

/// A seat ticket's contents in Redis.
#[derive(Debug, Serialize, Deserialize)]
struct TicketRecord {
    /// The node that must take it.
    node: String,
    /// Where to place the player there.
    request: RoomRequest,
}

/// Where a new player goes.
#[derive(Debug)]
pub enum Route {
    /// Here, with this request (a ticket's request, for a ticket).
    Local(RoomRequest),
    /// To another node.
    Redirect(Redirect),
}

/// The counters and gauges of `/metrics` that describe the directory.
#[derive(Default)]
struct Health {
    /// Whether the last command reached Redis.
    up: AtomicBool,
    /// When a heartbeat last reached Redis (ms since the epoch; 0 never).
    last_heartbeat_ms: AtomicU64,
    /// Commands that failed or timed out.
    errors: AtomicU64,
    /// Live nodes at the last read, this one included.
    nodes: AtomicU64,
    /// Players sent to other nodes.
    redirects: AtomicU64,
    /// Tickets presented here and accepted.
    tickets_accepted: AtomicU64,
    /// Tickets presented here and refused (unknown, used, expired, or for
    /// another node).
    tickets_refused: AtomicU64,
    /// Joins refused with 4020 because Redis could not be reached.
    joins_unavailable: AtomicU64,
}

/// A ticket this node sent lately.
struct Sent {
    /// When, for forgetting it.
    at: Instant,
    /// When, in milliseconds since the Unix epoch, for comparing with the
    /// time the target's record was written.
    at_unix_ms: u64,
    /// The node it is for.
    node: String,
    /// The room it was meant for, for a quick join into an open room.
    room: Option<RoomId>,
}

/// Players on their way, by tickets this node sent: per node and per
/// room, counting the tickets sent after the target's record was written,
/// and those sent up to [`IN_FLIGHT`] before it (their players may not
/// have arrived when it was written). A player counted twice for a moment
/// makes a room look full a little early, and a new room opens on the
/// least-loaded node; a player not counted would overfill the room, and
/// the overflow would open rooms on that node instead.
struct Pending(Vec<(u64, String, Option<RoomId>)>);

impl Pending {
    fn counts(&self, node: &NodeRecord, at: u64) -> bool {
        at.saturating_add(IN_FLIGHT_MS) >= node.written_unix_ms
    }

    fn to_node(&self, node: &NodeRecord) -> u64 {
        self.0
            .iter()
            .filter(|(at, n, _)| *n == node.id && self.counts(node, *at))
            .count() as u64
    }

    fn to_room(&self, node: &NodeRecord, room: RoomId) -> u32 {
        let n = self
            .0
            .iter()
            .filter(|(at, n, r)| *n == node.id && *r == Some(room) && self.counts(node, *at))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// How long a redirected player may take from its ticket to its seat, for
/// [`Pending`]: a redirect is a new connection, 1 to 2 ms on an idle
/// machine and hundreds under load.
const IN_FLIGHT_MS: u64 = 500;

/// This node's side of the directory.
pub struct Directory {
    id: String,
    url: String,
    lobby: Arc<Lobby>,
    redis: ConnectionManager,
    draining: AtomicBool,
    health: Health,
    /// Tickets sent to other nodes lately.
    recent: Mutex<VecDeque<Sent>>,
    /// The other nodes' records as last read, and when.
    others: tokio::sync::Mutex<Option<(Instant, Arc<Vec<NodeRecord>>)>>,
    /// Since when Redis has answered without a failure.
    up_since: Mutex<Option<Instant>>,
}

impl Directory {
    /// The directory of `config` (which has `--directory` and a resolved
    /// `--public-url`), over `lobby`. Connects lazily: a Redis that is
    /// down at start is retried by the heartbeat.
    pub fn new(config: &Config, lobby: Arc<Lobby>) -> Result<Arc<Self>, String> {
        let (Some(redis_url), Some(public)) = (&config.directory, &config.public_url) else {
            return Err("--directory needs --public-url".into());
        };
        let url = crate::config::public_ws_url(public)?;
        let client = redis::Client::open(redis_url.as_str())
            .map_err(|e| format!("--directory {redis_url}: {e}"))?;
        let redis = ConnectionManager::new_lazy_with_config(
            client,
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(COMMAND_TIMEOUT))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1),
        )
        .map_err(|e| format!("--directory {redis_url}: {e}"))?;
        let id = config.node_id.clone().unwrap_or_else(random_node_id);
        lobby.use_room_id_blocks();
        Ok(Arc::new(Self {
            id,
            url,
            lobby,
            redis,
            draining: AtomicBool::new(false),
            health: Health::default(),
            recent: Mutex::new(VecDeque::new()),
            others: tokio::sync::Mutex::new(None),
            up_since: Mutex::new(None),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.id
    }

    /// Where other nodes redirect players to reach this one.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one Redis command, bounded by [`COMMAND_TIMEOUT`], keeping the
    /// health figures.
    async fn run<T>(
        &self,
        what: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Refusal> {
        let failed = |cause: String| {
            self.health.up.store(false, Relaxed);
            self.health.errors.fetch_add(1, Relaxed);
            tracing::debug!(what, cause, "directory command failed");
            Refusal::new(
                CloseCode::DirectoryUnavailable,
                "the room directory is unreachable: try again shortly",
            )
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(v)) => {
                if !self.health.up.swap(true, Relaxed) {
                    *self.up_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                }
                Ok(v)
            }
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed("timed out".into())),
        }
    }

    /// How long Redis has answered without a failure.
    fn up_for(&self) -> Duration {
        let since = *self.up_since.lock().unwrap_or_else(|e| e.into_inner());
        match since {
            Some(at) if self.health.up.load(Relaxed) => at.elapsed(),
            _ => Duration::ZERO,
        }
    }

    /// This node's record as it stands.
    fn record(&self) -> NodeRecord {
        let rooms = self.lobby.summary();
        NodeRecord {
            id: self.id.clone(),
            url: self.url.clone(),
            draining: self.draining.load(Relaxed),
            rooms_left: self.lobby.rooms_left(),
            room_ids_to: self.lobby.room_ids_end(),
            rooms,
            written_unix_ms: unix_millis(),
        }
    }

    /// Writes this node's record (and takes a block of room ids when few
    /// are left). Returns whether Redis took it.
    async fn publish(&self) -> bool {
        let record = self.record();
        let json = serde_json::to_string(&record).expect("records serialize");
        let mut redis = self.redis.clone();
        let ttl = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.pset_ex(node_key(&self.id), json, ttl)
            .ignore()
            .sadd(NODES_KEY, &self.id)
            .ignore()
            .cmd("EVAL")
            .arg(RAISE_IDS)
            .arg(1)
            .arg(ROOM_IDS_KEY)
            .arg(record.room_ids_to.saturating_sub(1))
            .ignore();
        if self
            .run("heartbeat", pipe.query_async::<()>(&mut redis))
            .await
            .is_err()
        {
            return false;
        }
        self.health
            .last_heartbeat_ms
            .store(record.written_unix_ms, Relaxed);
        let left = self.lobby.room_ids_left();
        // After an outage, the other nodes raise the counter above their
        // ids at their next heartbeat: wait for that, unless no id is left.
        let settled = self.up_for() >= HEARTBEAT * 2;
        if left < u64::from(ID_BLOCK / 2) && (left == 0 || settled) {
            let others = self.others.lock().await.as_ref().map(|(_, o)| o.clone());
            let seen = others
                .iter()
                .flat_map(|o| o.iter())
                .map(|n| n.room_ids_to.saturating_sub(1))
                .max()
                .unwrap_or(0);
            let floor = self.lobby.highest_room_id().max(seen);
            let script = redis::Script::new(TAKE_IDS);
            let mut invocation = script.key(ROOM_IDS_KEY);
            invocation.arg(floor).arg(ID_BLOCK);
            if let Ok(last) = self
                .run("room ids", invocation.invoke_async::<u64>(&mut redis))
                .await
            {
                match RoomId::try_from(last) {
                    Ok(last) if (ID_BLOCK..RoomId::MAX).contains(&last) => {
                        self.lobby.add_room_ids(last - ID_BLOCK + 1, last + 1);
                    }
                    _ => tracing::error!(last, "the cluster's room ids are used up"),
                }
            }
        }
        true
    }

    /// Writes this node's record once (at start), after reading the
    /// others' (whose ids its first block must stay above); logs whether
    /// Redis took it.
    pub async fn register(&self) {
        let _ = self.others().await;
        if self.publish().await {
            tracing::info!(node = %self.id, url = %self.url, "registered in the room directory");
        } else {
            tracing::warn!(node = %self.id, "the room directory is unreachable at start: joins that need it are refused until it answers");
        }
    }

    /// Keeps this node's record fresh until `stop` fires: at every
    /// [`HEARTBEAT`], and [`PUBLISH_DELAY`] after a change.
    pub async fn heartbeat(self: Arc<Self>, mut stop: crate::shutdown::Shutdown) {
        let mut registered = self.health.up.load(Relaxed);
        loop {
            tokio::select! {
                () = stop.wait() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
                () = self.lobby.changed() => {
                    tokio::time::sleep(PUBLISH_DELAY).await;
                }
            }
            let ok = self.publish().await;
            if ok != registered {
                if ok {
                    tracing::info!(node = %self.id, url = %self.url, "registered in the room directory again");
                } else {
                    tracing::warn!(node = %self.id, "the room directory is unreachable: rooms go on, joins that need it are refused");
                }
                registered = ok;
            }
        }
    }

    /// Marks this node as draining and says so to the directory at once:
    /// no new room is sent here from now on.
    pub async fn drain(&self) {
        self.draining.store(true, Relaxed);
        if self.publish().await {
            tracing::info!(node = %self.id, "draining: the directory sends no new rooms here");
        }
    }

    /// Removes this node's record (a planned stop, once its rooms stopped).
    pub async fn leave(&self) {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.del(node_key(&self.id))
            .ignore()
            .srem(NODES_KEY, &self.id)
            .ignore();
        if self
            .run("leave", pipe.query_async::<()>(&mut redis))
            .await
            .is_ok()
        {
            tracing::info!(node = %self.id, "left the room directory");
        }
    }

    /// Every live node's record, this one's as it stands now.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, Refusal> {
        let mut out = vec![self.record()];
        out.extend(self.others().await?.iter().cloned());
        self.health.nodes.store(out.len() as u64, Relaxed);
        Ok(out)
    }

    /// The other live nodes' records, read from Redis at most every
    /// [`NODES_CACHE`]: joins arriving together share one read (the
    /// records are up to [`PUBLISH_DELAY`] old anyway, and tickets on
    /// their way are counted apart, see [`Pending`]).
    async fn others(&self) -> Result<Arc<Vec<NodeRecord>>, Refusal> {
        let mut cache = self.others.lock().await;
        if let Some((at, records)) = &*cache
            && at.elapsed() < NODES_CACHE
        {
            return Ok(records.clone());
        }
        let records = Arc::new(self.read_others().await?);
        *cache = Some((Instant::now(), records.clone()));
        Ok(records)
    }

    async fn read_others(&self) -> Result<Vec<NodeRecord>, Refusal> {
        let mut redis = self.redis.clone();
        let ids: Vec<String> = self.run("nodes", redis.smembers(NODES_KEY)).await?;
        let others: Vec<&String> = ids.iter().filter(|id| **id != self.id).collect();
        let mut out = Vec::with_capacity(others.len());
        if !others.is_empty() {
            let keys: Vec<String> = others.iter().map(|id| node_key(id)).collect();
            let records: Vec<Option<String>> = self.run("records", redis.mget(&keys)).await?;
            let mut gone = Vec::new();
            for (id, record) in others.into_iter().zip(records) {
                match record.map(|r| serde_json::from_str::<NodeRecord>(&r)) {
                    Some(Ok(record)) => out.push(record),
                    Some(Err(e)) => {
                        tracing::warn!(node = %id, cause = %e, "unreadable node record: ignored");
                    }
                    None => gone.push(id.clone()),
                }
            }
            if !gone.is_empty() {
                // Expired records: forget their ids (best effort).
                let _ = self
                    .run("forget", redis.srem::<_, _, ()>(NODES_KEY, gone))
                    .await;
            }
        }
        Ok(out)
    }

    /// Public, unlocked rooms of every live node (of one type or all),
    /// by id; this node's only when Redis cannot be reached.
    pub async fn list(&self, room_type: Option<&str>) -> Vec<Listing> {
        let nodes = match self.nodes().await {
            Ok(nodes) => nodes,
            Err(_) => vec![self.record()],
        };
        let mut out: Vec<Listing> = nodes
            .iter()
            .flat_map(|n| n.rooms.iter().map(move |r| (n, r)))
            .filter(|(_, r)| !r.private && !r.locked)
            .filter(|(_, r)| room_type.is_none_or(|t| r.room_type == t))
            .map(|(n, r)| Listing {
                id: r.id,
                room_type: r.room_type.clone(),
                players: r.players,
                capacity: r.capacity,
                metadata: r.metadata.clone(),
                node: Some(n.id.clone()),
            })
            .collect();
        out.sort_unstable_by_key(|l| l.id);
        out
    }

    /// The room an invite code opens anywhere in the cluster: its id and
    /// type.
    pub async fn resolve_code(&self, code: &str) -> Option<(RoomId, String)> {
        let code = normalize_code(code)?;
        let nodes = self.nodes().await.ok()?;
        nodes
            .iter()
            .flat_map(|n| &n.rooms)
            .find(|r| r.invite_code.as_deref() == Some(code.as_str()))
            .map(|r| (r.id, r.room_type.clone()))
    }

    /// Decides where a new player goes (see the module's documentation).
    pub async fn route(&self, request: &RoomRequest) -> Result<Route, Refusal> {
        let result = self.route_inner(request).await;
        if let Err(refusal) = &result
            && refusal.code == CloseCode::DirectoryUnavailable
        {
            self.health.joins_unavailable.fetch_add(1, Relaxed);
        }
        result
    }

    async fn route_inner(&self, request: &RoomRequest) -> Result<Route, Refusal> {
        let local = || Ok(Route::Local(request.clone()));
        match request {
            RoomRequest::Reserved { ticket } => self.take_ticket(ticket).await,
            RoomRequest::QuickJoin { room_type, options } => {
                if !self.draining.load(Relaxed) && self.lobby.has_quick_match(room_type, options) {
                    return local();
                }
                let Some(filter) = self.lobby.filter_keys(room_type) else {
                    // Unknown here: the lobby refuses it with 4009.
                    return local();
                };
                let nodes = self.nodes().await?;
                let pending = self.pending();
                let wanted = Wanted {
                    room_type,
                    options,
                    filter,
                };
                if let Some((node, room)) = fullest_open_room(&nodes, &pending, &self.id, &wanted) {
                    return self.redirect(node, Some(room.id), request.clone()).await;
                }
                self.to_least_loaded(&nodes, &pending, request).await
            }
            RoomRequest::Create { .. } => {
                let nodes = self.nodes().await?;
                self.to_least_loaded(&nodes, &self.pending(), request).await
            }
            RoomRequest::JoinById { room_id } => {
                if self.lobby.has_room(*room_id) {
                    return local();
                }
                let nodes = self.nodes().await?;
                match nodes
                    .iter()
                    .find(|n| n.id != self.id && n.rooms.iter().any(|r| r.id == *room_id))
                {
                    Some(node) => self.redirect(node, None, request.clone()).await,
                    // Nowhere: the lobby says so (4010).
                    None => local(),
                }
            }
            RoomRequest::JoinByCode { code } => {
                let Some(code) = normalize_code(code) else {
                    return local();
                };
                if self.lobby.has_code(&code) {
                    return local();
                }
                let nodes = self.nodes().await?;
                let holder = nodes.iter().find(|n| {
                    n.id != self.id
                        && n.rooms
                            .iter()
                            .any(|r| r.invite_code.as_deref() == Some(code.as_str()))
                });
                match holder {
                    Some(node) => self.redirect(node, None, request.clone()).await,
                    None => local(),
                }
            }
        }
    }

    /// Sends a new room to the least-loaded node that takes rooms.
    async fn to_least_loaded(
        &self,
        nodes: &[NodeRecord],
        pending: &Pending,
        request: &RoomRequest,
    ) -> Result<Route, Refusal> {
        match least_loaded(nodes, pending, &self.id) {
            Some(node) if node.id != self.id => self.redirect(node, None, request.clone()).await,
            // This node, or none takes rooms (the lobby then says why).
            _ => Ok(Route::Local(request.clone())),
        }
    }

    /// Tickets sent lately, forgetting older ones.
    fn pending(&self) -> Pending {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|s| s.at.elapsed() > RECENT_TICKETS)
        {
            recent.pop_front();
        }
        Pending(
            recent
                .iter()
                .map(|s| (s.at_unix_ms, s.node.clone(), s.room))
                .collect(),
        )
    }

    /// Writes a ticket for `request` on `node` (meant for `room`, when it
    /// is a quick join into an open room) and the redirect that carries
    /// it.
    async fn redirect(
        &self,
        node: &NodeRecord,
        room: Option<RoomId>,
        request: RoomRequest,
    ) -> Result<Route, Refusal> {
        let ticket = SeatTicket(random_bytes());
        let record = TicketRecord {
            node: node.id.clone(),
            request,
        };
        let json = serde_json::to_string(&record).expect("tickets serialize");
        let mut redis = self.redis.clone();
        let ttl = u64::try_from(TICKET_TTL.as_millis()).unwrap_or(u64::MAX);
        self.run(
            "ticket",
            redis.pset_ex::<_, _, ()>(ticket_key(&ticket), json, ttl),
        )
        .await?;
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Sent {
                at: Instant::now(),
                at_unix_ms: unix_millis(),
                node: node.id.clone(),
                room,
            });
        self.health.redirects.fetch_add(1, Relaxed);
        tracing::debug!(to = %node.id, "player redirected");
        Ok(Route::Redirect(Redirect {
            url: node.url.clone(),
            ticket,
        }))
    }

    /// Takes a ticket presented here: once, and only if it is for this
    /// node.
    async fn take_ticket(&self, ticket: &SeatTicket) -> Result<Route, Refusal> {
        let mut redis = self.redis.clone();
        let found: Option<String> = self
            .run("ticket", redis.get_del(ticket_key(ticket)))
            .await?;
        let refused = |why: &'static str| {
            self.health.tickets_refused.fetch_add(1, Relaxed);
            Refusal::new(CloseCode::InvalidTicket, why)
        };
        let record = found
            .and_then(|json| serde_json::from_str::<TicketRecord>(&json).ok())
            .ok_or_else(|| refused("seat ticket unknown, already used or expired: join again"))?;
        if record.node != self.id {
            return Err(refused("seat ticket is for another node: join again"));
        }
        if matches!(record.request, RoomRequest::Reserved { .. }) {
            return Err(refused("seat ticket holds no room request"));
        }
        self.health.tickets_accepted.fetch_add(1, Relaxed);
        Ok(Route::Local(record.request))
    }

    /// Appends the directory's figures to a `/metrics` page.
    pub fn render(&self, out: &mut String) {
        let h = &self.health;
        let line = |out: &mut String, kind: &str, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            line(out, "counter", name, help, v.load(Relaxed) as f64);
        };
        line(
            out,
            "gauge",
            "game_directory_up",
            "1 when the last command reached the room directory (Redis), else 0.",
            f64::from(u8::from(h.up.load(Relaxed))),
        );
        let last = h.last_heartbeat_ms.load(Relaxed);
        let age = if last == 0 {
            -1.0
        } else {
            unix_millis().saturating_sub(last) as f64 / 1000.0
        };
        line(
            out,
            "gauge",
            "game_directory_heartbeat_age_seconds",
            "Seconds since this node's record last reached the directory (-1: never).",
            age,
        );
        line(
            out,
            "gauge",
            "game_directory_nodes",
            "Live nodes at the last read of the directory, this one included.",
            h.nodes.load(Relaxed) as f64,
        );
        line(
            out,
            "gauge",
            "game_directory_draining",
            "1 once this node drains (takes no new rooms).",
            f64::from(u8::from(self.draining.load(Relaxed))),
        );
        counter(
            out,
            "game_directory_errors_total",
            "Directory commands that failed or timed out.",
            &h.errors,
        );
        counter(
            out,
            "game_redirects_total",
            "Players sent to another node with a seat ticket.",
            &h.redirects,
        );
        counter(
            out,
            "game_tickets_accepted_total",
            "Seat tickets presented here and accepted.",
            &h.tickets_accepted,
        );
        counter(
            out,
            "game_tickets_refused_total",
            "Seat tickets refused (4021): unknown, used, expired or for another node.",
            &h.tickets_refused,
        );
        counter(
            out,
            "game_joins_directory_unavailable_total",
            "Joins refused (4020) because the directory could not be reached.",
            &h.joins_unavailable,
        );
    }
}

/// What a quick join asks for.
struct Wanted<'a> {
    room_type: &'a str,
    options: &'a [(String, String)],
    /// The type's filter keys: the options a room must match.
    filter: &'a [String],
}

/// The open room of another node that a quick join should fill: public,
/// unlocked, of the type, matching on the filter keys, with a seat even
/// counting the players on their way, on a node that is not draining; the
/// fullest such room (rooms fill before new ones open), on a tie the one
/// of the lower node id.
fn fullest_open_room<'a>(
    nodes: &'a [NodeRecord],
    pending: &Pending,
    me: &str,
    wanted: &Wanted<'_>,
) -> Option<(&'a NodeRecord, &'a RoomSummary)> {
    let seated =
        |n: &NodeRecord, r: &RoomSummary| r.players.saturating_add(pending.to_room(n, r.id));
    let matches = |n: &NodeRecord, r: &RoomSummary| {
        r.room_type == wanted.room_type
            && !r.private
            && !r.locked
            && seated(n, r) < u32::from(r.capacity)
            && wanted
                .filter
                .iter()
                .all(|key| option(&r.options, key) == option(wanted.options, key))
    };
    nodes
        .iter()
        .filter(|n| n.id != me && !n.draining)
        .flat_map(|n| {
            n.rooms
                .iter()
                .filter(move |r| matches(n, r))
                .map(move |r| (n, r))
        })
        .max_by_key(|(n, r)| (seated(n, r), std::cmp::Reverse(&n.id)))
}

/// The node a new room goes to: the least loaded (players, counting those
/// on their way) of those that take rooms; on a tie this node (`me`, no
/// redirect to pay), then the one with fewer rooms, then the lower id.
fn least_loaded<'a>(
    nodes: &'a [NodeRecord],
    pending: &Pending,
    me: &str,
) -> Option<&'a NodeRecord> {
    nodes
        .iter()
        .filter(|n| !n.draining && n.rooms_left > 0)
        .min_by_key(|n| {
            (
                n.players() + pending.to_node(n),
                n.id != me,
                n.rooms.len(),
                &n.id,
            )
        })
}

/// The value of `key` among `options`.
fn option<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    bytes
}

fn random_node_id() -> String {
    let b = random_bytes();
    format!("node-{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: RoomId, players: u32, options: &[(&str, &str)]) -> RoomSummary {
        RoomSummary {
            id,
            room_type: "arena".into(),
            private: false,
            locked: false,
            players,
            capacity: 10,
            invite_code: None,
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            metadata: Default::default(),
        }
    }

    fn node(id: &str, rooms: Vec<RoomSummary>) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            url: format!("ws://{id}/ws"),
            draining: false,
            rooms_left: 100,
            room_ids_to: 0,
            rooms,
            written_unix_ms: 10_000,
        }
    }

    /// Tickets sent at `at` ms to `node` (and `room`).
    fn sent(tickets: &[(u64, &str, Option<RoomId>)]) -> Pending {
        Pending(
            tickets
                .iter()
                .map(|&(at, n, r)| (at, n.to_owned(), r))
                .collect(),
        )
    }

    const NONE: Pending = Pending(Vec::new());

    fn quick<'a>(options: &'a [(String, String)], filter: &'a [String]) -> Wanted<'a> {
        Wanted {
            room_type: "arena",
            options,
            filter,
        }
    }

    #[test]
    fn quick_join_fills_the_fullest_open_matching_room_of_another_live_node() {
        let nodes = vec![
            node("me", vec![room(1, 9, &[])]),
            node(
                "b",
                vec![room(2, 3, &[]), room(3, 10, &[]), room(4, 7, &[])],
            ),
            node("c", vec![room(5, 5, &[])]),
        ];
        let pick = |nodes: &[NodeRecord], pending: &Pending| {
            fullest_open_room(nodes, pending, "me", &quick(&[], &[]))
                .map(|(n, r)| (n.id.clone(), r.id))
        };
        // Never this node's own (the lobby serves those), never a full one.
        assert_eq!(pick(&nodes, &NONE), Some(("b".into(), 4)));
        // Private, locked, another type, a draining node: not joined.
        for change in 0..4 {
            let mut nodes = nodes.clone();
            let r = &mut nodes[1].rooms[2];
            match change {
                0 => r.private = true,
                1 => r.locked = true,
                2 => r.room_type = "four".into(),
                _ => nodes[1].draining = true,
            }
            // Room 4 out: the fullest left is c's (5 players, b's other
            // has 3).
            assert_eq!(
                pick(&nodes, &NONE),
                Some(("c".into(), 5)),
                "change {change}"
            );
        }
        // No open room anywhere else: none.
        assert_eq!(pick(&nodes[..1], &NONE), None);
    }

    #[test]
    fn players_on_their_way_fill_a_room_before_its_record_says_so() {
        let nodes = vec![
            node("me", vec![]),
            node("b", vec![room(4, 7, &[]), room(2, 3, &[])]),
        ];
        let pick = |pending: &Pending| {
            fullest_open_room(&nodes, pending, "me", &quick(&[], &[])).map(|(_, r)| r.id)
        };
        // Two tickets into room 4 after its record: 9 of 10, the fullest.
        let two = sent(&[(10_001, "b", Some(4)), (10_002, "b", Some(4))]);
        assert_eq!(pick(&two), Some(4));
        // A third: full, so the next fullest.
        let three = sent(&[
            (10_001, "b", Some(4)),
            (10_002, "b", Some(4)),
            (10_003, "b", Some(4)),
        ]);
        assert_eq!(pick(&three), Some(2));
        // Tickets long before the record are in it already; those just
        // before it may not be (their players still on the way).
        let old = sent(&[
            (1_000, "b", Some(4)),
            (2_000, "b", Some(4)),
            (3_000, "b", Some(4)),
        ]);
        assert_eq!(pick(&old), Some(4));
        let just_before = 10_000 - IN_FLIGHT_MS;
        let recent = sent(&[
            (just_before, "b", Some(4)),
            (9_900, "b", Some(4)),
            (9_999, "b", Some(4)),
        ]);
        assert_eq!(pick(&recent), Some(2));
    }

    #[test]
    fn quick_join_matches_the_filter_keys_only() {
        let nodes = vec![
            node("me", vec![]),
            node("b", vec![room(2, 5, &[("mode", "ctf"), ("map", "x")])]),
            node("c", vec![room(3, 1, &[("mode", "dm"), ("map", "x")])]),
        ];
        let filter = vec!["mode".to_owned()];
        let options = vec![
            ("mode".to_owned(), "dm".to_owned()),
            ("map".to_owned(), "y".to_owned()),
        ];
        let picked = fullest_open_room(&nodes, &NONE, "me", &quick(&options, &filter));
        assert_eq!(
            picked.map(|(_, r)| r.id),
            Some(3),
            "mode matches; map is no filter key"
        );
        let options = vec![("mode".to_owned(), "race".to_owned())];
        assert!(fullest_open_room(&nodes, &NONE, "me", &quick(&options, &filter)).is_none());
    }

    #[test]
    fn new_rooms_go_to_the_least_loaded_node_that_takes_rooms() {
        let pick = |nodes: &[NodeRecord], pending: &Pending| {
            least_loaded(nodes, pending, "me").map(|n| n.id.clone())
        };
        let nodes = vec![
            node("me", vec![room(1, 6, &[])]),
            node("b", vec![room(2, 4, &[])]),
            node("c", vec![room(3, 5, &[])]),
        ];
        assert_eq!(pick(&nodes, &NONE).as_deref(), Some("b"));
        // Tickets sent to b since its record count: 4 + 2 > 5.
        let to_b = sent(&[(10_500, "b", None), (10_600, "b", None)]);
        assert_eq!(pick(&nodes, &to_b).as_deref(), Some("c"));
        // A tie goes to this node, then to fewer rooms, then to the lower id.
        let tie = vec![
            node("me", vec![room(1, 4, &[])]),
            node("b", vec![room(2, 4, &[])]),
        ];
        assert_eq!(pick(&tie, &NONE).as_deref(), Some("me"));
        let tie = vec![
            node("me", vec![room(1, 5, &[])]),
            node("c", vec![room(2, 2, &[]), room(3, 2, &[])]),
            node("d", vec![room(4, 4, &[])]),
            node("b", vec![room(5, 4, &[])]),
        ];
        assert_eq!(pick(&tie, &NONE).as_deref(), Some("b"));
        // Draining nodes and nodes at their room limit take none.
        let mut nodes = nodes;
        nodes[1].draining = true;
        nodes[2].rooms_left = 0;
        assert_eq!(pick(&nodes, &NONE).as_deref(), Some("me"));
        nodes[0].rooms_left = 0;
        assert_eq!(pick(&nodes, &NONE), None);
    }
}
