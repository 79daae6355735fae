//! The arena: players roam a rectangular field and collect pickups for
//! points. The platform's real-time game: many players, interest
//! management (each player sees only what is near it), a state every tick.
//!
//! The simulation is deterministic by construction: integer arithmetic only,
//! a seeded SplitMix64 generator written here rather than an OS or library
//! source, and no hash-ordered containers. The same seed and the same
//! sequence of calls therefore yield the same world on every machine, which
//! is what lets a server started with a given seed replay its rooms.
//!
//! An arena saves its whole simulation state (players with their
//! velocities, pickups, respawn timers, the generator's state, the step
//! count) and [`Arena::restore`] rebuilds an arena that continues exactly as
//! the saved one would have, so a planned restart changes nothing a player
//! can see.
//!
//! Layout: the rules are here ([`Arena`], [`ArenaConfig`]); what clients
//! send and receive is in [`msg`] (with the hand-written entity encoder of
//! the per-player state); [`bot`] is the simulated player `loadgen` drives;
//! `web/` holds the page and its codec, served at `/arena/`. The rules are
//! inherent methods of [`Arena`] (`join`, `step`, ...); the [`Game`] impl
//! adds what the room needs (options, saving, welcome and state bytes).
//!
//! Not a physics engine: players are points that move at a capped speed,
//! and there are no collisions between them.

pub mod bot;
pub mod msg;

use std::collections::VecDeque;

use game_api::grid::Grid;
use game_api::replication::EncodedEntities;
use game_api::{Ctx, Game, PlayerId, RoomOptions, RoomType, WebAsset};
use msg::{ArenaWelcome, Entity, EntityKind, MAX_ENTITY_BYTES, Move};
use serde::{Deserialize, Serialize};

/// The largest stick deflection on one axis. Inputs carry an `i8`, whose
/// -128 the protocol does not use; it is read as -127 so that full left is
/// exactly as fast as full right.
const MAX_AXIS: i64 = 127;

/// Most pickups an arena holds: a field is made with all of them at once.
pub const MAX_PICKUPS: u32 = 100_000;

/// Settings of one arena. The defaults suit a 30 Hz tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArenaConfig {
    /// Width of the field in world units; x runs `0..=world_width`.
    pub world_width: u16,
    /// Height of the field in world units; y runs `0..=world_height`.
    pub world_height: u16,
    /// A player sees every entity within this distance of itself.
    pub view_radius: u16,
    /// How many pickups the field holds (on the field or waiting to respawn).
    pub pickups: u32,
    /// Steps between a pickup's collection and its reappearance elsewhere.
    pub pickup_respawn_ticks: u32,
    /// Top speed of a player, in world units per step.
    pub player_speed: u16,
    /// A player collects a pickup within this distance of itself.
    pub pickup_radius: u16,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig {
            // A field large enough that a 300-unit view sees a fraction of
            // it, so interest management matters, yet small enough that a
            // few hundred players meet each other.
            world_width: 2000,
            world_height: 2000,
            // About a browser window's worth of field around the player.
            view_radius: 300,
            // About four pickups in an average 300-unit view of a
            // 2000 × 2000 field, so a player usually has one to aim for.
            pickups: 60,
            // Three seconds at 30 Hz: long enough that a collected pickup is
            // noticeably gone, short enough that the field never runs dry.
            pickup_respawn_ticks: 90,
            // 240 units per second at 30 Hz: crossing the field takes about
            // eight seconds.
            player_speed: 8,
            // Several steps' worth of movement, so a player passing by cannot
            // step over a pickup between two ticks.
            pickup_radius: 20,
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast generator whose
/// output depends only on its seed. Its statistical quality is ample for
/// spawn positions, and it is specified exactly, so every build on every
/// machine draws the same sequence.
#[derive(Clone, Debug)]
struct SplitMix64 {
    /// The generator's whole state; advanced by a fixed odd constant per draw.
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole future output is fixed by `seed`.
    fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits, exactly as the reference implementation.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=max`, by Lemire's multiply-high mapping, which has
    /// negligible bias for ranges this small and needs no division.
    fn up_to(&mut self, max: u16) -> u16 {
        let span = u128::from(max) + 1;
        // The product is below span * 2^64, so the high half is below span.
        ((u128::from(self.next_u64()) * span) >> 64) as u16
    }

    /// A uniformly drawn point of the field.
    fn point(&mut self, width: u16, height: u16) -> (u16, u16) {
        let x = self.up_to(width);
        let y = self.up_to(height);
        (x, y)
    }
}

/// One player's simulation state. Its serde form is part of the saved
/// arena ([`SAVE_VERSION`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Player {
    /// The player's id, which is also its entity id.
    id: PlayerId,
    /// Horizontal position.
    x: u16,
    /// Vertical position.
    y: u16,
    /// Horizontal displacement per step, set by the player's last input.
    vx: i32,
    /// Vertical displacement per step, set by the player's last input.
    vy: i32,
    /// Pickups collected.
    score: u32,
    /// True between `drop_player` and `reconnect`: the player is frozen.
    dropped: bool,
}

impl Player {
    /// The player in wire form.
    fn entity(&self) -> Entity {
        Entity {
            id: self.id,
            kind: if self.dropped {
                EntityKind::DroppedPlayer
            } else {
                EntityKind::Player
            },
            x: self.x,
            y: self.y,
            score: self.score,
        }
    }
}

/// The built-in game. See the module documentation.
#[derive(Clone, Debug)]
pub struct Arena {
    /// The settings this arena was made with.
    config: ArenaConfig,
    /// Source of every random choice (spawn and respawn positions).
    rng: SplitMix64,
    /// Steps taken so far.
    tick: u64,
    /// Every player in the world, sorted by id. Sorting gives a
    /// deterministic order for the simulation and for `entities`, and lets
    /// lookups binary-search without a hash map's random iteration order.
    players: Vec<Player>,
    /// Pickup positions, indexed by pickup id. A pickup waiting to respawn
    /// keeps its old position here; `pickup_live` says whether it is on the
    /// field. Stored as entities so that [`Grid`] can index them directly.
    pickups: Vec<Entity>,
    /// Whether each pickup is on the field (`true`) or waiting to respawn.
    pickup_live: Vec<bool>,
    /// Collected pickups as (tick at which to respawn, pickup id). Every
    /// collection waits the same number of steps, so pushing at the back
    /// keeps the queue sorted by respawn tick and the due ones are always at
    /// the front.
    respawns: VecDeque<(u64, u32)>,
    /// Spatial index of `pickups` for collection, with cells the size of the
    /// pickup radius. Pickups move only when they respawn, so it is rebuilt
    /// only then; entries of collected pickups are skipped via `pickup_live`.
    pickup_grid: Grid,
    /// Every entity in wire form: players in id order, then the pickups on
    /// the field in id order. A player's index here equals its index in
    /// `players`.
    entities: Vec<Entity>,
    /// Spatial index of `entities` for views, with cells the size of the
    /// view radius. Rebuilt whenever entities are added, removed or moved;
    /// a drop or reconnect changes only a kind, which the index ignores.
    grid: Grid,
    /// Scratch for collection queries, kept so a step does not allocate.
    hits: Vec<u32>,
    /// Every entity's wire encoding for this tick's states, made once in
    /// `prepare_states` and shared by every view.
    encoded: EncodedEntities<MAX_ENTITY_BYTES>,
    /// Scratch for one player's view while its state is written.
    view_scratch: Vec<u32>,
}

impl Arena {
    /// Makes an arena with no players and all pickups on the field, laid
    /// out by a generator seeded with `seed`.
    pub fn new(config: ArenaConfig, seed: u64) -> Arena {
        let mut rng = SplitMix64::new(seed);
        let pickups = (0..config.pickups)
            .map(|_| rng.point(config.world_width, config.world_height))
            .collect();
        let state = Saved {
            tick: 0,
            rng: rng.state,
            players: Vec::new(),
            pickups,
            pickup_live: vec![true; config.pickups as usize],
            respawns: Vec::new(),
        };
        Arena::assemble(config, state)
    }

    /// Rebuilds an arena from the bytes of [`Game::save`], with `config` as
    /// its settings. The saved state must fit `config`: the same number of
    /// pickups, and every position on the field. The rules that are not
    /// state (speed, radii, the respawn wait) may differ from the saved
    /// arena's; they apply from the next step.
    pub fn restore(config: ArenaConfig, saved: &[u8]) -> Result<Arena, String> {
        let Some((&version, rest)) = saved.split_first() else {
            return Err("saved arena has no version".into());
        };
        if u16::from(version) != SAVE_VERSION {
            return Err(format!(
                "saved arena has format version {version}, this build reads {SAVE_VERSION}"
            ));
        }
        let state = game_api::codec::decode_limited::<Saved, SAVE_LIMIT>(rest)
            .map_err(|e| format!("saved arena is {e}"))?;
        state.check(&config)?;
        Ok(Arena::assemble(config, state))
    }

    /// An arena in the given simulation state, with everything derived from
    /// it (entities, both spatial indices) built afresh. Building them from
    /// the same state gives the same indices, since both rebuilds are
    /// deterministic, which is what lets a restored arena continue exactly.
    fn assemble(config: ArenaConfig, state: Saved) -> Arena {
        let count = config.pickups as usize;
        let pickups: Vec<Entity> = state
            .pickups
            .iter()
            .zip(0..)
            .map(|(&(x, y), id)| Entity {
                id,
                kind: EntityKind::Pickup,
                x,
                y,
                score: 0,
            })
            .collect();
        let mut pickup_grid = Grid::new(
            config.world_width,
            config.world_height,
            config.pickup_radius,
        );
        pickup_grid.rebuild(&pickups);
        let grid = Grid::new(config.world_width, config.world_height, config.view_radius);
        // At most every pickup waits at once, so this never grows.
        let mut respawns = VecDeque::with_capacity(count);
        respawns.extend(state.respawns);
        let mut arena = Arena {
            rng: SplitMix64::new(state.rng),
            tick: state.tick,
            entities: Vec::with_capacity(count + state.players.len()),
            players: state.players,
            pickups,
            pickup_live: state.pickup_live,
            respawns,
            pickup_grid,
            grid,
            hits: Vec::new(),
            encoded: EncodedEntities::default(),
            view_scratch: Vec::new(),
            config,
        };
        arena.refresh();
        arena
    }

    /// The settings this arena was made with.
    pub fn config(&self) -> &ArenaConfig {
        &self.config
    }

    /// Steps taken since the arena was made.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Index of a player in `players` (and in `entities`).
    fn find(&self, player: PlayerId) -> Option<usize> {
        self.players.binary_search_by_key(&player, |p| p.id).ok()
    }

    /// Rewrites `entities` from the simulation state and reindexes it. Runs
    /// at the end of every step and whenever the set of players changes, so
    /// `entities` and `view` are right at all times, including before the
    /// first step.
    fn refresh(&mut self) {
        self.entities.clear();
        self.entities
            .extend(self.players.iter().map(Player::entity));
        self.entities.extend(
            self.pickups
                .iter()
                .zip(&self.pickup_live)
                .filter(|&(_, &live)| live)
                .map(|(e, _)| *e),
        );
        self.grid.rebuild(&self.entities);
    }

    /// Sets velocities from `inputs`. A later input of the same player
    /// overwrites an earlier one, so the last input of a step wins.
    fn apply_inputs(&mut self, inputs: &[(PlayerId, Move)]) {
        for &(id, input) in inputs {
            let Some(i) = self.find(id) else { continue };
            let p = &mut self.players[i];
            if p.dropped {
                continue;
            }
            (p.vx, p.vy) = velocity(input.dx, input.dy, self.config.player_speed);
        }
    }

    /// Moves every connected player by its velocity, clamped to the field.
    fn move_players(&mut self) {
        let w = i32::from(self.config.world_width);
        let h = i32::from(self.config.world_height);
        for p in self.players.iter_mut().filter(|p| !p.dropped) {
            // Both terms are within ±65,535, and the clamp brings the sum
            // back into 0..=u16::MAX.
            p.x = (i32::from(p.x) + p.vx).clamp(0, w) as u16;
            p.y = (i32::from(p.y) + p.vy).clamp(0, h) as u16;
        }
    }

    /// Gives each pickup within reach of a connected player to that player.
    /// Players are visited in ascending id order and a pickup leaves the
    /// field as soon as it is taken, so when several players reach the same
    /// pickup in one step the lowest id gets it. Each player costs one grid
    /// query, so the whole pass is about players × (pickups near a player),
    /// not players × pickups.
    fn collect_pickups(&mut self) {
        let respawn_at = self.tick + u64::from(self.config.pickup_respawn_ticks);
        for p in self.players.iter_mut().filter(|p| !p.dropped) {
            self.hits.clear();
            self.pickup_grid.query(
                p.x,
                p.y,
                self.config.pickup_radius,
                &self.pickups,
                &mut self.hits,
            );
            for &id in &self.hits {
                let live = &mut self.pickup_live[id as usize];
                if *live {
                    *live = false;
                    p.score = p.score.saturating_add(1);
                    self.respawns.push_back((respawn_at, id));
                }
            }
        }
    }

    /// Puts back on the field, at fresh random positions, the pickups whose
    /// wait ends at this step. A pickup taken at step t is absent from
    /// `entities` after steps t to t + R - 1 and present again after step
    /// t + R, where R is `pickup_respawn_ticks`.
    fn respawn_pickups(&mut self) {
        let mut moved = false;
        while let Some(&(at, id)) = self.respawns.front() {
            if at > self.tick {
                break;
            }
            self.respawns.pop_front();
            let (x, y) = self
                .rng
                .point(self.config.world_width, self.config.world_height);
            let pickup = &mut self.pickups[id as usize];
            pickup.x = x;
            pickup.y = y;
            self.pickup_live[id as usize] = true;
            moved = true;
        }
        if moved {
            self.pickup_grid.rebuild(&self.pickups);
        }
    }
}

/// Version of the arena's saved form: this number as one byte, then the
/// [`Saved`] struct (and [`Player`] within it) in bincode's standard
/// configuration.
/// Changing either struct means raising it, so that an old save is refused
/// with a clear error instead of being misread.
const SAVE_VERSION: u16 = 1;

/// Most bytes a saved arena may decode into. A room of 65,535 players with
/// 100,000 pickups saves under 4 MiB; the limit is the one place a corrupt
/// length prefix could otherwise make the decoder allocate without bound.
const SAVE_LIMIT: usize = 64 << 20;

/// The simulation state of an arena, without what is derived from it or set
/// by the configuration: what [`Game::save`] writes and [`Arena::restore`]
/// reads. Field order is the saved order.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// Steps taken.
    tick: u64,
    /// The generator's state, so that respawns and spawns draw the same
    /// positions as they would have.
    rng: u64,
    /// Players in ascending id order.
    players: Vec<Player>,
    /// Every pickup's position, by pickup id, whether on the field or not.
    pickups: Vec<(u16, u16)>,
    /// Whether each pickup is on the field.
    pickup_live: Vec<bool>,
    /// Collected pickups as (step at which to respawn, pickup id), in
    /// respawn order.
    respawns: Vec<(u64, u32)>,
}

impl Saved {
    /// Checks everything the simulation relies on without checking it
    /// again each step, so that a restored arena can neither panic nor
    /// misbehave whatever the bytes said.
    fn check(&self, config: &ArenaConfig) -> Result<(), String> {
        let (w, h) = (config.world_width, config.world_height);
        if self.pickups.len() != config.pickups as usize {
            return Err(format!(
                "saved arena has {} pickups, this one is configured with {}",
                self.pickups.len(),
                config.pickups
            ));
        }
        if self.pickup_live.len() != self.pickups.len() {
            return Err("saved arena's pickup list and live flags differ in length".into());
        }
        if let Some(&(x, y)) = self.pickups.iter().find(|&&(x, y)| x > w || y > h) {
            return Err(format!(
                "a saved pickup at ({x}, {y}) is outside the {w} × {h} field"
            ));
        }
        if !self.players.windows(2).all(|p| p[0].id < p[1].id) {
            return Err("saved players are not in strictly ascending id order".into());
        }
        for p in &self.players {
            if p.x > w || p.y > h {
                return Err(format!(
                    "saved player {} at ({}, {}) is outside the {w} × {h} field",
                    p.id, p.x, p.y
                ));
            }
            // Movement adds a velocity to a u16 coordinate in i32, which
            // is exact only while the velocity fits in ±u16::MAX.
            let limit = i32::from(u16::MAX);
            if p.vx.abs() > limit || p.vy.abs() > limit {
                return Err(format!("saved player {} has an impossible velocity", p.id));
            }
        }
        // Every pickup off the field waits exactly once, in respawn order.
        let mut waiting = vec![false; self.pickups.len()];
        for &(_, id) in &self.respawns {
            let Some(slot) = waiting.get_mut(id as usize) else {
                return Err(format!(
                    "a saved respawn names pickup {id}, which does not exist"
                ));
            };
            if *slot || self.pickup_live[id as usize] {
                return Err(format!(
                    "saved pickup {id} waits to respawn twice, or while live"
                ));
            }
            *slot = true;
        }
        if waiting
            .iter()
            .zip(&self.pickup_live)
            .any(|(&waits, &live)| !waits && !live)
        {
            return Err("a saved pickup is off the field with no respawn pending".into());
        }
        if !self.respawns.windows(2).all(|r| r[0].0 <= r[1].0) {
            return Err("saved respawns are not in respawn order".into());
        }
        Ok(())
    }
}

/// The per-step displacement for a stick deflection (`dx`, `dy`) at top
/// speed `speed`: each axis scales linearly to ±`speed`, and the result is
/// shortened if it is longer than `speed`, so diagonals are no faster than
/// straight lines. Its length never exceeds `speed`.
fn velocity(dx: i8, dy: i8, speed: u16) -> (i32, i32) {
    let s = i64::from(speed);
    let mut vx = i64::from(dx).max(-MAX_AXIS) * s / MAX_AXIS;
    let mut vy = i64::from(dy).max(-MAX_AXIS) * s / MAX_AXIS;
    let len2 = vx * vx + vy * vy;
    if len2 > s * s {
        // Dividing by the square root rounded up (never below the true
        // length), and truncating towards zero, can only shorten the
        // vector, so the speed cap holds exactly in integers.
        let len2 = len2 as u64;
        let mut len = len2.isqrt();
        if len * len < len2 {
            len += 1;
        }
        let len = len as i64;
        vx = vx * s / len;
        vy = vy * s / len;
    }
    // |vx| and |vy| are at most `speed`, a u16, so they fit in i32.
    (vx as i32, vy as i32)
}

/// The rules, called by the [`Game`] impl below and directly by tests and
/// benches (which need no room around them).
impl Arena {
    /// A new player enters the field at a random spot.
    pub fn join(&mut self, player: PlayerId) {
        let Err(at) = self.players.binary_search_by_key(&player, |p| p.id) else {
            return;
        };
        let (x, y) = self
            .rng
            .point(self.config.world_width, self.config.world_height);
        self.players.insert(
            at,
            Player {
                id: player,
                x,
                y,
                vx: 0,
                vy: 0,
                score: 0,
                dropped: false,
            },
        );
        self.refresh();
    }

    /// The player's connection dropped: it freezes where it is.
    pub fn drop_player(&mut self, player: PlayerId) {
        let Some(i) = self.find(player) else { return };
        let p = &mut self.players[i];
        p.dropped = true;
        p.vx = 0;
        p.vy = 0;
        // Only the kind changes, not the position, so the grid stays valid
        // and patching the one entity is enough.
        self.entities[i] = p.entity();
    }

    /// A dropped player is back.
    pub fn reconnect(&mut self, player: PlayerId) {
        let Some(i) = self.find(player) else { return };
        let p = &mut self.players[i];
        // The velocity was zeroed at the drop, and inputs were ignored
        // since, so the player resumes standing still until its next input.
        // On a player that is not dropped this changes nothing.
        p.dropped = false;
        self.entities[i] = p.entity();
    }

    /// The player is gone for good.
    pub fn leave(&mut self, player: PlayerId) {
        let Some(i) = self.find(player) else { return };
        self.players.remove(i);
        self.refresh();
    }

    /// One fixed step with the moves that arrived since the last one.
    pub fn step(&mut self, moves: &[(PlayerId, Move)]) {
        self.tick += 1;
        self.apply_inputs(moves);
        self.move_players();
        self.collect_pickups();
        self.respawn_pickups();
        self.refresh();
    }

    /// Every entity of the world as of the last call that changed it:
    /// players in id order, then the pickups on the field in id order.
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// Appends to `out` the indices into [`Arena::entities`] of what
    /// `player` sees (everything within the view radius, itself included).
    pub fn view(&self, player: PlayerId, out: &mut Vec<u32>) {
        let Some(i) = self.find(player) else { return };
        let me = &self.entities[i];
        self.grid
            .query(me.x, me.y, self.config.view_radius, &self.entities, out);
    }

    /// The player's own entity, if it is in the world.
    pub fn player(&self, player: PlayerId) -> Option<Entity> {
        self.find(player).map(|i| self.entities[i])
    }

    /// The whole simulation state as bytes (see `SAVE_VERSION`).
    pub fn save(&self) -> Vec<u8> {
        let state = Saved {
            tick: self.tick,
            rng: self.rng.state,
            players: self.players.clone(),
            pickups: self.pickups.iter().map(|e| (e.x, e.y)).collect(),
            pickup_live: self.pickup_live.clone(),
            respawns: self.respawns.iter().copied().collect(),
        };
        let mut out = vec![SAVE_VERSION as u8];
        game_api::codec::encode(&state, &mut out);
        out
    }

    /// The state bytes of `player`'s view: the number of players, then the
    /// entities it sees (an [`msg::ArenaState`]). Uses the encodings made by
    /// the last [`Game::prepare_states`].
    fn write_state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        let players = u16::try_from(self.players.len()).unwrap_or(u16::MAX);
        game_api::codec::put_varint(out, u64::from(players));
        self.view_scratch.clear();
        let mut view = std::mem::take(&mut self.view_scratch);
        self.view(player, &mut view);
        self.encoded.write_view(&view, out);
        self.view_scratch = view;
    }
}

impl ArenaConfig {
    /// This configuration for rooms that tick `tick_hz` times a second,
    /// with the speed given in world units per second and the respawn wait
    /// as a duration (how people think of them) instead of per tick.
    pub fn at_tick_rate(
        mut self,
        tick_hz: u16,
        player_speed_per_sec: u32,
        pickup_respawn: std::time::Duration,
    ) -> Self {
        let hz = u32::from(tick_hz.max(1));
        self.player_speed = (player_speed_per_sec / hz).clamp(1, u32::from(u16::MAX)) as u16;
        let ticks = (pickup_respawn.as_secs_f64() * f64::from(hz)).round();
        self.pickup_respawn_ticks = (ticks as u32).max(1);
        self
    }
}

/// Room options the arena takes: `pace=normal` (the configured speed) or
/// `pace=fast` (twice it). Quick join matches rooms on `pace`.
pub const OPTIONS: &[&str] = &["pace"];

impl ArenaConfig {
    /// This configuration adjusted by a room's options.
    pub fn for_options(&self, options: &RoomOptions) -> Result<ArenaConfig, String> {
        options.only(OPTIONS)?;
        // A configuration can come from a recording's header, which is
        // input like any other: a field is made for its pickups at once.
        if self.pickups > MAX_PICKUPS {
            return Err(format!("{} pickups: at most {MAX_PICKUPS}", self.pickups));
        }
        let mut config = self.clone();
        match options.get("pace") {
            None | Some("normal") => {}
            Some("fast") => config.player_speed = config.player_speed.saturating_mul(2),
            Some(other) => return Err(format!("option pace={other:?}: use normal or fast")),
        }
        Ok(config)
    }
}

impl Game for Arena {
    type Config = ArenaConfig;
    type Message = Move;
    /// The arena sends no events: everything a player needs is in its
    /// state, every tick.
    type Event = ();

    fn create(config: &ArenaConfig, options: &RoomOptions, seed: u64) -> Result<Self, String> {
        Ok(Arena::new(config.for_options(options)?, seed))
    }

    fn restore(config: &ArenaConfig, options: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
        Arena::restore(config.for_options(options)?, saved)
    }

    fn save(&self) -> Vec<u8> {
        Arena::save(self)
    }

    fn join(&mut self, player: PlayerId, _: &mut Ctx<'_, ()>) {
        Arena::join(self, player);
    }

    fn drop_player(&mut self, player: PlayerId, _: &mut Ctx<'_, ()>) {
        Arena::drop_player(self, player);
    }

    fn resume(&mut self, player: PlayerId, _: &mut Ctx<'_, ()>) {
        Arena::reconnect(self, player);
    }

    fn leave(&mut self, player: PlayerId, _: &mut Ctx<'_, ()>) {
        Arena::leave(self, player);
    }

    fn step(&mut self, messages: &[(PlayerId, Move)], _: &mut Ctx<'_, ()>) {
        Arena::step(self, messages);
    }

    fn welcome(&self, _: PlayerId, out: &mut Vec<u8>) {
        let c = &self.config;
        let welcome = ArenaWelcome {
            world_width: c.world_width,
            world_height: c.world_height,
            view_radius: c.view_radius,
            player_speed: c.player_speed,
        };
        game_api::codec::encode(&welcome, out);
    }

    fn prepare_states(&mut self) {
        self.encoded.encode_all(&self.entities, msg::encode_entity);
    }

    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        self.write_state(player, out);
    }
}

/// The arena's page, served at `/arena/`: the canvas, input, HUD and the
/// arena's codec; the generic session module comes from the server.
pub const WEB: &[WebAsset] = &[
    WebAsset::html("/arena/index.html", include_bytes!("../web/index.html")),
    WebAsset::js("/arena/game.js", include_bytes!("../web/game.js")),
    WebAsset::js("/arena/codec.js", include_bytes!("../web/codec.js")),
    WebAsset::js("/arena/motion.js", include_bytes!("../web/motion.js")),
];

/// The arena as a room type named `arena`: rooms of `capacity` players
/// (default 100), quick join matching on `pace`, spectators allowed (each
/// sees what the player it follows sees), its page at `/arena/`.
pub fn room_type(config: ArenaConfig) -> RoomType {
    RoomType::new::<Arena>("arena", config)
        .filter_by(OPTIONS)
        .spectators()
        .page("/arena/", WEB)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with no pickups, for tests about movement alone.
    fn bare() -> ArenaConfig {
        ArenaConfig {
            pickups: 0,
            ..ArenaConfig::default()
        }
    }

    fn input(dx: i8, dy: i8) -> Move {
        Move { dx, dy }
    }

    /// Puts a player at a chosen spot, bypassing the random spawn.
    fn place(arena: &mut Arena, id: PlayerId, x: u16, y: u16) {
        let i = arena.find(id).expect("placing a player not in the world");
        arena.players[i].x = x;
        arena.players[i].y = y;
        arena.refresh();
    }

    /// Puts a pickup at a chosen spot, bypassing the random layout.
    fn place_pickup(arena: &mut Arena, id: u32, x: u16, y: u16) {
        arena.pickups[id as usize].x = x;
        arena.pickups[id as usize].y = y;
        arena.pickup_grid.rebuild(&arena.pickups);
        arena.refresh();
    }

    fn pos(arena: &Arena, id: PlayerId) -> (u16, u16) {
        let e = arena.player(id).expect("player present");
        (e.x, e.y)
    }

    fn pickup_ids(arena: &Arena) -> Vec<u32> {
        arena
            .entities()
            .iter()
            .filter(|e| e.kind == EntityKind::Pickup)
            .map(|e| e.id)
            .collect()
    }

    /// Drives an arena through joins, inputs, a drop, a reconnect and a
    /// leave, returning the entities after every step.
    fn scripted_run(seed: u64) -> Vec<Vec<Entity>> {
        let mut arena = Arena::new(ArenaConfig::default(), seed);
        for id in 1..=20 {
            arena.join(id);
        }
        let mut history = Vec::new();
        let mut inputs = Vec::new();
        for step in 0u32..1000 {
            match step {
                100 => arena.drop_player(3),
                300 => arena.reconnect(3),
                500 => arena.leave(5),
                600 => arena.join(21),
                _ => {}
            }
            inputs.clear();
            for id in 1..=21u32 {
                // A different, changing direction per player; some players
                // send two inputs in one step.
                if (step + id) % 7 == 0 {
                    let dx = ((step * 31 + id * 17) % 255) as i32 - 127;
                    let dy = ((step * 13 + id * 29) % 255) as i32 - 127;
                    inputs.push((id, input(dx as i8, dy as i8)));
                    if id % 3 == 0 {
                        inputs.push((id, input(dy as i8, dx as i8)));
                    }
                }
            }
            arena.step(&inputs);
            history.push(arena.entities().to_vec());
        }
        assert_eq!(arena.tick(), 1000);
        history
    }

    /// Steps `arena` through `steps` of a script of joins, drops,
    /// reconnects, leaves and changing inputs that depends only on the step
    /// number, returning the entities and one player's view after each step.
    fn drive(arena: &mut Arena, steps: std::ops::Range<u32>) -> Vec<(Vec<Entity>, Vec<u32>)> {
        let mut history = Vec::new();
        let mut inputs = Vec::new();
        for step in steps {
            match step % 97 {
                10 => arena.drop_player(step % 13 + 1),
                40 => arena.reconnect(step % 13 + 1),
                60 => arena.join(100 + step),
                80 => arena.leave(100 + step - 20),
                _ => {}
            }
            inputs.clear();
            for id in (1..=20u32).chain([100 + step - 1]) {
                if (step + id) % 5 == 0 {
                    let dx = ((step * 31 + id * 17) % 255) as i32 - 127;
                    let dy = ((step * 13 + id * 29) % 255) as i32 - 127;
                    inputs.push((id, input(dx as i8, dy as i8)));
                }
            }
            arena.step(&inputs);
            let mut view = Vec::new();
            arena.view(7, &mut view);
            history.push((arena.entities().to_vec(), view));
        }
        history
    }

    /// A crowded small field with a short respawn wait, so that within a
    /// few hundred steps pickups are collected, wait and respawn.
    fn busy() -> ArenaConfig {
        ArenaConfig {
            world_width: 600,
            world_height: 600,
            view_radius: 150,
            pickups: 80,
            pickup_respawn_ticks: 30,
            ..ArenaConfig::default()
        }
    }

    #[test]
    fn a_restored_arena_continues_exactly_as_the_original() {
        let mut a = Arena::new(busy(), 11);
        for id in 1..=20 {
            a.join(id);
        }
        drive(&mut a, 0..500);
        // The save must catch the state mid-flight for the comparison to
        // mean anything: pickups waiting, players moving, one dropped.
        assert!(!a.respawns.is_empty(), "pickups wait to respawn");
        assert!(a.players.iter().any(|p| p.vx != 0 || p.vy != 0));
        a.drop_player(3);
        let saved = a.save();
        let mut b = Arena::restore(busy(), &saved).expect("restores");
        assert_eq!(b.tick(), a.tick());
        assert_eq!(b.entities(), a.entities());
        assert_eq!(b.save(), saved, "saving again gives the same bytes");
        // Joins draw from the generator, respawns too: both continue alike.
        let (after_a, after_b) = (drive(&mut a, 500..1500), drive(&mut b, 500..1500));
        assert_eq!(after_a, after_b);
        assert!(
            after_a.last().unwrap().0.iter().any(|e| e.score > 3),
            "the run scored"
        );
        assert_eq!(b.player(3).map(|e| e.kind), Some(EntityKind::Player));
    }

    #[test]
    fn restore_refuses_bytes_that_do_not_fit() {
        let mut arena = Arena::new(busy(), 5);
        for id in [2, 4, 6] {
            arena.join(id);
        }
        arena.step(&[]);
        let good = arena.save();
        let check = |config: ArenaConfig, bytes: &[u8], want: &str| {
            let err = Arena::restore(config, bytes).expect_err("must be refused");
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        };
        check(busy(), b"", "no version");
        check(busy(), &[2], "format version 2");
        check(busy(), &good[..good.len() - 1], "malformed");
        let mut trailing = good.clone();
        trailing.push(0);
        check(busy(), &trailing, "1 trailing bytes");
        let fewer = ArenaConfig {
            pickups: 79,
            ..busy()
        };
        check(fewer, &good, "80 pickups");
        let smaller = ArenaConfig {
            world_width: 10,
            world_height: 10,
            ..busy()
        };
        check(smaller, &good, "outside the 10 × 10 field");
        // States no arena could reach, which the simulation relies on never
        // seeing: each is refused rather than trusted.
        let tamper = |edit: &dyn Fn(&mut Saved)| {
            let mut state: Saved =
                game_api::codec::decode_limited::<_, SAVE_LIMIT>(&good[1..]).unwrap();
            edit(&mut state);
            let mut bytes = vec![SAVE_VERSION as u8];
            game_api::codec::encode(&state, &mut bytes);
            bytes
        };
        check(busy(), &tamper(&|s| s.players.swap(0, 1)), "ascending");
        check(busy(), &tamper(&|s| s.players[0].vx = 70_000), "velocity");
        check(busy(), &tamper(&|s| s.pickup_live[0] = false), "no respawn");
        check(
            busy(),
            &tamper(&|s| s.respawns.push((9, 80))),
            "does not exist",
        );
        check(
            busy(),
            &tamper(&|s| {
                s.pickup_live.pop();
            }),
            "differ",
        );
        assert!(Arena::restore(busy(), &good).is_ok());
    }

    #[test]
    fn generator_matches_the_splitmix64_reference_output() {
        // The first outputs of the reference C implementation for seed
        // 1234567; any drift here would break replays across builds.
        let mut rng = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            vec![
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn bounded_draws_reach_both_ends_of_the_range_and_nothing_else() {
        let mut rng = SplitMix64::new(3);
        let mut seen = [0u32; 5];
        for _ in 0..1000 {
            seen[usize::from(rng.up_to(3))] += 1;
        }
        assert!(seen[..4].iter().all(|&n| n > 150), "counts {seen:?}");
        assert_eq!(seen[4], 0);
        assert!((0..100).all(|_| rng.up_to(0) == 0));
        assert!((0..1000).any(|_| rng.up_to(u16::MAX) > 65_000));
    }

    #[test]
    fn spawns_cover_the_whole_field_and_stay_inside_it() {
        let config = ArenaConfig {
            world_width: 1000,
            world_height: 400,
            pickups: 0,
            ..ArenaConfig::default()
        };
        let mut arena = Arena::new(config, 77);
        for id in 0..2000 {
            arena.join(id);
        }
        let e = arena.entities();
        assert!(e.iter().all(|e| e.x <= 1000 && e.y <= 400 && e.score == 0));
        let (min_x, max_x) = (e.iter().map(|e| e.x).min(), e.iter().map(|e| e.x).max());
        let (min_y, max_y) = (e.iter().map(|e| e.y).min(), e.iter().map(|e| e.y).max());
        assert!(
            min_x < Some(50) && max_x > Some(950),
            "x spans {min_x:?}..{max_x:?}"
        );
        assert!(
            min_y < Some(20) && max_y > Some(380),
            "y spans {min_y:?}..{max_y:?}"
        );
        let mut spots: Vec<(u16, u16)> = e.iter().map(|e| (e.x, e.y)).collect();
        spots.sort_unstable();
        spots.dedup();
        assert!(
            spots.len() > 1900,
            "only {} distinct spawn spots",
            spots.len()
        );
    }

    #[test]
    fn default_config_matches_the_documented_values() {
        let c = ArenaConfig::default();
        assert_eq!(
            c,
            ArenaConfig {
                world_width: 2000,
                world_height: 2000,
                view_radius: 300,
                pickups: 60,
                pickup_respawn_ticks: 90,
                player_speed: 8,
                pickup_radius: 20,
            }
        );
        let arena = Arena::new(c.clone(), 1);
        assert_eq!(arena.config(), &c);
        assert_eq!(arena.tick(), 0);
        assert_eq!(pickup_ids(&arena), (0..60).collect::<Vec<u32>>());
    }

    #[test]
    fn same_seed_and_calls_give_the_same_world_and_another_seed_does_not() {
        let a = scripted_run(42);
        let b = scripted_run(42);
        assert_eq!(a, b);
        let c = scripted_run(43);
        assert_ne!(a.last(), c.last());
        // The script must have exercised scoring for the comparison to mean
        // anything about pickups.
        let final_world = a.last().expect("steps ran");
        assert!(final_world.iter().any(|e| e.score > 0));
        assert!(
            final_world
                .iter()
                .all(|e| e.id != 5 || e.kind == EntityKind::Pickup)
        );
    }

    #[test]
    fn full_deflection_moves_exactly_the_top_speed() {
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        place(&mut arena, 1, 1000, 1000);
        let speed = arena.config().player_speed;
        for (dx, dy, want) in [
            (127, 0, (1000 + speed, 1000)),
            (0, 127, (1000 + speed, 1000 + speed)),
            (-127, 0, (1000, 1000 + speed)),
            (0, -127, (1000, 1000)),
            (-128, 0, (1000 - speed, 1000)),
        ] {
            arena.step(&[(1, input(dx, dy))]);
            assert_eq!(pos(&arena, 1), want, "input ({dx}, {dy})");
        }
    }

    #[test]
    fn an_unused_minus_128_reads_as_minus_127() {
        for speed in [1u16, 8, 127, 1000, u16::MAX] {
            for other in i8::MIN..=i8::MAX {
                assert_eq!(velocity(-128, other, speed), velocity(-127, other, speed));
                assert_eq!(velocity(other, -128, speed), velocity(other, -127, speed));
            }
        }
    }

    #[test]
    fn no_input_is_faster_than_the_top_speed() {
        for speed in [0u16, 1, 2, 7, 8, 100, 1000, u16::MAX] {
            let s2 = i64::from(speed) * i64::from(speed);
            for dx in i8::MIN..=i8::MAX {
                for dy in i8::MIN..=i8::MAX {
                    let (vx, vy) = velocity(dx, dy, speed);
                    let len2 = i64::from(vx) * i64::from(vx) + i64::from(vy) * i64::from(vy);
                    assert!(
                        len2 <= s2,
                        "speed {speed} input ({dx}, {dy}) -> ({vx}, {vy})"
                    );
                }
            }
        }
        // Through the game too: a full diagonal moves, but less than the
        // top speed along each axis.
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        place(&mut arena, 1, 1000, 1000);
        arena.step(&[(1, input(127, 127))]);
        let (x, y) = pos(&arena, 1);
        let (dx, dy) = (i64::from(x) - 1000, i64::from(y) - 1000);
        assert!(dx > 0 && dy > 0);
        assert!(dx * dx + dy * dy <= 64, "moved ({dx}, {dy})");
    }

    #[test]
    fn velocity_persists_until_the_next_input() {
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        place(&mut arena, 1, 100, 100);
        arena.step(&[(1, input(127, 0))]);
        for _ in 0..4 {
            arena.step(&[]);
        }
        assert_eq!(pos(&arena, 1), (140, 100));
        arena.step(&[(1, input(0, 0))]);
        arena.step(&[]);
        assert_eq!(pos(&arena, 1), (140, 100));
    }

    #[test]
    fn positions_are_clamped_at_all_four_edges() {
        let mut arena = Arena::new(bare(), 1);
        let (w, h) = (arena.config().world_width, arena.config().world_height);
        arena.join(1);
        place(&mut arena, 1, 3, 3);
        arena.step(&[(1, input(-127, 0))]);
        assert_eq!(pos(&arena, 1), (0, 3));
        arena.step(&[(1, input(0, -127))]);
        assert_eq!(pos(&arena, 1), (0, 0));
        arena.step(&[(1, input(-127, -127))]);
        assert_eq!(pos(&arena, 1), (0, 0));
        place(&mut arena, 1, w - 3, h - 3);
        arena.step(&[(1, input(127, 0))]);
        assert_eq!(pos(&arena, 1), (w, h - 3));
        arena.step(&[(1, input(0, 127))]);
        assert_eq!(pos(&arena, 1), (w, h));
        for _ in 0..5 {
            arena.step(&[]);
        }
        assert_eq!(pos(&arena, 1), (w, h));
    }

    #[test]
    fn the_last_input_of_a_step_wins() {
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        arena.join(2);
        place(&mut arena, 1, 500, 500);
        place(&mut arena, 2, 900, 900);
        arena.step(&[
            (1, input(127, 0)),
            (2, input(0, -127)),
            (1, input(-127, 0)),
            (1, input(0, 127)),
        ]);
        assert_eq!(pos(&arena, 1), (500, 508));
        assert_eq!(pos(&arena, 2), (900, 892));
    }

    #[test]
    fn unknown_players_inputs_are_ignored_and_joining_twice_is_a_no_op() {
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        place(&mut arena, 1, 500, 500);
        arena.join(1);
        assert_eq!(arena.entities().len(), 1);
        assert_eq!(pos(&arena, 1), (500, 500), "a second join must not respawn");
        arena.step(&[(2, input(127, 127)), (u32::MAX, input(1, 1))]);
        assert_eq!(arena.entities().len(), 1);
        assert_eq!(pos(&arena, 1), (500, 500));
        assert_eq!(arena.player(2), None);
    }

    #[test]
    fn entities_are_current_before_the_first_step_and_ordered() {
        let mut arena = Arena::new(ArenaConfig::default(), 9);
        for id in [5, 2, 9] {
            arena.join(id);
        }
        let ids: Vec<(EntityKind, u32)> = arena.entities().iter().map(|e| (e.kind, e.id)).collect();
        let mut want = vec![
            (EntityKind::Player, 2),
            (EntityKind::Player, 5),
            (EntityKind::Player, 9),
        ];
        want.extend((0..60).map(|i| (EntityKind::Pickup, i)));
        assert_eq!(ids, want);
        assert!(arena.entities()[..3].iter().all(|e| e.score == 0));
        let mut out = Vec::new();
        arena.view(5, &mut out);
        assert!(
            out.contains(&1),
            "a fresh player sees itself before any step"
        );
    }

    #[test]
    fn dropped_players_are_frozen_and_do_not_collect() {
        let config = ArenaConfig {
            pickups: 1,
            ..ArenaConfig::default()
        };
        let mut arena = Arena::new(config, 1);
        arena.join(1);
        place(&mut arena, 1, 500, 500);
        place_pickup(&mut arena, 0, 700, 500);
        arena.step(&[(1, input(127, 0))]);
        assert_eq!(pos(&arena, 1), (508, 500));
        arena.drop_player(1);
        assert_eq!(
            arena.player(1).map(|e| e.kind),
            Some(EntityKind::DroppedPlayer)
        );
        for _ in 0..10 {
            arena.step(&[(1, input(127, 0))]);
        }
        assert_eq!(pos(&arena, 1), (508, 500), "dropped players do not move");
        // A pickup right under a dropped player stays where it is.
        place_pickup(&mut arena, 0, 508, 500);
        for _ in 0..3 {
            arena.step(&[]);
        }
        assert_eq!(arena.player(1).map(|e| e.score), Some(0));
        assert_eq!(pickup_ids(&arena), vec![0]);
        // Dropping twice changes nothing.
        arena.drop_player(1);
        assert_eq!(
            arena.player(1).map(|e| e.kind),
            Some(EntityKind::DroppedPlayer)
        );
    }

    #[test]
    fn reconnect_restores_the_kind_and_keeps_position_score_and_zero_velocity() {
        let config = ArenaConfig {
            pickups: 1,
            ..ArenaConfig::default()
        };
        let mut arena = Arena::new(config, 1);
        arena.join(1);
        place(&mut arena, 1, 500, 500);
        place_pickup(&mut arena, 0, 508, 500);
        arena.step(&[(1, input(127, 0))]);
        assert_eq!(arena.player(1).map(|e| e.score), Some(1));
        arena.drop_player(1);
        arena.step(&[(1, input(-127, -127))]);
        arena.reconnect(1);
        let e = arena.player(1).expect("still present");
        assert_eq!(
            (e.kind, e.x, e.y, e.score),
            (EntityKind::Player, 508, 500, 1)
        );
        // The velocity from before the drop is gone.
        arena.step(&[]);
        assert_eq!(pos(&arena, 1), (508, 500));
        // And inputs count again.
        arena.step(&[(1, input(0, 127))]);
        assert_eq!(pos(&arena, 1), (508, 508));
        // Reconnecting a connected player does not stop it.
        arena.reconnect(1);
        arena.step(&[]);
        assert_eq!(pos(&arena, 1), (508, 516));
    }

    #[test]
    fn leave_removes_the_player_and_ignores_its_later_inputs() {
        let mut arena = Arena::new(bare(), 1);
        arena.join(1);
        arena.join(2);
        place(&mut arena, 2, 400, 400);
        arena.leave(1);
        assert_eq!(arena.player(1), None);
        assert_eq!(arena.entities().len(), 1);
        assert_eq!(arena.entities()[0].id, 2);
        let mut out = Vec::new();
        arena.view(1, &mut out);
        assert!(out.is_empty());
        arena.step(&[(1, input(127, 0))]);
        assert_eq!(arena.player(1), None);
        assert_eq!(arena.entities().len(), 1);
        assert_eq!(pos(&arena, 2), (400, 400));
        // Leaving twice, or leaving a dropped player, is clean too.
        arena.leave(1);
        arena.drop_player(2);
        arena.leave(2);
        assert!(arena.entities().is_empty());
    }

    #[test]
    fn collecting_scores_and_the_pickup_respawns_after_exactly_the_wait() {
        let wait = 5;
        let config = ArenaConfig {
            pickups: 2,
            pickup_respawn_ticks: wait,
            ..ArenaConfig::default()
        };
        let mut arena = Arena::new(config, 1);
        arena.join(1);
        place(&mut arena, 1, 500, 500);
        // Pickup 0 sits exactly at the radius; pickup 1 just beyond it.
        place_pickup(&mut arena, 0, 520, 500);
        place_pickup(&mut arena, 1, 500, 521);
        arena.step(&[]);
        assert_eq!(arena.player(1).map(|e| e.score), Some(1));
        assert_eq!(pickup_ids(&arena), vec![1], "collected pickup must vanish");
        for _ in 1..wait {
            arena.step(&[]);
            assert_eq!(
                pickup_ids(&arena),
                vec![1],
                "back too early at tick {}",
                arena.tick()
            );
        }
        arena.step(&[]);
        assert_eq!(
            pickup_ids(&arena),
            vec![0, 1],
            "not back after {wait} steps"
        );
        let back = arena
            .entities()
            .iter()
            .find(|e| e.kind == EntityKind::Pickup && e.id == 0);
        assert_ne!(
            back.map(|e| (e.x, e.y)),
            Some((520, 500)),
            "respawns elsewhere"
        );
        assert_eq!(
            arena.player(1).map(|e| e.score),
            Some(1),
            "collected only once"
        );
        // The respawned pickup can be collected where it now is.
        let (x, y) = back.map(|e| (e.x, e.y)).expect("pickup 0 is back");
        place(&mut arena, 1, x, y);
        arena.step(&[]);
        assert_eq!(arena.player(1).map(|e| e.score), Some(2));
        assert_eq!(pickup_ids(&arena), vec![1]);
    }

    #[test]
    fn a_contested_pickup_goes_to_the_lowest_id() {
        let config = ArenaConfig {
            pickups: 1,
            ..ArenaConfig::default()
        };
        let mut arena = Arena::new(config, 1);
        // Joined out of order so that join order cannot be what decides.
        for id in [9, 3, 7] {
            arena.join(id);
        }
        place_pickup(&mut arena, 0, 1000, 1000);
        // Player 9 stands on the pickup; 3 is at the edge of reach; 7 is
        // in between. All three reach it after moving this step.
        place(&mut arena, 9, 1000, 1000);
        place(&mut arena, 7, 1010, 1000);
        place(&mut arena, 3, 980 - 8, 1000);
        arena.step(&[(3, input(127, 0))]);
        let scores: Vec<u32> = [3, 7, 9]
            .iter()
            .map(|&id| arena.player(id).map_or(u32::MAX, |e| e.score))
            .collect();
        assert_eq!(scores, vec![1, 0, 0]);
    }

    #[test]
    fn view_matches_brute_force_on_random_worlds() {
        for (seed, width, height, radius) in [
            (1u64, 2000u16, 2000u16, 300u16),
            (2, 2000, 2000, 0),
            (3, 2000, 2000, 1),
            (4, 500, 300, 50),
            (5, 500, 300, u16::MAX),
            (6, 1000, 1000, 1500),
            (7, 0, 0, 10),
        ] {
            let config = ArenaConfig {
                world_width: width,
                world_height: height,
                view_radius: radius,
                pickups: 200,
                ..ArenaConfig::default()
            };
            let mut arena = Arena::new(config, seed);
            for id in 0..300 {
                arena.join(id * 3 + 1);
            }
            // Corners and edges, where cell clamping could go wrong.
            let edge_spots = [
                (0, 0),
                (width, 0),
                (0, height),
                (width, height),
                (width / 2, 0),
                (0, height / 2),
                (width, height / 2),
                (width / 2, height),
            ];
            for (k, &(x, y)) in edge_spots.iter().enumerate() {
                place(&mut arena, k as u32 * 3 + 1, x, y);
            }
            let mut rng = SplitMix64::new(seed ^ 0xABCD);
            for step in 0..5 {
                if step > 0 {
                    let inputs: Vec<(PlayerId, Move)> = (0..300)
                        .map(|id| {
                            let dx = rng.up_to(254) as i16 - 127;
                            let dy = rng.up_to(254) as i16 - 127;
                            (id * 3 + 1, input(dx as i8, dy as i8))
                        })
                        .collect();
                    arena.step(&inputs);
                }
                let entities = arena.entities();
                let r2 = i64::from(radius) * i64::from(radius);
                let mut out = Vec::new();
                for (i, me) in entities.iter().enumerate() {
                    if me.kind == EntityKind::Pickup {
                        continue;
                    }
                    out.clear();
                    arena.view(me.id, &mut out);
                    out.sort_unstable();
                    let want: Vec<u32> = (0..entities.len() as u32)
                        .filter(|&j| {
                            let e = &entities[j as usize];
                            let dx = i64::from(e.x) - i64::from(me.x);
                            let dy = i64::from(e.y) - i64::from(me.y);
                            dx * dx + dy * dy <= r2
                        })
                        .collect();
                    assert_eq!(out, want, "seed {seed} radius {radius} player {}", me.id);
                    assert!(out.contains(&(i as u32)), "a view includes its owner");
                }
            }
        }
    }

    #[test]
    fn view_of_an_unknown_player_appends_nothing() {
        let mut arena = Arena::new(ArenaConfig::default(), 1);
        arena.join(1);
        let mut out = vec![7];
        arena.view(2, &mut out);
        assert_eq!(out, vec![7]);
        arena.view(1, &mut out);
        assert_eq!(out[0], 7, "view appends");
        assert!(out[1..].contains(&0));
    }

    #[test]
    fn each_state_decodes_to_exactly_that_players_view() {
        let mut arena = Arena::new(ArenaConfig::default(), 3);
        for p in 1..=50 {
            arena.join(p);
        }
        Arena::step(&mut arena, &[]);
        Game::prepare_states(&mut arena);
        for player in 1..=50 {
            let mut out = Vec::new();
            Game::state(&mut arena, player, &mut out);
            let mut view = Vec::new();
            arena.view(player, &mut view);
            let expected = msg::ArenaState {
                players: 50,
                entities: view.iter().map(|&i| arena.entities()[i as usize]).collect(),
            };
            assert_eq!(game_api::codec::decode(&out), Ok(expected));
        }
        let mut out = Vec::new();
        Game::welcome(&arena, 1, &mut out);
        let welcome: ArenaWelcome = game_api::codec::decode(&out).unwrap();
        assert_eq!((welcome.world_width, welcome.view_radius), (2000, 300));
    }

    #[test]
    fn the_pace_option_doubles_the_speed_and_others_are_refused() {
        let options = |pairs: &[(&str, &str)]| {
            RoomOptions::new(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            )
        };
        let base = ArenaConfig::default();
        let fast = base.for_options(&options(&[("pace", "fast")])).unwrap();
        assert_eq!(fast.player_speed, 2 * base.player_speed);
        assert_eq!(
            base.for_options(&options(&[("pace", "normal")])),
            Ok(base.clone())
        );
        assert!(base.for_options(&options(&[("pace", "warp")])).is_err());
        assert!(base.for_options(&options(&[("map", "x")])).is_err());
        // A configuration from a file is bounded before a field is made.
        let crowded = ArenaConfig {
            pickups: MAX_PICKUPS + 1,
            ..base.clone()
        };
        assert!(
            crowded
                .for_options(&options(&[]))
                .unwrap_err()
                .contains("at most")
        );
        let per_tick = base
            .clone()
            .at_tick_rate(30, 240, std::time::Duration::from_secs(3));
        assert_eq!(
            per_tick, base,
            "the defaults are 240 units/s and 3 s at 30 Hz"
        );
        let kind = room_type(base);
        assert_eq!(kind.name(), "arena");
        assert_eq!(kind.settings().filter_by, vec!["pace".to_owned()]);
        assert!(kind.create(&options(&[("pace", "fast")]), 1, 10).is_ok());
    }

    #[test]
    fn steady_state_steps_do_not_allocate() {
        let mut arena = Arena::new(ArenaConfig::default(), 5);
        for id in 0..500 {
            arena.join(id);
        }
        let inputs: Vec<(PlayerId, Move)> = (0..500)
            .map(|id| (id, input((id % 255) as i8, (id * 7 % 255) as i8)))
            .collect();
        // Warm up long enough for pickups to be collected and respawn, so
        // every buffer has reached its working size.
        for _ in 0..400 {
            arena.step(&inputs);
        }
        let buffers = |a: &Arena| {
            (
                a.entities.as_ptr(),
                a.hits.as_ptr(),
                a.respawns.capacity(),
                a.players.as_ptr(),
                a.pickups.as_ptr(),
            )
        };
        let warm = buffers(&arena);
        let mut scores = 0;
        for _ in 0..200 {
            arena.step(&inputs);
            assert_eq!(buffers(&arena), warm, "a steady-state step reallocated");
            scores = arena.entities().iter().map(|e| e.score).sum::<u32>();
        }
        assert!(scores > 0, "the run should have collected pickups");
    }
}
