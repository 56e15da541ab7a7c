//! The handle the hub holds for one live connection: a bounded outbound queue
//! drained by the connection's writer task, and a kill switch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
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

/// What a session's writer task takes from its queue.
#[derive(Debug)]
pub enum Outbound {
    Frame(Message),
    /// Answered once every frame queued before it has been flushed to the
    /// socket: the hub deletes delivered offline messages only then, so a
    /// crash in between redelivers rather than loses them.
    Written(oneshot::Sender<()>),
}

/// Owned by the hub (while logged in) and by the connection task; dropped when both let go.
#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub uid: Uid,
    /// Frames for the writer task. Bounded: a full queue means a slow consumer.
    tx: mpsc::Sender<Outbound>,
    /// Cancelled to end the connection (slow consumer, kicked, shutdown).
    kill: CancellationToken,
    /// The close frame the connection sends when killed; first reason wins.
    close: Mutex<Option<CloseFrame>>,
    /// Set when the queue filled up: the client is not reading.
    overflowed: std::sync::atomic::AtomicBool,
    /// Mirrors `kill` for the per-frame check on the fan-out path: reading
    /// an atomic is cheaper than the token's lock, once per recipient per
    /// message. Set before `kill` is cancelled.
    stopped: std::sync::atomic::AtomicBool,
}

impl SessionHandle {
    pub fn new(
        id: SessionId,
        uid: Uid,
        tx: mpsc::Sender<Outbound>,
        kill: CancellationToken,
    ) -> Self {
        Self {
            id,
            uid,
            tx,
            kill,
            close: Mutex::new(None),
            overflowed: std::sync::atomic::AtomicBool::new(false),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Queues a frame without waiting. A full queue kills the session as a
    /// slow consumer (its memory must stay bounded); a closed one is ignored
    /// (the connection is already going away). Returns whether it was queued.
    pub fn send(&self, msg: Message) -> bool {
        self.queue(Outbound::Frame(msg))
    }

    /// Queues a marker after everything queued so far; the receiver fires
    /// once those frames are written (it is dropped if they never are).
    pub fn when_written(&self) -> Option<oneshot::Receiver<()>> {
        let (tx, rx) = oneshot::channel();
        self.queue(Outbound::Written(tx)).then_some(rx)
    }

    /// Like [`send`](Self::send), for anything the writer takes.
    pub fn queue(&self, out: Outbound) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Relaxed);
                self.kill_with(
                    close_code::SLOW_CONSUMER,
                    "slow consumer: too many frames queued; read faster or reconnect",
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a frame if there is room, never killing the session for it
    /// (for a last notice right before the session is ended anyway).
    pub fn send_if_room(&self, msg: Message) {
        if !self.stopped.load(Ordering::Relaxed) {
            let _ = self.tx.try_send(Outbound::Frame(msg));
        }
    }

    /// Ends the connection with this close code and reason (if none was set yet).
    pub fn kill_with(&self, code: u16, reason: &str) {
        self.set_close(code, reason, false);
    }

    /// Like [`kill_with`](Self::kill_with), but this reason replaces an
    /// earlier one: a remote login must be reported as such even if the old
    /// session was also found to be slow, or the old device would reconnect
    /// and kick the new one.
    pub fn kill_overriding(&self, code: u16, reason: &str) {
        self.set_close(code, reason, true);
    }

    fn set_close(&self, code: u16, reason: &str, overriding: bool) {
        if let Ok(mut close) = self.close.lock()
            && (close.is_none() || overriding)
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
