//! Hand-written encoding for the server's hot path, byte for byte what
//! bincode writes (the tests below check it against bincode itself).
//!
//! Each tick the server writes every player's `State` into one shared
//! buffer: it begins the message ([`begin_state`]), lets the game append
//! its bytes in place, then fixes up the length ([`finish_state`]). That
//! avoids building a `Vec` per player and copying it. [`put_varint`] is
//! also what games use to write their own bytes by hand (through
//! `game_api`), so that a hand-written game encoding and its bincode form
//! cannot drift apart either.

/// Index of `ServerMsg::State` among `ServerMsg`'s variants.
const STATE_VARIANT: u64 = 1;

/// Index of `ServerMsg::Event` among `ServerMsg`'s variants.
const EVENT_VARIANT: u64 = 2;

/// Largest encoding of a state header before its data: variant (1) + tick
/// (5) + ack (5) + data length (9).
pub const MAX_STATE_HEADER_BYTES: usize = 20;

/// Appends `v` as a bincode `standard()` varint: values below 251 are one
/// byte; larger ones are a marker byte (251, 252, 253) and then the value as
/// a little-endian u16, u32 or u64.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Bytes [`put_varint`] writes for `v`.
#[inline]
pub const fn varint_len(v: u64) -> usize {
    if v < 251 {
        1
    } else if v <= u16::MAX as u64 {
        3
    } else if v <= u32::MAX as u64 {
        5
    } else {
        9
    }
}

/// Appends the start of a `ServerMsg::State` (variant, tick, ack) and one
/// byte reserved for the data length. Append the state's data, then call
/// [`finish_state`] with the returned mark.
#[inline]
pub fn begin_state(tick: u32, ack: u32, out: &mut Vec<u8>) -> usize {
    put_varint(out, STATE_VARIANT);
    put_varint(out, u64::from(tick));
    put_varint(out, u64::from(ack));
    out.push(0);
    out.len()
}

/// Completes the state begun at `mark`: everything appended since is its
/// data. Writes the data's length into the reserved byte, moving the data
/// up when the length needs a longer varint (data of 251 bytes or more).
#[inline]
pub fn finish_state(mark: usize, out: &mut Vec<u8>) {
    let len = out.len() - mark;
    let needed = varint_len(len as u64);
    if needed == 1 {
        out[mark - 1] = len as u8;
        return;
    }
    let extra = needed - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(mark..mark + len, mark + extra);
    // The marker, then the length little-endian, as put_varint writes it,
    // straight into the gap (no allocation on the hot path).
    let marker = match needed {
        3 => 251,
        5 => 252,
        _ => 253,
    };
    out[mark - 1] = marker;
    out[mark..mark + extra].copy_from_slice(&(len as u64).to_le_bytes()[..extra]);
}

/// Appends a whole `ServerMsg::Event` with sequence number `seq`.
pub fn encode_event(seq: u32, data: &[u8], out: &mut Vec<u8>) {
    put_varint(out, EVENT_VARIANT);
    put_varint(out, u64::from(seq));
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, ServerMsg, State, encode_server};

    const EDGES: [u32; 9] = [0, 1, 250, 251, 252, 65_535, 65_536, 1 << 24, u32::MAX];
    const LENGTHS: [usize; 8] = [0, 1, 250, 251, 252, 1000, 65_535, 65_536];

    fn by_bincode(msg: ServerMsg) -> Vec<u8> {
        let mut out = Vec::new();
        encode_server(&msg, &mut out);
        out
    }

    #[test]
    fn states_written_in_place_equal_bincode_at_every_edge() {
        for (i, &len) in LENGTHS.iter().enumerate() {
            let tick = EDGES[i % EDGES.len()];
            let ack = EDGES[(i * 5 + 3) % EDGES.len()];
            let data: Vec<u8> = (0..len).map(|b| (b * 7) as u8).collect();
            // Something before, as in the shared tick buffer.
            let mut out = vec![0xEE; 3];
            let mark = begin_state(tick, ack, &mut out);
            out.extend_from_slice(&data);
            finish_state(mark, &mut out);
            let want = by_bincode(ServerMsg::State(State { tick, ack, data }));
            assert_eq!(&out[..3], &[0xEE; 3]);
            assert_eq!(&out[3..], &want[..], "len {len} tick {tick} ack {ack}");
        }
    }

    #[test]
    fn events_equal_bincode() {
        for (&seq, &len) in EDGES.iter().zip(LENGTHS.iter()) {
            let data = vec![3u8; len];
            let mut out = Vec::new();
            encode_event(seq, &data, &mut out);
            assert_eq!(out, by_bincode(ServerMsg::Event(Event { seq, data })));
        }
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for v in [
            0u64,
            250,
            251,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let mut out = Vec::new();
        begin_state(u32::MAX, u32::MAX, &mut out);
        assert_eq!(out.len() + 8, MAX_STATE_HEADER_BYTES);
    }
}
