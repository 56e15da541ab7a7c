//! The hand-over of stored (offline) messages at login, with flow control.
//!
//! At-least-once, end to end: a stored message is deleted only when the
//! client acknowledges it (`ack_offline`), not when it was written to the
//! socket — a link that dies with frames in flight, or with frames the
//! client never read, loses nothing; they come again (same `message_id`) at
//! the next login and the SDK drops the ones it already has.
//!
//! Flow control: at most a window of unacknowledged messages (and bytes) is
//! queued on the session at a time, refilled by the acknowledgements, and the
//! store is read one window-sized page at a time. So a mailbox of any size
//! drains through a queue of any size, and the hub never holds a whole
//! mailbox in memory.
//!
//! Live peer messages for the user wait (`held`) until every stored message
//! has been queued, so none overtakes an older stored one.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Message;

use super::{Hub, event_frame};
use crate::protocol::{ErrorBody, Event, MessageProps, Reply, Uid};
use crate::server::session::{SessionHandle, SessionId};
use crate::server::store::OfflineMessage;

/// One session's hand-over; lives in the user's record.
pub(super) struct Delivery {
    session: SessionId,
    /// Messages received before this (ms since the epoch) have expired.
    min_ts: u64,
    /// Store seq of the last message read; the next page starts after it.
    read_up_to: u64,
    /// Read from the store, not yet queued (the window is full).
    /// Read from the store and encoded (outside the hub lock), not yet sent:
    /// (seq, frame).
    waiting: VecDeque<(u64, Message)>,
    /// Queued, not yet acknowledged: (seq, frame bytes), oldest first.
    in_flight: VecDeque<(u64, usize)>,
    in_flight_bytes: usize,
    /// The store has nothing after `read_up_to` for this login.
    exhausted: bool,
    /// A page read is under way (one at a time, so pages never overlap).
    reading: bool,
    /// `Some` until every stored message is queued: live peer messages for
    /// the user wait here, in arrival order.
    pub(super) held: Option<Vec<Message>>,
}

impl Delivery {
    /// A hand-over for `session`; `held` are frames that must follow the
    /// stored messages (those of a resumed session come first).
    pub(super) fn new(session: SessionId, min_ts: u64, held: Vec<Message>) -> Self {
        Self {
            session,
            min_ts,
            read_up_to: 0,
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            exhausted: false,
            reading: false,
            held: Some(held),
        }
    }

    /// The store got more for this login (cluster mode: a message stored
    /// through another node as the user logged in here): read on.
    pub(super) fn read_again(&mut self) {
        self.exhausted = false;
    }

    /// Nothing left to send and nothing left to acknowledge.
    fn finished(&self) -> bool {
        self.held.is_none() && self.in_flight.is_empty()
    }
}

/// What `fill` does next, decided under the lock.
enum Next {
    Done,
    Read(crate::server::store::Ticket<Vec<OfflineMessage>>),
}

impl Hub {
    /// Queues stored messages for `session` while the window has room,
    /// reading pages from the store as needed; once all are queued, releases
    /// the held live messages. Returns when the window is full (the client's
    /// acknowledgements call it again), or everything is queued.
    pub(super) async fn fill_offline(&self, session: &Arc<SessionHandle>) {
        let uid = &session.uid;
        let window = self.config.offline_window.max(1);
        let window_bytes = self.config.offline_window_bytes;
        loop {
            let next = {
                let mut st = self.lock();
                let Some(user) = st.users.get_mut(uid).filter(|u| u.session.id == session.id)
                else {
                    return;
                };
                let Some(d) = user.delivery.as_mut().filter(|d| d.session == session.id) else {
                    return;
                };
                while d.in_flight.len() < window
                    && (d.in_flight.is_empty() || d.in_flight_bytes < window_bytes)
                    && let Some((seq, frame)) = d.waiting.pop_front()
                {
                    let bytes = frame.len();
                    if !session.send(frame) {
                        // The connection is ending; the message stays stored.
                        return;
                    }
                    d.in_flight.push_back((seq, bytes));
                    d.in_flight_bytes += bytes;
                }
                if d.waiting.is_empty() && d.exhausted {
                    if let Some(held) = d.held.take() {
                        for frame in held {
                            session.send(frame);
                        }
                    }
                    if d.finished() {
                        user.delivery = None;
                    }
                    Next::Done
                } else if !d.waiting.is_empty() || d.reading {
                    Next::Done
                } else {
                    d.reading = true;
                    Next::Read(
                        self.store
                            .pending_offline(uid, d.min_ts, d.read_up_to, window),
                    )
                }
            };
            let Next::Read(ticket) = next else {
                return;
            };
            let page = ticket.await.unwrap_or_else(|e| {
                // Delivered at a later login instead; live messages must not
                // wait for a store that fails.
                tracing::error!(%uid, "reading offline messages: {e}");
                Vec::new()
            });
            let exhausted = page.len() < window;
            // Encoded here, before the lock: nobody waits for the JSON.
            let page: Vec<(u64, Message)> = page
                .into_iter()
                .map(|m| (m.seq, offline_frame(m)))
                .collect();
            let mut st = self.lock();
            let Some(d) = st
                .users
                .get_mut(uid)
                .filter(|u| u.session.id == session.id)
                .and_then(|u| u.delivery.as_mut())
                .filter(|d| d.session == session.id)
            else {
                return;
            };
            d.reading = false;
            d.exhausted = exhausted;
            if let Some((last, _)) = page.last() {
                d.read_up_to = *last;
            }
            d.waiting.extend(page);
        }
    }

    /// The client has every stored message of this session up to `up_to`:
    /// they are deleted (never beyond what was actually sent to it), and the
    /// window is refilled. A stale or repeated acknowledgement does nothing.
    pub async fn ack_offline(
        &self,
        session: &Arc<SessionHandle>,
        up_to: u64,
    ) -> Result<Reply, ErrorBody> {
        let uid: &Uid = &session.uid;
        {
            let mut st = self.lock();
            let Some(user) = st.users.get_mut(uid).filter(|u| u.session.id == session.id) else {
                return Ok(Reply::Done);
            };
            let Some(d) = user.delivery.as_mut().filter(|d| d.session == session.id) else {
                return Ok(Reply::Done);
            };
            let mut acked = None;
            while let Some(&(seq, bytes)) = d.in_flight.front()
                && seq <= up_to
            {
                d.in_flight.pop_front();
                d.in_flight_bytes -= bytes;
                acked = Some(seq);
            }
            if let Some(seq) = acked {
                // Not awaited: a delete that fails or is lost in a crash only
                // means the message comes again (and the SDK drops it).
                self.store
                    .ack_offline(uid, seq)
                    .log_failure("deleting acknowledged offline messages");
            }
            if d.finished() {
                user.delivery = None;
                return Ok(Reply::Done);
            }
        }
        self.fill_offline(session).await;
        Ok(Reply::Done)
    }
}

/// The event of a stored message, carrying its stable id.
fn offline_frame(m: OfflineMessage) -> Message {
    event_frame(&Event::MessageFromPeer {
        peer_id: m.from,
        message: m.message,
        props: MessageProps {
            server_received_ts: m.server_received_ts,
            is_offline_message: true,
            message_id: Some(m.seq),
        },
    })
}
