//! Replication helpers for games with many entities: encode each entity
//! once per tick, and build every player's view by copying the bytes of
//! the entities it holds.
//!
//! A game with a thousand players each seeing twenty entities would encode
//! twenty thousand entities a tick if each view encoded its own; with
//! [`EncodedEntities`] it encodes a thousand (in `Game::prepare_states`)
//! and each view is a count and a run of fixed-size copies (in
//! `Game::state`). What a view holds is the game's choice (the [`Grid`]
//! answers "what is within this radius"); the bytes it writes are exactly a
//! bincode `Vec` of the entities, so a client decodes a view with its
//! ordinary codec.
//!
//! [`Grid`]: crate::grid::Grid

use crate::codec::put_varint;

/// One entity's encoding in a fixed-size slot, with its length. Copying a
/// whole slot is a fixed-size copy the compiler turns into a few moves,
/// where copying a slice of varying length is a call to `memcpy`: at 5,000
/// players that call was a sixth of the fan-out's instructions.
#[derive(Clone, Copy)]
struct Slot<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

/// Every entity of a tick encoded once, by index; `N` is the most bytes one
/// entity's encoding can take (at most 255).
#[derive(Clone)]
pub struct EncodedEntities<const N: usize> {
    /// Each entity's encoding, by index.
    slots: Vec<Slot<N>>,
    /// Scratch for encoding one entity.
    scratch: Vec<u8>,
}

impl<const N: usize> Default for EncodedEntities<N> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            scratch: Vec::with_capacity(N),
        }
    }
}

impl<const N: usize> std::fmt::Debug for EncodedEntities<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedEntities")
            .field("entities", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<const N: usize> EncodedEntities<N> {
    /// Encodes every entity with `encode`, replacing the last tick's.
    ///
    /// # Panics
    ///
    /// If an encoding is longer than `N` bytes: `N` is the game's own bound
    /// on its entity encoding, so a longer one is a bug in the game.
    pub fn encode_all<E>(&mut self, entities: &[E], mut encode: impl FnMut(&E, &mut Vec<u8>)) {
        const { assert!(N <= 255, "a slot's length is a u8") };
        self.slots.clear();
        for e in entities {
            self.scratch.clear();
            encode(e, &mut self.scratch);
            let len = self.scratch.len();
            assert!(
                len <= N,
                "an entity encoded to {len} bytes, more than its bound of {N}"
            );
            let mut slot = Slot {
                bytes: [0; N],
                len: len as u8,
            };
            slot.bytes[..len].copy_from_slice(&self.scratch);
            self.slots.push(slot);
        }
    }

    /// Number of entities encoded.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no entity is encoded.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Appends the entities at `indices` as a bincode `Vec`: a varint count,
    /// then each one's bytes. Indices must be below [`Self::len`].
    pub fn write_view(&self, indices: &[u32], out: &mut Vec<u8>) {
        put_varint(out, indices.len() as u64);
        // Room for every slot whole; the tail past the last entity's real
        // length is cut off below.
        let mut at = out.len();
        out.resize(at + indices.len() * N, 0);
        for &i in indices {
            let slot = &self.slots[i as usize];
            out[at..at + N].copy_from_slice(&slot.bytes);
            at += usize::from(slot.len);
        }
        out.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_the_bincode_vec_of_its_entities() {
        let entities: Vec<(u32, String)> = (0..300u32)
            .map(|i| (i * 1000, "x".repeat((i % 7) as usize)))
            .collect();
        let mut enc = EncodedEntities::<16>::default();
        enc.encode_all(&entities, |e, out| {
            crate::codec::encode(e, out);
        });
        assert_eq!(enc.len(), 300);
        for view in [
            vec![],
            vec![0],
            vec![299, 3, 3, 251],
            (0..260).collect::<Vec<u32>>(),
        ] {
            let mut out = vec![7];
            enc.write_view(&view, &mut out);
            let want: Vec<(u32, String)> =
                view.iter().map(|&i| entities[i as usize].clone()).collect();
            assert_eq!(out[0], 7, "appends");
            assert_eq!(out[1..], crate::codec::to_vec(&want)[..], "view {view:?}");
        }
    }

    #[test]
    #[should_panic(expected = "more than its bound")]
    fn an_encoding_past_the_bound_is_a_game_bug() {
        let mut enc = EncodedEntities::<2>::default();
        enc.encode_all(&[1u32 << 20], |e, out| {
            crate::codec::encode(e, out);
        });
    }
}
