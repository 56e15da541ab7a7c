//! The handle the hub holds for one live connection: a bounded outbound queue
//! drained by the connection's writer task, and a kill switch.
//!
//! The queue is bounded twice, in frames and in bytes: a frame count alone
//! lets one client that stops reading pin thousands of 200 KB frames (a
//! 32 KB text of control characters grows sixfold when JSON-escaped). Bytes
//! are counted when a frame is queued and released when the writer has
//! handed it to the socket.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Uid, close_code};

/// Unique per connection for the life of the server process.
pub type SessionId = u64;

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_session_id() -> SessionId {
    NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed)
}

/// The caps of one session's outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most frames queued; one more makes the session a slow consumer.
    pub frames: usize,
    /// Most bytes of frame payload queued; more makes it a slow consumer.
    pub bytes: usize,
}

impl QueueLimits {
    /// Where the connection stops reading its client's requests until the
    /// writer catches up: half of either cap, so a pipelining client is
    /// slowed down while events still find the other half free.
    fn read_pause(&self) -> (usize, usize) {
        ((self.frames / 2).max(1), (self.bytes / 2).max(1))
    }
}

/// How full a session's queue is: shared by its senders (the hub and the
/// connection) and its writer, which releases what it wrote.
#[derive(Debug)]
pub struct QueueLoad {
    limits: QueueLimits,
    frames: AtomicUsize,
    bytes: AtomicUsize,
    /// Signalled when a release takes the queue below its read pause.
    drained: Notify,
}

impl QueueLoad {
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            frames: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            drained: Notify::new(),
        }
    }

    /// Counts `out` in; `Err` names the cap it would break (nothing counted then).
    fn admit(&self, out: &Outbound) -> Result<(), &'static str> {
        let (frames, bytes) = cost(out);
        let f = self.frames.fetch_add(frames, Ordering::AcqRel) + frames;
        let b = self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let over = if f > self.limits.frames {
            Some("frames")
        } else if b > self.limits.bytes {
            Some("bytes")
        } else {
            None
        };
        if let Some(what) = over {
            self.release(frames, bytes);
            return Err(what);
        }
        Ok(())
    }

    /// Called by the writer once `out` is with the socket (or dropped).
    pub fn written(&self, out: &Outbound) {
        let (frames, bytes) = cost(out);
        self.release(frames, bytes);
    }

    fn release(&self, frames: usize, bytes: usize) {
        let f = self.frames.fetch_sub(frames, Ordering::AcqRel);
        let b = self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        // Only a fall below the read pause can wake anyone: `room_to_read`
        // waits for exactly that. Waking on every written frame took the
        // Notify's lock once per delivery on the writer's path.
        let (max_frames, max_bytes) = self.limits.read_pause();
        if (f >= max_frames && f - frames < max_frames) || (b >= max_bytes && b - bytes < max_bytes)
        {
            self.drained.notify_waiters();
        }
    }

    /// Frames and bytes queued now.
    pub fn load(&self) -> (usize, usize) {
        (
            self.frames.load(Ordering::Acquire),
            self.bytes.load(Ordering::Acquire),
        )
    }

    /// Whether the connection should stop reading requests for now.
    pub fn should_pause_reading(&self) -> bool {
        let (frames, bytes) = self.load();
        let (max_frames, max_bytes) = self.limits.read_pause();
        frames >= max_frames || bytes >= max_bytes
    }

    /// Resolves once the queue is below the read pause again (or at once).
    pub async fn room_to_read(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a release in between is not missed.
            drained.as_mut().enable();
            if !self.should_pause_reading() {
                return;
            }
            drained.await;
        }
    }
}

/// The sending side of a session's queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    load: std::sync::Arc<QueueLoad>,
}

/// The writer's side of a session's queue.
pub type OutboxReceiver = mpsc::UnboundedReceiver<Outbound>;

impl Outbox {
    /// A queue with these caps: the sender, the receiver and the shared load.
    pub fn new(limits: QueueLimits) -> (Outbox, OutboxReceiver, std::sync::Arc<QueueLoad>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let load = std::sync::Arc::new(QueueLoad::new(limits));
        (
            Outbox {
                tx,
                load: load.clone(),
            },
            rx,
            load,
        )
    }

    /// Queues `out` if both caps allow it. `Err(Some(cap))` names the cap
    /// that was reached; `Err(None)` means the writer is gone.
    pub fn try_send(&self, out: Outbound) -> Result<(), Option<&'static str>> {
        self.load.admit(&out).map_err(Some)?;
        let (frames, bytes) = cost(&out);
        self.tx.send(out).map_err(|_| {
            self.load.release(frames, bytes);
            None
        })
    }

    /// Queues `out` whatever the caps say: for the connection's own replies,
    /// which it bounds by not reading requests while the queue is above the
    /// read pause (at most one reply per request read).
    pub fn send_counted(&self, out: Outbound) -> bool {
        let (frames, bytes) = cost(&out);
        self.load.frames.fetch_add(frames, Ordering::AcqRel);
        self.load.bytes.fetch_add(bytes, Ordering::AcqRel);
        if self.tx.send(out).is_err() {
            self.load.release(frames, bytes);
            return false;
        }
        true
    }

    pub fn load(&self) -> &QueueLoad {
        &self.load
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// What a session's writer task takes from its queue: one frame.
pub type Outbound = Message;

/// What a frame counts against the queue's caps: (frames, bytes).
fn cost(out: &Outbound) -> (usize, usize) {
    (1, out.len())
}

/// Owned by the hub (while logged in) and by the connection task; dropped when both let go.
#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub uid: Uid,
    /// Live channel and peer messages go out in the compact form
    /// (PROTOCOL.md §8.13): the client asked for it at login.
    pub compact_events: bool,
    /// Frames for the writer task. Bounded in frames and bytes: a full queue
    /// means a slow consumer.
    tx: Outbox,
    /// Cancelled to end the connection (slow consumer, kicked, shutdown).
    kill: CancellationToken,
    /// The close frame the connection sends when killed: the first reason
    /// wins, except that a final notice (remote login, shutdown) replaces it,
    /// or a kicked device would think it was slow and reconnect.
    close: Mutex<Option<CloseFrame>>,
    /// Set when the queue filled up: the client is not reading.
    overflowed: std::sync::atomic::AtomicBool,
    /// Mirrors `kill` for the per-frame check on the fan-out path: reading
    /// an atomic is cheaper than the token's lock, once per recipient per
    /// message. Set before `kill` is cancelled.
    stopped: std::sync::atomic::AtomicBool,
}

impl SessionHandle {
    pub fn new(id: SessionId, uid: Uid, tx: Outbox, kill: CancellationToken) -> Self {
        Self {
            id,
            uid,
            compact_events: false,
            tx,
            kill,
            close: Mutex::new(None),
            overflowed: std::sync::atomic::AtomicBool::new(false),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The same handle, sending live messages compact (or not).
    pub fn with_compact_events(mut self, on: bool) -> Self {
        self.compact_events = on;
        self
    }

    /// Queues a frame without waiting. A full queue kills the session as a
    /// slow consumer (its memory must stay bounded); a closed one is ignored
    /// (the connection is already going away). Returns whether it was queued.
    pub fn send(&self, msg: Message) -> bool {
        self.queue(msg)
    }

    /// Frames and bytes queued for this session now.
    pub fn queued(&self) -> (usize, usize) {
        self.tx.load().load()
    }

    /// Like [`send`](Self::send), for anything the writer takes.
    pub fn queue(&self, out: Outbound) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(Some(cap)) => {
                self.overflowed.store(true, Ordering::Relaxed);
                let (frames, bytes) = self.tx.load().load();
                let reason = format!(
                    "slow consumer: too many {cap} queued ({frames} frames, {bytes} bytes unread); read faster or reconnect"
                );
                crate::server::metrics::METRICS.slow_consumers.inc();
                self.kill_with(close_code::SLOW_CONSUMER, &reason);
                false
            }
            Err(None) => false,
        }
    }

    /// Queues the connection's own reply (see [`Outbox::send_counted`]),
    /// unless the session has been ended. Taken under the `close` lock, like
    /// [`end_with_notice`](Self::end_with_notice): a reply is either queued
    /// before the final notice or not at all, never after it.
    pub fn send_reply(&self, out: Outbound) -> bool {
        let _order = self.close.lock().unwrap_or_else(|p| p.into_inner());
        !self.stopped.load(Ordering::Relaxed) && self.tx.send_counted(out)
    }

    /// Ends the session with a last notice (remote login, shutdown) and this
    /// close reason, which replaces an earlier one. The notice is queued if
    /// there is room (never killing for it) and is the session's last frame:
    /// nothing, not even a reply being worked on, is queued after it.
    pub fn end_with_notice(&self, notice: Message, code: u16, reason: &str) {
        {
            let mut close = self.close.lock().unwrap_or_else(|p| p.into_inner());
            if !self.stopped.load(Ordering::Relaxed) {
                let _ = self.tx.try_send(notice);
            }
            *close = Some(CloseFrame {
                code: code.into(),
                reason: reason.to_string().into(),
            });
            self.stop_queueing();
        }
        self.kill.cancel();
    }

    /// Ends the connection with this close code and reason (if none was set yet).
    pub fn kill_with(&self, code: u16, reason: &str) {
        self.set_close(code, reason);
    }

    fn set_close(&self, code: u16, reason: &str) {
        if let Ok(mut close) = self.close.lock()
            && close.is_none()
        {
            *close = Some(CloseFrame {
                code: code.into(),
                reason: reason.to_string().into(),
            });
        }
        self.stop_queueing();
        self.kill.cancel();
    }

    /// From now on frames for this session are dropped instead of queued
    /// (the connection is ending).
    pub fn stop_queueing(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// The close frame chosen by whoever killed the session.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.close.lock().ok().and_then(|c| c.clone())
    }

    /// Whether the queue ever filled up (the client stopped reading).
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    pub fn is_alive(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed) && !self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(frames: usize, bytes: usize) -> (SessionHandle, OutboxReceiver) {
        let (tx, rx, _) = Outbox::new(QueueLimits { frames, bytes });
        let uid = Uid::new("u").expect("a valid uid");
        (SessionHandle::new(1, uid, tx, CancellationToken::new()), rx)
    }

    #[test]
    fn the_frame_cap_is_exact() {
        let (s, _rx) = handle(4096, usize::MAX);
        for _ in 0..4096 {
            assert!(s.send(Message::text("x")));
        }
        assert!(!s.overflowed());
        assert!(!s.send(Message::text("x")));
        assert!(s.overflowed());
        let close = s.close_frame().expect("killed");
        assert_eq!(u16::from(close.code), close_code::SLOW_CONSUMER);
    }

    #[test]
    fn the_byte_cap_counts_and_releases() {
        let (tx, mut rx, load) = Outbox::new(QueueLimits {
            frames: 100,
            bytes: 1000,
        });
        assert!(tx.try_send(Message::text("a".repeat(600))).is_ok());
        assert_eq!(
            tx.try_send(Message::text("b".repeat(600))),
            Err(Some("bytes"))
        );
        assert!(load.should_pause_reading());
        let out = rx.try_recv().expect("queued");
        load.written(&out);
        assert_eq!(load.load(), (0, 0));
        assert!(tx.try_send(Message::text("b".repeat(600))).is_ok());
    }
}
