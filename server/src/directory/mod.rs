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
//! - `game:rpc:<id>`: the node's channel, where other nodes ask it to
//!   hold seats and it answers theirs (`holds`).
//!
//! Routing a new player ([`Directory::route`]): what this node can serve
//! itself it serves without asking Redis (a quick join with a matching
//! room here, a room id or invite code of a room here). Otherwise the
//! node reads the live records (at most every [`NODES_CACHE`], shared by
//! the joins in between): a quick join goes to the fullest open matching
//! room of another node (rooms fill before new ones open), and a new room
//! (quick join with no open room, create) goes to the least-loaded node,
//! "load" being its players (joins on their way included) plus the
//! players this node sent it that its record cannot show yet; a tie goes
//! to this node (no redirect), then to fewer rooms, then to the lower id.
//! Players sent into an open room count towards its players the same way,
//! so a burst of quick joins does not overfill a room that a record shows
//! half empty (`choose`). Draining nodes and nodes at their room limit are
//! not candidates.
//!
//! When the place is on another node, this node asks that node to hold a
//! seat (a real place in its lobby, counted in the room at once) and
//! answers the player with a `Redirect` carrying the ticket it got; the
//! player takes the seat there. A ticket is good once, on that node,
//! within [`TICKET_TTL`]; then the seat goes back. A node that does not
//! answer within [`HOLD_TIMEOUT`] costs the join a 4020; one that is not
//! listening at all (killed, its record not yet expired) is left out and
//! the join routed again without it; a refusal
//! (the room is full, locked, gone) is passed on to the player as the
//! close it would have got there.
//!
//! When Redis cannot be reached, rooms and resumes go on (they never ask
//! it), joins that need it are refused at once with 4020, `GET /rooms`
//! lists this node's rooms only, and the heartbeat keeps trying: when
//! Redis is back (even empty, after a restart) the next heartbeat writes
//! the record again.

mod choose;
mod holds;

use crate::config::Config;
use crate::room::lobby::{Listing, Lobby, Reservation, RoomSummary};
use crate::room::{Refusal, RoomId, random_bytes};
use crate::wall::unix_millis;
use choose::{Pending, Wanted, fullest_open_room, least_loaded};
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
/// How long a node asked to hold a seat may take to answer before the
/// join is refused (4020): longer than a Redis command, since the answer
/// waits for the other node's turn on its own busy cores.
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(3);
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

/// Where a new player goes.
pub enum Route {
    /// Here, with this request.
    Local(RoomRequest),
    /// Here, in the seat a ticket held.
    Held(Reservation),
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
    /// Seats asked of another node that it did not answer in time (or
    /// was not listening for).
    holds_unanswered: AtomicU64,
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
    /// For subscribing to this node's channel.
    client: redis::Client,
    /// Whether this node listens on its channel now.
    listening: tokio::sync::watch::Sender<bool>,
    /// Seats held here for players other nodes send.
    held: holds::Held,
    /// Answers this node waits for.
    waiting: holds::Waiting,
    /// Nodes found not listening, with the time of the record they were
    /// found by: left out of routing until they write a newer one.
    silent: Mutex<std::collections::HashMap<String, u64>>,
    /// Nodes found not listening so far (a join that found one routes
    /// again).
    silenced: AtomicU64,
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
        let client_for_pubsub = client.clone();
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
            client: client_for_pubsub,
            listening: tokio::sync::watch::Sender::new(false),
            held: holds::Held::default(),
            waiting: holds::Waiting::default(),
            silent: Mutex::new(std::collections::HashMap::new()),
            silenced: AtomicU64::new(0),
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
            let floor = self.lobby.room_ids_end().saturating_sub(1).max(seen);
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
        // Listening first, so that no node asks for a seat unheard.
        let mut listening = self.listening.subscribe();
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, listening.wait_for(|l| *l)).await;
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
            self.held.expire(TICKET_TTL);
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
        let others = self.others().await?;
        let mut silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        // A node found not listening counts again once it writes a newer
        // record (it was restarted, or its listener reconnected).
        silent.retain(|id, at| {
            others
                .iter()
                .any(|n| n.id == *id && n.written_unix_ms <= *at)
        });
        out.extend(
            others
                .iter()
                .filter(|n| !silent.contains_key(&n.id))
                .cloned(),
        );
        drop(silent);
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
        let silenced = self.silenced.load(Relaxed);
        let mut result = self.route_inner(request).await;
        if result.is_err() && self.silenced.load(Relaxed) != silenced {
            // A node chosen was found gone (its record not yet expired):
            // choose again without it, once.
            result = self.route_inner(request).await;
        }
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
            RoomRequest::Reserved { ticket } => self.take_ticket(ticket),
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

    /// Asks `node` to hold a seat for `request` (meant for `room`, when it
    /// is a quick join into an open room) and returns the redirect that
    /// carries its ticket, or its refusal.
    async fn redirect(
        &self,
        node: &NodeRecord,
        room: Option<RoomId>,
        request: RoomRequest,
    ) -> Result<Route, Refusal> {
        let (id, answer) = self.waiting.open();
        let hold = holds::Rpc::Hold {
            id,
            from: self.id.clone(),
            request,
        };
        let json = serde_json::to_string(&hold).expect("requests serialize");
        let mut redis = self.redis.clone();
        let listening: Result<u64, Refusal> = self
            .run("hold", redis.publish(holds::channel(&node.id), json))
            .await;
        let unanswered = |why: String| {
            self.waiting.forget(id);
            self.health.holds_unanswered.fetch_add(1, Relaxed);
            tracing::debug!(to = %node.id, why, "seat not held");
            Refusal::new(
                CloseCode::DirectoryUnavailable,
                format!("node {} did not answer: try again shortly", node.id),
            )
        };
        match listening {
            Ok(0) => {
                // Gone (killed: Redis saw its connections close) while its
                // record lives on: leave it out until it writes a new one.
                self.silent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(node.id.clone(), node.written_unix_ms);
                self.silenced.fetch_add(1, Relaxed);
                return Err(unanswered("not listening".into()));
            }
            Ok(_) => {}
            Err(e) => {
                self.waiting.forget(id);
                return Err(e);
            }
        }
        let ticket = match tokio::time::timeout(HOLD_TIMEOUT, answer).await {
            Ok(Ok(answer)) => answer.into_result()?,
            Ok(Err(_)) | Err(_) => return Err(unanswered("no answer in time".into())),
        };
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

    /// Takes the seat held here under a ticket: once.
    fn take_ticket(&self, ticket: &SeatTicket) -> Result<Route, Refusal> {
        match self.held.take(ticket) {
            Some(reservation) => {
                self.health.tickets_accepted.fetch_add(1, Relaxed);
                Ok(Route::Held(reservation))
            }
            None => {
                self.health.tickets_refused.fetch_add(1, Relaxed);
                Err(Refusal::new(
                    CloseCode::InvalidTicket,
                    "seat ticket unknown here, already used or expired: join again",
                ))
            }
        }
    }

    /// Listens on this node's channel until `stop` fires: holds seats that
    /// other nodes ask for, and takes the answers to this node's own
    /// requests. Reconnects (every [`HEARTBEAT`]) when Redis goes away.
    pub async fn listen(self: Arc<Self>, mut stop: crate::shutdown::Shutdown) {
        let client = self.client.clone();
        use futures_util::StreamExt;
        loop {
            let subscribed = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(holds::channel(&self.id)).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            if let Ok(Ok(pubsub)) = tokio::time::timeout(COMMAND_TIMEOUT, subscribed).await {
                self.listening.send_replace(true);
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        () = stop.wait() => return,
                        msg = messages.next() => match msg {
                            Some(msg) => self.on_message(msg.get_payload_bytes()),
                            None => break,
                        },
                    }
                }
                self.listening.send_replace(false);
            }
            tokio::select! {
                () = stop.wait() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    }

    /// Handles one message of this node's channel.
    fn on_message(self: &Arc<Self>, payload: &[u8]) {
        match serde_json::from_slice::<holds::Rpc>(payload) {
            Ok(holds::Rpc::Held { id, answer }) => self.waiting.answer(id, answer),
            Ok(holds::Rpc::Hold { id, from, request }) => {
                let placed = if self.draining.load(Relaxed) {
                    Err(Refusal::new(
                        CloseCode::GoingAway,
                        "the node is draining: join again",
                    ))
                } else if matches!(request, RoomRequest::Reserved { .. }) {
                    Err(Refusal::new(
                        CloseCode::InvalidTicket,
                        "a seat ticket cannot be held again",
                    ))
                } else {
                    self.lobby.place(&request)
                };
                let answer = holds::Answer::of(placed, &self.held);
                let reply = holds::Rpc::Held { id, answer };
                let json = serde_json::to_string(&reply).expect("answers serialize");
                let this = self.clone();
                tokio::spawn(async move {
                    let mut redis = this.redis.clone();
                    let _ = this
                        .run(
                            "answer",
                            redis.publish::<_, _, ()>(holds::channel(&from), json),
                        )
                        .await;
                });
            }
            Err(e) => tracing::warn!(cause = %e, "unreadable message on the node's channel"),
        }
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
        line(
            out,
            "gauge",
            "game_seats_held",
            "Seats held here for players other nodes are sending (tickets not yet presented).",
            self.held.len() as f64,
        );
        counter(
            out,
            "game_seats_held_expired_total",
            "Held seats given back because their ticket was not presented in time.",
            &self.held.expired,
        );
        counter(
            out,
            "game_holds_unanswered_total",
            "Seats asked of another node that it did not answer in time (4020).",
            &h.holds_unanswered,
        );
        counter(
            out,
            "game_joins_directory_unavailable_total",
            "Joins refused (4020) because the directory could not be reached.",
            &h.joins_unavailable,
        );
    }
}

fn random_node_id() -> String {
    let b = random_bytes();
    format!("node-{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3])
}
