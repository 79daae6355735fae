//! What place's clients send and receive inside the platform's envelope:
//! [`PlaceMsg`] (the one message), [`PlaceEvent`] (reliable, in order),
//! [`PlaceState`] (each player's state, sent when it changes) and
//! [`PlaceWelcome`] (the game's part of `Welcome`).
//!
//! All are bincode in its standard configuration, through
//! `game_api::codec`; `web/codec.js` reads and writes the same bytes, so
//! the order of fields and of variants is the wire format: append, never
//! reorder. Not here: the rules (the crate root).

use game_api::PlayerId;
use serde::{Deserialize, Serialize};

/// Colours of the palette: a pixel holds `0..COLORS`, 0 being the white
/// background (the page knows what each one looks like).
pub const COLORS: u8 = 8;

/// What a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceMsg {
    /// Paint one pixel. Refused with [`PlaceEvent::Rejected`] off the
    /// canvas, with a colour outside the palette, or within the cooldown.
    Paint {
        /// Column, from 0 at the left.
        x: u8,
        /// Row, from 0 at the top.
        y: u8,
        /// Palette index, `0..COLORS`.
        color: u8,
    },
}

/// What the game sends, reliably and in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceEvent {
    /// A paint was accepted. Sent to everyone, so a client can keep the
    /// canvas from events alone: the `n`-th `Painted` of a room is its
    /// `n`-th accepted paint.
    Painted {
        /// Column.
        x: u8,
        /// Row.
        y: u8,
        /// The new colour.
        color: u8,
        /// Who painted it.
        by: PlayerId,
    },
    /// Your last paint was refused and changed nothing. Sent to you only.
    Rejected {
        /// Why, for a human.
        reason: String,
    },
}

/// What one player sees. The room sends it only when its bytes change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceState {
    /// Paints accepted in the room so far: the canvas is the result of
    /// exactly the room's first `painted` [`PlaceEvent::Painted`].
    pub painted: u32,
    /// `size × size` palette indices, row by row from the top left
    /// (index `y * size + x`).
    pub canvas: Vec<u8>,
    /// Pixels this player has painted (never goes down).
    pub pixels: u32,
    /// While this player must wait, the tick from which it may paint
    /// again; `None` when it may paint now.
    pub ready_at: Option<u32>,
}

/// The game's part of `Welcome`, sent on every join and resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceWelcome {
    /// Pixels per side of the canvas.
    pub size: u8,
    /// Paints accepted in the room before this welcome: the next
    /// [`PlaceEvent::Painted`] to happen is number `painted + 1`.
    pub painted: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_api::codec::{decode_message, to_vec};

    /// The bytes `web/codec.js` is written against: a variant is its
    /// index, a `u8` one byte, other integers varints (one byte below
    /// 251), a `Vec` or string its length then its items, an `Option` a
    /// 0/1 byte then the value.
    #[test]
    fn wire_shapes_are_the_documented_bytes() {
        let paint = PlaceMsg::Paint {
            x: 3,
            y: 63,
            color: 7,
        };
        assert_eq!(to_vec(&paint), [0, 3, 63, 7]);
        let painted = PlaceEvent::Painted {
            x: 1,
            y: 2,
            color: 3,
            by: 300,
        };
        assert_eq!(to_vec(&painted), [0, 1, 2, 3, 251, 0x2c, 0x01]);
        let rejected = PlaceEvent::Rejected {
            reason: "no".into(),
        };
        assert_eq!(to_vec(&rejected), [1, 2, b'n', b'o']);
        let state = PlaceState {
            painted: 5,
            canvas: vec![0, 1, 2, 3],
            pixels: 2,
            ready_at: Some(40),
        };
        assert_eq!(to_vec(&state), [5, 4, 0, 1, 2, 3, 2, 1, 40]);
        let welcome = PlaceWelcome {
            size: 16,
            painted: 9,
        };
        assert_eq!(to_vec(&welcome), [16, 9]);
    }

    #[test]
    fn messages_outside_the_protocol_do_not_decode() {
        for bad in [&[][..], &[1, 0, 0, 0], &[0, 1, 2], &[0, 1, 2, 3, 4]] {
            assert!(decode_message::<PlaceMsg>(bad).is_err(), "{bad:?}");
        }
    }
}
