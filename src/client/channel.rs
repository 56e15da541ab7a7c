//! [`RtmChannel`]: one channel of a client, and its own event stream.

use std::sync::Arc;

use super::queue::EventQueue;
use super::{ChannelEvent, RtmClient, RtmError, unexpected};
use crate::protocol::{ChannelId, Reply, Request, RtmMessage, Uid};

/// A channel made by [`RtmClient::create_channel`]. Cheap to clone; every
/// clone (and every later `create_channel` of the same id while one lives) is
/// the same channel. Dropping the last handle leaves the channel if it was
/// joined. Its events arrive on the client stream as
/// [`ClientEvent::Channel`](super::ClientEvent::Channel), or — once taken
/// with [`events`](Self::events) — on the channel's own stream only.
#[derive(Clone)]
pub struct RtmChannel {
    inner: Arc<ChannelInner>,
}

/// The channel itself, owned by its handles; the client's registry holds
/// only a weak reference, so the last handle decides when it ends.
pub(super) struct ChannelInner {
    /// Keeps the session alive while the channel is held.
    client: RtmClient,
    id: ChannelId,
}

impl ChannelInner {
    pub(super) fn new(client: RtmClient, id: ChannelId) -> Self {
        Self { client, id }
    }
}

impl Drop for ChannelInner {
    /// The last handle went: forget the channel, end its stream, and leave it
    /// if joined (fire and forget: a drop cannot wait for the reply).
    fn drop(&mut self) {
        let shared = &self.client.shared;
        let (stream, leave_now) = {
            let mut st = shared.lock();
            // A new handle may already stand in for this id (made while this
            // one was being dropped); then it owns membership and stream.
            if st
                .channels
                .get(&self.id)
                .is_some_and(|w| w.strong_count() > 0)
            {
                return;
            }
            st.channels.remove(&self.id);
            let was_joined = st.joined.remove(&self.id);
            let leave_now = was_joined && st.out.is_some();
            if was_joined && !leave_now {
                // The link is down; the server may keep the session (resume).
                st.leave_after_reconnect.insert(self.id.clone());
            }
            (st.channel_streams.remove(&self.id), leave_now)
        };
        if let Some(q) = stream {
            q.close();
        }
        if leave_now {
            shared.send_and_forget(Request::Leave {
                channel_id: self.id.clone(),
            });
        }
    }
}

/// The events of one channel, taken with [`RtmChannel::events`]; bounded
/// like the client stream (see the module docs). Dropping it hands the
/// channel's events back to the client stream.
pub struct ChannelEvents {
    queue: Arc<EventQueue<ChannelEvent>>,
}

impl ChannelEvents {
    /// The next event of the channel; `None` once its last handle is dropped.
    pub async fn recv(&mut self) -> Option<ChannelEvent> {
        self.queue.recv().await
    }

    /// An event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<ChannelEvent> {
        self.queue.try_recv()
    }
}

impl Drop for ChannelEvents {
    fn drop(&mut self) {
        self.queue.drop_reader();
    }
}

impl RtmChannel {
    pub(super) fn from_inner(inner: Arc<ChannelInner>) -> Self {
        Self { inner }
    }

    pub fn channel_id(&self) -> &ChannelId {
        &self.inner.id
    }

    /// Takes this channel's own event stream: from now on its events arrive
    /// there and no longer on the client stream. `None` while another stream
    /// of this channel is alive (one reader per channel).
    pub fn events(&self) -> Option<ChannelEvents> {
        let shared = &self.inner.client.shared;
        let mut st = shared.lock();
        if st
            .channel_streams
            .get(&self.inner.id)
            .is_some_and(|q| q.has_reader())
        {
            return None;
        }
        let queue = Arc::new(EventQueue::new(shared.config.event_queue_capacity));
        st.channel_streams
            .insert(self.inner.id.clone(), queue.clone());
        Some(ChannelEvents { queue })
    }

    /// Joins; returns the member count right after joining. The SDK rejoins
    /// by itself after a reconnection.
    pub async fn join(&self) -> Result<u32, RtmError> {
        let shared = &self.inner.client.shared;
        match shared
            .request(Request::Join {
                channel_id: self.inner.id.clone(),
            })
            .await?
        {
            Reply::Joined { member_count } => {
                let mut st = shared.lock();
                st.joined.insert(self.inner.id.clone());
                st.leave_after_reconnect.remove(&self.inner.id);
                Ok(member_count)
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn leave(&self) -> Result<(), RtmError> {
        let shared = &self.inner.client.shared;
        match shared
            .request(Request::Leave {
                channel_id: self.inner.id.clone(),
            })
            .await?
        {
            Reply::Done => {
                shared.lock().joined.remove(&self.inner.id);
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Sends to every other member (the sender does not get its own message back).
    pub async fn send_message(&self, message: RtmMessage) -> Result<u64, RtmError> {
        message.validate().map_err(RtmError::Local)?;
        match self
            .inner
            .client
            .shared
            .request(Request::SendChannelMessage {
                channel_id: self.inner.id.clone(),
                message,
            })
            .await?
        {
            Reply::ChannelMessageSent { server_received_ts } => Ok(server_received_ts),
            other => Err(unexpected(other)),
        }
    }

    /// The current members (the channel must be joined).
    pub async fn get_members(&self) -> Result<Vec<Uid>, RtmError> {
        match self
            .inner
            .client
            .shared
            .request(Request::GetMembers {
                channel_id: self.inner.id.clone(),
            })
            .await?
        {
            Reply::Members { members } => Ok(members),
            other => Err(unexpected(other)),
        }
    }
}
