//! [`RtmChannel`]: one channel of a client.

use tokio::sync::mpsc;

use super::{ChannelEvent, RtmClient, RtmError, unexpected};
use crate::protocol::{ChannelId, Reply, Request, RtmMessage, Uid};

/// A channel handle made by [`RtmClient::create_channel`]. Its events come
/// from [`recv`](Self::recv) (and on the client's stream as well). Dropping
/// the handle stops its stream; membership is unaffected (use `leave`).
/// The newest handle of a channel gets the channel's stream.
pub struct RtmChannel {
    client: RtmClient,
    id: ChannelId,
    /// Identifies this handle's entry in the client's stream table.
    handle: u64,
    events: mpsc::UnboundedReceiver<ChannelEvent>,
}

impl Drop for RtmChannel {
    fn drop(&mut self) {
        let mut st = self.client.shared.lock();
        if st
            .channel_streams
            .get(&self.id)
            .is_some_and(|(h, _)| *h == self.handle)
        {
            st.channel_streams.remove(&self.id);
        }
    }
}

impl RtmChannel {
    pub(super) fn new(
        client: RtmClient,
        id: ChannelId,
        handle: u64,
        events: mpsc::UnboundedReceiver<ChannelEvent>,
    ) -> Self {
        Self {
            client,
            id,
            handle,
            events,
        }
    }

    pub fn channel_id(&self) -> &ChannelId {
        &self.id
    }

    /// Joins; returns the member count right after joining. The SDK rejoins
    /// by itself after a reconnection.
    pub async fn join(&self) -> Result<u32, RtmError> {
        match self
            .client
            .shared
            .request(Request::Join {
                channel_id: self.id.clone(),
            })
            .await?
        {
            Reply::Joined { member_count } => {
                self.client.shared.lock().joined.insert(self.id.clone());
                Ok(member_count)
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn leave(&self) -> Result<(), RtmError> {
        match self
            .client
            .shared
            .request(Request::Leave {
                channel_id: self.id.clone(),
            })
            .await?
        {
            Reply::Done => {
                self.client.shared.lock().joined.remove(&self.id);
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Sends to every other member (the sender does not get its own message back).
    pub async fn send_message(&self, message: RtmMessage) -> Result<u64, RtmError> {
        message.validate().map_err(RtmError::Local)?;
        match self
            .client
            .shared
            .request(Request::SendChannelMessage {
                channel_id: self.id.clone(),
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
            .client
            .shared
            .request(Request::GetMembers {
                channel_id: self.id.clone(),
            })
            .await?
        {
            Reply::Members { members } => Ok(members),
            other => Err(unexpected(other)),
        }
    }

    /// The next event of this channel.
    pub async fn recv(&mut self) -> Option<ChannelEvent> {
        self.events.recv().await
    }

    pub fn try_recv(&mut self) -> Option<ChannelEvent> {
        self.events.try_recv().ok()
    }
}
