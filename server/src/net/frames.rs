//! WebSocket frames to messages, without I/O: reassembly of fragments up
//! to the message size limit, UTF-8 checks of text as it arrives, the
//! client's close frame checked against RFC 6455, and our close reasons cut
//! to fit a control frame.
//!
//! Not for what a message means or what the connection does about a
//! broken frame (that is `super::session`), nor for reading the socket
//! (`super::conn`, through fastwebsockets, which parses each frame).

use bytes::{Bytes, BytesMut};
use fastwebsockets::{Frame, OpCode, Payload};
use protocol::CloseCode;
use std::borrow::Cow;

/// Largest single frame read into memory. Frames up to this size are read
/// whole, so that a message over `--max-message-size` is answered with a
/// proper close handshake (1009) instead of a reset that would swallow the
/// close code; larger frames are refused from their header and the socket
/// is cut. 64 KiB bounds the memory a hostile connection can hold.
const HARD_FRAME_LIMIT: usize = 64 * 1024;

/// Longest close reason: a close frame is a control frame (at most 125
/// bytes of payload, RFC 6455 §5.5), and its first two bytes are the code.
const MAX_CLOSE_REASON: usize = 123;

/// A close code with the reason to send with it: what a broken rule or a
/// refusal ends a connection with.
pub(crate) type Violation = (CloseCode, Cow<'static, str>);

/// The length fastwebsockets is told to refuse frames at (it refuses a
/// frame whose length is at least this): every frame that may hold a
/// message of `max_message_size` bytes, and never less than
/// [`HARD_FRAME_LIMIT`], so that a frame a little too big is read and
/// answered with 1009.
pub(crate) fn frame_read_limit(max_message_size: usize) -> usize {
    HARD_FRAME_LIMIT.max(max_message_size + 1)
}

/// Close reasons must fit a control frame: 125 bytes minus the code.
pub(crate) fn clip_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Validates a client's close frame (RFC 6455 §5.5.1, §7.4). fastwebsockets
/// 0.10 does not check the 125-byte limit of control frames.
pub(crate) fn parse_client_close(payload: &[u8]) -> Result<u16, Violation> {
    match payload.len() {
        0 => return Ok(1005),
        1 => {
            return Err((
                CloseCode::ProtocolError,
                "close frame with a 1-byte payload".into(),
            ));
        }
        n if n > 125 => {
            return Err((
                CloseCode::ProtocolError,
                "close frame payload over 125 bytes".into(),
            ));
        }
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
    if !allowed {
        return Err((
            CloseCode::ProtocolError,
            Cow::Owned(format!("close code {code} is not allowed")),
        ));
    }
    if std::str::from_utf8(&payload[2..]).is_err() {
        return Err((
            CloseCode::InvalidPayload,
            "close reason is not UTF-8".into(),
        ));
    }
    Ok(code)
}

/// What a frame meant, once control frames and fragments are handled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A complete data message; `text` for a text message (valid UTF-8).
    Message {
        /// The message.
        payload: Bytes,
        /// Whether it was a text message.
        text: bool,
    },
    /// A WebSocket ping with its payload.
    Ping(Bytes),
    /// A WebSocket pong, or a fragment of a message still being assembled.
    Nothing,
    /// A valid close frame with its code (1005 when it carried none).
    Close(u16),
}

/// Reassembles fragmented messages up to the message size limit
/// (fastwebsockets 0.10 does not bound reassembly itself) and validates
/// text as it arrives, failing at the first fragment that cannot be UTF-8.
pub(crate) struct Assembler {
    /// The message being assembled, if one is.
    partial: Option<Partial>,
    /// Largest message accepted.
    max: usize,
    /// Whether text messages are accepted (the echo endpoint) or refused
    /// with 1003 (the game protocol is binary only).
    text_allowed: bool,
}

/// A fragmented message, from its first frame to its last.
struct Partial {
    /// The bytes so far.
    bytes: BytesMut,
    /// A text message (validated as it grows) or a binary one.
    text: bool,
    /// Bytes already known to be valid UTF-8 (text only): the rest is at
    /// most an incomplete last character.
    valid_up_to: usize,
}

/// Checks that `bytes[from..]` is UTF-8, allowing an incomplete character
/// at the end unless `complete`. Returns the new valid length.
fn utf8_prefix(bytes: &[u8], from: usize, complete: bool) -> Option<usize> {
    match std::str::from_utf8(&bytes[from..]) {
        Ok(_) => Some(bytes.len()),
        // `error_len() == None`: the input ended inside a character, which
        // the next fragment may complete.
        Err(e) if e.error_len().is_none() && !complete => Some(from + e.valid_up_to()),
        Err(_) => None,
    }
}

fn payload_bytes(p: Payload<'_>) -> Bytes {
    match p {
        Payload::Bytes(b) => b.freeze(),
        other => Bytes::copy_from_slice(&other),
    }
}

impl Assembler {
    /// An assembler of messages up to `max` bytes; text messages are
    /// refused with 1003 unless `text_allowed`.
    pub(crate) fn new(max: usize, text_allowed: bool) -> Self {
        Self {
            partial: None,
            max,
            text_allowed,
        }
    }

    /// Interprets one frame.
    pub(crate) fn accept(&mut self, frame: Frame<'_>) -> Result<Incoming, Violation> {
        let too_big = |len: usize, max: usize| {
            (
                CloseCode::MessageTooBig,
                Cow::Owned(format!("message of {len} bytes exceeds the limit of {max}")),
            )
        };
        let not_utf8 = || {
            (
                CloseCode::InvalidPayload,
                Cow::Borrowed("text message is not UTF-8"),
            )
        };
        match frame.opcode {
            OpCode::Binary | OpCode::Text => {
                let text = frame.opcode == OpCode::Text;
                if text && !self.text_allowed {
                    return Err((
                        CloseCode::UnsupportedData,
                        "text frames are not supported: send binary bincode messages".into(),
                    ));
                }
                if self.partial.is_some() {
                    return Err((
                        CloseCode::ProtocolError,
                        "new message inside a fragmented one".into(),
                    ));
                }
                if frame.payload.len() > self.max {
                    return Err(too_big(frame.payload.len(), self.max));
                }
                if frame.fin {
                    // fastwebsockets has validated a whole text frame.
                    return Ok(Incoming::Message {
                        payload: payload_bytes(frame.payload),
                        text,
                    });
                }
                let bytes = BytesMut::from(&frame.payload[..]);
                let valid_up_to = if text {
                    utf8_prefix(&bytes, 0, false).ok_or_else(not_utf8)?
                } else {
                    0
                };
                self.partial = Some(Partial {
                    bytes,
                    text,
                    valid_up_to,
                });
                Ok(Incoming::Nothing)
            }
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err((
                        CloseCode::ProtocolError,
                        "continuation without a message".into(),
                    ));
                };
                let len = partial.bytes.len() + frame.payload.len();
                if len > self.max {
                    self.partial = None;
                    return Err(too_big(len, self.max));
                }
                partial.bytes.extend_from_slice(&frame.payload);
                if partial.text {
                    match utf8_prefix(&partial.bytes, partial.valid_up_to, frame.fin) {
                        Some(valid) => partial.valid_up_to = valid,
                        None => {
                            self.partial = None;
                            return Err(not_utf8());
                        }
                    }
                }
                if !frame.fin {
                    return Ok(Incoming::Nothing);
                }
                let whole = self.partial.take().expect("checked above");
                Ok(Incoming::Message {
                    payload: whole.bytes.freeze(),
                    text: whole.text,
                })
            }
            OpCode::Ping => Ok(Incoming::Ping(payload_bytes(frame.payload))),
            OpCode::Pong => Ok(Incoming::Nothing),
            OpCode::Close => parse_client_close(&frame.payload).map(Incoming::Close),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Frame<'static> {
        Frame::new(fin, opcode, None, Payload::Owned(payload.to_vec()))
    }

    pub(crate) fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        p
    }

    #[test]
    fn client_close_frames_are_validated() {
        let frame = close_payload;
        assert_eq!(parse_client_close(&[]), Ok(1005));
        assert_eq!(parse_client_close(&frame(1000, b"bye")), Ok(1000));
        assert_eq!(parse_client_close(&frame(4123, b"")), Ok(4123));
        let code_of = |p: &[u8]| parse_client_close(p).unwrap_err().0;
        assert_eq!(code_of(&[3]), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(1005, b"")), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(999, b"")), CloseCode::ProtocolError);
        assert_eq!(code_of(&frame(5000, b"")), CloseCode::ProtocolError);
        assert_eq!(
            code_of(&frame(1000, &[b'x'; 124])),
            CloseCode::ProtocolError
        );
        assert_eq!(
            code_of(&frame(1000, &[0xff, 0xfe])),
            CloseCode::InvalidPayload
        );
    }

    #[test]
    fn close_codes_a_client_may_send() {
        // Data-driven: each code alone in a close frame, and whether it is
        // accepted (RFC 6455 §7.4: 1004-1006 and 1015 are reserved, 1012-
        // 1014 are for servers, below 1000 and from 5000 are unassigned).
        let check = |code: u16, ok: bool| {
            let got = parse_client_close(&close_payload(code, b""));
            assert_eq!(got.is_ok(), ok, "code {code}: {got:?}");
            if ok {
                assert_eq!(got, Ok(code));
            }
        };
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011] {
            check(code, true);
        }
        for code in [3000, 3999, 4000, 4999] {
            check(code, true);
        }
        for code in [0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535] {
            check(code, false);
        }
        // The largest close frame allowed: 125 bytes.
        assert_eq!(
            parse_client_close(&close_payload(1000, &[b'x'; 123])),
            Ok(1000)
        );
    }

    #[test]
    fn reasons_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(100);
        let clipped = clip_reason(&long);
        assert!(clipped.len() <= 123);
        assert!(long.starts_with(clipped));
        assert_eq!(clip_reason("short"), "short");
        // "é" is two bytes: 61 of them (122 bytes) fit, a 62nd would not.
        assert_eq!(clipped.len(), 122);
        let exact = "x".repeat(123);
        assert_eq!(clip_reason(&exact), exact, "123 bytes fit whole");
        assert_eq!(clip_reason(&"x".repeat(124)).len(), 123);
    }

    #[test]
    fn fragments_are_reassembled_up_to_the_limit() {
        let mut a = Assembler::new(8, false);
        assert!(matches!(
            a.accept(frame(false, OpCode::Binary, b"abc")),
            Ok(Incoming::Nothing)
        ));
        assert!(matches!(
            a.accept(frame(false, OpCode::Continuation, b"de")),
            Ok(Incoming::Nothing)
        ));
        match a.accept(frame(true, OpCode::Continuation, b"f")) {
            Ok(Incoming::Message { payload, text }) => {
                assert_eq!(&payload[..], b"abcdef");
                assert!(!text);
            }
            _ => panic!("expected the whole message"),
        }
        assert!(matches!(
            a.accept(frame(false, OpCode::Binary, b"12345")),
            Ok(Incoming::Nothing)
        ));
        let err = a
            .accept(frame(false, OpCode::Continuation, b"6789"))
            .err()
            .unwrap();
        assert_eq!(err.0, CloseCode::MessageTooBig);
        let err = a
            .accept(frame(true, OpCode::Continuation, b"x"))
            .err()
            .unwrap();
        assert_eq!(
            err.0,
            CloseCode::ProtocolError,
            "no message is open any more"
        );
        let err = a
            .accept(frame(true, OpCode::Binary, b"123456789"))
            .err()
            .unwrap();
        assert_eq!(err.0, CloseCode::MessageTooBig);
        let err = a.accept(frame(true, OpCode::Text, b"hi")).err().unwrap();
        assert_eq!(err.0, CloseCode::UnsupportedData);
    }

    /// What a sequence of frames gives, one result per frame, written
    /// short: `msg:BYTES` / `text:STR`, `ping:BYTES`, `-` (nothing),
    /// `close:CODE`, `err:CODE`.
    fn assemble(max: usize, text_allowed: bool, frames: &[(bool, OpCode, &[u8])]) -> Vec<String> {
        let mut a = Assembler::new(max, text_allowed);
        frames
            .iter()
            .map(|(fin, op, p)| match a.accept(frame(*fin, *op, p)) {
                Ok(Incoming::Message {
                    payload,
                    text: false,
                }) => format!("msg:{}", String::from_utf8_lossy(&payload)),
                Ok(Incoming::Message {
                    payload,
                    text: true,
                }) => format!("text:{}", std::str::from_utf8(&payload).unwrap()),
                Ok(Incoming::Ping(p)) => format!("ping:{}", String::from_utf8_lossy(&p)),
                Ok(Incoming::Nothing) => "-".into(),
                Ok(Incoming::Close(code)) => format!("close:{code}"),
                Err((code, _)) => format!("err:{}", code.code()),
            })
            .collect()
    }

    #[test]
    fn the_assembler_reads_frames_as_rfc_6455_says() {
        use OpCode::*;
        let check = |max, text, frames: &[(bool, OpCode, &[u8])], expected: &[&str]| {
            assert_eq!(assemble(max, text, frames), expected, "{frames:?}");
        };
        // Control frames may come between the fragments of a message.
        check(
            16,
            false,
            &[
                (false, Binary, b"ab"),
                (true, Ping, b"p1"),
                (true, Pong, b""),
                (false, Continuation, b"cd"),
                (true, Ping, b""),
                (true, Continuation, b"e"),
            ],
            &["-", "ping:p1", "-", "-", "ping:", "msg:abcde"],
        );
        // A new message inside a fragmented one, and a continuation with
        // nothing to continue, are protocol errors.
        check(
            16,
            false,
            &[(false, Binary, b"ab"), (true, Binary, b"cd")],
            &["-", "err:1002"],
        );
        check(16, false, &[(true, Continuation, b"x")], &["err:1002"]);
        // A message of exactly the limit passes, whole or in fragments.
        check(4, false, &[(true, Binary, b"abcd")], &["msg:abcd"]);
        check(
            4,
            false,
            &[(false, Binary, b"ab"), (true, Continuation, b"cd")],
            &["-", "msg:abcd"],
        );
        check(4, false, &[(true, Binary, b"abcde")], &["err:1009"]);
        // Text: refused by the game protocol, accepted by the echo
        // endpoint, validated as it grows, across fragment boundaries.
        check(16, false, &[(true, Text, b"hi")], &["err:1003"]);
        check(16, true, &[(true, Text, b"hi")], &["text:hi"]);
        let e_acute = "é".as_bytes();
        check(
            16,
            true,
            &[
                (false, Text, &[b'a', e_acute[0]]),
                (true, Continuation, &[e_acute[1], b'b']),
            ],
            &["-", "text:aéb"],
        );
        // Invalid UTF-8 fails at the first fragment that shows it ...
        check(16, true, &[(false, Text, &[0xff])], &["err:1007"]);
        check(
            16,
            true,
            &[(false, Text, b"ok"), (false, Continuation, &[0xc3, 0x28])],
            &["-", "err:1007"],
        );
        // ... and a character left incomplete at the end fails at the end.
        check(
            16,
            true,
            &[(false, Text, b"a"), (true, Continuation, &[e_acute[0]])],
            &["-", "err:1007"],
        );
        // Close frames are validated.
        check(16, false, &[(true, Close, &[])], &["close:1005"]);
        check(
            16,
            false,
            &[(true, Close, &close_payload(4001, b"bye"))],
            &["close:4001"],
        );
        check(16, false, &[(true, Close, &[1])], &["err:1002"]);
    }

    #[test]
    fn the_frame_read_limit_covers_every_message_and_at_least_64_kib() {
        assert_eq!(frame_read_limit(1024), 64 * 1024);
        assert_eq!(frame_read_limit(16 << 20), (16 << 20) + 1);
    }
}
