//! WebSocket frames as the fuzz client writes them and as it checks the
//! server's answers.
//!
//! The writer is deliberately permissive: it puts any header byte, any
//! length encoding (minimal, needlessly long, or a lie) and masked or
//! unmasked payloads on the wire, because producing broken frames is the
//! point. The reader is deliberately strict: it accepts only what RFC 6455
//! allows a server to send, so that anything odd in the server's output is
//! a finding. Not a WebSocket implementation: no handshake, no state.

/// Opcode of a continuation frame.
pub const CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// The FIN bit of the first header byte.
pub const FIN: u8 = 0x80;

/// The masking key of every masked frame the fuzz client writes. Its value
/// does not matter to the server; a fixed key keeps inputs reproducible.
pub const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// How the payload length is written in a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// The shortest form, as RFC 6455 requires.
    Minimal,
    /// Always the 16-bit form (126 then two bytes), even for short
    /// payloads; a length over 65,535 is cut to 16 bits.
    Force16,
    /// Always the 64-bit form (127 then eight bytes).
    Force64,
    /// The 64-bit form with this value instead of the payload's length:
    /// the frame lies, and the stream loses its framing.
    Claim(u64),
}

/// Appends one frame. `head` is the first header byte as-is (FIN, the
/// three reserved bits and the opcode), so any combination can be sent.
pub fn put_frame(out: &mut Vec<u8>, head: u8, masked: bool, length: Length, payload: &[u8]) {
    out.push(head);
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len() as u64;
    match length {
        Length::Minimal if len < 126 => out.push(mask_bit | len as u8),
        Length::Minimal if len <= u64::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Length::Force16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Length::Minimal | Length::Force64 => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Length::Claim(claimed) => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&claimed.to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK_KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK_KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
}

/// Appends a well-formed masked frame, as a browser would send it.
pub fn put_client_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    let head = if fin { FIN | opcode } else { opcode };
    put_frame(out, head, true, Length::Minimal, payload);
}

/// One frame from the server, after the strict checks of
/// [`parse_server_frames`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    /// The opcode: [`BINARY`], [`CLOSE`], [`PING`] or [`PONG`].
    pub opcode: u8,
    /// The payload (servers never mask).
    pub payload: Vec<u8>,
}

/// Splits everything a server wrote into frames, refusing what a server
/// must not send: reserved bits, masking, fragments, text frames (this
/// server speaks binary only), unknown opcodes, control payloads over 125
/// bytes, lengths not in their shortest form, and a frame cut short by the
/// end of the stream.
pub fn parse_server_frames(mut bytes: &[u8]) -> Result<Vec<ServerFrame>, String> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let at = frames.len();
        if bytes.len() < 2 {
            return Err(format!("frame {at}: stream ends inside a header"));
        }
        let (b0, b1) = (bytes[0], bytes[1]);
        if b0 & FIN == 0 {
            return Err(format!("frame {at}: a fragment (FIN clear)"));
        }
        if b0 & 0x70 != 0 {
            return Err(format!("frame {at}: reserved bits {:#x}", b0 & 0x70));
        }
        let opcode = b0 & 0x0f;
        if !matches!(opcode, BINARY | CLOSE | PING | PONG) {
            return Err(format!("frame {at}: opcode {opcode:#x}"));
        }
        if b1 & 0x80 != 0 {
            return Err(format!("frame {at}: masked (servers must not mask)"));
        }
        let (len, header) = match b1 & 0x7f {
            126 => {
                let Some(ext) = bytes.get(2..4) else {
                    return Err(format!("frame {at}: stream ends inside a header"));
                };
                let len = u64::from(u16::from_be_bytes([ext[0], ext[1]]));
                if len < 126 {
                    return Err(format!("frame {at}: length {len} not in its shortest form"));
                }
                (len, 4)
            }
            127 => {
                let Some(ext) = bytes.get(2..10) else {
                    return Err(format!("frame {at}: stream ends inside a header"));
                };
                let len = u64::from_be_bytes(ext.try_into().expect("eight bytes"));
                if len <= u64::from(u16::MAX) {
                    return Err(format!("frame {at}: length {len} not in its shortest form"));
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        if opcode >= CLOSE && len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(format!(
                "frame {at}: control frame {opcode:#x} with {len} bytes"
            ));
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(header))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("frame {at}: stream ends inside a {len}-byte payload"))?;
        frames.push(ServerFrame {
            opcode,
            payload: bytes[header..end].to_vec(),
        });
        bytes = &bytes[end..];
    }
    Ok(frames)
}

/// The first frame of `bytes` if it has fully arrived: its opcode, its
/// payload (unmasked if the frame was masked) and the bytes the whole frame
/// takes. Lenient (no checks); for watching a stream as it arrives.
pub fn next_frame(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, rest) = bytes.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let (len, rest) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            &rest[2..],
        ),
        127 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
            &rest[8..],
        ),
        short => (u64::from(short), rest),
    };
    let (mask, rest) = if b1 & 0x80 != 0 {
        (Some(rest.get(..4)?), &rest[4..])
    } else {
        (None, rest)
    };
    let payload = rest.get(..usize::try_from(len).ok()?)?;
    let payload = match mask {
        Some(key) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    let used = bytes.len() - rest.len() + payload.len();
    Some((b0 & 0x0f, payload, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_frame(&mut out, FIN | opcode, false, Length::Minimal, payload);
        out
    }

    #[test]
    fn what_a_server_may_send_parses() {
        let mut stream = server_frame(BINARY, &[2, 5, 9]);
        stream.extend(server_frame(BINARY, &[7; 300]));
        stream.extend(server_frame(PING, b""));
        stream.extend(server_frame(CLOSE, &[0x03, 0xe8]));
        let frames = parse_server_frames(&stream).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[1].payload.len(), 300);
        assert_eq!(frames[3].opcode, CLOSE);
    }

    #[test]
    fn what_a_server_must_not_send_is_refused() {
        let check = |bytes: &[u8], why: &str| {
            let err = parse_server_frames(bytes).unwrap_err();
            assert!(err.contains(why), "{err:?} should mention {why:?}");
        };
        let mut masked = Vec::new();
        put_frame(&mut masked, FIN | BINARY, true, Length::Minimal, b"x");
        check(&masked, "masked");
        let mut long16 = Vec::new();
        put_frame(&mut long16, FIN | BINARY, false, Length::Force16, b"x");
        check(&long16, "shortest");
        let mut long64 = Vec::new();
        put_frame(&mut long64, FIN | BINARY, false, Length::Force64, &[0; 300]);
        check(&long64, "shortest");
        check(&server_frame(TEXT, b"hi"), "opcode");
        check(&server_frame(PONG, &[0; 126]), "control");
        check(&[BINARY, 0], "FIN");
        check(&[FIN | 0x40 | BINARY, 0], "reserved");
        check(&server_frame(BINARY, b"abc")[..4], "payload");
        check(&[FIN | BINARY], "header");
    }

    #[test]
    fn frames_are_walked_as_they_arrive() {
        let mut stream = server_frame(BINARY, &[1, 2, 3]);
        put_client_frame(&mut stream, true, PING, b"hi");
        let (opcode, payload, used) = next_frame(&stream).unwrap();
        assert_eq!((opcode, &payload[..], used), (BINARY, &[1, 2, 3][..], 5));
        let (opcode, payload, used) = next_frame(&stream[used..]).unwrap();
        assert_eq!((opcode, &payload[..], used), (PING, &b"hi"[..], 8));
        assert_eq!(next_frame(&stream[..4]), None, "not yet arrived");
    }
}
