//! Write coalescing under tungstenite: the frames of one batch leave in one
//! `send` call instead of one each.
//!
//! tungstenite runs with `write_buffer_size(0)`, so each frame is handed to
//! the stream as soon as it is fed. [`Coalescer`] takes those bytes into a
//! buffer and writes them when the writer task flushes (once per batch), or
//! when [`FLUSH_AT`] bytes are waiting. The buffer exists only while there
//! is something to write: once it has been written out, a buffer that grew
//! past [`KEEP_BYTES`] is given back, so an idle connection stays small
//! (tungstenite's own 128 KiB default buffer keeps its high-water mark).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

/// Buffered bytes that make the next write go to the socket first.
pub const FLUSH_AT: usize = 64 * 1024;
/// Capacity kept after the buffer has been written out; more is freed.
pub const KEEP_BYTES: usize = 4 * 1024;

/// The write side of one connection's stream, off until [`Coalescer::start`]
/// (the handshake's answer goes out unbuffered).
#[derive(Debug, Default)]
pub struct Coalescer {
    on: bool,
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    sent: usize,
}

impl Coalescer {
    /// Buffers from now on (after the WebSocket handshake).
    pub fn start(&mut self) {
        self.on = true;
    }

    /// Bytes waiting to be written, and the buffer's capacity.
    #[cfg(test)]
    pub fn buffered(&self) -> (usize, usize) {
        (self.buf.len() - self.sent, self.buf.capacity())
    }

    pub fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut W,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.on {
            return Pin::new(inner).poll_write(cx, data);
        }
        if self.buf.len() >= FLUSH_AT {
            ready!(self.poll_drain(inner, cx))?;
        }
        if self.buf.is_empty() && data.len() >= FLUSH_AT {
            // A large frame alone: no point in copying it first.
            return Pin::new(inner).poll_write(cx, data);
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    /// Writes everything buffered; then the buffer is empty (and small).
    pub fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut *inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.sent = 0;
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        Poll::Ready(Ok(()))
    }

    pub fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(inner, cx))?;
        Pin::new(inner).poll_flush(cx)
    }

    pub fn poll_shutdown<W: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(inner, cx))?;
        Pin::new(inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A socket that records each write call and can refuse to take more.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<usize>>>,
        /// Most bytes one write takes (0: all).
        chunk: usize,
        blocked: Arc<std::sync::atomic::AtomicBool>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.blocked.load(std::sync::atomic::Ordering::Relaxed) {
                return Poll::Pending;
            }
            let n = if self.chunk == 0 {
                buf.len()
            } else {
                buf.len().min(self.chunk)
            };
            self.writes.lock().map(|mut w| w.push(n)).ok();
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    fn writes(r: &Recorder) -> Vec<usize> {
        r.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    #[test]
    fn before_start_every_write_goes_through() {
        let mut sock = Recorder::default();
        let mut c = Coalescer::default();
        for _ in 0..3 {
            assert!(matches!(
                c.poll_write(&mut sock, &mut cx(), &[1; 100]),
                Poll::Ready(Ok(100))
            ));
        }
        assert_eq!(writes(&sock), [100, 100, 100]);
    }

    #[test]
    fn a_batch_leaves_in_one_write_at_flush_and_the_buffer_is_freed() {
        let mut sock = Recorder::default();
        let mut c = Coalescer::default();
        c.start();
        for _ in 0..200 {
            assert!(matches!(
                c.poll_write(&mut sock, &mut cx(), &[7; 300]),
                Poll::Ready(Ok(300))
            ));
        }
        assert!(writes(&sock).is_empty(), "nothing written before the flush");
        assert!(matches!(
            c.poll_flush(&mut sock, &mut cx()),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(writes(&sock), [60_000]);
        assert_eq!(c.buffered(), (0, 0), "a grown buffer is given back");
    }

    #[test]
    fn a_small_buffer_is_kept_for_the_next_batch() {
        let mut sock = Recorder::default();
        let mut c = Coalescer::default();
        c.start();
        let _ = c.poll_write(&mut sock, &mut cx(), &[7; 300]);
        let _ = c.poll_flush(&mut sock, &mut cx());
        let (waiting, cap) = c.buffered();
        assert_eq!(waiting, 0);
        assert!(cap > 0 && cap <= KEEP_BYTES, "{cap}");
    }

    #[test]
    fn past_the_threshold_the_buffer_is_written_before_more_is_taken() {
        let mut sock = Recorder::default();
        let mut c = Coalescer::default();
        c.start();
        let frame = vec![1u8; 1000];
        for _ in 0..(FLUSH_AT / 1000 + 1) {
            let _ = c.poll_write(&mut sock, &mut cx(), &frame);
        }
        assert!(writes(&sock).is_empty());
        let _ = c.poll_write(&mut sock, &mut cx(), &frame);
        assert_eq!(writes(&sock), [(FLUSH_AT / 1000 + 1) * 1000]);
        assert_eq!(c.buffered().0, 1000);
    }

    #[test]
    fn a_partial_write_resumes_where_it_stopped_and_nothing_is_lost() {
        let mut sock = Recorder {
            chunk: 7000,
            ..Recorder::default()
        };
        let mut c = Coalescer::default();
        c.start();
        for _ in 0..10 {
            let _ = c.poll_write(&mut sock, &mut cx(), &[3; 1000]);
        }
        sock.blocked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(c.poll_flush(&mut sock, &mut cx()).is_pending());
        assert_eq!(c.buffered().0, 10_000, "a blocked socket keeps all of it");
        sock.blocked
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            c.poll_flush(&mut sock, &mut cx()),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(writes(&sock), [7000, 3000]);
    }

    #[test]
    fn a_full_socket_holds_the_writer_back_past_the_threshold() {
        let mut sock = Recorder::default();
        let mut c = Coalescer::default();
        c.start();
        let _ = c.poll_write(&mut sock, &mut cx(), &vec![0; FLUSH_AT - 1]);
        let _ = c.poll_write(&mut sock, &mut cx(), &[0; 10]);
        sock.blocked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(c.poll_write(&mut sock, &mut cx(), &[0; 10]).is_pending());
        assert_eq!(
            c.buffered().0,
            FLUSH_AT + 9,
            "not taken while the socket is full"
        );
    }
}
