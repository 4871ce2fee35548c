//! What the server writes to a connection goes through a queue that a task of its own drains, so
//! no writer of the server ever waits on a peer that does not read.
//!
//! jsonrpsee writes a WebSocket's messages from one task per connection, straight to the socket:
//! a peer that stopped reading (its receive window full) blocked that task for as long as the TCP
//! connection lived, and with it the connection's slot, its pings and every subscription's
//! forwarder. Here the socket's write half belongs to a *drain* task, and what the server writes
//! is queued ([`ConnIo`]):
//!
//! - Before a WebSocket upgrade (plain HTTP), writes wait while more than [`HTTP_HIGH_WATER`]
//!   bytes are queued, as a socket's would: hyper's ordinary backpressure.
//! - After the upgrade, writes never wait. Every WebSocket message ends with a flush; at each
//!   flush, if what was queued *before* this message and is still unwritten is more than the
//!   send buffer (`RpcConfig::ws_send_buffer_bytes`) while the socket takes nothing more (the
//!   kernel's buffers toward the peer are full), the peer has stopped reading: the connection is
//!   *cut*. A burst to a peer that reads is written, however large, not cut.
//!   A close frame (code 1008, reason `ESendBufferFull`) goes after the queued messages, the
//!   server's side of the connection ends at once (its writes fail, its reads end), and the drain
//!   task is left `RpcConfig::ws_idle_timeout` to deliver the queue and the close frame to a peer
//!   that reads again, before the socket is dropped. One message never cuts a connection by
//!   itself, however large: the queue holds at most the send buffer plus one message.
//! - When the server is done with a connection (hyper shuts it down or drops it), the drain task
//!   delivers what is queued, within the same `ws_idle_timeout`, and closes the socket.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, watch};

use crate::address::AddressPermit;
use crate::error::RpcErrorName;
use crate::http::RpcMetrics;

/// Plain HTTP writes wait while more than this is queued (64 KiB, a socket buffer's worth).
pub(crate) const HTTP_HIGH_WATER: usize = 64 * 1024;

/// The WebSocket close code of a cut connection: 1008, policy violation (RFC 6455 §7.4.1).
pub const SEND_BUFFER_FULL_CLOSE_CODE: u16 = 1008;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Http,
    WebSocket,
    /// The peer did not read its send buffer; nothing more is written or read.
    Cut,
}

struct State {
    queue: VecDeque<Bytes>,
    /// Bytes in `queue`.
    queued: usize,
    /// Bytes ever accepted, and ever written to the socket.
    accepted: u64,
    drained: u64,
    /// `accepted` at the last flush: the end of the last whole WebSocket message.
    boundary: u64,
    /// The socket refuses more bytes (the kernel's buffers are full): the peer is not reading
    /// as fast as the server writes.
    blocked: bool,
    mode: Mode,
    /// The server will write nothing more (shut down or dropped).
    finished: bool,
    writer: Option<Waker>,
    reader: Option<Waker>,
    /// Held until the drain task ends: a WebSocket's per-address permit.
    held: Option<AddressPermit>,
}

/// The queue between the server's writers and the drain task of one connection.
pub(crate) struct Outgoing {
    state: Mutex<State>,
    /// Wakes the drain task: bytes to write, or the end.
    work: Notify,
    /// Set once the connection is cut or finished: the drain task's grace starts.
    ended: watch::Sender<bool>,
    send_buffer_bytes: usize,
    metrics: Arc<RpcMetrics>,
}

impl Outgoing {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection became a WebSocket: from now on writes never wait, and `permit` is held
    /// until the TCP connection is gone.
    pub fn upgraded(&self, permit: Option<AddressPermit>) {
        let mut s = self.lock();
        if s.mode == Mode::Http {
            s.mode = Mode::WebSocket;
        }
        s.held = permit;
        if let Some(writer) = s.writer.take() {
            writer.wake();
        }
    }

    fn end(&self, s: &mut State) {
        if let Some(reader) = s.reader.take() {
            reader.wake();
        }
        if let Some(writer) = s.writer.take() {
            writer.wake();
        }
        self.ended.send_replace(true);
        self.work.notify_one();
    }

    fn cut(&self, s: &mut State) {
        s.mode = Mode::Cut;
        let frame = close_frame(SEND_BUFFER_FULL_CLOSE_CODE, RpcErrorName::ESendBufferFull.name());
        s.queued += frame.len();
        s.queue.push_back(frame);
        tracing::debug!("a WebSocket peer left more than its send buffer unread; the connection is cut");
        self.metrics.websocket_cut();
        self.end(s);
    }
}

/// A server-to-client close frame (unmasked) with `code` and `reason` (at most 123 bytes).
fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut frame = Vec::with_capacity(4 + reason.len());
    frame.push(0x88);
    frame.push((2 + reason.len()) as u8);
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    Bytes::from(frame)
}

/// The connection as hyper and jsonrpsee see it: the socket's read half, and the queue.
pub(crate) struct ConnIo {
    read: OwnedReadHalf,
    out: Arc<Outgoing>,
}

/// Splits `socket`: returns the side the server reads and writes, its queue, and starts the
/// drain task. `grace` bounds how long the drain task tries to deliver the queue once the
/// connection is cut or finished.
pub(crate) fn split(
    socket: TcpStream,
    send_buffer_bytes: usize,
    grace: Duration,
    metrics: Arc<RpcMetrics>,
) -> (ConnIo, Arc<Outgoing>) {
    let (read, write) = socket.into_split();
    let out = Arc::new(Outgoing {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            queued: 0,
            accepted: 0,
            drained: 0,
            boundary: 0,
            blocked: false,
            mode: Mode::Http,
            finished: false,
            writer: None,
            reader: None,
            held: None,
        }),
        work: Notify::new(),
        ended: watch::channel(false).0,
        send_buffer_bytes,
        metrics,
    });
    tokio::spawn(drain(Arc::clone(&out), write, grace));
    (ConnIo { read, out: Arc::clone(&out) }, out)
}

async fn drain(out: Arc<Outgoing>, mut socket: OwnedWriteHalf, grace: Duration) {
    let mut ended = out.ended.subscribe();
    let give_up = async move {
        let _ = ended.wait_for(|ended| *ended).await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(give_up);
    let delivered = loop {
        let next = {
            let mut s = out.lock();
            match s.queue.pop_front() {
                Some(bytes) => Some(bytes),
                None if s.finished || s.mode == Mode::Cut => break true,
                None => None,
            }
        };
        let Some(bytes) = next else {
            tokio::select! {
                () = out.work.notified() => continue,
                () = &mut give_up => break false,
            }
        };
        if !write_all(&out, &mut socket, &bytes, &mut give_up).await {
            break false;
        }
        let mut s = out.lock();
        s.queued -= bytes.len();
        s.drained += bytes.len() as u64;
        if s.queued <= HTTP_HIGH_WATER
            && let Some(writer) = s.writer.take()
        {
            writer.wake();
        }
    };
    if delivered {
        let _ = tokio::time::timeout(grace, socket.shutdown()).await;
    }
    // The peer is gone, too slow, or done: the server's side ends too.
    let mut s = out.lock();
    if !delivered && s.mode != Mode::Cut {
        s.mode = Mode::Cut;
        out.end(&mut s);
    }
    s.queue.clear();
    s.queued = 0;
    s.held = None;
}

/// Writes `bytes` to the socket, noting while the socket refuses more; `false` when the socket
/// failed or `give_up` came first.
async fn write_all(
    out: &Outgoing,
    socket: &mut OwnedWriteHalf,
    bytes: &[u8],
    give_up: &mut Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let mut written = 0;
    while written < bytes.len() {
        match socket.try_write(&bytes[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.lock().blocked = true;
                let writable = tokio::select! {
                    writable = socket.writable() => writable.is_ok(),
                    () = give_up.as_mut() => false,
                };
                out.lock().blocked = false;
                if !writable {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        {
            let mut s = self.out.lock();
            if s.mode == Mode::Cut {
                return Poll::Ready(Ok(()));
            }
            if !s.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.reader = Some(cx.waker().clone());
            }
        }
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, RpcErrorName::ESendBufferFull.message())
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let out = &self.out;
        let mut s = out.lock();
        match s.mode {
            Mode::Cut => return Poll::Ready(Err(cut_error())),
            Mode::Http if s.queued > HTTP_HIGH_WATER => {
                s.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Mode::Http | Mode::WebSocket => {}
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        s.queue.push_back(Bytes::copy_from_slice(buf));
        s.queued += buf.len();
        s.accepted += buf.len() as u64;
        drop(s);
        out.work.notify_one();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = &self.out;
        let mut s = out.lock();
        match s.mode {
            Mode::Cut => Poll::Ready(Err(cut_error())),
            Mode::Http => Poll::Ready(Ok(())),
            Mode::WebSocket => {
                // What was queued before this message and is still unwritten, while the socket
                // takes nothing more: a burst to a peer that reads is written, not cut.
                let backlog = s.boundary.saturating_sub(s.drained);
                s.boundary = s.accepted;
                if backlog > out.send_buffer_bytes as u64 && s.blocked {
                    out.cut(&mut s);
                    return Poll::Ready(Err(cut_error()));
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = &self.out;
        let mut s = out.lock();
        if !s.finished {
            s.finished = true;
            out.end(&mut s);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        let mut s = self.out.lock();
        if !s.finished {
            s.finished = true;
            self.out.end(&mut s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_close_frame_is_an_unmasked_close_with_code_and_reason() {
        let frame = close_frame(1008, "ESendBufferFull");
        assert_eq!(frame[0], 0x88, "FIN and opcode 8");
        assert_eq!(usize::from(frame[1]), 2 + "ESendBufferFull".len(), "unmasked, payload length");
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1008);
        assert_eq!(&frame[4..], b"ESendBufferFull");
        assert_eq!(close_frame(1000, &"x".repeat(200)).len(), 4 + 123, "a reason fits a control frame");
    }
}
