//! place's simulated player for `loadgen`: it paints a random pixel each
//! time its state says it may, and checks the game as it goes. It keeps
//! its own copy of the canvas from the `Painted` events alone and compares
//! it with every state that covers the same paints, so a run notices a
//! paint lost, repeated or misapplied anywhere between the game and the
//! client, across any number of drops and resumes.
//!
//! Not a client to copy for a page: a page simply draws the latest state
//! (see `web/game.js`).

use crate::msg::{COLORS, PlaceEvent, PlaceMsg, PlaceState, PlaceWelcome};
use game_api::codec::{decode, to_vec};
use game_api::{Bot, BotSpec, PlayerId};

/// A simulated place player.
#[derive(Debug, Default)]
pub struct PlaceBot {
    /// Our player id and canvas size, once welcomed.
    welcomed: Option<(PlayerId, u8)>,
    /// The canvas as the events made it, from the first state that agreed
    /// with them; `None` until then.
    canvas: Option<Vec<u8>>,
    /// How many of the room's paints we know of: the count at our join
    /// plus every `Painted` since.
    heard: u32,
    /// Our pixel count in the last state of this connection.
    pixels: Option<u32>,
    /// The last state of this connection said we may paint.
    ready: bool,
    /// We sent a paint and no state has shown it applied yet.
    sent: bool,
}

impl PlaceBot {
    /// A bot not welcomed yet. Its choices come from the random numbers
    /// [`Bot::act`] is given, so it needs no seed.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bot for PlaceBot {
    fn welcome(&mut self, player: PlayerId, resumed: bool, data: &[u8]) -> Result<(), String> {
        let welcome: PlaceWelcome = decode(data).map_err(|e| format!("welcome: {e}"))?;
        if resumed && self.welcomed != Some((player, welcome.size)) {
            return Err("a resume into another player or canvas".into());
        }
        if !resumed {
            // A new player: the events we get start after the paints so far.
            self.canvas = None;
            self.heard = welcome.painted;
        }
        self.welcomed = Some((player, welcome.size));
        // Known again from this connection's first state.
        (self.pixels, self.ready, self.sent) = (None, false, false);
        Ok(())
    }

    fn state(&mut self, _tick: u32, data: &[u8]) -> Result<(), String> {
        let state: PlaceState = decode(data).map_err(|e| format!("state: {e}"))?;
        let (_, size) = self.welcomed.ok_or("a state before the welcome")?;
        if state.canvas.len() != usize::from(size).pow(2)
            || state.canvas.iter().any(|&c| c >= COLORS)
        {
            return Err("a state with a malformed canvas".into());
        }
        if state.painted > self.heard {
            return Err(format!(
                "a state of {} paints when {} were announced: an event was lost",
                state.painted, self.heard
            ));
        }
        // A state of fewer paints than we heard of was built before the
        // latest events arrived: it cannot be compared, and is no error.
        if state.painted == self.heard {
            match &self.canvas {
                None => self.canvas = Some(state.canvas),
                Some(canvas) if *canvas != state.canvas => {
                    let at = canvas.iter().zip(&state.canvas).position(|(a, b)| a != b);
                    return Err(format!(
                        "after {} paints the events and the state differ at pixel {at:?}",
                        self.heard
                    ));
                }
                Some(_) => {}
            }
        }
        self.pixels = Some(state.pixels);
        self.ready = state.ready_at.is_none();
        // Cooling down: our paint went through (or there was none).
        self.sent &= self.ready;
        Ok(())
    }

    fn event(&mut self, data: &[u8]) -> Result<(), String> {
        match decode(data).map_err(|e| format!("event: {e}"))? {
            PlaceEvent::Painted { x, y, color, .. } => {
                let (_, size) = self.welcomed.ok_or("an event before the welcome")?;
                if x >= size || y >= size || color >= COLORS {
                    return Err(format!("a paint of colour {color} at ({x}, {y})"));
                }
                self.heard = self.heard.saturating_add(1);
                if let Some(canvas) = &mut self.canvas {
                    canvas[usize::from(y) * usize::from(size) + usize::from(x)] = color;
                }
                Ok(())
            }
            // We paint only when a state says we may, and never off the
            // canvas: a refusal is a disagreement between game and state.
            PlaceEvent::Rejected { reason } => Err(format!("a paint was refused: {reason}")),
        }
    }

    fn act(&mut self, random: u64) -> Option<Vec<u8>> {
        let (_, size) = self.welcomed?;
        if !self.ready || self.sent {
            return None;
        }
        self.sent = true;
        let size = u64::from(size);
        Some(to_vec(&PlaceMsg::Paint {
            x: (random % size) as u8,
            y: (random / size % size) as u8,
            color: (random / size / size % u64::from(COLORS)) as u8,
        }))
    }

    /// Our pixel count: a resume must never lose a pixel.
    fn progress(&self) -> Option<u64> {
        self.pixels.map(u64::from)
    }
}

/// How `loadgen --game place` plays: quick join, no options (a 32 × 32
/// canvas).
pub const SPEC: BotSpec = BotSpec {
    room_type: "place",
    options: &[],
    make: |_seed| Box::new(PlaceBot::new()),
};

#[cfg(test)]
mod tests;
