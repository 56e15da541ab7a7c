//! The storage boundary of the server: what must outlive a session or a
//! restart. Channel attributes (spec §6) and offline peer messages (spec §3)
//! live behind [`Store`]; sessions, channels and presence stay in the hub's
//! memory. [`MemoryStore`] keeps everything in RAM (tests, `--data` unset);
//! durable back ends implement the same trait.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::protocol::{ChannelAttribute, ChannelId, RtmMessage, Uid};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Backend(String),
}

/// A peer message kept for a receiver who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Store-assigned, increasing in send order per receiver.
    pub seq: u64,
    pub from: Uid,
    pub message: RtmMessage,
    pub server_received_ts: u64,
}

/// What the hub needs from storage. Calls are short and synchronous; the hub
/// makes them while it holds its lock so that concurrent writers serialise.
pub trait Store: Send + Sync + 'static {
    /// All attributes of a channel, in key order (empty when none).
    fn channel_attributes(&self, channel: &ChannelId) -> Result<Vec<ChannelAttribute>, StoreError>;
    /// Replaces a channel's attribute set (empty removes it).
    fn put_channel_attributes(
        &self,
        channel: &ChannelId,
        attributes: &[ChannelAttribute],
    ) -> Result<(), StoreError>;
    /// Records since when a channel has had no members (`None`: it has members).
    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Result<(), StoreError>;
    /// Clears attributes of channels empty since before `cutoff_ms`; returns them.
    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Result<Vec<ChannelId>, StoreError>;
    /// Stores a message for an offline receiver, keeping at most `cap` per
    /// receiver (oldest dropped). Returns only once the message is durable.
    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        cap: usize,
    ) -> Result<(), StoreError>;
    /// The messages waiting for `to`, oldest first, not older than `min_ts`.
    /// They stay stored until [`ack_offline`](Store::ack_offline).
    fn pending_offline(&self, to: &Uid, min_ts: u64) -> Result<Vec<OfflineMessage>, StoreError>;
    /// Removes delivered messages up to and including `up_to_seq`.
    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Result<(), StoreError>;
}

#[derive(Default)]
struct MemoryInner {
    attributes: HashMap<ChannelId, Vec<ChannelAttribute>>,
    empty_since: HashMap<ChannelId, u64>,
    offline: HashMap<Uid, VecDeque<OfflineMessage>>,
    next_seq: u64,
}

/// Everything in RAM; lost at exit.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryInner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

impl Store for MemoryStore {
    fn channel_attributes(&self, channel: &ChannelId) -> Result<Vec<ChannelAttribute>, StoreError> {
        Ok(self.lock()?.attributes.get(channel).cloned().unwrap_or_default())
    }

    fn put_channel_attributes(
        &self,
        channel: &ChannelId,
        attributes: &[ChannelAttribute],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if attributes.is_empty() {
            inner.attributes.remove(channel);
        } else {
            inner.attributes.insert(channel.clone(), attributes.to_vec());
        }
        Ok(())
    }

    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        match since_ms {
            Some(ts) => {
                inner.empty_since.entry(channel.clone()).or_insert(ts);
            }
            None => {
                inner.empty_since.remove(channel);
            }
        }
        Ok(())
    }

    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Result<Vec<ChannelId>, StoreError> {
        let mut inner = self.lock()?;
        let expired: Vec<ChannelId> = inner
            .empty_since
            .iter()
            .filter(|(_, since)| **since < cutoff_ms)
            .map(|(c, _)| c.clone())
            .collect();
        let mut cleared = Vec::new();
        for c in expired {
            inner.empty_since.remove(&c);
            if inner.attributes.remove(&c).is_some() {
                cleared.push(c);
            }
        }
        Ok(cleared)
    }

    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        cap: usize,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let queue = inner.offline.entry(to.clone()).or_default();
        queue.push_back(OfflineMessage {
            seq,
            from: from.clone(),
            message: message.clone(),
            server_received_ts,
        });
        while queue.len() > cap {
            queue.pop_front();
        }
        Ok(())
    }

    fn pending_offline(&self, to: &Uid, min_ts: u64) -> Result<Vec<OfflineMessage>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .offline
            .get(to)
            .map(|q| {
                q.iter()
                    .filter(|m| m.server_received_ts >= min_ts)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(q) = inner.offline.get_mut(to) {
            while q.front().is_some_and(|m| m.seq <= up_to_seq) {
                q.pop_front();
            }
            if q.is_empty() {
                inner.offline.remove(to);
            }
        }
        Ok(())
    }
}
