//! place: a shared pixel canvas that many players paint at once, one
//! pixel at a time. The example game of `docs/your-own-game.md`, and the
//! platform's third kind of game: not real-time entities (the arena), not
//! turns for two (four in a row), but a persistent world everyone changes.
//!
//! The rules:
//! - a room holds a canvas of `size × size` pixels (room option `size`:
//!   16, 32 or 64; 32 by default), each one of [`msg::COLORS`] palette
//!   colours, 0 (white) at first;
//! - a player paints one pixel per [`COOLDOWN`]; a paint off the canvas,
//!   with a colour outside the palette, or too early changes nothing and
//!   earns the sender a [`PlaceEvent::Rejected`] (never a kick);
//! - every accepted paint is broadcast as a [`PlaceEvent::Painted`];
//! - a player's state is the canvas, its own pixel count and its cooldown.
//!
//! Deterministic with no randomness at all: time is the room's tick, and
//! the whole game is plain data, saved by [`Place::save`] and rebuilt,
//! checked, by [`Place::restore`].
//!
//! Layout: the rules are here; the wire types in [`msg`]; the simulated
//! player for `loadgen` in [`bot`]; the page in `web/`; a server of this
//! game alone in `main.rs` (the `place-server` binary). Not here: sockets,
//! clocks or threads of any kind.

pub mod bot;
pub mod msg;

use std::collections::BTreeMap;
use std::time::Duration;

use game_api::{Ctx, Game, Metadata, PlayerId, RoomOptions, RoomType, WebAsset};
use msg::{COLORS, PlaceEvent, PlaceMsg, PlaceState, PlaceWelcome};
use serde::{Deserialize, Serialize};

/// The canvas sizes a room may be created with (option `size`).
pub const SIZES: [u8; 3] = [16, 32, 64];

/// The canvas size of a room created without the option.
pub const DEFAULT_SIZE: u8 = 32;

/// How long a player waits between two paints: long enough that every
/// pixel matters, short enough that nobody waits for the game.
pub const COOLDOWN: Duration = Duration::from_secs(1);

/// The cooldown in ticks at `hz` ticks a second, rounded up, at least one.
fn cooldown_ticks(hz: u16) -> u32 {
    let millis = COOLDOWN.as_millis() as u32;
    (millis * u32::from(hz)).div_ceil(1000).max(1)
}

/// The canvas size `options` ask for, or why they cannot have it.
fn size_option(options: &RoomOptions) -> Result<u8, String> {
    options.only(&["size"])?;
    let size = options.parse_or("size", DEFAULT_SIZE)?;
    if !SIZES.contains(&size) {
        return Err(format!(
            "option size={size}: a canvas is 16, 32 or 64 pixels a side"
        ));
    }
    Ok(size)
}

/// One player's part of the game. Its serde form is part of the save.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Painter {
    /// Pixels painted.
    pixels: u32,
    /// The first tick at which it may paint again.
    ready_at: u32,
}

/// A room's canvas and its painters. Its serde form, after a version
/// byte, is the saved game: the fields marked `skip` are not part of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Place {
    /// Pixels per side: one of [`SIZES`].
    size: u8,
    /// `size × size` palette indices, row by row from the top left.
    canvas: Vec<u8>,
    /// Paints accepted since the room opened.
    painted: u32,
    /// Everyone in the room, by id: a `BTreeMap`, not a `HashMap`, so that
    /// nothing depends on a random iteration order.
    painters: BTreeMap<PlayerId, Painter>,
    /// The room's tick at the last call that told it: states say whether
    /// a player may paint as of this tick.
    now: u32,
    /// `painted` and `canvas` encoded once per tick by `prepare_states`:
    /// the first half of every player's state.
    #[serde(skip)]
    shared: Vec<u8>,
    /// The `painted` count last published as metadata; a restored room
    /// publishes again.
    #[serde(skip)]
    listed: Option<u32>,
}

/// Version of the saved form: this byte, then [`Place`] in bincode.
/// Changing `Place` or `Painter` means raising it, so that an old save is
/// refused with a clear error instead of being misread.
const SAVE_VERSION: u8 = 1;

/// Most bytes a save may decode into. A 64 × 64 canvas with 50 painters
/// is under 5 KB; the limit only stops a corrupt length from allocating.
const SAVE_LIMIT: usize = 1 << 20;

impl Place {
    /// A white canvas of `size` pixels a side, nobody in the room.
    pub fn new(size: u8) -> Place {
        Place {
            size,
            canvas: vec![0; usize::from(size) * usize::from(size)],
            painted: 0,
            painters: BTreeMap::new(),
            now: 0,
            shared: Vec::new(),
            listed: None,
        }
    }

    /// `player` paints (`x`, `y`) with `color`, or the reason it may not.
    fn paint(
        &mut self,
        player: PlayerId,
        (x, y, color): (u8, u8, u8),
        ctx: &mut Ctx<'_, PlaceEvent>,
    ) -> Result<(), String> {
        let size = self.size;
        let Some(painter) = self.painters.get_mut(&player) else {
            // A message racing its sender's leave: nobody to answer.
            return Ok(());
        };
        if x >= size || y >= size {
            return Err(format!("({x}, {y}) is off the {size} × {size} canvas"));
        }
        if color >= COLORS {
            return Err(format!("there is no colour {color} in the palette"));
        }
        let now = ctx.tick();
        if now < painter.ready_at {
            let wait = painter.ready_at - now;
            return Err(format!("too early: wait {wait} more ticks"));
        }
        self.canvas[usize::from(y) * usize::from(size) + usize::from(x)] = color;
        self.painted = self.painted.saturating_add(1);
        painter.pixels = painter.pixels.saturating_add(1);
        painter.ready_at = now.saturating_add(cooldown_ticks(ctx.tick_hz()));
        ctx.broadcast(&PlaceEvent::Painted {
            x,
            y,
            color,
            by: player,
        });
        Ok(())
    }

    /// Publishes the room's metadata if the paint count changed since
    /// the last time: the lobby's room list shows it.
    fn publish(&mut self, ctx: &mut Ctx<'_, PlaceEvent>) {
        if self.listed == Some(self.painted) {
            return;
        }
        self.listed = Some(self.painted);
        let metadata = Metadata::from([
            ("painted".to_owned(), self.painted.to_string()),
            ("size".to_owned(), self.size.to_string()),
        ]);
        // Two short entries are far within the limits: never refused.
        let _ = ctx.set_metadata(metadata);
    }

    /// When `painter` may paint again, as a state says it.
    fn ready_at(&self, painter: &Painter) -> Option<u32> {
        (self.now < painter.ready_at).then_some(painter.ready_at)
    }

    /// What `player` sees: the state [`Game::state`] encodes.
    pub fn view(&self, player: PlayerId) -> Option<PlaceState> {
        let painter = self.painters.get(&player)?;
        Some(PlaceState {
            painted: self.painted,
            canvas: self.canvas.clone(),
            pixels: painter.pixels,
            ready_at: self.ready_at(painter),
        })
    }

    /// The whole game as bytes: a format version, then the game in bincode.
    pub fn save(&self) -> Vec<u8> {
        let mut out = vec![SAVE_VERSION];
        game_api::codec::encode(self, &mut out);
        out
    }

    /// Rebuilds a game from the bytes of [`Place::save`]. They come from a
    /// file: anything this build cannot continue is an error, never a panic.
    pub fn restore(saved: &[u8]) -> Result<Place, String> {
        let Some((&version, rest)) = saved.split_first() else {
            return Err("the saved canvas is empty".into());
        };
        if version != SAVE_VERSION {
            return Err(format!(
                "the saved canvas has format {version}, this build reads {SAVE_VERSION}"
            ));
        }
        let place: Place = game_api::codec::decode_limited::<_, SAVE_LIMIT>(rest)
            .map_err(|e| format!("the saved canvas is {e}"))?;
        place.check()?;
        Ok(place)
    }

    /// Checks what the rules rely on, so that a restored game can neither
    /// panic nor break a rule whatever its bytes said.
    fn check(&self) -> Result<(), String> {
        if !SIZES.contains(&self.size) {
            return Err(format!("a saved canvas of size {}", self.size));
        }
        if self.canvas.len() != usize::from(self.size) * usize::from(self.size) {
            let (pixels, size) = (self.canvas.len(), self.size);
            return Err(format!("{pixels} saved pixels on a {size} × {size} canvas"));
        }
        if self.canvas.iter().any(|&c| c >= COLORS) {
            return Err("a saved pixel outside the palette".into());
        }
        let coloured = self.canvas.iter().filter(|&&c| c != 0).count();
        let by_painters: u64 = self.painters.values().map(|p| u64::from(p.pixels)).sum();
        if (self.painted as usize) < coloured || u64::from(self.painted) < by_painters {
            return Err(format!("{} saved paints cannot colour this", self.painted));
        }
        let latest = self.now.saturating_add(cooldown_ticks(u16::MAX));
        if self.painters.values().any(|p| p.ready_at > latest) {
            return Err("a saved cooldown longer than the cooldown".into());
        }
        Ok(())
    }
}

impl Game for Place {
    /// Nothing to configure: the rules are fixed, the size is per room.
    type Config = ();
    type Message = PlaceMsg;
    type Event = PlaceEvent;

    fn create(_: &(), options: &RoomOptions, _seed: u64) -> Result<Self, String> {
        Ok(Place::new(size_option(options)?))
    }

    fn restore(_: &(), options: &RoomOptions, saved: &[u8]) -> Result<Self, String> {
        let place = Place::restore(saved)?;
        if place.size != size_option(options)? {
            return Err("the saved canvas is not the size of the room".into());
        }
        Ok(place)
    }

    fn save(&self) -> Vec<u8> {
        Place::save(self)
    }

    fn join(&mut self, player: PlayerId, ctx: &mut Ctx<'_, PlaceEvent>) {
        self.now = ctx.tick();
        let ready_at = self.now;
        self.painters.entry(player).or_insert(Painter {
            pixels: 0,
            ready_at,
        });
        self.publish(ctx);
    }

    fn leave(&mut self, player: PlayerId, ctx: &mut Ctx<'_, PlaceEvent>) {
        self.now = ctx.tick();
        self.painters.remove(&player);
    }

    fn step(&mut self, messages: &[(PlayerId, PlaceMsg)], ctx: &mut Ctx<'_, PlaceEvent>) {
        self.now = ctx.tick();
        for &(player, msg) in messages {
            let result = match msg {
                PlaceMsg::Paint { x, y, color } => self.paint(player, (x, y, color), ctx),
            };
            if let Err(reason) = result {
                ctx.send(player, &PlaceEvent::Rejected { reason });
            }
        }
        self.publish(ctx);
    }

    fn welcome(&self, _: PlayerId, out: &mut Vec<u8>) {
        let welcome = PlaceWelcome {
            size: self.size,
            painted: self.painted,
        };
        game_api::codec::encode(&welcome, out);
    }

    fn prepare_states(&mut self) {
        self.shared.clear();
        game_api::codec::encode(&self.painted, &mut self.shared);
        game_api::codec::encode(&self.canvas, &mut self.shared);
    }

    fn state(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        let Some(painter) = self.painters.get(&player) else {
            return;
        };
        // A PlaceState: the shared fields, then this player's own.
        out.extend_from_slice(&self.shared);
        let own = (painter.pixels, self.ready_at(painter));
        game_api::codec::encode(&own, out);
    }
}

/// The page, served at `/place/`; `/session.js` comes from the server.
pub const WEB: &[WebAsset] = &[
    WebAsset::html("/place/index.html", include_bytes!("../web/index.html")),
    WebAsset::js("/place/game.js", include_bytes!("../web/game.js")),
    WebAsset::js("/place/codec.js", include_bytes!("../web/codec.js")),
];

/// Players per room. Every paint is an event to every player, and the
/// server ends a session with 1,024 events unacknowledged: a player
/// dropped for the whole 15 s resume grace in a full room collects 50
/// paints a second × 15 s = 750 of them, within that bound.
const CAPACITY: u16 = 50;

/// Ticks per second: a paint waits at most 100 ms to be applied, and
/// nothing moves between paints.
const TICK_HZ: u16 = 10;

/// How long an empty room stays open: a canvas survives its painters
/// stepping away for a minute.
const LINGER: Duration = Duration::from_secs(60);

/// place as a room type named `place`: 50 players, 10 ticks a second,
/// quick join matching the `size` option, states only when they change,
/// empty rooms kept a minute, the page at `/place/`.
pub fn room_type() -> RoomType {
    RoomType::new::<Place>("place", ())
        .capacity(CAPACITY)
        .tick_hz(TICK_HZ)
        .linger(LINGER)
        .filter_by(&["size"])
        .skip_unchanged_states()
        .page("/place/", WEB)
}

#[cfg(test)]
mod tests;
