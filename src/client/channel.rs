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

    /// The channel's id, as given to `create_channel` (Agora's
    /// `channel.channelId`).
    pub fn channel_id(&self) -> &ChannelId {
        &self.inner.id
    }

    /// Takes this channel's own event stream: from now on its events arrive
    /// there and no longer on the client stream. `None` while another stream
    /// of this channel is alive (one reader per channel; clones of this
    /// handle share it). Rtm's counterpart of Agora's `channel.on(..)`.
    ///
    /// Dropping the stream hands the channel's events back to
    /// [`ClientEvent::Channel`](super::ClientEvent::Channel); it ends (`None`)
    /// when the channel's last handle is dropped. It holds at most
    /// [`ClientConfig::event_queue_capacity`](super::ClientConfig::event_queue_capacity)
    /// events: a reader that falls behind loses the oldest and gets
    /// [`ChannelEvent::Lagged`] first.
    ///
    /// ```no_run
    /// use rtm::client::{ChannelEvent, ClientConfig, RtmClient, RtmError};
    ///
    /// # async fn demo() -> Result<(), RtmError> {
    /// let (client, _events) = RtmClient::new("ws://127.0.0.1:7420", ClientConfig::default());
    /// client.login("alice", None).await?;
    /// let room = client.create_channel("general")?;
    /// let mut room_events = room.events().expect("the first reader");
    /// // One reader per channel: a second `events()` is refused while the
    /// // first stream lives, even through a clone of the handle.
    /// assert!(room.clone().events().is_none());
    /// room.join().await?;
    ///
    /// while let Some(event) = room_events.recv().await {
    ///     match event {
    ///         ChannelEvent::ChannelMessage { message, member_id, .. } => {
    ///             println!("{member_id}: {message:?}");
    ///         }
    ///         ChannelEvent::MemberJoined(uid) => println!("{uid} joined"),
    ///         ChannelEvent::MemberLeft(uid) => println!("{uid} left"),
    ///         // Fell behind: events were dropped, so re-read the members.
    ///         ChannelEvent::Lagged { dropped } => {
    ///             println!("missed {dropped} events");
    ///             let members = room.get_members().await?;
    ///             println!("members now: {members:?}");
    ///         }
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
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
    /// by itself after a reconnection (reported in
    /// [`ClientEvent::Restored`](super::ClientEvent::Restored)). Other members
    /// get `MemberJoined` (channels of at most 512 members) and a
    /// `MemberCountUpdated`.
    ///
    /// Errors: `ALREADY_JOINED`; `EXCEED_LIMIT` past
    /// [`MAX_JOINED_CHANNELS`](crate::protocol::MAX_JOINED_CHANNELS) (20)
    /// channels; `JOIN_SAME_CHANNEL_TOO_OFTEN` for a third join of one channel
    /// within 5 s; `TOO_OFTEN`; `NOT_LOGGED_IN`, timeout or lost connection.
    /// While reconnecting the join is held until the link is back (or the
    /// request timeout).
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

    /// Leaves the channel; it is no longer rejoined after a reconnection.
    /// Other members get `MemberLeft` and a `MemberCountUpdated`. The handle
    /// stays usable: `join` again later.
    ///
    /// Errors: `NOT_IN_CHANNEL` when not joined; `NOT_LOGGED_IN`, timeout or
    /// lost connection (held while reconnecting, as every request).
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

    /// Sends to every other member (the sender does not get its own message
    /// back); they get [`ChannelEvent::ChannelMessage`]. Returns when the
    /// server got it (`server_received_ts`, ms since the Unix epoch).
    /// Agora's `channel.sendMessage`.
    ///
    /// Errors: `INVALID_MESSAGE` (empty, or over
    /// [`MAX_MESSAGE_BYTES`](crate::protocol::MAX_MESSAGE_BYTES), 32 KB)
    /// locally; `NOT_IN_CHANNEL` when not joined; `TOO_OFTEN`;
    /// `NOT_LOGGED_IN`, timeout or lost connection. While reconnecting the
    /// message is held and goes out after the channel is rejoined.
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

    /// The current members (the channel must be joined), this user
    /// included; Agora's `channel.getMembers`.
    ///
    /// Errors: `NOT_IN_CHANNEL` when not joined; `TOO_OFTEN`;
    /// `NOT_LOGGED_IN`, timeout or lost connection.
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
