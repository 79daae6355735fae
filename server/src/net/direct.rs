//! A plain TCP connection's write side, shared by its connection task and
//! its room, so that the room can write a state without waking the task
//! (see `room::mailbox` for when it may).
//!
//! The connection task writes through [`SharedWrite`] (fastwebsockets on
//! top, as for any stream); the room writes through [`DirectSocket`],
//! which frames a message itself (a server frame is a two- to ten-byte
//! header and the payload, unmasked) and never waits. Both are the same
//! socket; the mailbox sees to it that they never write at the same time.
//!
//! The room's writes are plain `send` calls on the socket, not tokio's
//! `try_write`: that one first reads the socket's readiness in the
//! runtime's I/O table, a second cache line per socket for a room that
//! reaches a thousand sockets per tick, and the readiness it keeps is only
//! a hint. The kernel's answer is what counts here; a write that would
//! block leaves tokio's readiness stale, which the connection task's next
//! write finds out and clears (see [`SharedWrite`]).
//!
//! Not for TLS: a TLS stream's writes go through its encrypting buffer,
//! which has a single owner, so TLS connections always use the queue.

use crate::room::mailbox::{DirectWrite, TrySend};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Splits an upgraded TCP stream into its read half, the write half the
/// connection task writes through, and the handle its room writes through.
pub(crate) fn split(stream: TcpStream) -> (OwnedReadHalf, SharedWrite, DirectSocket) {
    let (read, write) = stream.into_split();
    let write = Arc::new(WriteHalf(write));
    (read, SharedWrite(write.clone()), DirectSocket(write))
}

/// The write half itself, which both paths share. The room's mailbox
/// holds it as its [`DirectWrite`] with no other pointer in between: a
/// room reaches a thousand sockets per tick, each one a cache miss per
/// pointer followed.
pub(crate) struct WriteHalf(OwnedWriteHalf);

/// The write half as the connection task's stream. The socket's write
/// side shuts down when the last holder drops it.
pub(crate) struct SharedWrite(Arc<WriteHalf>);

impl SharedWrite {
    fn stream(&self) -> &TcpStream {
        self.0.0.as_ref()
    }

    /// Waits until the socket is writable and `write` takes something (a
    /// readiness that turns out stale is waited for again).
    fn poll_with(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let stream = self.stream();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match write(stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }
}

impl AsyncWrite for SharedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |stream| stream.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |stream| stream.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = socket2::SockRef::from(self.stream());
        Poll::Ready(socket.shutdown(std::net::Shutdown::Write))
    }
}

/// The write half as the room's direct path.
#[derive(Clone)]
pub(crate) struct DirectSocket(Arc<WriteHalf>);

impl DirectSocket {
    /// The handle a mailbox writes states through: the shared write half
    /// itself.
    pub(crate) fn handle(&self) -> Arc<dyn DirectWrite> {
        self.0.clone()
    }

    /// Writes raw bytes (the rest of a frame written in part), waiting for
    /// the socket as long as it takes: the caller bounds the wait.
    pub(crate) async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let half = &self.0.0;
        while !bytes.is_empty() {
            half.writable().await?;
            match half.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl DirectWrite for WriteHalf {
    fn try_send(&self, message: &[u8]) -> TrySend {
        let mut head = [0u8; MAX_HEADER];
        let head = binary_header(message.len(), &mut head);
        let total = head.len() + message.len();
        // A small frame is copied behind its header and goes out in one
        // plain write: cheaper in the kernel than a two-part writev, and
        // states are a few hundred bytes.
        let written = if total <= SMALL_WRITE {
            self.write_copied::<SMALL_WRITE>(head, message)
        } else if total <= ONE_WRITE {
            self.write_copied::<ONE_WRITE>(head, message)
        } else {
            self.socket()
                .send_vectored_with_flags(&[IoSlice::new(head), IoSlice::new(message)], SEND_FLAGS)
        };
        match written {
            Ok(n) if n == total => TrySend::Sent,
            // A socket that takes nothing without saying it would block is
            // broken; let the connection task find out.
            Ok(0) => TrySend::Failed,
            Ok(n) => {
                let mut rest = Vec::with_capacity(total - n);
                if n < head.len() {
                    rest.extend_from_slice(&head[n..]);
                    rest.extend_from_slice(message);
                } else {
                    rest.extend_from_slice(&message[n - head.len()..]);
                }
                TrySend::Partly(rest)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => TrySend::WouldBlock,
            Err(_) => TrySend::Failed,
        }
    }
}

impl WriteHalf {
    /// The socket itself, for a `send` that bypasses tokio's readiness
    /// (see the module documentation).
    fn socket(&self) -> socket2::SockRef<'_> {
        let stream: &TcpStream = self.0.as_ref();
        socket2::SockRef::from(stream)
    }

    /// Writes `head` and `message` (at most `N` bytes together) as one
    /// buffer, copied on the stack.
    fn write_copied<const N: usize>(&self, head: &[u8], message: &[u8]) -> io::Result<usize> {
        let total = head.len() + message.len();
        let mut frame = [0u8; N];
        frame[..head.len()].copy_from_slice(head);
        frame[head.len()..total].copy_from_slice(message);
        self.socket().send_with_flags(&frame[..total], SEND_FLAGS)
    }
}

/// No `SIGPIPE` for a write to a socket the client closed, only an error,
/// as std's and tokio's own writes do.
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;

/// Frames up to this size (header included) are copied into one buffer
/// on the stack and written with one `send`; larger ones use `sendmsg`
/// with the header and the message as two slices.
const ONE_WRITE: usize = 2048;

/// Frames up to this size use a smaller buffer: zeroing the large one
/// cost more than copying a state of a hundred bytes into it (0.4 % of the
/// server's CPU at 1,000 arena players, in a profile).
const SMALL_WRITE: usize = 256;

/// Longest server frame header: two bytes and a 64-bit length.
const MAX_HEADER: usize = 10;

/// The header of an unfragmented, unmasked binary frame of `len` payload
/// bytes (RFC 6455 §5.2), written into `out`.
fn binary_header(len: usize, out: &mut [u8; MAX_HEADER]) -> &[u8] {
    // FIN and opcode 2 (binary).
    out[0] = 0x82;
    if len < 126 {
        out[1] = len as u8;
        &out[..2]
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        &out[..4]
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        &out[..10]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastwebsockets::{OpCode, Role, WebSocket};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A connected pair: our shared halves on the server side, a
    /// fastwebsockets client on the other.
    async fn pair() -> (
        SharedWrite,
        DirectSocket,
        WebSocket<TcpStream>,
        OwnedReadHalf,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (read, write, direct) = split(accepted.unwrap().0);
        let ws = WebSocket::after_handshake(client.unwrap(), Role::Client);
        (write, direct, ws, read)
    }

    #[tokio::test]
    async fn direct_frames_of_every_header_size_read_back_whole() {
        let (_write, direct, mut ws, _read) = pair().await;
        ws.set_max_message_size(1 << 20);
        // Both sides of the small and the one-write sizes (256 and 2,048
        // bytes with the header).
        let sizes = [
            0usize, 1, 125, 126, 127, 252, 253, 2_044, 2_045, 65_535, 65_536, 70_000,
        ];
        for &len in &sizes {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            match direct.0.try_send(&message) {
                TrySend::Sent => {}
                TrySend::Partly(rest) => direct.write_all(&rest).await.unwrap(),
                other => panic!("{len}: {other:?}"),
            }
            let frame = ws.read_frame().await.unwrap();
            assert_eq!(frame.opcode, OpCode::Binary, "{len}");
            assert!(frame.fin, "{len}");
            assert_eq!(&frame.payload[..], &message[..], "{len}");
        }
    }

    /// A client that stops reading fills the socket: direct writes then
    /// report that they would block, or a frame written in part whose rest
    /// completes it, and the byte stream stays a sequence of whole frames.
    #[tokio::test]
    async fn a_full_socket_blocks_or_splits_a_frame_and_the_stream_stays_whole() {
        let (mut write, direct, mut ws, _read) = pair().await;
        let message = vec![0xabu8; 1000];
        let (mut sent, mut partly) = (0usize, 0usize);
        loop {
            match direct.0.try_send(&message) {
                TrySend::Sent => sent += 1,
                TrySend::Partly(rest) => {
                    partly += 1;
                    sent += 1;
                    // Finished by the connection task's path, interleaved
                    // with a frame of its own after it.
                    let writing = async {
                        AsyncWriteExt::write_all(&mut write, &rest).await.unwrap();
                    };
                    let reading = async {
                        for _ in 0..sent {
                            let frame = ws.read_frame().await.unwrap();
                            assert_eq!(&frame.payload[..], &message[..]);
                        }
                    };
                    tokio::join!(writing, reading);
                    break;
                }
                TrySend::WouldBlock => {
                    // Blocked on a frame boundary: read everything so far.
                    for _ in 0..sent {
                        let frame = ws.read_frame().await.unwrap();
                        assert_eq!(&frame.payload[..], &message[..]);
                    }
                    break;
                }
                TrySend::Failed => panic!("the socket failed after {sent} frames"),
            }
        }
        assert!(sent > 10, "the socket took {sent} frames before filling");
        assert!(partly <= 1);
        // Whatever happened, the stream goes on with whole frames.
        assert_eq!(direct.0.try_send(b"after"), TrySend::Sent);
        assert_eq!(&ws.read_frame().await.unwrap().payload[..], b"after");
    }

    /// A direct write that would block leaves tokio's readiness as it
    /// was (writable); the connection task's next write must find that
    /// stale, wait for the socket, and finish once the client reads.
    #[tokio::test]
    async fn the_connection_task_writes_after_a_direct_write_met_a_full_socket() {
        let (mut write, direct, mut ws, _read) = pair().await;
        let message = vec![0x5au8; 1000];
        let mut frames = 0usize;
        let rest = loop {
            match direct.0.try_send(&message) {
                TrySend::Sent => frames += 1,
                TrySend::Partly(rest) => {
                    frames += 1;
                    break rest;
                }
                TrySend::WouldBlock => break Vec::new(),
                TrySend::Failed => panic!("the socket failed after {frames} frames"),
            }
        };
        let last = binary_frame(b"last");
        let writing = async {
            AsyncWriteExt::write_all(&mut write, &rest).await.unwrap();
            AsyncWriteExt::write_all(&mut write, &last).await.unwrap();
        };
        let reading = async {
            for _ in 0..frames {
                assert_eq!(&ws.read_frame().await.unwrap().payload[..], &message[..]);
            }
            assert_eq!(&ws.read_frame().await.unwrap().payload[..], b"last");
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            tokio::join!(writing, reading)
        })
        .await
        .expect("the connection task's write finished once the client read");
    }

    /// A whole server frame of `payload`, as the connection task would
    /// write it.
    fn binary_frame(payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; MAX_HEADER];
        let mut frame = binary_header(payload.len(), &mut head).to_vec();
        frame.extend_from_slice(payload);
        frame
    }

    #[tokio::test]
    async fn the_shared_half_shuts_the_write_side_down() {
        let (mut write, _direct, mut ws, _read) = pair().await;
        write.shutdown().await.unwrap();
        assert!(ws.read_frame().await.is_err(), "end of stream");
    }
}
